package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/bench/benchserve"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/launch"
)

const benchUsage = `usage: confab-bench <command> [flags]

Measures XMPP servers on this machine (loopback only): Confab, Prosody, ejabberd.

commands:
  login       full logins (TCP+STARTTLS or WebSocket, SCRAM-SHA-256 or PLAIN, bind)
  idle        hold N authenticated sessions open and measure the server's memory
  roundtrip   messages client -> test component -> client
  serve       start a server to measure (confab, prosody or ejabberd) with the bench users
  cert        make a CA and a server certificate for serve
  report      print a table of result files
  media       media servers (Confab's SFU, Janus's VideoRoom): CPU per forwarded packet,
              memory, latency, join to first frame, loss, by meeting shape
  media-report  print a table of media result files

"confab-bench <command> -h" describes each command's flags. bench/compare.sh runs them all.
`

func runBench(ctx context.Context, args []string, io stdio) error {
	if len(args) == 0 {
		fmt.Fprint(io.err, benchUsage)
		return &exitError{2, errors.New("bench: no command given")}
	}
	switch args[0] {
	case bench.ScenarioLogin, bench.ScenarioIdle, bench.ScenarioRoundtrip:
		return runBenchScenario(ctx, args[0], args[1:], io)
	case "serve":
		return runBenchServe(ctx, args[1:], io)
	case "media":
		return runBenchMedia(ctx, args[1:], io)
	case "media-report":
		return runBenchMediaReport(args[1:], io)
	case "cert":
		return runBenchCert(args[1:], io)
	case "report":
		return runBenchReport(args[1:], io)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(io.out, benchUsage)
		return nil
	}
	fmt.Fprint(io.err, benchUsage)
	return &exitError{2, fmt.Errorf("bench: unknown command %q", args[0])}
}

