package turnd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/secret"
)

// Config configures a Server. The zero value is a working server on its defaults that no
// client can authenticate to: set Secret (time-limited credentials) or Users.
type Config struct {
	// Realm is the long-term-credential realm (default "confab").
	Realm string
	// TLS is the certificate ServeTLS presents (Confab's certificates, package certs). It
	// is not modified.
	TLS *tls.Config
	// Secret is the shared secret of time-limited credentials (see IssueCredentials);
	// coturn's static-auth-secret. Zero: none are accepted.
	Secret secret.Secret
	// Users are static long-term credentials, username → password. A static user's user id
	// is its username.
	Users map[string]secret.Secret
	// RelayIP is the relayed address advertised to clients. Zero: the address the client
	// reached the server on, which a UDP listener on all addresses cannot tell: ServeUDP
	// then fails with ErrNoRelayIP.
	RelayIP netip.Addr
	// RelayBindIP is where relay sockets are bound. Zero: the listener's address, or all
	// addresses when the listener is on all addresses.
	RelayBindIP netip.Addr
	// MinPort and MaxPort bound the relay ports (default 49152–65535).
	MinPort, MaxPort uint16
	// MaxAllocationsPerUser bounds a user id's allocations: 486 Allocation Quota Reached
	// past it (default 10; negative: no bound).
	MaxAllocationsPerUser int
	// MaxAllocations bounds all allocations: 508 Insufficient Capacity past it (default
	// 10000; negative: no bound).
	MaxAllocations int
	// Bandwidth caps each allocation, in bytes per second each way, with a burst of one
	// second's worth; datagrams over it are dropped and counted (default 4000000; negative:
	// no cap).
	Bandwidth int64
	// MaxConnections bounds the TCP and TLS connections together (default 10000; negative:
	// no bound); one over it is closed at once.
	MaxConnections int
	// MaxMessageSize bounds a message from a client, a STUN message or a ChannelData
	// message with its header (default 1600 bytes, at least 576). A larger one is refused:
	// 400 Bad Request to a request, dropped otherwise; on TCP and TLS the connection is
	// closed, since the stream cannot be trusted past it.
	MaxMessageSize int
	// AllowPeers lists the peers that may be relayed to even if denied; DenyPeers those no
	// client may relay to, beyond loopback, link-local, unspecified and multicast, which are
	// always denied unless allowed. A denied peer gets 403 Forbidden.
	AllowPeers, DenyPeers []netip.Prefix
	// AllowPeerAddrs are peer transport addresses (IP and port) that may be relayed to even
	// if their IP is denied — a Call Bridge's media port on loopback or on a denied private
	// network, for the TURN server embedded beside it. A permission for such an IP is
	// granted, but a datagram to another of its ports is dropped (counted as peer_port),
	// unless AllowPeers or the absence of a denial lets the IP through anyway.
	AllowPeerAddrs []netip.AddrPort
	// TLSTimeout bounds a TLS handshake (default 10s), WriteTimeout a write to a TCP or TLS
	// client (10s), IdleTimeout the silence of a TCP or TLS client before its connection is
	// closed (10m; a live WebRTC client sends consent checks every few seconds), and
	// AllocateTimeout that silence before the connection has made an allocation (60s, as
	// coturn's max-allocate-timeout), so that idle connections cannot hold every one of
	// MaxConnections for long.
	TLSTimeout, WriteTimeout, IdleTimeout, AllocateTimeout time.Duration
	// LogInterval is how often a refusal of one cause is logged (default 1m); the refusals
	// in between are counted and the next line says how many.
	LogInterval time.Duration
	// Logger receives the server's logs (default: discarded). pion's own logs go to it at
	// debug.
	Logger *slog.Logger
	// Metrics registers the server's metrics (default: a private registry).
	Metrics prometheus.Registerer
}

// Defaults.
const (
	DefaultRealm          = "confab"
	DefaultMinPort        = 49152
	DefaultMaxPort        = 65535
	DefaultPerUser        = 10
	DefaultMaxAllocations = 10000
	DefaultBandwidth      = 4_000_000
	DefaultMaxConnections = 10000
	DefaultMaxMessageSize = 1600
	minMessageSize        = 576
)

