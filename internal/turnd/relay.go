package turnd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
)

// maxPortTries bounds the ports tried for one relay socket.
const maxPortTries = 64

// errRelay is what pion gets when no relay socket is opened; pion answers 508.
var errRelay = errors.New("turnd: no relay socket")

// openRelay opens a relay socket for an Allocate that f is handling, within the quotas.
// pion asked QuotaHandler first; the per-user bound is checked again here, with the
// reservation, so that concurrent Allocates of one user (on several connections) cannot
// pass it together: one that loses the race gets 508.
func (s *Server) openRelay(f *front, conf turn.AllocateListenerConfig) (*relayConn, error) {
	refuse := func(c Cause, attrs ...any) (*relayConn, error) {
		f.refuse(c, nil, append(attrs, "user", conf.UserID)...)
		return nil, fmt.Errorf("%w: %s", errRelay, c)
	}
	v4 := conf.Network == "udp4"
	if v4 != f.relayIP.Is4() || v4 != f.bindIP.Is4() {
		return refuse(CauseOtherError, "network", conf.Network, "relay_ip", f.relayIP)
	}
	if conf.RequestedPort != 0 && (conf.RequestedPort < int(s.cfg.MinPort) || conf.RequestedPort > int(s.cfg.MaxPort)) {
		return refuse(CauseNoPort, "requested_port", conf.RequestedPort)
	}
	// Reserve.
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return refuse(CauseCapacity, "why", "shutting down")
	case s.cfg.MaxAllocations >= 0 && len(s.relays)+s.reserved >= s.cfg.MaxAllocations:
		s.mu.Unlock()
		return refuse(CauseQuotaTotal, "allocations", s.cfg.MaxAllocations)
	case conf.UserID != "" && s.cfg.MaxAllocationsPerUser >= 0 && s.perUser[conf.UserID] >= s.cfg.MaxAllocationsPerUser:
		s.mu.Unlock()
		return refuse(CauseQuotaUser)
	}
	s.reserved++
	s.perUser[conf.UserID]++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		s.reserved--
		s.decUser(conf.UserID)
		s.mu.Unlock()
	}

	pc, err := s.bindRelay(conf, f.bindIP)
	if err != nil {
		release()
		return refuse(CauseNoPort, "err", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	r := &relayConn{
		PacketConn: pc,
		s:          s,
		addr:       net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.relayIP, uint16(port))),
		userID:     conf.UserID,
		username:   f.username,
	}
	if expires, _, ok := parseRESTUsername(r.username); ok && s.cfg.Users[r.username].IsZero() {
		r.expires = expires
	}
	if s.cfg.Bandwidth > 0 {
		r.toPeer.bucket = newBucket(s.cfg.Bandwidth, 2*s.cfg.MaxMessageSize)
		r.fromPeer.bucket = newBucket(s.cfg.Bandwidth, 2*s.cfg.MaxMessageSize)
	}
	s.mu.Lock()
	s.reserved--
	if s.closed {
		s.decUser(conf.UserID)
		s.mu.Unlock()
		pc.Close()
		return refuse(CauseCapacity, "why", "shutting down")
	}
	s.relays[r] = struct{}{}
	s.wg.Add(1) // done by r.Close; the front counted in wg makes this safe during Shutdown
	s.mu.Unlock()
	return r, nil
}

func (s *Server) decUser(id string) {
	if s.perUser[id]--; s.perUser[id] <= 0 {
		delete(s.perUser, id)
	}
}

// bindRelay binds a UDP socket on a port of the range: the one requested, or the first
// free one from a random start, trying at most maxPortTries.
func (s *Server) bindRelay(conf turn.AllocateListenerConfig, bind netip.Addr) (net.PacketConn, error) {
	try := func(port int) (net.PacketConn, error) {
		return net.ListenUDP(conf.Network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bind, uint16(port))))
	}
	if conf.RequestedPort != 0 {
		return try(conf.RequestedPort)
	}
	lo, size := int(s.cfg.MinPort), int(s.cfg.MaxPort)-int(s.cfg.MinPort)+1
	start := rand.IntN(size)
	var err error
	for i := range min(size, maxPortTries) {
		var pc net.PacketConn
		if pc, err = try(lo + (start+i)%size); err == nil {
			return pc, nil
		}
	}
	return nil, fmt.Errorf("%d ports tried in %d–%d: %w", min(size, maxPortTries), s.cfg.MinPort, s.cfg.MaxPort, err)
}

// allocInfo is who an allocation is for, attached when pion reports it created.
type allocInfo struct {
	transport string
	client    netip.AddrPort
	server    netip.AddrPort
	userID    string
	since     time.Time
}

