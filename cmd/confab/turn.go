package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/launch"
	"confab.dev/confab/internal/turnd"
)

// turnFlags reads `confab turn` flags over the config file's settings.
type turnFlags struct {
	path, dataDir, secretFile, realm string
	udp, tcp, tlsAddr, admin         string
	cert, key                        string
	relayIP, relayBindIP             string
	minPort, maxPort                 int
	perUser, total, connections      int
	bandwidth                        int64
	deny, allow                      string
	logFormat, logLevel              string
}

func (f *turnFlags) register(fs *flag.FlagSet, serve bool) {
	fs.StringVar(&f.path, "config", "", "configuration file (TOML, a [turn] section); see examples/turn.toml")
	fs.StringVar(&f.secretFile, "secret-file", "", "file holding the shared secret of time-limited credentials (first line)")
	fs.StringVar(&f.realm, "realm", "", "realm (default confab)")
	if !serve {
		return
	}
	fs.StringVar(&f.dataDir, "data", "", "data directory: a generated certificate when none is given (default confab-data)")
	fs.StringVar(&f.udp, "udp", "", `TURN over UDP listener (default :3478; "off" for none)`)
	fs.StringVar(&f.tcp, "tcp", "", `TURN over TCP listener (default :3478; "off" for none)`)
	fs.StringVar(&f.tlsAddr, "tls", "", `TURN over TLS listener (default :5349; "off" for none)`)
	fs.StringVar(&f.admin, "admin", "", `plain HTTP: /metrics, /healthz, /allocations (default 127.0.0.1:5291; "off" for none)`)
	fs.StringVar(&f.cert, "cert", "", "TLS certificate (PEM); with -key")
	fs.StringVar(&f.key, "key", "", "TLS private key (PEM)")
	fs.StringVar(&f.relayIP, "relay-ip", "", "relayed address advertised to clients (default: the address they reached)")
	fs.StringVar(&f.relayBindIP, "relay-bind-ip", "", "address relay sockets are bound to")
	fs.IntVar(&f.minPort, "min-port", 0, "lowest relay port (default 49152)")
	fs.IntVar(&f.maxPort, "max-port", 0, "highest relay port (default 65535)")
	fs.IntVar(&f.perUser, "user-quota", 0, "allocations per user id (default 10; -1 for no bound)")
	fs.IntVar(&f.total, "total-quota", 0, "allocations in all (default 10000; -1 for no bound)")
	fs.IntVar(&f.connections, "max-connections", 0, "TCP and TLS connections (default 10000)")
	fs.Int64Var(&f.bandwidth, "bandwidth", 0, "bytes per second each way per allocation (default 4000000; -1 for no cap)")
	fs.StringVar(&f.deny, "deny", "", "comma-separated CIDRs no client may relay to (beyond loopback, link-local, multicast)")
	fs.StringVar(&f.allow, "allow", "", "comma-separated CIDRs that may be relayed to even if denied (e.g. 127.0.0.1/32)")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error")
}