func (c Config) withDefaults() Config {
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.MinPort == 0 && c.MaxPort == 0 {
		c.MinPort, c.MaxPort = DefaultMinPort, DefaultMaxPort
	}
	if c.MaxAllocationsPerUser == 0 {
		c.MaxAllocationsPerUser = DefaultPerUser
	}
	if c.MaxAllocations == 0 {
		c.MaxAllocations = DefaultMaxAllocations
	}
	if c.Bandwidth == 0 {
		c.Bandwidth = DefaultBandwidth
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TLSTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.IdleTimeout, 10*time.Minute)
	def(&c.AllocateTimeout, time.Minute)
	def(&c.LogInterval, time.Minute)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Errors.
var (
	// ErrServerClosed is returned by the Serve methods after Shutdown.
	ErrServerClosed = errors.New("turnd: server closed")
	// ErrNoRelayIP means a listener is on all addresses and Config.RelayIP is not set, so
	// the server cannot tell clients which address it relays from.
	ErrNoRelayIP = errors.New("turnd: no relay address: the listener is on all addresses and RelayIP is not set")
	// ErrNoTLS means ServeTLS was called without Config.TLS.
	ErrNoTLS = errors.New("turnd: no TLS configuration")
)

// Server is a TURN server. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	refused map[Cause]prometheus.Counter
	policy  peerPolicy
	limiter *logLimiter
	pionLog pionLoggerFactory
	done    chan struct{} // closed by Shutdown

	mu        sync.Mutex
	closed    bool
	fronts    map[*front]*turn.Server // every pion server and the front it serves
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]string // TCP and TLS connections (from accept), by transport
	relays    map[*relayConn]struct{}
	perUser   map[string]int // relays open or reserved, per user id
	reserved  int            // relays being opened (counted against MaxAllocations)

	// wg counts the fronts whose read loop runs, the relays open and the TLS handshakes
	// under way; Shutdown waits for it.
	wg sync.WaitGroup
}

// New returns a Server; it serves nothing until a Serve method is called.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.MinPort == 0 || cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("turnd: relay ports %d–%d: want 1 ≤ MinPort ≤ MaxPort", cfg.MinPort, cfg.MaxPort)
	}
	if cfg.MaxMessageSize < minMessageSize || cfg.MaxMessageSize > 65535 {
		return nil, fmt.Errorf("turnd: MaxMessageSize %d: want %d–65535", cfg.MaxMessageSize, minMessageSize)
	}
	for u, p := range cfg.Users {
		if u == "" || p.IsZero() {
			return nil, fmt.Errorf("turnd: user %q: empty username or password", u)
		}
	}
	for _, p := range append(append([]netip.Prefix(nil), cfg.AllowPeers...), cfg.DenyPeers...) {
		if !p.IsValid() {
			return nil, fmt.Errorf("turnd: peer prefix %v is not valid", p)
		}
	}
	for _, ap := range cfg.AllowPeerAddrs {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("turnd: peer address %v is not valid (an IP and a port)", ap)
		}
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		m:         m,
		refused:   make(map[Cause]prometheus.Counter, len(causes)),
		policy:    newPeerPolicy(cfg.AllowPeers, cfg.DenyPeers, cfg.AllowPeerAddrs),
		limiter:   newLogLimiter(cfg.LogInterval),
		pionLog:   pionLoggerFactory{log: cfg.Logger},
		done:      make(chan struct{}),
		fronts:    map[*front]*turn.Server{},
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]string{},
		relays:    map[*relayConn]struct{}{},
		perUser:   map[string]int{},
	}
	for _, c := range causes {
		s.refused[c] = m.refused.WithLabelValues(string(c))
	}
	return s, nil
}

func masked(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Masked()
	}
	return out
}

// Credentials issues time-limited credentials for userID, valid for ttl, from the
// server's shared secret (IssueCredentials).
func (s *Server) Credentials(userID string, ttl time.Duration) (Credentials, error) {
	if ttl <= 0 {
		return Credentials{}, fmt.Errorf("turnd: credentials: ttl %v is not positive", ttl)
	}
	return IssueCredentials(s.cfg.Secret, userID, time.Now().Add(ttl))
}

// Realm returns the server's realm.
func (s *Server) Realm() string { return s.cfg.Realm }

// SharedSecret returns the shared secret of the server's time-limited credentials (zero
// when it has none), for whoever issues them elsewhere: a Call Bridge lists the server it
// embeds, with its secret, in /api/v1/turnServers.
func (s *Server) SharedSecret() secret.Secret { return s.cfg.Secret }

// ServeUDP serves TURN over UDP on pc until Shutdown, then returns ErrServerClosed; it
// returns another error if reading from pc fails. pc is closed by Shutdown.
func (s *Server) ServeUDP(pc net.PacketConn) error {
	local := addrPort(pc.LocalAddr())
	relayIP, bindIP, err := s.relayIPs(local.Addr())
	if err != nil {
		pc.Close()
		return err
	}
	f := s.newFront(TransportUDP, local, relayIP, bindIP)
	dc := &datagramConn{PacketConn: pc, f: f}
	f.out = dc
	if err := s.startFront(f, dc); err != nil {
		return err
	}
	select {
	case <-s.done:
		return ErrServerClosed
	case <-f.ended:
		select {
		case <-s.done:
			return ErrServerClosed
		default:
		}
		return fmt.Errorf("turnd: udp %s: %w", local, f.endErr)
	}
}

