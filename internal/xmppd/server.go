package xmppd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/sameorigin"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/throttle"
	"confab.dev/confab/internal/xmppd/roster"
)

// Defaults for zero Config fields.
const (
	DefaultMaxStanzaC2S       = 256 << 10
	DefaultMaxStanzaComponent = 512 << 10
	DefaultMaxSessions        = 10000
	DefaultOpenTimeout        = 10 * time.Second
	DefaultTLSTimeout         = 10 * time.Second
	DefaultAuthTimeout        = 30 * time.Second
	DefaultIdleTimeout        = 5 * time.Minute
	DefaultWriteTimeout       = 10 * time.Second
	DefaultKeepAlive          = 60 * time.Second
	DefaultRelayTimeout       = 10 * time.Second
	DefaultResumeTimeout      = 5 * time.Minute
)

// componentThrottle is the default of Config.ComponentThrottle: 10 failed component
// handshakes from one address within 5 minutes block it for 10 seconds, each further block
// twice as long, up to 5 minutes. A registry secret is 128 random bits or more, so this is
// not what keeps it from being guessed; it keeps a misconfigured or hostile peer from costing
// a TLS handshake and a log line every few milliseconds.
func componentThrottle() throttle.Config {
	return throttle.Config{MaxFailures: 10, Window: 5 * time.Minute, Block: 10 * time.Second, MaxBlock: 5 * time.Minute}
}

// killGrace is how long Shutdown waits for handlers after killing their connections.
const killGrace = 2 * time.Second

// Values of Config.DuplicateComponent.
const (
	// Reject, the default, refuses the new connection with a conflict stream error, in
	// answer to its handshake (it never gets <handshake/>), as Prosody does: a second Call
	// Bridge configured with a registered name never silently takes the live one's place.
	// Both sides raise an alarm (see componentSession.refuseDuplicate).
	Reject = "reject"
	// KickOld closes the link already registered under a name when the same name registers
	// again (the old link gets a conflict stream error): a Call Bridge that lost its link
	// without noticing is back at once, but a misconfigured second Call Bridge of that name
	// takes the link from the first. A probe (confab diagnose) never replaces a live link.
	KickOld = "kick_old"
)

// Registry is the set of Call Bridges allowed to register; *callbridges.Registry satisfies it.
type Registry interface {
	Lookup(name string) (secret.Secret, bool)
}

