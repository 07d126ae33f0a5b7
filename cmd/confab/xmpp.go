package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/launch"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/callbridges"
)

// xmppFlags reads `confab xmpp` flags over the config file's settings.
type xmppFlags struct {
	path                 string
	domain, dataDir      string
	c2s, comp, ws, admin string
	logFormat, logLevel  string
	hosts, dnsServer     string
}

func (f *xmppFlags) register(fs *flag.FlagSet, serve bool) {
	fs.StringVar(&f.path, "config", "", "configuration file (TOML); see examples/xmpp.toml")
	fs.StringVar(&f.domain, "domain", "", "XMPP domain (default localhost)")
	fs.StringVar(&f.dataDir, "data", "", "data directory (default confab-data)")
	fs.StringVar(&f.admin, "admin", "", "admin listener: /metrics, /healthz, /callbridges (default 127.0.0.1:5290)")
	if serve {
		fs.StringVar(&f.c2s, "c2s", "", "client listener, STARTTLS (default :5222)")
		fs.StringVar(&f.comp, "component", "", "Call Bridge listener, TLS (default :5223)")
		fs.StringVar(&f.ws, "websocket", "", "HTTPS listener for XMPP over WebSocket at /xmpp-websocket (default :5443)")
		fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json")
		fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error")
		fs.StringVar(&f.hosts, "hosts", "", "extra comma-separated names or addresses for the generated certificate: the names Call Bridges connect to (the SRV targets, the serverAddressOverride host)")
		fs.StringVar(&f.dnsServer, "dns-server", "", "DNS server for the certificate self-check's SRV lookup (default: the system resolver)")
	}
}

func (f *xmppFlags) load() (config.XMPP, error) {
	var c config.XMPP
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
	set(&c.Domain, f.domain)
	set(&c.DataDir, f.dataDir)
	set(&c.Listen.C2S, f.c2s)
	set(&c.Listen.Component, f.comp)
	set(&c.Listen.WebSocket, f.ws)
	set(&c.Listen.Admin, f.admin)
	set(&c.Log.Format, f.logFormat)
	set(&c.Log.Level, f.logLevel)
	c = c.WithDefaults()
	return c, c.Validate()
}

