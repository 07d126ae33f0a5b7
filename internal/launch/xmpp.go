package launch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/xmppd"
)

// XMPP is a running `confab xmpp`.
type XMPP struct {
	Server *xmppd.Server
	// Stores are the Call Bridge registry (Registry, the configuration's registry file)
	// and the users' rosters (Roster, in data_dir/roster.db).
	*xmppd.Stores
	// Addrs are the bound listener addresses (a port of 0 in the config is resolved here).
	Addrs struct{ C2S, Component, WebSocket, Admin string }
	// CAFile is the CA that signed the server certificate when Confab generated it ("" when
	// the operator configured a certificate).
	CAFile string
	// Local is set when the certificates were generated in data_dir/tls.
	Local *certs.Local

	g       *group
	cancel  context.CancelFunc
	log     *slog.Logger
	keyFile string // the configured certificate's key
}

// RegistryPath returns where the Call Bridge registry of cfg lives.
func RegistryPath(cfg config.XMPP) string {
	return cfg.WithDefaults().Registry
}

// ServerTLS returns the TLS configuration of cfg, generating a CA and a server certificate
// in <data_dir>/tls when none is configured.
func ServerTLS(cfg config.XMPP, hosts []string) (*certs.Local, certs.ServerOptions, error) {
	if cfg.TLS.Cert != "" {
		return nil, certs.ServerOptions{CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key, ClientCAFile: cfg.TLS.ClientCA, RequireClientCert: cfg.TLS.RequireClientCert}, nil
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	l, err := certs.EnsureLocal(filepath.Join(cfg.DataDir, "tls"), cfg.Domain, hosts)
	if err != nil {
		return nil, certs.ServerOptions{}, err
	}
	return l, certs.ServerOptions{CertFile: l.CertFile, KeyFile: l.KeyFile, ClientCAFile: cfg.TLS.ClientCA, RequireClientCert: cfg.TLS.RequireClientCert}, nil
}

// XMPPOptions are the settings of `confab xmpp` that are not in its file.
type XMPPOptions struct {
	// Hosts are extra names for a generated certificate (the domain, the host name,
	// localhost, 127.0.0.1 and ::1 are always there): the names Call Bridges connect to.
	Hosts []string
	// DNSServer answers the certificate self-check's SRV lookup ("" is the system's).
	DNSServer string
	// NoSRVCheck skips the SRV part of the certificate self-check.
	NoSRVCheck bool
}

// StartXMPP starts the XMPP server of cfg: it returns once every listener is bound. A
// listener whose address is "-" is not started (`confab up` mounts the WebSocket handler on
// its web listener instead).
func StartXMPP(ctx context.Context, cfg config.XMPP, log *slog.Logger, reg prometheus.Registerer) (*XMPP, error) {
	return StartXMPPWith(ctx, cfg, log, reg, XMPPOptions{})
}

// StartXMPPWith is StartXMPP with the options of o. Once started, the server checks its own
// certificate (see CheckCertificate) and says what it found in its log and on /healthz.
func StartXMPPWith(ctx context.Context, cfg config.XMPP, log *slog.Logger, reg prometheus.Registerer, o XMPPOptions) (x *XMPP, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	x = &XMPP{g: newGroup(), log: log}
	tlsCfg, clientCAs, certFile, err := x.serverTLS(cfg, o)
	if err != nil {
		return nil, err
	}
	x.Stores, err = xmppd.OpenStores(cfg.Registry, filepath.Join(cfg.DataDir, "roster.db"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			x.Roster.Close()
		}
	}()
	x.Registry.Logger = log
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
	}
	x.Server, err = xmppd.New(serverConfig(cfg, tlsCfg, clientCAs, x, log, reg))
	if err != nil {
		return nil, err
	}
	if err := x.bindAndServe(cfg, tlsCfg, log); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	x.cancel = cancel
	x.g.run("registry watch", func() error {
		return x.Registry.Watch(wctx, x.Server.RegistryChanged)
	})
	log.Info("XMPP server started", "domain", cfg.Domain, "c2s", x.Addrs.C2S, "component", x.Addrs.Component,
		"websocket", x.Addrs.WebSocket, "admin", x.Addrs.Admin, "registry", x.Registry.Path())
	x.checkCertificate(wctx, cfg.Domain, certFile, o)
	return x, nil
}