// Config configures a Server. The zero value of every field but Domain, TLS and Registry is
// usable; defaults are applied by New.
type Config struct {
	// Domain is the XMPP domain served, e.g. example.com. A Call Bridge registered as cb1
	// has the component JID cb1.example.com.
	Domain string
	// TLS holds the server certificate used for STARTTLS, the component port and (through
	// the caller's HTTPS listener) WebSocket. It is not modified.
	TLS *tls.Config
	// ComponentClientCAs verifies client certificates on the component port. With
	// RequireComponentCert a Call Bridge must present one (mutual TLS); without it a
	// certificate is verified when given.
	ComponentClientCAs   *x509.CertPool
	RequireComponentCert bool
	// Registry answers which Call Bridge names may register and with which secret.
	Registry Registry
	// AllowedOrigins lists the WebSocket Origins accepted, as "https://host:port". Empty means
	// only an Origin whose host is the request's Host (and requests without an Origin, which
	// do not come from a browser).
	AllowedOrigins []string
	// MaxStanzaC2S and MaxStanzaComponent bound a stanza's size in bytes (default 256 KiB and
	// 512 KiB). A larger one closes the stream with policy-violation.
	MaxStanzaC2S       int
	MaxStanzaComponent int
	// MaxSessions bounds the client connections (TCP and WebSocket together; default 10000).
	// Connections over it get a resource-constraint stream error.
	MaxSessions int
	// OpenTimeout bounds the wait for a stream header (default 10s), TLSTimeout a TLS
	// handshake (10s), AuthTimeout the time from connecting to a bound resource (30s: a connection that never logs in goes soon),
	// WriteTimeout each write (10s). IdleTimeout is the silence after which an established
	// stream is closed with connection-timeout (5m); the server sends an XEP-0199 ping when
	// half of it has passed, so a live client that answers pings is never idle.
	OpenTimeout, TLSTimeout, AuthTimeout, IdleTimeout, WriteTimeout time.Duration
	// KeepAlive is the interval of whitespace keepalives on a stream that has nothing else to
	// send (default 60s).
	KeepAlive time.Duration
	// ResumeTimeout is how long a client session that enabled resumption [XEP-0198] stays
	// bound and keeps what is sent to it after losing its connection (default 5m). A client
	// may ask for less ('max' in <enable/>), not more.
	ResumeTimeout time.Duration
	// DuplicateComponent is Reject (the default) or KickOld.
	DuplicateComponent string
	// RelayTimeout bounds each step of a relayed login (default 10s).
	RelayTimeout time.Duration
	// ComponentThrottle slows down guessing of Call Bridge names and secrets: failed
	// component handshakes (not-authorized, host-unknown) are counted per source address
	// (IPv4 address, IPv6 /64), and a source that failed too often is refused with
	// policy-violation, before its handshake is checked, until its block ends. Zero fields
	// take the defaults: 10 failures within 5 minutes
	// block the address for 10s, each further block twice as long, up to 5 minutes.
	ComponentThrottle throttle.Config
	// MaxUnauthenticatedPerAddress and MaxNegotiatingPerAddress bound, per source address
	// (an IPv4 address, an IPv6 /64), the client connections that have not authenticated
	// yet and those that have not bound a resource yet (defaults 100 and 200): one address
	// cannot fill MaxSessions with connections that never log in. Past either, a new
	// connection from the address is refused with policy-violation at once.
	MaxUnauthenticatedPerAddress int
	MaxNegotiatingPerAddress     int
	// MaxDetachedPerAccount bounds the sessions of one account kept detached for resumption
	// [XEP-0198] (default 5); past it a lost connection ends its session at once. Each
	// detached session keeps at most 1 MiB.
	MaxDetachedPerAccount int
	// SenderRate and SenderBurst limit the stanzas each client session sends to anyone but
	// the server and its own account (other users, a Call Bridge and its meetings): a token
	// bucket of SenderBurst stanzas refilled at SenderRate a second (defaults 50/s and 200).
	// A stanza over the limit is refused to its sender with policy-violation (wait), so that
	// one participant flooding a meeting or a user is slowed before anyone else is hurt.
	SenderRate  float64
	SenderBurst int
	// Roster keeps the users' rosters and presence subscriptions [RFC 6121] (default: in
	// memory, lost at a restart; confab keeps them in SQLite in the data directory). The
	// Server does not close it.
	Roster roster.Store
	// Clock, if set, replaces the monotonic clock of idle timeouts, keepalives, pings and
	// limits: the time elapsed since some start. The default is time.Since(the server's
	// start), which follows the monotonic clock, so that a step of the wall clock (NTP, an
	// administrator) neither ends every session nor turns idle detection off. For tests.
	Clock func() time.Duration
	// Logger receives the server's logs (default: discarded).
	Logger *slog.Logger
	// Metrics registers the server's metrics (default: a private registry). When it is also
	// a prometheus.Gatherer (as *prometheus.Registry is), AdminHandler serves it at /metrics.
	Metrics prometheus.Registerer
}

// ErrServerClosed is returned by the Serve methods after Shutdown.
var ErrServerClosed = errors.New("xmppd: server closed")

// ComponentInfo describes a connected component (a Call Bridge).
type ComponentInfo struct {
	Name           string    `json:"name"`
	JID            string    `json:"jid"`
	RemoteAddr     string    `json:"remoteAddress"`
	ConnectedSince time.Time `json:"connectedSince"`
	// CallBridge says the component speaks the login relay and takes logins; another
	// component (an IRC gateway, a bot) does not.
	CallBridge bool `json:"callBridge"`
	// DuplicatesRefused counts the connections refused (conflict) because they asked for
	// this component's name while it was connected: more than zero is an alarm (two Call
	// Bridges share a name). LastDuplicateFrom and LastDuplicateAt say the latest.
	DuplicatesRefused int       `json:"duplicatesRefused,omitempty"`
	LastDuplicateFrom string    `json:"lastDuplicateFrom,omitempty"`
	LastDuplicateAt   time.Time `json:"lastDuplicateAt,omitzero"`
}

// tracked is a live connection the server can stop.
type tracked interface {
	// shutdown ends the connection gracefully (system-shutdown) without waiting.
	shutdown()
	// kill closes the network connection at once.
	kill()
	// String names the connection in a shutdown report.
	String() string
}

