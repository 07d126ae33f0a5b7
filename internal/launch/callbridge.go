package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"confab.dev/confab/internal/callbridge"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/store"
)

// CallBridge is a running `confab callbridge`: the Call Bridge (package callbridge) over its
// store, with the REST API and web admin served on the API listener and the browser app on
// the web listener.
type CallBridge struct {
	*callbridge.Bridge
	// Addrs are the bound listener addresses (MediaUDP and MediaTCP are empty without media).
	Addrs struct{ API, Web, MediaUDP, MediaTCP string }
	// TURN is the embedded TURN server, nil when none runs.
	TURN *EmbeddedTURN
	// Local is set when the listeners' certificate was generated in data_dir/tls.
	Local *certs.Local

	g *group
}

// CallBridgeOptions adds what `confab up` shares with the Call Bridge.
type CallBridgeOptions struct {
	// WebSocket, when set, is mounted at /xmpp-websocket on the web listener (the XMPP server
	// runs in the same process).
	WebSocket http.Handler
	// Trust overrides the [xmpp] section's trust settings (`confab up` passes its own CA).
	Trust *LinkTrust
	// Hosts are extra names for a generated certificate.
	Hosts []string
	// Metrics registers the Call Bridge's metrics; nil makes a registry of its own served
	// at /metrics on the API listener.
	Metrics prometheus.Registerer
	// Prepare, when set, runs on the opened store before anything reads it (`confab up`
	// writes its XMPP settings there).
	Prepare func(ctx context.Context, st *store.Store) error
	// TURNTLSFallback is the TURN over TLS address tried when [turn.listen] tls cannot be
	// bound (`confab up` tries 443, then 5349); TURNHost is the host browsers are told to
	// use for the embedded TURN server (default: its listeners' address).
	TURNTLSFallback, TURNHost string
}