// attach records r as an allocation.
func (s *Server) attach(r *relayConn, info *allocInfo) {
	s.mu.Lock()
	_, open := s.relays[r]
	if open {
		r.info = info
	}
	s.mu.Unlock()
	if !open {
		return
	}
	s.m.allocations.WithLabelValues(info.transport).Inc()
	s.m.created.WithLabelValues(info.transport).Inc()
	s.log.Info("TURN allocation created", "user", info.userID, "client", info.client, "transport", info.transport, "relayed", r.addr)
}

// relayConn is a relay socket: it counts what it relays each way, drops what exceeds the
// bandwidth cap, and tells the server when pion closes it (the allocation's end).
type relayConn struct {
	net.PacketConn
	s        *Server
	addr     *net.UDPAddr // advertised
	userID   string
	username string
	expires  time.Time

	toPeer, fromPeer direction
	info             *allocInfo // guarded by s.mu
	closeOnce        sync.Once
}

// direction counts one direction of a relay.
type direction struct {
	bytes, packets, dropped atomic.Uint64
	bucket                  *bucket // nil: no cap
}

// ReadFrom returns the next datagram a peer sent to the relayed address within the cap.
func (r *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	m := r.s.m
	for {
		n, addr, err := r.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if b := r.fromPeer.bucket; b != nil && !b.take(n, time.Now()) {
			r.fromPeer.dropped.Add(1)
			m.droppedFrom.Inc()
			continue
		}
		r.fromPeer.bytes.Add(uint64(n))
		r.fromPeer.packets.Add(1)
		m.bytesFrom.Add(float64(n))
		m.packetsFrom.Inc()
		return n, addr, nil
	}
}

// WriteTo sends a client's datagram to a peer, or drops it over the cap or to a port the
// peer policy does not allow.
func (r *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	m := r.s.m
	if r.s.policy.exact != nil {
		if ua, ok := addr.(*net.UDPAddr); ok && !r.s.policy.portAllowed(ua.AddrPort()) {
			r.toPeer.dropped.Add(1)
			r.s.refuse(CausePeerPort, nil, "peer", ua.String(), "user", r.userID)
			return len(p), nil
		}
	}
	if b := r.toPeer.bucket; b != nil && !b.take(len(p), time.Now()) {
		r.toPeer.dropped.Add(1)
		m.droppedTo.Inc()
		return len(p), nil
	}
	n, err := r.PacketConn.WriteTo(p, addr)
	if err == nil {
		r.toPeer.bytes.Add(uint64(n))
		r.toPeer.packets.Add(1)
		m.bytesTo.Add(float64(n))
		m.packetsTo.Inc()
	}
	return n, err
}

// Close closes the socket and ends the allocation's record. It returns nil, so that pion,
// which stops closing allocations at the first error, closes them all.
func (r *relayConn) Close() error {
	r.closeOnce.Do(func() {
		r.PacketConn.Close()
		s := r.s
		s.mu.Lock()
		delete(s.relays, r)
		s.decUser(r.userID)
		info := r.info
		var a Allocation
		if info != nil {
			a = r.snapshot()
		}
		s.mu.Unlock()
		if info != nil {
			s.m.allocations.WithLabelValues(info.transport).Dec()
			s.log.Info("TURN allocation ended", "user", a.UserID, "client", a.Client, "relayed", a.Relayed,
				"duration", time.Since(a.Since).Round(time.Second),
				"bytes_to_peer", a.ToPeer.Bytes, "bytes_from_peer", a.FromPeer.Bytes,
				"dropped_to_peer", a.ToPeer.Dropped, "dropped_from_peer", a.FromPeer.Dropped)
		}
		s.wg.Done()
	})
	return nil
}

// snapshot describes the allocation; s.mu is held.
func (r *relayConn) snapshot() Allocation {
	i := r.info
	t := func(d *direction) Traffic {
		return Traffic{Bytes: d.bytes.Load(), Packets: d.packets.Load(), Dropped: d.dropped.Load()}
	}
	return Allocation{
		Username:  r.username,
		UserID:    i.userID,
		Expires:   r.expires,
		Transport: i.transport,
		Client:    i.client,
		Server:    i.server,
		Relayed:   r.addr.AddrPort(),
		Since:     i.since,
		ToPeer:    t(&r.toPeer),
		FromPeer:  t(&r.fromPeer),
	}
}

// bucket is a token bucket of bytes: rate per second, one second's worth of burst (at
// least minBurst).
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate int64, minBurst int) *bucket {
	burst := max(float64(rate), float64(minBurst))
	return &bucket{rate: float64(rate), burst: burst, tokens: burst}
}

// take reports whether n bytes fit at now, and takes them if so.
func (b *bucket) take(n int, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