// ServeTCP serves TURN over TCP on l until Shutdown, then returns ErrServerClosed. l is
// closed by Shutdown.
func (s *Server) ServeTCP(l net.Listener) error { return s.serveStream(l, TransportTCP) }

// ServeTLS serves TURN over TLS (turns:) on l, with Config.TLS, until Shutdown, then
// returns ErrServerClosed. l is closed by Shutdown.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		l.Close()
		return ErrNoTLS
	}
	return s.serveStream(l, TransportTLS)
}

func (s *Server) serveStream(l net.Listener, transport string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			// As net/http: wait out a shortage of file descriptors, up to a second apart.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("TURN accept failed; retrying", "transport", transport, "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("turnd: %s %s: %w", transport, l.Addr(), err)
		}
		backoff = 0
		if !s.trackConn(c, transport) {
			continue
		}
		if transport == TransportTLS {
			s.wg.Add(1) // counted while tracked, so before Shutdown waits
			go s.handshake(c)
			continue
		}
		s.startStream(c, c, transport)
	}
}

// trackConn records a new connection, or closes it when the server is closed or has
// MaxConnections.
func (s *Server) trackConn(c net.Conn, transport string) bool {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		c.Close()
		return false
	case s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections:
		s.mu.Unlock()
		c.Close()
		s.refuse(CauseConnections, c.RemoteAddr(), "transport", transport)
		return false
	}
	s.conns[c] = transport
	s.mu.Unlock()
	s.m.connections.WithLabelValues(transport).Inc()
	return true
}

func (s *Server) untrackConn(c net.Conn) {
	s.mu.Lock()
	transport, ok := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	if ok {
		s.m.connections.WithLabelValues(transport).Dec()
	}
}

// handshake runs a TLS handshake, bounded by TLSTimeout, and serves the connection.
func (s *Server) handshake(raw net.Conn) {
	defer s.wg.Done()
	c := tls.Server(raw, s.cfg.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.TLSTimeout)
	err := c.HandshakeContext(ctx)
	cancel()
	if err != nil {
		raw.Close()
		s.untrackConn(raw)
		select {
		case <-s.done:
		default:
			s.refuse(CauseTLSHandshake, raw.RemoteAddr(), "err", err)
		}
		return
	}
	s.startStream(raw, c, TransportTLS)
}

// startStream serves one TCP or TLS connection: c is what is read and written, raw the
// connection as tracked.
func (s *Server) startStream(raw, c net.Conn, transport string) {
	local := addrPort(c.LocalAddr())
	relayIP, bindIP, err := s.relayIPs(local.Addr())
	if err != nil {
		s.log.Error("TURN connection refused", "client", c.RemoteAddr(), "err", err)
		raw.Close()
		s.untrackConn(raw)
		return
	}
	f := s.newFront(transport, local, relayIP, bindIP)
	sc := newStreamConn(s, f, raw, c)
	f.out = sc
	_ = s.startFront(f, sc) // on failure the connection is closed and untracked
}

// relayIPs returns the address advertised for relays of a listener on local, and the one
// they are bound to.
func (s *Server) relayIPs(local netip.Addr) (relay, bind netip.Addr, err error) {
	local = local.Unmap()
	relay, bind = s.cfg.RelayIP.Unmap(), s.cfg.RelayBindIP.Unmap()
	if !relay.IsValid() {
		if !local.IsValid() || local.IsUnspecified() {
			return relay, bind, ErrNoRelayIP
		}
		relay = local
	}
	if !bind.IsValid() {
		switch {
		case local.IsValid() && !local.IsUnspecified():
			bind = local
		case relay.Is4():
			bind = netip.IPv4Unspecified()
		default:
			bind = netip.IPv6Unspecified()
		}
	}
	return relay, bind, nil
}

// startFront starts the pion server of f, reading from pc.
func (s *Server) startFront(f *front, pc net.PacketConn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.Close()
		return ErrServerClosed
	}
	s.wg.Add(1) // done by f.end, when the read loop has ended
	s.mu.Unlock()
	ps, err := turn.NewServer(turn.ServerConfig{
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: f,
			PermissionHandler:     f.permit,
		}},
		LoggerFactory: s.pionLog,
		Realm:         s.cfg.Realm,
		AuthHandler:   f.auth,
		QuotaHandler:  f.quota,
		EventHandler: turn.EventHandler{
			OnAuth:              f.onAuth,
			OnAllocationCreated: f.onAllocationCreated,
		},
		InboundMTU: s.cfg.MaxMessageSize + 1,
	})
	if err != nil {
		pc.Close()
		f.end(err)
		return fmt.Errorf("turnd: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ps.Close()
		return ErrServerClosed
	}
	s.fronts[f] = ps
	s.mu.Unlock()
	return nil
}

