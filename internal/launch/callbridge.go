package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"confab.dev/confab/internal/adminapi"
	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/web/webapp"
)

// CallBridge is a running `confab callbridge`: store, link to the XMPP server, users,
// meetings, REST API and web admin (API listener), browser app (web listener).
type CallBridge struct {
	Store    *store.Store
	Link     *link.Link
	Users    *users.Service
	Meetings *meeting.Service
	// Addrs are the bound listener addresses.
	Addrs struct{ API, Web string }
	// Local is set when the listeners' certificate was generated in data_dir/tls.
	Local *certs.Local

	g      *group
	ctx    context.Context // the Call Bridge's lifetime: cancelled by Shutdown
	cancel context.CancelFunc
	log    *slog.Logger
	// Login exchanges (Argon2, LDAP binds, SQLite) run on a pool of at most maxLoginWorkers
	// goroutines, started as needed and kept: a goroutine per exchange grew a fresh stack
	// through TLS-free but deep SCRAM and SQLite code at every login.
	loginJobs    chan loginJob
	loginWorkers int // guarded by mu

	mu        sync.Mutex
	responder *loginrelay.Responder
	respConn  *component.Conn
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
	// writes its XMPP settings and first admin account there).
	Prepare func(ctx context.Context, st *store.Store) error
}