// StartCallBridge starts the Call Bridge of cfg; it returns once every listener is bound.
func StartCallBridge(ctx context.Context, cfg config.CallBridge, log *slog.Logger, o CallBridgeOptions) (cb *CallBridge, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cb = &CallBridge{g: newGroup()}
	trust := LinkTrust{}
	if o.Trust != nil {
		trust = *o.Trust
	} else if trust, err = LoadLinkTrust(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Store), 0o700); err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	st, err := store.Open(ctx, store.Options{DSN: cfg.Store})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if o.Prepare != nil {
		if err := o.Prepare(ctx, st); err != nil {
			return nil, err
		}
	}

	reg := o.Metrics
	var gatherer prometheus.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		gatherer = g
	}
	cb.Bridge, err = callbridge.New(callbridge.Config{
		Store:        st,
		RootCAs:      trust.RootCAs,
		ClientCert:   trust.ClientCert,
		DNSServer:    trust.DNSServer,
		KeepAlive:    cfg.XMPP.KeepAlive.Duration,
		BackoffMin:   cfg.XMPP.BackoffMin.Duration,
		BackoffMax:   cfg.XMPP.BackoffMax.Duration,
		Media:        callbridge.MediaConfig{UDP: cfg.Media.UDP, TCP: cfg.Media.TCP, PublicIPs: cfg.Media.PublicIPs},
		NoMedia:      cfg.Media.UDP == "off",
		WebSocketURL: cfg.Web.WebSocketURL,
		WebBridgeURL: webBridgeURL(cfg.Listen.Web),
		WebSocket:    o.WebSocket,
		Logger:       log,
		Metrics:      reg,
		Gatherer:     gatherer,
		Version:      Version,
	})
	if err != nil {
		return nil, err
	}
	log = cb.Logger() // what follows is in the web admin's event log too

	tlsLocal, topts, err := callBridgeTLS(cfg, o.Hosts)
	if err != nil {
		return nil, err
	}
	cb.Local = tlsLocal
	tlsCfg, err := certs.ServerConfig(topts)
	if err != nil {
		return nil, err
	}
	apiLn, err := listen("listen.api", cfg.Listen.API)
	if err != nil {
		return nil, err
	}
	webLn, err := listen("listen.web", cfg.Listen.Web)
	if err != nil {
		apiLn.Close()
		return nil, err
	}
	cb.Addrs.API, cb.Addrs.Web = apiLn.Addr().String(), webLn.Addr().String()
	if cfg.TURN != nil && cb.SFU != nil {
		l := turnListen{UDP: cfg.TURN.Listen.UDP, TCP: cfg.TURN.Listen.TCP, TLS: []string{cfg.TURN.Listen.TLS}, Host: o.TURNHost}
		if o.TURNTLSFallback != "" {
			l.TLS = append(l.TLS, o.TURNTLSFallback)
		}
		turnTLS := tlsCfg
		if cfg.TURN.TLS.Cert != "" {
			if turnTLS, err = certs.ServerConfig(certs.ServerOptions{CertFile: cfg.TURN.TLS.Cert, KeyFile: cfg.TURN.TLS.Key}); err != nil {
				apiLn.Close()
				webLn.Close()
				return nil, err
			}
		}
		cb.TURN, err = startEmbeddedTURN(cb.g, *cfg.TURN, l, cfg.DataDir, turnTLS,
			mediaPeers(cb.SFU.UDPAddr(), cfg.Media.PublicIPs), reg, log)
		if err != nil {
			apiLn.Close()
			webLn.Close()
			return nil, err
		}
		cb.AttachTURN(cb.TURN.Server)
	} else if cfg.TURN != nil {
		log.Warn("the TURN server is not started: media is off")
	}
	if err := registerEmbeddedTURN(ctx, st, cb.TURN); err != nil {
		apiLn.Close()
		webLn.Close()
		if cb.TURN != nil {
			cb.TURN.Server.Shutdown(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("register the TURN server: %w", err)
	}
	cb.g.serveHTTP("api", apiLn, cb.APIHandler(), tlsCfg, log)
	cb.g.serveHTTP("web", webLn, cb.WebHandler(), tlsCfg, log)
	cb.g.run("call bridge", func() error { return cb.Bridge.Run(context.WithoutCancel(ctx)) })
	if cb.SFU != nil {
		cb.Addrs.MediaUDP, cb.Addrs.MediaTCP = cb.SFU.UDPAddr().String(), ""
		if a := cb.SFU.TCPAddr(); a != nil {
			cb.Addrs.MediaTCP = a.String()
		}
	}
	log.Info("Call Bridge started", "api", cb.Addrs.API, "web", cb.Addrs.Web, "media_udp", cb.Addrs.MediaUDP,
		"media_tcp", cb.Addrs.MediaTCP, "turn", cb.TURN != nil, "store", cfg.Store)
	return cb, nil
}

// Version is the software version reported by the API; cmd/confab sets it.
var Version = "dev"

func callBridgeTLS(cfg config.CallBridge, hosts []string) (*certs.Local, certs.ServerOptions, error) {
	if cfg.TLS.Cert != "" {
		return nil, certs.ServerOptions{CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key}, nil
	}
	name, _ := os.Hostname()
	if name == "" {
		name = "localhost"
	}
	l, err := certs.EnsureLocal(filepath.Join(cfg.DataDir, "tls"), name, hosts)
	if err != nil {
		return nil, certs.ServerOptions{}, err
	}
	return l, certs.ServerOptions{CertFile: l.CertFile, KeyFile: l.KeyFile}, nil
}

// webBridgeURL is where browsers reach the web listener listen (host:port), as the REST API's
// /webBridges shows it: the listener's host, or this machine's name when it listens on every
// address.
func webBridgeURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return ""
		}
	}
	return "https://" + net.JoinHostPort(host, port)
}

// Failed is closed when a listener stops unexpectedly; Err then says why.
func (cb *CallBridge) Failed() <-chan struct{} { return cb.g.failed }

// Err returns the error that closed Failed.
func (cb *CallBridge) Err() error { return cb.g.Err() }

// Shutdown stops the listeners, then the Call Bridge, and closes the store.
func (cb *CallBridge) Shutdown(ctx context.Context) error {
	errs := []error{cb.g.shutdownHTTP(ctx), cb.Bridge.Shutdown(ctx)}
	done := make(chan struct{})
	go func() { cb.g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("call bridge shutdown: goroutines still running: %w", context.Cause(ctx)))
	}
	errs = append(errs, cb.Store.Close())
	return errors.Join(errs...)
}
