package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/stun/v4"
)

// CoturnOptions describe a coturn to start: a TURN server that authenticates with
// time-limited credentials derived from a shared secret (use-auth-secret with
// static-auth-secret, the "TURN REST API"), as most WebRTC deployments run it.
type CoturnOptions struct {
	// Realm is coturn's realm; Secret its static-auth-secret.
	Realm, Secret string
	// CertFile and KeyFile are the certificate and key (PEM) of the TLS port.
	CertFile, KeyFile string
	// AllowedPeers are the peer addresses relayed to although coturn denies them by default
	// (allowed-peer-ip); empty means 127.0.0.1, the tests' peers. A loopback address here
	// also turns allow-loopback-peers on, since coturn checks that before the list.
	AllowedPeers []string
	// UserQuota bounds each user's concurrent allocations (user-quota); 0: no bound.
	UserQuota int
	// Verbose raises coturn's log level (-v).
	Verbose bool
}

// Coturn is a running coturn (Debian package coturn, program turnserver).
type Coturn struct {
	// UDPAddr and TCPAddr are the plain TURN port (UDP and TCP on one port number), TLSAddr
	// the TLS port; all 127.0.0.1:port.
	UDPAddr, TCPAddr, TLSAddr string
	Realm                     string
	// Version is what `turnserver --version` printed (4.6.1 on Debian 12).
	Version string
	// PID is turnserver's process id; Dir holds its configuration, database, log and pid
	// file; ConfigFile, LogFile and ConsoleFile are in it.
	PID                              int
	Dir                              string
	ConfigFile, LogFile, ConsoleFile string

	proc *Server
}

// StartCoturn starts coturn in dir (which must exist and be private to it) with its own
// configuration file, and returns once its TCP and TLS ports accept connections and its UDP
// port answers a STUN Binding request. Nothing of the system's (/etc/turnserver.conf,
// /var/lib/turn) is read or written. If ctx has no deadline, DefaultStartTimeout applies.
// Errors wrap ErrNotInstalled when the package is missing, and quote the end of coturn's
// log otherwise.
func StartCoturn(ctx context.Context, dir string, o CoturnOptions) (*Coturn, error) {
	if o.Realm == "" || o.Secret == "" {
		return nil, errors.New("start coturn: empty realm or secret")
	}
	for _, f := range []string{o.CertFile, o.KeyFile} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("start coturn: certificate: %w", err)
		}
	}
	for _, v := range append([]string{o.Realm, o.Secret, o.CertFile, o.KeyFile, dir}, o.AllowedPeers...) {
		if strings.ContainsAny(v, "\n\r#\"") {
			return nil, fmt.Errorf("start coturn: %q: newlines, quotes and # are not supported", v)
		}
	}
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/turnserver"); serr != nil {
			return nil, fmt.Errorf("start coturn: turnserver (Debian package coturn): %w", ErrNotInstalled)
		}
		bin = "/usr/bin/turnserver"
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start coturn: %w", err)
	}
	version, _ := exec.CommandContext(ctx, bin, "--version").Output()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, DefaultStartTimeout,
			fmt.Errorf("coturn did not start within %s", DefaultStartTimeout))
		defer cancel()
	}
	// A port found free can be taken before coturn binds it; try again with others.
	const attempts = 3
	for i := 1; ; i++ {
		run := filepath.Join(dir, fmt.Sprintf("run%d", i))
		if err := os.MkdirAll(run, 0o700); err != nil {
			return nil, fmt.Errorf("start coturn: %w", err)
		}
		c := &Coturn{Realm: o.Realm, Version: strings.TrimSpace(string(version)), Dir: run,
			proc: &Server{Kind: "coturn", Dir: run}}
		err = c.start(ctx, bin, o)
		if err == nil {
			return c, nil
		}
		c.Stop()
		if errors.Is(err, errPortInUse) && i < attempts {
			continue
		}
		return nil, fmt.Errorf("start coturn in %s: %w%s", run, err, c.proc.tail())
	}
}