func (f *turnFlags) load() (config.TURNServer, error) {
	var c config.TURNServer
	if f.path != "" {
		if err := config.Load(f.path, &c); err != nil {
			return c, err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setInt := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	t := &c.TURN
	set(&c.DataDir, f.dataDir)
	set(&t.Realm, f.realm)
	if f.secretFile != "" {
		t.SharedSecret, t.SharedSecretFile = "", f.secretFile
	}
	set(&t.Listen.UDP, f.udp)
	set(&t.Listen.TCP, f.tcp)
	set(&t.Listen.TLS, f.tlsAddr)
	set(&t.Listen.Admin, f.admin)
	set(&t.TLS.Cert, f.cert)
	set(&t.TLS.Key, f.key)
	set(&t.Relay.IP, f.relayIP)
	set(&t.Relay.BindIP, f.relayBindIP)
	setInt(&t.Relay.MinPort, f.minPort)
	setInt(&t.Relay.MaxPort, f.maxPort)
	setInt(&t.Quotas.PerUser, f.perUser)
	setInt(&t.Quotas.Total, f.total)
	setInt(&t.Quotas.Connections, f.connections)
	if f.bandwidth != 0 {
		t.Quotas.Bandwidth = f.bandwidth
	}
	if f.deny != "" {
		t.Peers.Deny = splitList(f.deny)
	}
	if f.allow != "" {
		t.Peers.Allow = splitList(f.allow)
	}
	set(&c.Log.Format, f.logFormat)
	set(&c.Log.Level, f.logLevel)
	c = c.WithDefaults()
	return c, c.Validate()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// turnConfig turns the configuration file's section into the server's Config (without
// TLS, logger and metrics); a server alone needs credentials.
func turnConfig(c config.TURN) (turnd.Config, error) {
	tc, err := launch.TURNConfig(c)
	if err != nil {
		return tc, err
	}
	if tc.Secret.IsZero() && len(tc.Users) == 0 {
		return tc, errors.New("turn: no shared secret and no users: no client could authenticate (set shared_secret_file, or -secret-file)")
	}
	return tc, nil
}

func off(addr string) bool { return addr == "" || addr == "off" }

func runTURN(ctx context.Context, args []string, io stdio) error {
	if len(args) > 0 && args[0] == "credentials" {
		return runTURNCredentials(args[1:], io)
	}
	fs := flag.NewFlagSet("confab turn", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f turnFlags
	f.register(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(io.err, "usage: confab turn [flags]\n       confab turn credentials -user ID [-ttl 1h] [flags]\n\nRuns the TURN server (UDP and TCP 3478, TLS 5349). Flags override the configuration file:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	log := newLogger(io.err, cfg.Log)
	tc, err := turnConfig(cfg.TURN)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tc.Logger, tc.Metrics = log, reg
	t := cfg.TURN
	if !off(t.Listen.TLS) {
		if tc.TLS, err = turnTLS(cfg, io); err != nil {
			return err
		}
	}
	srv, err := turnd.New(tc)
	if err != nil {
		return err
	}

	// Bind everything first, so that a port in use fails the start with nothing served.
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	type serve struct {
		what string
		run  func() error
	}
	var serves []serve
	var lines []string
	if !off(t.Listen.UDP) {
		pc, err := net.ListenPacket("udp", t.Listen.UDP)
		if err != nil {
			closeAll()
			return fmt.Errorf("turn udp: %w", err)
		}
		closers = append(closers, func() { pc.Close() })
		if a := pc.LocalAddr().(*net.UDPAddr); a.IP.IsUnspecified() && !tc.RelayIP.IsValid() {
			closeAll()
			return fmt.Errorf("turn udp %s is on all addresses: set [turn.relay] ip (or -relay-ip) to the address clients reach, or listen on one address", t.Listen.UDP)
		}
		serves = append(serves, serve{"udp", func() error { return srv.ServeUDP(pc) }})
		lines = append(lines, "turn:  udp "+pc.LocalAddr().String())
	}
	for _, l := range []struct {
		what, addr string
		serve      func(net.Listener) error
		scheme     string
	}{
		{"tcp", t.Listen.TCP, srv.ServeTCP, "turn:  tcp "},
		{"tls", t.Listen.TLS, srv.ServeTLS, "turns: tls "},
	} {
		if off(l.addr) {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("turn %s: %w", l.what, err)
		}
		closers = append(closers, func() { ln.Close() })
		serves = append(serves, serve{l.what, func() error { return l.serve(ln) }})
		lines = append(lines, l.scheme+ln.Addr().String())
	}
	if len(serves) == 0 {
		return errors.New("turn: every listener is off")
	}
	var admin *http.Server
	if !off(t.Listen.Admin) {
		ln, err := net.Listen("tcp", t.Listen.Admin)
		if err != nil {
			closeAll()
			return fmt.Errorf("turn admin: %w", err)
		}
		admin = &http.Server{Handler: turnAdmin(srv, reg), ReadHeaderTimeout: 10 * time.Second}
		serves = append(serves, serve{"admin", func() error { return admin.Serve(ln) }})
		lines = append(lines, "admin: http://"+ln.Addr().String()+"/metrics, /healthz, /allocations")
	}
	errc := make(chan error, len(serves))
	for _, s := range serves {
		go func() {
			err := s.run()
			if errors.Is(err, turnd.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("turn %s: %w", s.what, err)
			}
			errc <- err
		}()
	}
	relay := t.Relay.IP
	if relay == "" {
		relay = "the address each client reached"
	}
	fmt.Fprintf(io.out, "TURN server, realm %q, listening on:\n  %s\nrelaying from %s, ports %d-%d\n",
		t.Realm, strings.Join(lines, "\n  "), relay, t.Relay.MinPort, t.Relay.MaxPort)
	log.Info("TURN server started", "realm", t.Realm, "listeners", lines)

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		if failed == nil {
			failed = errors.New("turn: a listener stopped")
		}
	}
	err = shutdown(func(ctx context.Context) error {
		var errs []error
		if admin != nil {
			errs = append(errs, admin.Shutdown(ctx))
		}
		errs = append(errs, srv.Shutdown(ctx))
		return errors.Join(errs...)
	})
	for range len(serves) - boolInt(failed != nil) {
		if e := <-errc; e != nil {
			err = errors.Join(err, e)
		}
	}
	log.Info("TURN server stopped")
	return errors.Join(failed, err)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// turnTLS returns the TLS listener's configuration: the configured certificate, or one
// generated in <data_dir>/tls (the host name, the relay address, localhost).
func turnTLS(cfg config.TURNServer, io stdio) (*tls.Config, error) {
	t := cfg.TURN
	if t.TLS.Cert != "" {
		return certs.ServerConfig(certs.ServerOptions{CertFile: t.TLS.Cert, KeyFile: t.TLS.Key})
	}
	name, _ := os.Hostname()
	if name == "" {
		name = "localhost"
	}
	var hosts []string
	if t.Relay.IP != "" {
		hosts = append(hosts, t.Relay.IP)
	}
	l, err := certs.EnsureLocal(filepath.Join(cfg.DataDir, "tls"), name, hosts)
	if err != nil {
		return nil, err
	}
	if l.Created() {
		fmt.Fprintf(io.out, "Generated a TLS certificate for turns: (%s); clients must trust the CA in %s\n", l.Reason, l.CAFile)
	}
	return certs.ServerConfig(certs.ServerOptions{CertFile: l.CertFile, KeyFile: l.KeyFile})
}

// turnAdmin serves /metrics, /healthz and /allocations (JSON).
func turnAdmin(srv *turnd.Server, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /allocations", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(srv.Allocations())
	})
	return mux
}

// runTURNCredentials prints time-limited credentials from the shared secret, for
// turnutils_uclient or a test page.
func runTURNCredentials(args []string, io stdio) error {
	fs := flag.NewFlagSet("confab turn credentials", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f turnFlags
	f.register(fs, false)
	user := fs.String("user", "", "user id (required)")
	ttl := fs.Duration("ttl", time.Hour, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *ttl <= 0 {
		return &exitError{2, errors.New("usage: confab turn credentials -user ID [-ttl 1h] [-config FILE | -secret-file FILE]")}
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	sec, err := cfg.TURN.Secret()
	if err != nil {
		return err
	}
	c, err := turnd.IssueCredentials(sec, *user, time.Now().Add(*ttl))
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "username: %s\npassword: %s\nexpires:  %s\nrealm:    %s\n", c.Username, c.Password.Reveal(),
		c.Expires.UTC().Format(time.RFC3339), cfg.TURN.Realm)
	fmt.Fprintf(io.out, "\ntry: turnutils_uclient -y -u '%s' -w '%s' HOST\n", c.Username, c.Password.Reveal())
	return nil
}