// Server is an XMPP server. Its methods are safe for concurrent use.
type Server struct {
	// orphans are, per component domain that left, the sessions told so (componentGone),
	// to be told when it is back (componentBack). orphansMu is a leaf.
	orphansMu sync.Mutex
	orphans   map[string]map[string]struct{}

	cfg     Config
	domain  string
	log     *slog.Logger
	tlsComp *tls.Config
	// certCheck is the check of the server's own certificate (see CertCheck).
	certCheck certCheckBox
	relay     *loginrelay.Client
	router    router
	// smIDs maps XEP-0198 resumption ids to their sessions; smMu is a leaf.
	smMu  sync.Mutex
	smIDs map[string]*session
	// compFails counts failed component handshakes per source address; srcNames remembers
	// the name each source's last failed handshake claimed (for UnblockComponent).
	compFails *throttle.Throttle
	srcMu     sync.Mutex // a leaf
	srcNames  map[string]string
	m         *metrics
	// addrs counts the connections still logging in, per source address.
	addrs addrCounts
	// limitLog logs recurring limit events (floods, full queues) once per interval.
	limitLog limitLog
	// mono is the monotonic clock of timers and limits: elapsed time since the server
	// started, unaffected by steps of the wall clock.
	mono func() time.Duration

	// ctx is the parent of every connection's context; cancel ends them all.
	ctx    context.Context
	cancel context.CancelFunc

	mu           sync.Mutex
	listeners    map[net.Listener]struct{}
	conns        map[tracked]struct{}
	c2s          int // admitted client connections
	shuttingDown bool
	wg           sync.WaitGroup // one per connection handler
}

// New checks cfg, applies its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Domain == "" {
		return nil, errors.New("xmppd: no domain")
	}
	d, err := jid.Parse(cfg.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return nil, fmt.Errorf("xmppd: domain %q is not a valid XMPP domain: %w", cfg.Domain, errOr(err, "it has a local or resource part"))
	}
	if cfg.TLS == nil || (len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil) {
		return nil, errors.New("xmppd: a TLS configuration with a server certificate is required")
	}
	if cfg.Registry == nil {
		return nil, errors.New("xmppd: no Call Bridge registry")
	}
	if cfg.RequireComponentCert && cfg.ComponentClientCAs == nil {
		return nil, errors.New("xmppd: RequireComponentCert needs ComponentClientCAs")
	}
	switch cfg.DuplicateComponent {
	case "":
		cfg.DuplicateComponent = Reject
	case KickOld, Reject:
	default:
		return nil, fmt.Errorf("xmppd: DuplicateComponent %q: want %q or %q", cfg.DuplicateComponent, KickOld, Reject)
	}
	for _, o := range cfg.AllowedOrigins {
		if _, err := sameorigin.Of(o); err != nil {
			return nil, fmt.Errorf("xmppd: AllowedOrigins %q: %w", o, err)
		}
	}
	setDefault(&cfg.MaxStanzaC2S, DefaultMaxStanzaC2S)
	setDefault(&cfg.MaxStanzaComponent, DefaultMaxStanzaComponent)
	setDefault(&cfg.MaxSessions, DefaultMaxSessions)
	setDefault(&cfg.OpenTimeout, DefaultOpenTimeout)
	setDefault(&cfg.TLSTimeout, DefaultTLSTimeout)
	setDefault(&cfg.AuthTimeout, DefaultAuthTimeout)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	setDefault(&cfg.KeepAlive, DefaultKeepAlive)
	setDefault(&cfg.RelayTimeout, DefaultRelayTimeout)
	setDefault(&cfg.ResumeTimeout, DefaultResumeTimeout)
	setDefault(&cfg.SenderBurst, DefaultSenderBurst)
	setDefault(&cfg.MaxUnauthenticatedPerAddress, DefaultMaxUnauthenticatedPerAddress)
	setDefault(&cfg.MaxNegotiatingPerAddress, DefaultMaxNegotiatingPerAddress)
	setDefault(&cfg.MaxDetachedPerAccount, DefaultMaxDetachedPerAccount)
	if cfg.SenderRate <= 0 {
		cfg.SenderRate = DefaultSenderRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Roster == nil {
		cfg.Roster = roster.NewMemory()
	}
	m, gatherer, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	comp := cfg.TLS.Clone()
	if cfg.ComponentClientCAs != nil {
		comp.ClientCAs = cfg.ComponentClientCAs
		comp.ClientAuth = tls.VerifyClientCertIfGiven
		if cfg.RequireComponentCert {
			comp.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	s := &Server{
		cfg:       cfg,
		domain:    d.String(),
		log:       cfg.Logger,
		tlsComp:   comp,
		m:         m,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[tracked]struct{}),
		smIDs:     make(map[string]*session),
	}
	s.m.gatherer = gatherer
	s.mono = cfg.Clock
	if s.mono == nil {
		start := time.Now() // with its monotonic reading: time.Since(start) ignores wall-clock steps
		s.mono = func() time.Duration { return time.Since(start) }
	}
	s.limitLog = limitLog{interval: 10 * time.Second, now: func() time.Duration { return s.mono() }}
	s.compFails = throttle.New(cfg.ComponentThrottle, componentThrottle(), nil)
	s.relay = loginrelay.NewClient(s.domain, cfg.RelayTimeout, cfg.Logger.With("component", "loginrelay"))
	s.router.init()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func setDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

func errOr(err error, text string) error {
	if err != nil {
		return err
	}
	return errors.New(text)
}

// Domain returns the XMPP domain served, normalised.
func (s *Server) Domain() string { return s.domain }

// ServeC2S accepts client connections (TCP, STARTTLS) on ln until Shutdown, and then returns
// ErrServerClosed. It closes ln.
func (s *Server) ServeC2S(ln net.Listener) error {
	return s.serve(ln, "c2s", s.handleC2S)
}

// ServeComponents accepts Call Bridge connections on ln, a plain TCP listener: TLS starts
// with the first byte and is done here. It returns ErrServerClosed after Shutdown.
func (s *Server) ServeComponents(ln net.Listener) error {
	return s.serve(ln, "component", s.handleComponent)
}

func (s *Server) serve(ln net.Listener, what string, handle func(net.Conn)) error {
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()
	s.log.Info("listening", "listener", what, "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				// Out of file descriptors and the like: wait and retry, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "listener", what, "err", err, "retry_in", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.ctx.Done():
					t.Stop()
				}
				continue
			}
			return fmt.Errorf("xmppd: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		if !s.goConn(func() { handle(nc) }) {
			_ = nc.Close()
			return ErrServerClosed
		}
	}
}