// frontEnded forgets f once its read loop has ended.
func (s *Server) frontEnded(f *front) {
	s.mu.Lock()
	delete(s.fronts, f)
	s.mu.Unlock()
}

// Shutdown stops the server: it closes the listeners, the client connections, the UDP
// sockets and every allocation, and returns once the read loops have ended and the relay
// sockets are closed. If ctx ends first, it closes the relay sockets still open and
// returns the cause.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	listeners := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		listeners = append(listeners, l)
	}
	pions := make([]*turn.Server, 0, len(s.fronts))
	for _, ps := range s.fronts {
		pions = append(pions, ps)
	}
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, l := range listeners {
		l.Close()
	}
	for _, ps := range pions {
		ps.Close() // closes its PacketConn; pion then closes its allocations
	}
	for _, c := range conns {
		c.Close() // those still in a TLS handshake
	}
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	relays := make([]*relayConn, 0, len(s.relays))
	for r := range s.relays {
		relays = append(relays, r)
	}
	fronts := len(s.fronts)
	s.mu.Unlock()
	for _, r := range relays {
		r.Close()
	}
	return fmt.Errorf("turnd: shutdown: %d read loops still running, %d relays closed by force: %w",
		fronts, len(relays), context.Cause(ctx))
}

// Traffic is what one allocation relayed in one direction.
type Traffic struct {
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	// Dropped counts datagrams over the bandwidth cap.
	Dropped uint64 `json:"dropped"`
}

// Allocation describes a current allocation.
type Allocation struct {
	// Username is the TURN username, UserID the part quotas go by (of a time-limited
	// username, what follows the expiry; of a static user, its username).
	Username string `json:"username"`
	UserID   string `json:"userId"`
	// Expires is the credential's expiry (zero for a static user): the allocation cannot be
	// refreshed after it.
	Expires time.Time `json:"expires,omitzero"`
	// Transport is how the client reaches the server: udp, tcp or tls.
	Transport string `json:"transport"`
	// Client is the client's address as the server sees it, Server the server's address it
	// reached, Relayed the relayed transport address.
	Client  netip.AddrPort `json:"client"`
	Server  netip.AddrPort `json:"server"`
	Relayed netip.AddrPort `json:"relayed"`
	Since   time.Time      `json:"since"`
	// ToPeer is what the client sent to its peers, FromPeer what arrived at the relayed
	// address (before pion drops what no permission lets through).
	ToPeer   Traffic `json:"toPeer"`
	FromPeer Traffic `json:"fromPeer"`
}

// Allocations returns the current allocations, oldest first.
func (s *Server) Allocations() []Allocation {
	s.mu.Lock()
	out := make([]Allocation, 0, len(s.relays))
	for r := range s.relays {
		if r.info != nil {
			out = append(out, r.snapshot())
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Relayed.String() < out[j].Relayed.String()
	})
	return out
}

// refuse counts a refusal and logs it, once per cause per LogInterval.
func (s *Server) refuse(c Cause, client net.Addr, attrs ...any) {
	s.refused[c].Inc()
	ok, held := s.limiter.allow(c, time.Now())
	if !ok {
		return
	}
	args := append([]any{"cause", string(c)}, attrs...)
	if client != nil {
		args = append(args, "client", client.String())
	}
	if held > 0 {
		args = append(args, "not_logged_since_last", held)
	}
	s.log.Log(context.Background(), c.level(), "TURN refused", args...)
}

// addrPort converts a listener's or connection's address.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// ICEURLs returns the URLs of a TURN server at host, for an RTCIceServer: turn: over UDP and
// TCP and turns: over TLS, leaving out a port that is 0.
func ICEURLs(host string, udpPort, tcpPort, tlsPort int) []string {
	var out []string
	hp := func(p int) string { return net.JoinHostPort(host, fmt.Sprint(p)) }
	if udpPort > 0 {
		out = append(out, "turn:"+hp(udpPort)+"?transport=udp")
	}
	if tcpPort > 0 {
		out = append(out, "turn:"+hp(tcpPort)+"?transport=tcp")
	}
	if tlsPort > 0 {
		out = append(out, "turns:"+hp(tlsPort)+"?transport=tcp")
	}
	return out
}