func runBenchScenario(ctx context.Context, scenario string, args []string, io stdio) error {
	fs := flag.NewFlagSet("confab bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(io.err)
	var (
		infoFile, addr, wsURL, domain, caFile, serverName, mech, kex, password, prefix, out, label string
		compAddr, compJID, compSecret                                                              string
		useWS, quiet                                                                               bool
		cfg                                                                                        bench.Config
	)
	fs.StringVar(&infoFile, "info", "", "read the target (addresses, domain, users, component, pid) from `confab bench serve`'s info file; flags override it")
	fs.StringVar(&addr, "addr", "", "client port host:port (STARTTLS); loopback only")
	fs.StringVar(&wsURL, "websocket-url", "", "wss:// URL of XMPP over WebSocket (with -websocket)")
	fs.BoolVar(&useWS, "websocket", false, "log in over WebSocket instead of TCP")
	fs.StringVar(&domain, "domain", "", "XMPP domain")
	fs.StringVar(&caFile, "ca", "", "CA certificate (PEM) that verifies the server")
	fs.StringVar(&serverName, "server-name", "", "TLS server name to verify (default: the domain)")
	fs.StringVar(&mech, "mech", bench.MechSCRAMSHA256, "SASL mechanism: SCRAM-SHA-256 or PLAIN")
	fs.StringVar(&kex, "kex", "x25519", "TLS key exchange offered: x25519 (what every server here supports) or default (Go's, with X25519MLKEM768)")
	fs.IntVar(&cfg.Users, "users", 0, "number of bench users (user0..userN-1)")
	fs.StringVar(&prefix, "user-prefix", "", "bench user name prefix (default user)")
	fs.StringVar(&password, "password", "", "the bench users' password")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "run length (login, roundtrip)")
	fs.IntVar(&cfg.Count, "count", 0, "stop a login run after this many attempts (0: duration only)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "logins per second, open loop (0: as fast as -concurrency workers go)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "logins in flight at most (default 8 flat out, 512 at a rate)")
	fs.IntVar(&cfg.Sessions, "sessions", 1000, "idle: sessions to hold")
	fs.DurationVar(&cfg.Hold, "hold", 5*time.Second, "idle: how long to hold the sessions once open")
	var checkpoints string
	fs.StringVar(&checkpoints, "checkpoints", "", "idle: comma-separated session counts at which to read the server's memory on the way")
	fs.StringVar(&compAddr, "component-addr", "", "roundtrip: the component port (TLS)")
	fs.StringVar(&compJID, "component", "", "roundtrip: the test component's JID")
	fs.StringVar(&compSecret, "component-secret", "", "roundtrip: the test component's secret")
	fs.IntVar(&cfg.Clients, "clients", 8, "roundtrip: clients")
	fs.IntVar(&cfg.Window, "window", 4, "roundtrip: messages in flight per client")
	fs.IntVar(&cfg.PayloadBytes, "payload", 64, "roundtrip: message body bytes")
	fs.IntVar(&cfg.PID, "pid", 0, "server process whose CPU time and memory to read from /proc (0: none)")
	fs.StringVar(&label, "label", "", "name of the server in the results (default: from -info)")
	fs.StringVar(&out, "out", "", "write the result as JSON to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress line")
	fs.Usage = func() {
		fmt.Fprintf(io.err, "usage: confab-bench %s [flags]\n\n", scenario)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, c := range strings.Split(checkpoints, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 {
			return &exitError{2, fmt.Errorf("bench: -checkpoints: %q is not a number of sessions", c)}
		}
		cfg.Checkpoints = append(cfg.Checkpoints, n)
	}
	if infoFile != "" {
		in, err := benchserve.ReadInfo(infoFile)
		if err != nil {
			return err
		}
		def := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		def(&addr, in.C2S)
		def(&wsURL, in.WebSocket)
		def(&domain, in.Domain)
		def(&caFile, in.CAFile)
		def(&password, in.Password)
		def(&prefix, in.UserPrefix)
		def(&compAddr, in.Component)
		def(&compJID, in.ComponentJID)
		def(&compSecret, in.ComponentSecret)
		def(&label, in.Server)
		if cfg.Users == 0 {
			cfg.Users = in.Users
		}
		if cfg.PID == 0 {
			cfg.PID = in.PID
		}
	}
	if domain == "" || caFile == "" {
		return &exitError{2, errors.New("bench: -domain and -ca are required (or -info)")}
	}
	if serverName == "" {
		serverName = domain
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("bench: %s: no PEM certificate", caFile)
	}
	tcfg := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	switch kex {
	case "x25519":
		tcfg.CurvePreferences = []tls.CurveID{tls.X25519}
	case "default":
	default:
		return &exitError{2, fmt.Errorf("bench: -kex %q: want x25519 or default", kex)}
	}
	target := &bench.Target{Addr: addr, Domain: domain, TLS: tcfg, Mechanism: strings.ToUpper(mech)}
	if useWS {
		if wsURL == "" {
			return &exitError{2, errors.New("bench: -websocket needs -websocket-url (or an -info with one)")}
		}
		target.WebSocketURL = wsURL
		wcfg := tcfg.Clone()
		wcfg.NextProtos = []string{"http/1.1"}
		target.TLS = wcfg
	} else if addr == "" {
		return &exitError{2, errors.New("bench: -addr is required (or -info)")}
	}
	cfg.Scenario, cfg.Label, cfg.Target, cfg.Password, cfg.UserPrefix = scenario, label, target, password, prefix
	cfg.Component = bench.ComponentConfig{Addr: compAddr, JID: compJID, Secret: compSecret, TLS: tcfg.Clone()}
	if !quiet {
		cfg.Progress = io.err
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	bench.PrintResult(io.out, res)
	if out != "" {
		if err := bench.WriteResult(out, res); err != nil {
			return err
		}
	}
	return nil
}

func runBenchServe(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("confab bench serve", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var o benchserve.Options
	var infoFile, logFile, certDir string
	fs.StringVar(&o.Server, "server", benchserve.Confab, "server to start: confab, prosody or ejabberd")
	fs.StringVar(&o.Dir, "dir", "", "private working directory (required)")
	fs.StringVar(&o.Domain, "domain", "bench.example", "XMPP domain")
	fs.StringVar(&certDir, "certs", "", "directory with ca.pem, cert.pem and key.pem from `confab bench cert` (required)")
	fs.IntVar(&o.Users, "users", 20, "bench users to create (user0..userN-1)")
	fs.StringVar(&o.Password, "password", "bench-password-1", "the bench users' password")
	fs.StringVar(&o.ComponentName, "component", "echo", "the test component's name (JID <name>.<domain>)")
	fs.StringVar(&o.ComponentSecret, "component-secret", "bench-component-secret", "the test component's secret")
	fs.StringVar(&infoFile, "info", "", "write the server's addresses and pid here once it is ready (default <dir>/info.json)")
	fs.StringVar(&logFile, "log", "", "Confab's log file, at info level (default <dir>/confab.log)")
	fs.IntVar(&o.Spaces, "spaces", 0, "Confab: spaces to create for media benchmarks (open to every user)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiles (/debug/pprof/) on this loopback address, for profiling Confab under load")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "usage: confab-bench serve -dir DIR -certs DIR [flags]\n\nStarts a server for the load tool and runs until interrupted. Confab runs in this\nprocess (XMPP server + Call Bridge with its real user directory); Prosody and ejabberd\nrun as child processes from their Debian packages.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Dir == "" || certDir == "" {
		fs.Usage()
		return &exitError{2, errors.New("bench serve: -dir and -certs are required")}
	}
	o.CAFile, o.CertFile, o.KeyFile = filepath.Join(certDir, "ca.pem"), filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem")
	for _, p := range []*string{&o.CAFile, &o.CertFile, &o.KeyFile} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	if infoFile == "" {
		infoFile = filepath.Join(o.Dir, "info.json")
	}
	if logFile == "" {
		logFile = filepath.Join(o.Dir, "confab.log")
	}
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	o.Logger = newLogger(lf, config.Log{Level: "info"})
	launch.Version = "bench"
	if *pprofAddr != "" {
		if err := bench.CheckLoopback(ctx, *pprofAddr); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		fmt.Fprintf(io.out, "profiles at http://%s/debug/pprof/\n", ln.Addr())
	}
	r, err := benchserve.Start(ctx, o)
	if err != nil {
		return err
	}
	if err := r.Info.WriteFile(infoFile); err != nil {
		_ = r.Stop(context.WithoutCancel(ctx))
		return err
	}
	fmt.Fprintf(io.out, "%s ready: pid %d, c2s %s, component %s (info in %s)\n", o.Server, r.Info.PID, r.Info.C2S, r.Info.Component, infoFile)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.Stop(sctx)
}

func runBenchCert(args []string, io stdio) error {
	fs := flag.NewFlagSet("confab bench cert", flag.ContinueOnError)
	fs.SetOutput(io.err)
	dir := fs.String("dir", "", "directory to write ca.pem, cert.pem and key.pem to (required)")
	domain := fs.String("domain", "bench.example", "XMPP domain (the certificate also names localhost and 127.0.0.1)")
	alg := fs.String("algorithm", certs.ECDSAP256, "server key: ecdsa-p256 or rsa-2048")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		fs.Usage()
		return &exitError{2, errors.New("bench cert: -dir is required")}
	}
	if err := benchserve.MakeCerts(*dir, *domain, *alg); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "wrote %s/{ca,cert,key}.pem (%s, %s)\n", *dir, *domain, *alg)
	return nil
}

func runBenchReport(args []string, io stdio) error {
	fs := flag.NewFlagSet("confab bench report", flag.ContinueOnError)
	fs.SetOutput(io.err)
	asJSON := fs.Bool("json", false, "print the figures as JSON instead of a Markdown table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var results []*bench.Result
	for _, f := range fs.Args() {
		r, err := bench.ReadResult(f)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	figs := bench.Summarise(results)
	if *asJSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(figs)
	}
	bench.PrintTable(io.out, figs)
	return nil
}