func runXMPP(ctx context.Context, args []string, io stdio) error {
	if len(args) > 0 && args[0] == "callbridge" {
		return runXMPPCallBridge(ctx, args[1:], io)
	}
	fs := flag.NewFlagSet("confab xmpp", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f xmppFlags
	f.register(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(io.err, "usage: confab xmpp [flags]\n       confab xmpp callbridge add|add-secret|list|del NAME [flags]\n       confab xmpp callbridge unblock NAME|ADDRESS [flags]\n\nRuns the XMPP server. Flags override the configuration file:")
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
	var hosts []string
	for _, h := range strings.Split(f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) > 0 && cfg.TLS.Cert != "" {
		return &exitError{2, errors.New("-hosts names the generated certificate's extra names, but [tls] cert is configured: reissue that certificate instead")}
	}
	x, err := launch.StartXMPPWith(ctx, cfg, log, nil, launch.XMPPOptions{Hosts: hosts, DNSServer: f.dnsServer})
	if err != nil {
		return err
	}
	if x.CAFile != "" {
		fmt.Fprintf(io.out, "Clients and Call Bridges must trust the CA in %s\n", x.CAFile)
	}
	select {
	case <-ctx.Done():
	case <-x.Failed():
	}
	err = shutdown(x.Shutdown)
	log.Info("XMPP server stopped")
	return errors.Join(x.Err(), err)
}

// runXMPPCallBridge manages the registry, like the MMP's `xmpp callbridge` commands.
func runXMPPCallBridge(ctx context.Context, args []string, io stdio) error {
	usage := "usage: confab xmpp callbridge add NAME | add-secret NAME | list | del NAME | unblock NAME|ADDRESS [-config FILE]"
	if len(args) == 0 {
		return &exitError{2, errors.New(usage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("confab xmpp callbridge "+verb, flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f xmppFlags
	f.register(fs, false)
	// Allow the name before or after the flags.
	name, err := parseVerb(fs, args[1:])
	if err != nil {
		return err
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	reg, err := callbridges.Open(cfg.Registry)
	if err != nil {
		return err
	}
	needName := func() error {
		if name == "" {
			return &exitError{2, fmt.Errorf("%s needs a Call Bridge name\n%s", verb, usage)}
		}
		return nil
	}
	switch verb {
	case "add":
		if err := needName(); err != nil {
			return err
		}
		s, err := reg.Add(name)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.out, "name:   %s\ndomain: %s\nsecret: %s\n", strings.ToLower(name), cfg.Domain, s.Reveal())
		fmt.Fprintf(io.out, "\nConfigure the Call Bridge with unique name %q, domain %q and this secret.\n", strings.ToLower(name), cfg.Domain)
		return nil
	case "add-secret":
		if err := needName(); err != nil {
			return err
		}
		line, err := readSecret(io, strings.ToLower(name))
		if err != nil {
			return err
		}
		if err := reg.SetSecret(name, secret.New(line)); err != nil {
			return err
		}
		fmt.Fprintf(io.out, "secret set for %s\n", strings.ToLower(name))
		return nil
	case "del":
		if err := needName(); err != nil {
			return err
		}
		if err := reg.Delete(name); err != nil {
			return err
		}
		fmt.Fprintf(io.out, "deleted %s (its link, if connected, is closed)\n", strings.ToLower(name))
		return nil
	case "unblock":
		if err := needName(); err != nil {
			return err
		}
		// The running server's throttle, through its admin listener: a Call Bridge whose
		// administrator fixed a wrong secret gets in at its next attempt.
		cleared, err := unblock(ctx, cfg.Listen.Admin, name)
		if err != nil {
			return fmt.Errorf("unblock %s: the XMPP server's admin listener %s: %w", name, cfg.Listen.Admin, err)
		}
		if len(cleared) == 0 {
			fmt.Fprintf(io.out, "nothing blocked for %s\n", name)
			return nil
		}
		fmt.Fprintf(io.out, "unblocked %s: %s\n", name, strings.Join(cleared, ", "))
		return nil
	case "list":
		links, lerr := liveLinks(ctx, cfg.Listen.Admin)
		// The component address is <name>.<the XMPP server's domain>: the running server's
		// (`confab up -domain example.com` writes no file that says it), else the file's.
		domain := cfg.Domain
		if live, err := serverDomain(ctx, cfg.Listen.Admin); err == nil && live != "" {
			if !strings.EqualFold(live, cfg.Domain) {
				fmt.Fprintf(io.err, "(the XMPP server at %s serves %s; the configuration says %s: listing the server's)\n", cfg.Listen.Admin, live, cfg.Domain)
			}
			domain = live
		}
		tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCOMPONENT JID\tSTATE\tSINCE\tFROM")
		for _, e := range reg.List() {
			state, since, from := "not connected", "-", "-"
			jid := strings.ToLower(e.Name + "." + domain)
			if lerr != nil {
				state = "unknown"
			}
			for _, l := range links {
				if strings.EqualFold(l.Name, e.Name) {
					state, since, from = "connected", l.ConnectedSince.Local().Format(time.RFC3339), l.RemoteAddr
					jid = l.JID
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, jid, state, since, from)
		}
		tw.Flush()
		if blocks, err := blockedSources(ctx, cfg.Listen.Admin); err == nil {
			for _, b := range blocks {
				fmt.Fprintf(io.out, "blocked: %s (last tried as %q) until %s: confab xmpp callbridge unblock %s\n",
					b.Source, b.Name, b.Until.Local().Format(time.RFC3339), orSource(b))
			}
		}
		if lerr != nil {
			fmt.Fprintf(io.err, "(link state unknown: the XMPP server's admin listener %s did not answer: %v)\n", cfg.Listen.Admin, lerr)
		}
		return nil
	}
	return &exitError{2, fmt.Errorf("unknown verb %q\n%s", verb, usage)}
}

// readSecret reads the secret for add-secret: at a terminal, a prompt without echo, twice;
// otherwise one line of standard input.
func readSecret(io stdio, name string) (string, error) {
	if f, ok := io.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(prompt string) (string, error) {
			s, err := readHidden(f, io.err, prompt)
			return strings.TrimSpace(s), err
		}
		first, err := read("Shared secret for " + name + ": ")
		if err != nil {
			return "", fmt.Errorf("add-secret: read the secret: %w", err)
		}
		if first == "" {
			return "", &exitError{1, errors.New("add-secret: empty secret; nothing changed")}
		}
		again, err := read("Again, to confirm: ")
		if err != nil {
			return "", fmt.Errorf("add-secret: read the secret: %w", err)
		}
		if again != first {
			return "", &exitError{1, errors.New("add-secret: the two secrets differ; nothing changed")}
		}
		return first, nil
	}
	line, err := bufio.NewReader(io.in).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err == nil {
			err = errors.New("empty secret")
		}
		return "", fmt.Errorf("add-secret reads the secret from standard input: %w", err)
	}
	return line, nil
}

// serverDomain asks the running server's admin listener which XMPP domain it serves.
func serverDomain(ctx context.Context, admin string) (string, error) {
	var h struct {
		Domain string `json:"domain"`
	}
	err := adminCall(ctx, http.MethodGet, admin, "/healthz", &h)
	return h.Domain, err
}

// liveLinks asks the running server's admin listener which Call Bridges are connected.
func liveLinks(ctx context.Context, admin string) ([]xmppd.ComponentInfo, error) {
	var links []xmppd.ComponentInfo
	err := adminCall(ctx, http.MethodGet, admin, "/callbridges", &links)
	return links, err
}

func orSource(b xmppd.ComponentBlock) string {
	if b.Name != "" {
		return b.Name
	}
	return b.Source
}

// blockedSources asks the running server's admin listener which sources its component port
// refuses after failed handshakes.
func blockedSources(ctx context.Context, admin string) ([]xmppd.ComponentBlock, error) {
	var out []xmppd.ComponentBlock
	err := adminCall(ctx, http.MethodGet, admin, "/callbridges/blocked", &out)
	return out, err
}

// unblock asks the running server to clear its component port's throttle for target.
func unblock(ctx context.Context, admin, target string) ([]string, error) {
	var out struct {
		Unblocked []string `json:"unblocked"`
	}
	err := adminCall(ctx, http.MethodPost, admin, "/callbridges/unblock?target="+url.QueryEscape(target), &out)
	return out.Unblocked, err
}

func adminCall(ctx context.Context, method, admin, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	host := admin
	if strings.HasPrefix(host, ":") {
		host = "127.0.0.1" + host
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+host+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(xmppd.AdminRequestHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
