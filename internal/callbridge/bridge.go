package callbridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"confab.dev/confab/internal/adminapi"
	"confab.dev/confab/internal/callbridge/accounts"
	"confab.dev/confab/internal/callbridge/cdr"
	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/callbridge/media"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/eventlog"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
	"confab.dev/confab/internal/web/webadmin"
	"confab.dev/confab/internal/web/webapp"
)

// ErrBridgeClosed is returned by Run after Shutdown.
var ErrBridgeClosed = errors.New("callbridge: closed")

// Config configures a Bridge. Only Store is required; every other zero field has a useful
// default.
type Config struct {
	// Store holds the configuration, users, spaces and API accounts. The caller opens it
	// and closes it after Shutdown.
	Store *store.Store

	// RootCAs verify the XMPP server's certificate (nil: the system's roots); ClientCert is
	// presented when the XMPP server asks for one.
	RootCAs    *x509.CertPool
	ClientCert *tls.Certificate
	// DNSServer is the DNS server (host or host:port) for SRV and A/AAAA lookups; empty uses
	// the system's resolver. Resolver, when set, is used instead (tests).
	DNSServer string
	Resolver  *net.Resolver
	// KeepAlive, BackoffMin and BackoffMax tune the link (see link.Options).
	KeepAlive, BackoffMin, BackoffMax time.Duration

	// WebSocketURL is the XMPP-over-WebSocket URL the browser app is told to use; empty
	// means /xmpp-websocket on the page's own origin.
	WebSocketURL string
	// WebBridgeURL is where browsers reach the browser app, shown by the REST API's
	// /webBridges; empty shows none.
	WebBridgeURL string
	// WebSocket, when set, is mounted at /xmpp-websocket on the web handler (the XMPP server
	// runs in the same process).
	WebSocket http.Handler

	// Media configures the media server (the SFU: all media on one UDP port and one TCP
	// port); its zero value listens on port 10000 of every interface. NoMedia turns it off:
	// meetings are then participant lists and chat.
	Media   MediaConfig
	NoMedia bool

	// LoginWorkers bounds the login exchanges run at once (DefaultLoginWorkers when 0).
	LoginWorkers int

	// CDRRetryMin and CDRRetryMax bound the wait before a CDR receiver that failed is tried
	// again (cdr.DefaultRetryMin, cdr.DefaultRetryMax when 0).
	CDRRetryMin, CDRRetryMax time.Duration

	// Logger receives the Call Bridge's logs (discarded when nil). The Bridge keeps the
	// last records for the web admin's event log (see Bridge.Logger).
	Logger *slog.Logger
	// Metrics registers the Call Bridge's metrics; Gatherer, when set, is served at /metrics
	// on the API handler, behind the API accounts' credentials.
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Version is the software version the API reports.
	Version string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// MediaConfig is where the media server listens and what it advertises: the settings of
// package sfu that an operator chooses (the [media] section of a configuration file). The
// Bridge gives the SFU its logger and metrics and leaves the rest at their defaults.
type MediaConfig struct {
	// UDP is the one UDP address of all media (default ":10000": every interface, port
	// 10000; tests use "127.0.0.1:0"). TCP is the ICE-TCP address (default: UDP's host and
	// port; "off" for none).
	UDP, TCP string
	// PublicIPs are advertised to browsers instead of the interfaces' addresses, for a host
	// behind a 1:1 NAT (the same port numbers must be forwarded).
	PublicIPs []string
}

// DefaultLoginWorkers bounds the login exchanges a Call Bridge runs at once: they are slow
// (Argon2id, LDAP binds) and each holds a goroutine with a deep stack.
const DefaultLoginWorkers = 32

// Bridge is a Call Bridge: the link to the XMPP server and everything that arrives over it
// (logins, meetings), the users and spaces in the store, the REST API, the web admin and
// the browser app's handlers. The package documentation lists its goroutines and locks.
type Bridge struct {
	Store    *store.Store
	Link     *link.Link
	Users    *users.Service
	Meetings *meeting.Service
	Accounts *accounts.Checker
	// SFU and Media are the media server and its signalling; nil with Config.NoMedia.
	SFU   *sfu.SFU
	Media *media.Service
	// CDR queues and sends the Call Detail Records of the meetings.
	CDR *cdr.Service
	// Settings is the one writer of the XMPP settings (the REST API and the web admin).
	Settings *link.SettingsWriter

	cfg Config
	log *slog.Logger
	api *adminapi.Handler // the REST API, served by APIHandler and called by the web admin

	// ctx is the Bridge's lifetime: cancelled by Shutdown.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // Run's goroutines and the login workers

	// Login exchanges run on a pool of at most cfg.LoginWorkers goroutines, started as
	// needed and kept: a goroutine per exchange grew a fresh stack through deep SCRAM and
	// SQLite code at every login.
	loginJobs chan loginJob

	mu           sync.Mutex
	loginWorkers int
	responder    *loginrelay.Responder
	respConn     conn
	running      bool
	closed       bool
	turn         *turnd.Server // the embedded TURN server (AttachTURN)
}

// New returns a Bridge for cfg. It reads the XMPP settings from the store; nothing runs
// until Run.
func New(cfg Config) (*Bridge, error) {
	if cfg.Store == nil {
		return nil, errors.New("callbridge: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The web admin's event log shows the last records (adminBackend.LogRecords).
	cfg.Logger = eventlog.Wrap(cfg.Logger, "callbridge")
	if cfg.LoginWorkers <= 0 {
		cfg.LoginWorkers = DefaultLoginWorkers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Resolver == nil && cfg.DNSServer != "" {
		cfg.Resolver = discover.NewResolver(cfg.DNSServer, 0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		Store:     cfg.Store,
		cfg:       cfg,
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		loginJobs: make(chan loginJob),
	}
	xc, err := cfg.Store.XMPPSettings(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	b.Accounts = accounts.New(accounts.Options{Store: cfg.Store, Now: cfg.Now})
	b.Users = users.New(users.Options{Store: cfg.Store, Logger: cfg.Logger})
	b.Link = link.New(xc, link.Options{
		Resolver:   cfg.Resolver,
		RootCAs:    cfg.RootCAs,
		ClientCert: cfg.ClientCert,
		KeepAlive:  cfg.KeepAlive,
		BackoffMin: cfg.BackoffMin,
		BackoffMax: cfg.BackoffMax,
		Handler:    b.dispatch,
		Logger:     cfg.Logger,
		Metrics:    cfg.Metrics,
	})
	b.Settings = &link.SettingsWriter{Store: cfg.Store, Link: b.Link}
	b.CDR = cdr.New(cdr.Options{Store: cfg.Store, Logger: cfg.Logger, Now: cfg.Now, RootCAs: cfg.RootCAs,
		RetryMin: cfg.CDRRetryMin, RetryMax: cfg.CDRRetryMax})
	events := &meetingEvents{cdr: b.CDR}
	b.Meetings = meeting.New(meeting.Options{
		Store:  cfg.Store,
		Logger: cfg.Logger,
		Now:    cfg.Now,
		LinkUp: func() bool { return b.Link.Status().State == linkstate.Registered },
		Events: events,
	})
	if !cfg.NoMedia {
		mc := sfu.Config{UDPAddr: cfg.Media.UDP, TCPAddr: cfg.Media.TCP, PublicIPs: cfg.Media.PublicIPs,
			Logger: cfg.Logger, Metrics: cfg.Metrics}
		if b.SFU, err = sfu.New(mc); err != nil {
			cancel()
			b.Users.Close()
			return nil, fmt.Errorf("media server: %w", err)
		}
		b.Media = media.New(media.Options{SFU: b.SFU, Legs: b.Meetings, Logger: cfg.Logger, ICEServers: b.mediaICEServers, CredentialLifetime: CredentialLifetime})
		b.Meetings.ObserveLegs(b.Media.LegEnded)
		events.media = b.Media
	}
	b.api = adminapi.New(adminapi.Options{
		Store: b.Store, Link: b.Link, Settings: b.Settings, Accounts: b.Accounts,
		Logger: b.log, Version: cfg.Version, Now: cfg.Now,
		Users: b.Users, Meetings: b.Meetings, CDR: b.CDR, WebBridgeURL: cfg.WebBridgeURL,
		Media: mediaInfo(b.Media),
		TURN:  b.TURN, EmbeddedTURN: EmbeddedTURNID, MediaLadder: b.mediaLadder,
	})
	return b, nil
}

// Logger returns the Call Bridge's logger: Config.Logger, with the last records kept for
// the web admin's event log. What runs beside the Bridge (the embedded TURN server, the HTTP
// servers of its handlers) logs through it, so that its records are in the event log too.
func (b *Bridge) Logger() *slog.Logger { return b.log }

// Run keeps the link to the XMPP server up and serves what arrives over it, until ctx ends
// (it then returns nil) or Shutdown is called (ErrBridgeClosed). It may be called once.
func (b *Bridge) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrBridgeClosed
	}
	if b.running {
		b.mu.Unlock()
		return errors.New("callbridge: Run called twice")
	}
	b.running = true
	b.wg.Add(1) // Run itself, so that Shutdown waits for it
	b.mu.Unlock()
	defer b.wg.Done()

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(b.ctx, cancel)
	defer stop()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		b.resetOnLinkLoss(rctx)
	}()
	go func() {
		defer wg.Done()
		b.CDR.Run(rctx)
	}()
	err := b.Link.Run(rctx)
	cancel()
	wg.Wait()
	if b.ctx.Err() != nil {
		return ErrBridgeClosed
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// resetOnLinkLoss ends every call when the link goes down: the participants' sessions were
// on the XMPP server the link reached, and their presences can no longer arrive.
func (b *Bridge) resetOnLinkLoss(ctx context.Context) {
	up := false
	for {
		ch := b.Link.Changes()
		now := b.Link.Status().State == linkstate.Registered
		if up && !now {
			b.Meetings.Reset("the link to the XMPP server was lost")
		}
		up = now
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// Shutdown stops Run and the login workers and waits for them, or until ctx ends; then it
// stops the users service. The caller stops its HTTP servers first and closes the store
// after.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	// The calls end with the Call Bridge: their end records are queued before the CDR
	// service stops (it stores what it holds as it stops).
	b.Meetings.Reset("the Call Bridge is shutting down")
	b.cancel()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("call bridge shutdown: goroutines still running: %w", context.Cause(ctx)))
	}
	if b.Media != nil {
		errs = append(errs, b.Media.Shutdown(ctx), b.SFU.Shutdown(ctx))
	}
	errs = append(errs, b.Users.Close())
	return errors.Join(errs...)
}

// APIHandler serves the REST API (/api/v1/…), the web admin (/admin/) and, when
// Config.Gatherer is set, the metrics (/metrics, behind the API accounts' credentials).
func (b *Bridge) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", b.api)
	if b.cfg.Gatherer != nil {
		mux.Handle("GET /metrics", b.requireAccount(promhttp.HandlerFor(b.cfg.Gatherer, promhttp.HandlerOpts{})))
	}
	mux.Handle("/admin/", webadmin.New(webadmin.Options{Backend: adminBackend{b}, Logger: b.log, Now: b.cfg.Now}))
	mux.Handle("GET /{$}", http.RedirectHandler("/admin/", http.StatusFound))
	return mux
}

// WebHandler serves the browser app (the Web Bridge) and, when Config.WebSocket is set, the
// XMPP server's WebSocket endpoint beside it.
func (b *Bridge) WebHandler() http.Handler {
	return webapp.New(webapp.Options{
		Config: func() webapp.Config {
			c := b.Link.Config()
			return webapp.Config{Domain: c.Domain, WebSocketURL: b.cfg.WebSocketURL, CallBridgeJID: link.ComponentJID(c)}
		},
		Guests:    guestJoiner{b.Meetings},
		Tester:    b.connTester(),
		WebSocket: b.cfg.WebSocket,
		Logger:    b.log,
	})
}

// requireAccount serves h only to requests with an API account's credentials (HTTP Basic),
// as Prometheus's basic_auth sends them.
func (b *Bridge) requireAccount(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, password, ok := r.BasicAuth()
		err := accounts.ErrUnauthorized
		if ok {
			err = b.Accounts.Check(r.Context(), name, password, r.RemoteAddr)
		}
		var te *accounts.ThrottledError
		switch {
		case err == nil:
			h.ServeHTTP(w, r)
		case errors.As(err, &te):
			w.Header().Set("Retry-After", fmt.Sprint(int((te.RetryAfter+time.Second-1)/time.Second)))
			http.Error(w, "too many authentication failures", http.StatusTooManyRequests)
		case errors.Is(err, accounts.ErrUnauthorized):
			w.Header().Set("WWW-Authenticate", `Basic realm="Confab"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		default:
			http.Error(w, "try again", http.StatusServiceUnavailable)
		}
	})
}

// meetingEvents hands the meeting service's events to the Call Detail Records and, for call
// leg updates, to the media server, which applies the administrator's mutes.
type meetingEvents struct {
	cdr   *cdr.Service
	media *media.Service // nil without media; set before the Bridge runs
}

func (m *meetingEvents) Record(e meeting.Event) {
	m.cdr.Record(e)
	if m.media != nil && e.Type == meeting.CallLegUpdate {
		m.media.LegUpdated(e.CallID, e.LegID, media.Mutes{RxAudio: e.RxAudioMute, RxVideo: e.RxVideoMute, TxAudio: e.TxAudioMute, TxVideo: e.TxVideoMute})
	}
}

// mediaInfo is the media service as the REST API sees it; nil without media.
func mediaInfo(m *media.Service) adminapi.Media {
	if m == nil {
		return nil
	}
	return m
}

// mediaLadder is a call leg's media ladder, for the REST API and the web admin.
func (b *Bridge) mediaLadder(legID string) (ladder.Ladder, bool) {
	if b.Media == nil {
		return ladder.Ladder{}, false
	}
	return b.Media.Ladder(legID)
}
