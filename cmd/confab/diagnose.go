package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/diagnose"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/launch"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

func runDiagnose(ctx context.Context, args []string, io stdio) error {
	if len(args) > 0 && args[0] == "media" {
		return runDiagnoseMedia(ctx, args[1:], io)
	}
	fs := flag.NewFlagSet("confab diagnose", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var (
		path      = fs.String("config", "", "Call Bridge configuration file: trust store, client certificate, DNS server, store")
		fromStore = fs.Bool("store", false, "read the XMPP settings from the Call Bridge's store (the API's /system/configuration/xmpp)")
		name      = fs.String("unique-name", "", "the Call Bridge's unique name")
		domain    = fs.String("domain", "", "the XMPP domain")
		server    = fs.String("server", "", "server address override: host, host:port or [v6]:port (empty: DNS SRV)")
		secretIn  = fs.Bool("secret-stdin", false, "read the shared secret from standard input")
		caFile    = fs.String("ca", "", "CA bundle that verifies the XMPP server (default: the config's xmpp.ca, else the system roots)")
		dnsServer = fs.String("dns-server", "", "DNS server for SRV and A/AAAA lookups (default: the config's, else the system resolver)")
		noReg     = fs.Bool("no-register", false, "stop before registering, so a Call Bridge connected under this name keeps its link")
		asJSON    = fs.Bool("json", false, "print the report as JSON")
		timeout   = fs.Duration("timeout", 10*time.Second, "timeout of each step")
	)
	fs.Usage = func() {
		fmt.Fprintln(io.err, `usage: confab diagnose [flags]
       confab diagnose media -url https://meet.example.com:8443 [flags]

Runs the Call Bridge's steps towards its XMPP server once — settings, server address or DNS
SRV, A/AAAA, TCP, TLS, certificate names, registration — and prints each step with what it
found and, for a failure, the likely cause and the remedy. Exit status 0 when every step
passed, 1 when one failed.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg config.CallBridge
	if *path != "" {
		if err := config.Load(*path, &cfg); err != nil {
			return err
		}
	}
	if *caFile != "" {
		cfg.XMPP.CA = *caFile
	}
	if *dnsServer != "" {
		cfg.XMPP.DNSServer = *dnsServer
	}
	cfg = cfg.WithDefaults()
	trust, err := launch.LoadLinkTrust(cfg)
	if err != nil {
		return err
	}
	var xc store.XMPPSettings
	if *fromStore {
		st, err := store.Open(ctx, store.Options{DSN: cfg.Store})
		if err != nil {
			return err
		}
		xc, err = st.XMPPSettings(ctx)
		st.Close()
		if err != nil {
			return err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&xc.UniqueName, *name)
	set(&xc.Domain, *domain)
	set(&xc.ServerAddressOverride, *server)
	if *secretIn {
		line, _ := bufio.NewReader(io.in).ReadString('\n')
		xc.SharedSecret = secret.New(strings.TrimSpace(line))
	}
	var resolver *net.Resolver // the system's
	if trust.DNSServer != "" {
		resolver = discover.NewResolver(trust.DNSServer, 0)
	}
	rep := diagnose.Run(ctx, diagnose.Settings{
		XMPPSettings: xc, Resolver: resolver, RootCAs: trust.RootCAs, ClientCert: trust.ClientCert,
		DNSTimeout: *timeout, ConnectTimeout: *timeout, TLSTimeout: *timeout, HandshakeTimeout: *timeout,
		NoRegister: *noReg,
	})
	if *asJSON {
		err = rep.WriteJSON(io.out)
	} else {
		err = rep.WriteTable(io.out)
	}
	if err != nil {
		return err
	}
	if !rep.Passed() {
		return &exitError{1, fmt.Errorf("diagnose: a step failed")}
	}
	return nil
}

// runDiagnoseMedia is `confab diagnose media`: from this machine, connect to the media
// server the ways a browser would and print each path's media ladder.
func runDiagnoseMedia(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("confab diagnose media", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var (
		webURL  = fs.String("url", "", "the web app's address, e.g. https://meet.example.com:8443 (required)")
		caFile  = fs.String("ca", "", "CA bundle that verifies the web app and the TURN servers over TLS (default: the system roots)")
		only    = fs.String("only", "", `try only the paths whose name contains this ("udp", "tcp", "turns:", a host)`)
		asJSON  = fs.Bool("json", false, "print the report as JSON")
		verbose = fs.Bool("v", false, "print pion's warnings (why a TURN server could not be used)")
		timeout = fs.Duration("timeout", 12*time.Second, "timeout of each path")
	)
	fs.Usage = func() {
		fmt.Fprintln(io.err, `usage: confab diagnose media -url https://meet.example.com:8443 [flags]

From where it runs, connects to the Call Bridge's media server the ways a browser would —
directly over UDP, over TCP (ICE-TCP), and through each TURN server over UDP, TCP and TLS —
with the web app's connection test, and prints each path's media ladder: the candidates,
the checks, the pair, DTLS, SRTP, with the cause and remedy of what failed. Exit status 0
when media gets through some way, 1 when it does not.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *webURL == "" {
		fs.Usage()
		return &exitError{2, fmt.Errorf("diagnose media: -url is required")}
	}
	s := diagnose.MediaSettings{URL: *webURL, Timeout: *timeout, Only: *only}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		s.RootCAs = x509.NewCertPool()
		if !s.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("diagnose media: %s holds no PEM certificate", *caFile)
		}
	}
	if *verbose {
		s.Logf = func(format string, args ...any) { fmt.Fprintf(io.err, format+"\n", args...) }
	}
	rep := diagnose.RunMedia(ctx, s)
	var err error
	if *asJSON {
		err = rep.WriteJSON(io.out)
	} else {
		err = rep.WriteTable(io.out)
	}
	if err != nil {
		return err
	}
	if !rep.Passed() {
		return &exitError{1, fmt.Errorf("diagnose media: media does not get through (%s)", rep.Verdict)}
	}
	return nil
}