// serverTLS loads (or generates) the server's certificate and the CAs that verify Call
// Bridges' client certificates.
func (x *XMPP) serverTLS(cfg config.XMPP, o XMPPOptions) (*tls.Config, *x509.CertPool, string, error) {
	local, topts, err := ServerTLS(cfg, o.Hosts)
	if err != nil {
		return nil, nil, "", err
	}
	x.keyFile = topts.KeyFile
	if local != nil {
		x.Local, x.CAFile = local, local.CAFile
		if local.Created() {
			x.log.Info("generated certificates", "ca", local.CAFile, "cert", local.CertFile, "reason", local.Reason)
		}
	}
	tlsCfg, err := certs.ServerConfig(certs.ServerOptions{CertFile: topts.CertFile, KeyFile: topts.KeyFile})
	if err != nil {
		return nil, nil, "", err
	}
	var clientCAs *x509.CertPool
	if cfg.TLS.ClientCA != "" {
		pem, err := os.ReadFile(cfg.TLS.ClientCA)
		if err != nil {
			return nil, nil, "", fmt.Errorf("tls.client_ca: %w", err)
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(pem) {
			return nil, nil, "", fmt.Errorf("tls.client_ca %s: no PEM certificates", cfg.TLS.ClientCA)
		}
	}
	return tlsCfg, clientCAs, topts.CertFile, nil
}

// serverConfig is the xmppd.Config of a configuration file's settings.
func serverConfig(cfg config.XMPP, tlsCfg *tls.Config, clientCAs *x509.CertPool, x *XMPP, log *slog.Logger, reg prometheus.Registerer) xmppd.Config {
	l := cfg.Limits
	return xmppd.Config{
		Roster:                       x.Roster,
		Domain:                       cfg.Domain,
		TLS:                          tlsCfg,
		ComponentClientCAs:           clientCAs,
		RequireComponentCert:         cfg.TLS.RequireClientCert,
		Registry:                     x.Registry,
		AllowedOrigins:               cfg.WebSocket.Origins,
		MaxStanzaC2S:                 l.StanzaC2S,
		MaxStanzaComponent:           l.StanzaComponent,
		MaxSessions:                  l.MaxSessions,
		OpenTimeout:                  l.OpenTimeout.Duration,
		TLSTimeout:                   l.TLSTimeout.Duration,
		AuthTimeout:                  l.AuthTimeout.Duration,
		IdleTimeout:                  l.IdleTimeout.Duration,
		WriteTimeout:                 l.WriteTimeout.Duration,
		KeepAlive:                    l.KeepAlive.Duration,
		DuplicateComponent:           cfg.Components.Duplicate,
		RelayTimeout:                 l.RelayTimeout.Duration,
		SenderRate:                   float64(l.SenderRate),
		SenderBurst:                  l.SenderBurst,
		MaxUnauthenticatedPerAddress: l.UnauthenticatedPerAddress,
		MaxNegotiatingPerAddress:     l.NegotiatingPerAddress,
		MaxDetachedPerAccount:        l.DetachedPerAccount,
		Logger:                       log,
		Metrics:                      reg,
	}
}

// bindAndServe binds every listener of cfg (a "-" address is not started: `confab up`
// mounts the WebSocket handler on its web listener instead), all or none, and serves them.
func (x *XMPP) bindAndServe(cfg config.XMPP, tlsCfg *tls.Config, log *slog.Logger) error {
	var lns []net.Listener
	bind := func(setting, addr string, dst *string) (net.Listener, error) {
		if addr == "-" {
			return nil, nil
		}
		ln, err := listen(setting, addr)
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		*dst = ln.Addr().String()
		return ln, nil
	}
	var c2s, comp, ws, admin net.Listener
	for _, b := range []struct {
		setting, addr string
		dst           *string
		ln            *net.Listener
	}{
		{"listen.c2s", cfg.Listen.C2S, &x.Addrs.C2S, &c2s},
		{"listen.component", cfg.Listen.Component, &x.Addrs.Component, &comp},
		{"listen.websocket", cfg.Listen.WebSocket, &x.Addrs.WebSocket, &ws},
		{"listen.admin", cfg.Listen.Admin, &x.Addrs.Admin, &admin},
	} {
		ln, err := bind(b.setting, b.addr, b.dst)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return err
		}
		*b.ln = ln
	}
	if c2s != nil {
		x.g.run("c2s", func() error { return x.Server.ServeC2S(c2s) })
	}
	if comp != nil {
		x.g.run("component", func() error { return x.Server.ServeComponents(comp) })
	}
	if ws != nil {
		mux := http.NewServeMux()
		mux.Handle("/xmpp-websocket", x.Server.WebSocketHandler())
		x.g.serveHTTP("websocket", ws, mux, tlsCfg, log)
	}
	if admin != nil {
		x.g.serveHTTP("admin", admin, x.Server.AdminHandler(), nil, log)
	}
	return nil
}

// certCheckTimeout bounds the self-check's SRV lookup and the A/AAAA lookups behind it.
const certCheckTimeout = 5 * time.Second