// isTemporaryAccept reports whether an Accept error leaves the listener usable: out of file
// descriptors or memory, or a connection aborted before it was accepted.
func isTemporaryAccept(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// goConn runs f in a goroutine counted in s.wg, unless the server is shutting down.
func (s *Server) goConn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shuttingDown
}

// track registers c for Shutdown; false when the server is shutting down.
func (s *Server) track(c tracked) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c tracked) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// admit counts a client connection against MaxSessions.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c2s >= s.cfg.MaxSessions {
		return false
	}
	s.c2s++
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.c2s--
	s.mu.Unlock()
}

// Shutdown stops the listeners, closes every stream with a system-shutdown stream error and
// waits for the connections to end. If ctx ends first, it closes what is left at once and
// returns an error naming the connections that did not end in time.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shuttingDown = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	conns := make([]tracked, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	s.log.Info("shutting down", "connections", len(conns))
	for _, c := range conns {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	var left []string
	for c := range s.conns {
		left = append(left, c.String())
		c.kill()
	}
	s.mu.Unlock()
	s.cancel()
	// The connections are closed now; let their goroutines finish, briefly, so that the
	// caller can count on nothing running afterwards in the usual case.
	tm := time.NewTimer(killGrace)
	select {
	case <-done:
	case <-tm.C:
		left = append(left, "connection handlers still running after being killed")
	}
	tm.Stop()
	if len(left) == 0 {
		left = append(left, "none (they were closing)")
	}
	sort.Strings(left)
	const show = 5
	more := ""
	if len(left) > show {
		more = fmt.Sprintf(" and %d more", len(left)-show)
		left = left[:show]
	}
	err := fmt.Errorf("xmppd: shutdown: connections still open: %s%s: %w", strings.Join(left, ", "), more, context.Cause(ctx))
	s.log.Warn("shutdown timed out; connections closed without goodbye", "err", err)
	return err
}

// RegistryChanged re-checks every Call Bridge link against the registry: a link whose name
// was deleted, or whose secret changed, is closed with not-authorized.
func (s *Server) RegistryChanged() {
	for _, l := range s.router.allComponents() {
		sec, ok := s.cfg.Registry.Lookup(l.name)
		switch {
		case !ok:
			l.log.Info("call bridge removed from the registry; closing its link")
			l.close(stream.NotAuthorized, "this Call Bridge is no longer registered")
		case !l.sameSecret(sec):
			l.log.Info("call bridge secret changed; closing its link")
			l.close(stream.NotAuthorized, "the shared secret of this Call Bridge changed")
		}
	}
}

// Components describes the connected components (Call Bridges), ordered by name.
func (s *Server) Components() []ComponentInfo {
	ls := s.router.allComponents()
	out := make([]ComponentInfo, 0, len(ls))
	for _, l := range ls {
		if l.known.Load() {
			out = append(out, l.info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