// StartCallBridge starts the Call Bridge of cfg; it returns once every listener is bound.
func StartCallBridge(ctx context.Context, cfg config.CallBridge, log *slog.Logger, o CallBridgeOptions) (cb *CallBridge, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cb = &CallBridge{g: newGroup(), log: log, loginJobs: make(chan loginJob)}
	trust := LinkTrust{}
	if o.Trust != nil {
		trust = *o.Trust
	} else if trust, err = LoadLinkTrust(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Store), 0o700); err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	cb.Store, err = store.Open(ctx, store.Options{DSN: cfg.Store})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cb.Store.Close()
		}
	}()
	if o.Prepare != nil {
		if err := o.Prepare(ctx, cb.Store); err != nil {
			return nil, err
		}
	}
	xc, err := cb.Store.XMPPConfig(ctx)
	if err != nil {
		return nil, err
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

	cb.Users = users.New(users.Options{Store: cb.Store, Logger: log})
	cb.Link = link.New(xc, link.Options{
		Resolver:   trust.Resolver,
		RootCAs:    trust.RootCAs,
		ClientCert: trust.ClientCert,
		KeepAlive:  cfg.XMPP.KeepAlive.Duration,
		BackoffMin: cfg.XMPP.BackoffMin.Duration,
		BackoffMax: cfg.XMPP.BackoffMax.Duration,
		Handler:    cb.handle,
		Logger:     log,
		Metrics:    reg,
	})
	cb.Meetings = meeting.New(meeting.Options{
		Store:  cb.Store,
		Logger: log,
		LinkUp: func() bool { return cb.Link.Status().State == linkstate.Registered },
	})

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

	api := http.NewServeMux()
	api.Handle("/api/", adminapi.New(adminapi.Options{
		Store: cb.Store, Link: cb.Link, Logger: log, Version: Version,
		Users: cb.Users, Meetings: cb.Meetings,
	}))
	if gatherer != nil {
		api.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	api.Handle("/admin/", cb.webAdmin())
	api.Handle("GET /{$}", http.RedirectHandler("/admin/", http.StatusFound))
	cb.g.serveHTTP("api", apiLn, api, tlsCfg, log)

	wsURL := cfg.Web.WebSocketURL
	cb.g.serveHTTP("web", webLn, webapp.New(webapp.Options{
		Config: func() webapp.Config {
			c := cb.Link.Config()
			return webapp.Config{Domain: c.Domain, WebSocketURL: wsURL, CallBridgeJID: link.ComponentJID(c)}
		},
		Guests:    guestJoiner{cb.Meetings},
		WebSocket: o.WebSocket,
		Logger:    log,
	}), tlsCfg, log)

	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cb.ctx, cb.cancel = lctx, cancel
	cb.g.run("xmpp link", func() error { return cb.Link.Run(lctx) })
	cb.g.run("meetings reset", func() error { cb.resetOnLinkLoss(lctx); return nil })
	log.Info("Call Bridge started", "api", cb.Addrs.API, "web", cb.Addrs.Web, "store", cfg.Store)
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

// handle receives every element from the XMPP server over the link, in order. Login
// exchanges can be slow (Argon2, LDAP binds) and run on the login workers, bounded;
// meeting traffic is handled in order, inline.
func (cb *CallBridge) handle(ctx context.Context, c *component.Conn, e *stream.Element) {
	r := cb.responderFor(c)
	if e.Name.Local == "iq" && isLoginRelay(e) {
		cb.login(ctx, loginJob{ctx, r, c, e})
		return
	}
	if e.Name.Local == "message" && r.HandleMessage(e) {
		return
	}
	if cb.Meetings.Handle(ctx, c, e) {
		return
	}
	cb.log.Debug("unhandled element from the XMPP server", "element", e.Name.Local, "from", e.Get("from"), "to", e.Get("to"))
}

// maxLoginWorkers bounds the login exchanges a Call Bridge runs at once.
const maxLoginWorkers = 32

// loginJob is one login relay request and where to answer it; ctx is the link's, which
// ends when the link does.
type loginJob struct {
	ctx context.Context
	r   *loginrelay.Responder
	c   *component.Conn
	e   *stream.Element
}

// login hands a request to an idle login worker, starts a new one while there are fewer than
// maxLoginWorkers, or waits for one to be free.
func (cb *CallBridge) login(ctx context.Context, job loginJob) {
	select {
	case cb.loginJobs <- job:
		return
	default:
	}
	cb.mu.Lock()
	start := cb.loginWorkers < maxLoginWorkers
	if start {
		cb.loginWorkers++
	}
	cb.mu.Unlock()
	if start {
		cb.g.run("login worker", func() error { cb.loginWorker(job); return nil })
		return
	}
	select {
	case cb.loginJobs <- job:
	case <-ctx.Done():
	}
}

// loginWorker answers job and then every request it is handed, until the Call Bridge stops.
func (cb *CallBridge) loginWorker(job loginJob) {
	for {
		if reply := job.r.HandleIQ(job.ctx, job.e); reply != nil {
			if err := job.c.Write(reply); err != nil {
				cb.log.Warn("login relay: answer not sent", "err", err)
			}
		}
		select {
		case job = <-cb.loginJobs:
		case <-cb.ctx.Done():
			return
		}
	}
}

func isLoginRelay(e *stream.Element) bool {
	return strings.Contains(string(e.Inner), loginrelay.NS)
}

// responderFor returns the login responder of link connection c: one per registration, in
// the domain the link registered with.
func (cb *CallBridge) responderFor(c *component.Conn) *loginrelay.Responder {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.respConn == c && cb.responder != nil {
		return cb.responder
	}
	domain := cb.Link.Config().Domain
	onLogin := users.LoginLogger(cb.log)
	cb.responder = &loginrelay.Responder{
		Domain: domain,
		Dir:    cb.Users.Directory(domain, cb.Meetings),
		Logger: cb.log,
		OnLogin: func(jid string, ok bool, reason string) {
			onLogin(jid, ok, reason)
			cb.Meetings.LoginResult(jid, ok, reason)
			cb.Link.Record(linkstate.Event{Step: linkstate.StepLogin, Target: jid, Start: time.Now(), Outcome: outcome(ok), Cause: reason})
		},
		OnSessionEnd: cb.Meetings.SessionEnded,
	}
	cb.respConn = c
	return cb.responder
}

func outcome(ok bool) linkstate.Outcome {
	if ok {
		return linkstate.OK
	}
	return linkstate.Failed
}

// guestJoiner adapts the meeting service to the web app's guest endpoint.
type guestJoiner struct{ m *meeting.Service }

func (g guestJoiner) JoinAsGuest(ctx context.Context, callID, passcode, name, remote string) (webapp.GuestGrant, error) {
	gr, err := g.m.JoinAsGuest(ctx, callID, passcode, name, remote)
	var te *meeting.ThrottledError
	switch {
	case err == nil:
		return webapp.GuestGrant{JID: gr.JID, Password: gr.Password.Reveal(), SpaceJID: gr.SpaceJID, SpaceName: gr.SpaceName, Name: gr.Name}, nil
	case errors.Is(err, meeting.ErrInvalidCallID):
		return webapp.GuestGrant{}, webapp.ErrInvalidCallID
	case errors.Is(err, meeting.ErrNoCallBridge):
		return webapp.GuestGrant{}, webapp.ErrNoCallBridge
	case errors.As(err, &te):
		return webapp.GuestGrant{}, &webapp.ThrottledError{RetryAfter: te.RetryAfter}
	}
	return webapp.GuestGrant{}, err
}

// resetOnLinkLoss ends every call when the link goes down: the participants' sessions were
// on the XMPP server the link reached, and their presences can no longer arrive.
func (cb *CallBridge) resetOnLinkLoss(ctx context.Context) {
	up := false
	for {
		ch := cb.Link.Changes()
		now := cb.Link.Status().State == linkstate.Registered
		if up && !now {
			cb.Meetings.Reset("the link to the XMPP server was lost")
		}
		up = now
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// Failed is closed when a listener stops unexpectedly; Err then says why.
func (cb *CallBridge) Failed() <-chan struct{} { return cb.g.failed }

// Err returns the error that closed Failed.
func (cb *CallBridge) Err() error { return cb.g.Err() }

// Shutdown stops the link and the listeners and closes the store.
func (cb *CallBridge) Shutdown(ctx context.Context) error {
	cb.cancel()
	errs := []error{cb.g.shutdownHTTP(ctx)}
	done := make(chan struct{})
	go func() { cb.g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("call bridge shutdown: goroutines still running: %w", context.Cause(ctx)))
	}
	errs = append(errs, cb.Users.Close(), cb.Store.Close())
	return errors.Join(errs...)
}