// checkCertificate checks the server's own certificate: at once for the XMPP domain, then,
// on a goroutine of the group (bounded by certCheckTimeout), for the names the domain's SRV
// records point Call Bridges to. Each missing name is a warning in the log and on /healthz.
func (x *XMPP) checkCertificate(ctx context.Context, domain, certFile string, o XMPPOptions) {
	pair, err := tls.LoadX509KeyPair(certFile, x.keyFile)
	var leaf *x509.Certificate
	if err == nil && len(pair.Certificate) > 0 {
		leaf, err = x509.ParseCertificate(pair.Certificate[0])
	}
	if err != nil {
		x.log.Warn("certificate self-check: cannot read the server's certificate", "cert", certFile, "err", err)
		return
	}
	c := CheckCertificate(ctx, leaf, domain, nil, true)
	x.report(c, certFile)
	if o.NoSRVCheck {
		return
	}
	x.g.run("certificate check", func() error {
		cctx, cancel := context.WithTimeout(ctx, certCheckTimeout)
		defer cancel()
		c := CheckCertificate(cctx, leaf, domain, discover.NewResolver(o.DNSServer, 2*time.Second), false)
		x.report(c, certFile)
		return nil
	})
}

func (x *XMPP) report(c xmppd.CertCheck, certFile string) {
	x.Server.SetCertCheck(c)
	for _, w := range c.Warnings {
		x.log.Warn("certificate self-check: "+w, "cert", certFile)
	}
	if c.OK && c.SRV != "" {
		x.log.Info("certificate self-check: ok", "cert", certFile, "names", strings.Join(c.Names, ", "), "srv", c.SRV)
	} else if c.SRV != "" {
		x.log.Info("certificate self-check: SRV", "srv", c.SRV)
	}
}

// CheckCertificate checks that leaf names domain and, unless skipSRV, every target of the
// SRV record _xmpp-component._tcp.<domain> that r finds: the names Call Bridges check at
// their step 8. A failed lookup only says that the targets could not be checked.
func CheckCertificate(ctx context.Context, leaf *x509.Certificate, domain string, r *net.Resolver, skipSRV bool) xmppd.CertCheck {
	c := xmppd.CertCheck{Checked: time.Now(), OK: true}
	for _, n := range leaf.DNSNames {
		c.Names = append(c.Names, "DNS:"+n)
	}
	for _, ip := range leaf.IPAddresses {
		c.Names = append(c.Names, "IP:"+ip.String())
	}
	var ms *certs.MissingSANError
	if err := certs.CheckSANs(leaf, domain); errors.As(err, &ms) {
		c.OK = false
		c.Warnings = append(c.Warnings, fmt.Sprintf("the certificate lacks the XMPP domain %s: every Call Bridge refuses it (step 8, missing-san); reissue it with subjectAltName %s", domain, ms.Remedy()))
	}
	if skipSRV {
		return c
	}
	name := discover.SRVName(domain)
	targets, err := discover.Targets(ctx, r, domain, "")
	var de *discover.Error
	switch {
	case errors.As(err, &de) && (de.Kind == discover.KindNXDomain || de.Kind == discover.KindNoRecords || de.Kind == discover.KindNotFound):
		c.SRV = fmt.Sprintf("no SRV record %s: Call Bridges can find this server only through serverAddressOverride (the certificate must then name that host)", name)
		return c
	case err != nil:
		c.SRV = fmt.Sprintf("could not check the names the SRV records give: %v", err)
		return c
	}
	var seen []string
	for _, t := range targets {
		seen = append(seen, t.Addr())
		if err := certs.CheckSANs(leaf, t.Host); errors.As(err, &ms) {
			c.OK = false
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s points Call Bridges to %s, which the certificate lacks: those that connect there refuse it (step 8, missing-san) if it is this server; reissue it with subjectAltName %s", name, t.Host, ms.Remedy()))
		}
	}
	c.SRV = fmt.Sprintf("%s: %s", name, strings.Join(seen, ", "))
	return c
}

// Failed is closed when a listener stops unexpectedly; Err then says why.
func (x *XMPP) Failed() <-chan struct{} { return x.g.failed }

// Err returns the error that closed Failed.
func (x *XMPP) Err() error { return x.g.Err() }

// Shutdown closes every stream properly (system-shutdown), stops the listeners and waits
// for every goroutine, or until ctx ends.
func (x *XMPP) Shutdown(ctx context.Context) error {
	x.cancel()
	errs := []error{x.Server.Shutdown(ctx), x.g.shutdownHTTP(ctx)}
	done := make(chan struct{})
	go func() { x.g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("xmpp shutdown: goroutines still running: %w", context.Cause(ctx)))
	}
	errs = append(errs, x.Roster.Close())
	return errors.Join(errs...)
}

// ShutdownTimeout is how long a role gets to close its streams on SIGINT/SIGTERM.
const ShutdownTimeout = 10 * time.Second
