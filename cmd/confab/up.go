package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"

	"confab.dev/confab/internal/launch"
)

func runUp(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("confab up", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var o launch.UpOptions
	var hosts string
	fs.StringVar(&o.DataDir, "data", "confab-data", "data directory: certificates, store, registry, admin password")
	fs.StringVar(&o.Domain, "domain", "example.com", "XMPP domain")
	fs.StringVar(&o.Name, "name", "cb1", "the Call Bridge's unique name")
	fs.StringVar(&o.C2S, "c2s", "127.0.0.1:5222", "XMPP client listener (STARTTLS)")
	fs.StringVar(&o.Component, "component", "127.0.0.1:5223", "XMPP component listener for Call Bridges (TLS)")
	fs.StringVar(&o.Web, "web", "127.0.0.1:8443", "browser app and XMPP over WebSocket (HTTPS)")
	fs.StringVar(&o.API, "api", "127.0.0.1:8445", "REST API and web admin (HTTPS)")
	fs.StringVar(&o.Admin, "admin", "127.0.0.1:5290", "XMPP server's metrics and health (HTTP)")
	fs.StringVar(&o.Media, "media", "", `media (audio, video): one UDP and one TCP port for every participant; default port 10000 on the -web host; "off" for none`)
	fs.StringVar(&o.TURN, "turn", "", `TURN server (UDP and TCP) for browsers that cannot reach the media port; default port 3478 on the -web host; "off" for none`)
	fs.StringVar(&o.TURNTLS, "turn-tls", "", `TURN over TLS; default port 443 on the -web host where it is free, else 5349; "off" for none`)
	fs.StringVar(&o.TURNHost, "turn-host", "", "the name or address browsers reach the TURN server by (default: its listener's address)")
	fs.StringVar(&hosts, "hosts", "", "extra comma-separated names or addresses for the generated certificate")
	fs.StringVar(&o.Log.Format, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.Log.Level, "log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "usage: confab up [flags]\n\nRuns the XMPP server, the Call Bridge and the web app together. The first run creates\nthe data directory, a CA and certificates, an admin account and a demo space.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			o.Hosts = append(o.Hosts, h)
		}
	}
	log := newLogger(io.err, o.Log)
	launch.Version = version
	u, err := launch.StartUp(ctx, o, log)
	if err != nil {
		return err
	}
	printUp(io, u)
	select {
	case <-ctx.Done():
	case <-u.XMPP.Failed():
	case <-u.CallBridge.Failed():
	}
	err = shutdown(u.Shutdown)
	log.Info("Confab stopped")
	return errors.Join(u.Err(), err)
}

func urlOf(addr, path string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" || host == "127.0.0.1" {
		host = "localhost"
	}
	return "https://" + net.JoinHostPort(host, port) + path
}

func printUp(io stdio, u *launch.Up) {
	w := io.out
	fmt.Fprintf(w, "\nConfab is up (XMPP domain %s).\n\n", u.Domain)
	fmt.Fprintf(w, "  Web app:    %s\n", urlOf(u.CallBridge.Addrs.Web, "/"))
	fmt.Fprintf(w, "  Web admin:  %s\n", urlOf(u.CallBridge.Addrs.API, "/admin/"))
	fmt.Fprintf(w, "  REST API:   %s\n", urlOf(u.CallBridge.Addrs.API, "/api/v1/system/status"))
	fmt.Fprintf(w, "  XMPP:       clients %s (STARTTLS), Call Bridges %s (TLS)\n", u.XMPP.Addrs.C2S, u.XMPP.Addrs.Component)
	if a := u.CallBridge.Addrs; a.MediaUDP != "" {
		fmt.Fprintf(w, "  Media:      UDP %s, TCP %s\n", a.MediaUDP, a.MediaTCP)
	}
	if t := u.CallBridge.TURN; t != nil {
		fmt.Fprintf(w, "  TURN:       %s\n", turnLine(t))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  Your browser must trust the CA in %s\n", u.Local.CAFile)
	fmt.Fprintf(w, "  (e.g. import it under Settings > Privacy and security > Manage certificates > Authorities).\n\n")
	if u.AdminPassword != "" {
		fmt.Fprintf(w, "  Admin account: %s, password %s\n", u.AdminUser, u.AdminPassword)
		fmt.Fprintf(w, "  (shown once; saved owner-only in %s)\n", u.AdminPasswordFile)
	} else {
		fmt.Fprintf(w, "  Admin account: %s (password in %s)\n", u.AdminUser, u.AdminPasswordFile)
	}
	fmt.Fprintf(w, "  Demo space \"%s\": call ID %s, passcode %s\n\n", u.Demo.Name, u.Demo.CallID, u.DemoPasscode)
}

// turnLine describes the embedded TURN server's listeners.
func turnLine(t *launch.EmbeddedTURN) string {
	var parts []string
	for _, l := range []struct{ name, addr string }{{"UDP", t.UDP}, {"TCP", t.TCP}, {"TLS", t.TLS}} {
		if l.addr != "" {
			parts = append(parts, l.name+" "+l.addr)
		}
	}
	return strings.Join(parts, ", ") + " (offered to browsers as " + t.Host + ")"
}