func (c *Coturn) start(ctx context.Context, bin string, o CoturnOptions) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	c.UDPAddr, c.TCPAddr, c.TLSAddr = loopback(ports[0]), loopback(ports[0]), loopback(ports[1])
	c.ConfigFile = filepath.Join(c.Dir, "turnserver.conf")
	c.LogFile = filepath.Join(c.Dir, "turn.log")
	c.ConsoleFile = filepath.Join(c.Dir, "console.log")
	c.proc.LogFile, c.proc.ConsoleFile = c.LogFile, c.ConsoleFile
	if err := os.WriteFile(c.ConfigFile, coturnConfig(c, o, ports), 0o600); err != nil {
		return err
	}
	args := []string{"-c", c.ConfigFile}
	if o.Verbose {
		args = append(args, "--verbose")
	}
	if err := c.proc.spawn(bin, args, environ(map[string]string{"HOME": c.Dir})); err != nil {
		return err
	}
	c.PID = c.proc.PID
	return c.proc.waitReady(ctx, "coturn's ports", func(ctx context.Context) (bool, error) {
		log, _ := os.ReadFile(c.LogFile)
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "Address already in use") {
				return false, fmt.Errorf("%s: %w", strings.TrimSpace(line), errPortInUse)
			}
		}
		return dialAll(ctx, c.TCPAddr, c.TLSAddr) && stunBinding(c.UDPAddr), nil
	})
}

// coturnConfig returns coturn's configuration file: everything on 127.0.0.1, nothing of
// the system's, the shared-secret scheme.
func coturnConfig(c *Coturn, o CoturnOptions, ports []int) []byte {
	peers := o.AllowedPeers
	if len(peers) == 0 {
		peers = []string{"127.0.0.1"}
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by confab.dev/confab/internal/peers for a test; not for production.")
	w("listening-ip=127.0.0.1")
	w("relay-ip=127.0.0.1")
	w("listening-port=%d", ports[0])
	w("tls-listening-port=%d", ports[1])
	w("realm=%s", o.Realm)
	w("use-auth-secret")
	w("static-auth-secret=%s", o.Secret)
	w("fingerprint")
	// What coturn denies by default, and what a test relays to anyway.
	w("no-multicast-peers")
	for _, p := range peers {
		if ip := net.ParseIP(p); ip != nil && ip.IsLoopback() {
			// coturn refuses loopback peers before it reads allowed-peer-ip.
			w("allow-loopback-peers")
			break
		}
	}
	for _, p := range peers {
		w("allowed-peer-ip=%s", p)
	}
	if o.UserQuota > 0 {
		w("user-quota=%d", o.UserQuota)
	}
	w("cert=%s", o.CertFile)
	w("pkey=%s", o.KeyFile)
	w("no-tlsv1")
	w("no-tlsv1_1")
	w("no-dtls")
	w("no-rfc5780") // no alternate ports (port+1) to collide with
	w("no-cli")
	w("userdb=%s", filepath.Join(c.Dir, "turndb")) // not /var/lib/turn/turndb
	w("pidfile=%s", filepath.Join(c.Dir, "turnserver.pid"))
	w("log-file=%s", c.LogFile)
	w("simple-log") // one file, no date in its name
	return []byte(b.String())
}

// stunBinding reports whether a STUN Binding request to addr is answered within a second.
func stunBinding(addr string) bool {
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write(req.Raw); err != nil {
		return false
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return false
	}
	var res stun.Message
	res.Raw = buf[:n]
	return res.Decode() == nil && res.TransactionID == req.TransactionID && res.Type == stun.BindingSuccess
}

// Stop stops coturn: SIGTERM, then SIGKILL to its process group after 20 seconds. It is
// idempotent and safe on a coturn that failed to start.
func (c *Coturn) Stop() { c.proc.Stop() }

// Exited returns a channel closed when coturn has ended.
func (c *Coturn) Exited() <-chan struct{} { return c.proc.Exited() }

// Logs returns the last n lines of coturn's log and console output.
func (c *Coturn) Logs(n int) string { return c.proc.Logs(n) }
