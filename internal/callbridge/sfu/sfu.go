package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v4"
)

// tick is the period of the housekeeping goroutine: bit rates, the active speaker, layer
// choice.
const tick = 200 * time.Millisecond

// SFU is a selective forwarding unit: rooms of participants, each with one PeerConnection
// over which it publishes its tracks and receives everyone else's. Its methods are safe for
// concurrent use.
type SFU struct {
	cfg  Config
	log  *slog.Logger
	se   webrtc.SettingEngine
	udp  net.PacketConn
	tcp  net.Listener
	umux ice.UDPMux
	tmux ice.TCPMux
	m    *metrics
	ids  atomic.Uint64
	done chan struct{} // closed by Shutdown: ends housekeeping
	hk   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	rooms  map[string]*room

	wgMu     sync.Mutex // a leaf: guards stopping and wg.Add
	stopping bool
	wg       sync.WaitGroup // participants' asynchronous closes

	counters counters
}

// New listens on the configured UDP and TCP addresses and returns an SFU ready to Join.
func New(cfg Config) (*SFU, error) {
	cfg.setDefaults()
	s := &SFU{cfg: cfg, log: cfg.Logger.With("component", "sfu"), rooms: map[string]*room{}, done: make(chan struct{})}
	udpAddr, err := net.ResolveUDPAddr("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: UDP address %q: %w", ErrBadArgument, cfg.UDPAddr, err)
	}
	udp, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("sfu: listen UDP: %w", err)
	}
	s.udp = udp
	// Every participant's media goes through this one socket: at the kernel's default
	// buffers (212 KiB) a meeting of 25 filled the send buffer, writes queued on the
	// socket's lock, and media fell seconds behind. Ask for more (the kernel caps it at
	// net.core.{w,r}mem_max; raise those for larger meetings, see docs/operations.md).
	_ = udp.SetWriteBuffer(udpBufferBytes)
	_ = udp.SetReadBuffer(udpBufferBytes)
	logs := pionLogs{log: cfg.Logger}
	s.umux = webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), udp)
	types := networkTypes(udp.LocalAddr().(*net.UDPAddr).IP, "udp")
	if cfg.TCPAddr != "off" {
		tcp, err := net.Listen("tcp", cfg.TCPAddr)
		if err != nil {
			s.umux.Close()
			return nil, fmt.Errorf("sfu: listen TCP: %w", err)
		}
		s.tcp = tcp
		s.tmux = webrtc.NewICETCPMux(logs.NewLogger("tcpmux"), tcp, 64)
		types = append(types, networkTypes(tcp.Addr().(*net.TCPAddr).IP, "tcp")...)
	}
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetLite(true)
	// The participant, not pion, closes the PeerConnection when DTLS closes: pion's own
	// close would race with GetStats (Participant.statsMu).
	se.DisableCloseByDTLS(true)
	se.SetICEUDPMux(s.umux)
	if s.tmux != nil {
		se.SetICETCPMux(s.tmux)
	}
	se.SetNetworkTypes(types)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if ip := udp.LocalAddr().(*net.UDPAddr).IP; ip.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	if len(cfg.PublicIPs) > 0 {
		for _, a := range cfg.PublicIPs {
			if _, err := netip.ParseAddr(a); err != nil {
				s.closeSockets()
				return nil, fmt.Errorf("%w: public IP %q", ErrBadArgument, a)
			}
		}
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: cfg.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			s.closeSockets()
			return nil, fmt.Errorf("sfu: public IPs: %w", err)
		}
	}
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	s.se = se
	s.m = newMetrics(cfg.Metrics, s)
	s.hk.Add(1)
	go s.housekeeping()
	return s, nil
}

func networkTypes(ip net.IP, proto string) []webrtc.NetworkType {
	v4, v6 := webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6
	if proto == "tcp" {
		v4, v6 = webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6
	}
	switch {
	case ip == nil || ip.IsUnspecified():
		return []webrtc.NetworkType{v4, v6}
	case ip.To4() != nil:
		return []webrtc.NetworkType{v4}
	}
	return []webrtc.NetworkType{v6}
}

func (s *SFU) closeSockets() {
	if s.umux != nil {
		s.umux.Close()
	}
	s.udp.Close()
	if s.tmux != nil {
		s.tmux.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
}

// UDPAddr is the address media arrives on (useful with port 0).
func (s *SFU) UDPAddr() *net.UDPAddr { return s.udp.LocalAddr().(*net.UDPAddr) }

// TCPAddr is the ICE-TCP address, nil when ICE-TCP is off.
func (s *SFU) TCPAddr() *net.TCPAddr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr().(*net.TCPAddr)
}

// ConnectTimeout is how long a participant has to connect (Config.ConnectTimeout).
func (s *SFU) ConnectTimeout() time.Duration { return s.cfg.ConnectTimeout }

// ICEServers returns Config.ICEServers, for the caller to give to clients.
func (s *SFU) ICEServers() []ICEServer { return append([]ICEServer(nil), s.cfg.ICEServers...) }

// Shutdown removes every participant (their connections are closed, they get no further
// messages), closes the sockets and waits for every goroutine the SFU started. It returns
// ctx's error if ctx ends first.
func (s *SFU) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var ps []*Participant
	for _, r := range s.rooms {
		r.mu.Lock()
		for _, p := range r.participants {
			ps = append(ps, p)
		}
		r.mu.Unlock()
	}
	s.mu.Unlock()
	s.wgMu.Lock()
	s.stopping = true
	s.wgMu.Unlock()
	close(s.done)
	for _, p := range ps {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.close(ErrClosed)
		}()
	}
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.hk.Wait()
		s.closeSockets()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sfu: shutdown: %w", ctx.Err())
	}
}

// goClose removes p on a goroutine of its own (for callers that run on pion's goroutines,
// which p's close waits for). Nothing is started once Shutdown has begun: it closes p.
func (s *SFU) goClose(p *Participant, reason error) {
	s.wgMu.Lock()
	defer s.wgMu.Unlock()
	if s.stopping {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.close(reason)
	}()
}

func (s *SFU) newID(prefix string) string {
	return prefix + strconv.FormatUint(s.ids.Add(1), 36)
}

// Join adds participant to room (creating the room) and returns it. Nothing is sent until
// the client's first offer (HandleDescription); the participant is removed if its
// connection is not up within Config.ConnectTimeout.
func (s *SFU) Join(roomID, participantID string, sig Signal) (*Participant, error) {
	if roomID == "" || participantID == "" || sig == nil {
		return nil, fmt.Errorf("%w: Join needs a room, a participant id and a Signal", ErrBadArgument)
	}
	pp, err := s.newPeerConnection()
	if err != nil {
		return nil, err
	}
	pc := pp.pc
	p := newParticipant(s, participantID, sig, pp)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.Close()
		return nil, ErrClosed
	}
	r := s.rooms[roomID]
	if r == nil {
		r = newRoom(s, roomID)
		s.rooms[roomID] = r
	}
	r.mu.Lock()
	if _, dup := r.participants[participantID]; dup {
		r.mu.Unlock()
		s.mu.Unlock()
		pc.Close()
		return nil, fmt.Errorf("%w: %q in room %q", ErrDuplicateParticipant, participantID, roomID)
	}
	p.room = r
	p.start()
	r.join(p)
	r.mu.Unlock()
	s.mu.Unlock()
	s.log.Info("participant joined", "room", roomID, "participant", participantID)
	return p, nil
}

// Participant returns the participant with that id in that room.
func (s *SFU) Participant(roomID, participantID string) (*Participant, error) {
	s.mu.Lock()
	r := s.rooms[roomID]
	s.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		p := r.participants[participantID]
		r.mu.Unlock()
		if p != nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %q in room %q", ErrUnknownParticipant, participantID, roomID)
}

// SetMute is the administrator's mute: while set, the participant's tracks of that kind
// are not forwarded, whatever the participant does. The room gets an EventMute.
func (s *SFU) SetMute(roomID, participantID string, kind Kind, muted bool) error {
	p, err := s.Participant(roomID, participantID)
	if err != nil {
		return err
	}
	return p.setMute(kind, muted, true)
}

// SetDeliveryMute stops (or resumes) forwarding a kind to one participant: see
// Participant.SetDeliveryMute.
func (s *SFU) SetDeliveryMute(roomID, participantID string, kind Kind, muted bool) error {
	p, err := s.Participant(roomID, participantID)
	if err != nil {
		return err
	}
	return p.SetDeliveryMute(kind, muted)
}

// Rooms returns the ids of the rooms that have participants.
func (s *SFU) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.rooms))
	for id := range s.rooms {
		out = append(out, id)
	}
	return out
}

func (s *SFU) removeRoomIfEmpty(r *room) {
	s.mu.Lock()
	r.mu.Lock()
	if len(r.participants) == 0 && s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
	r.mu.Unlock()
	s.mu.Unlock()
}

// udpBufferBytes is the send and receive buffer asked for the media socket.
const udpBufferBytes = 8 << 20

// nackHistory is how many packets of each outgoing video stream are kept to answer NACKs.
const nackHistory = 256

// peer is a participant's PeerConnection and the per-connection state of its interceptors.
type peer struct {
	pc   *webrtc.PeerConnection
	bwe  cc.BandwidthEstimator // for what the participant receives
	nack *nackBudget           // the participant's retransmission budget
}

// newPeerConnection builds a PeerConnection with its own interceptors: NACK generator and
// responder (with RTX) within the participant's retransmission budget, RTCP sender and
// receiver reports, transport-wide congestion control feedback for what the participant
// sends, and for what it receives the transport-cc header extension with a send-side
// bandwidth estimator (GCC).
func (s *SFU) newPeerConnection() (peer, error) {
	me, err := newMediaEngine()
	if err != nil {
		return peer{}, fmt.Errorf("sfu: media engine: %w", err)
	}
	reg := &interceptor.Registry{}
	// The retransmission budget (nackbudget.go): the filter is registered before pion's NACK
	// responder, so that it reads the subscriber's NACKs first and trims them; the counter
	// after it, so that it counts the media written, not the responder's resends (which go
	// to the writer the responder was bound with, nearer the wire).
	nb := newNACKBudget()
	reg.Add(fixedFactory{&nackFilter{b: nb}})
	// NACKs answered from the last nackHistory packets of each stream sent: 1024 (pion's
	// default) kept ~1.5 MB per video subscription, ten times Janus's memory; 256 is still
	// over a second and a half of the high layer, far more than a retransmission is worth.
	if err := webrtc.ConfigureNackWithOptions(me, reg, nil, nack.ResponderSize(nackHistory)); err != nil {
		return peer{}, fmt.Errorf("sfu: nack: %w", err)
	}
	reg.Add(fixedFactory{&nackCounter{b: nb}})
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return peer{}, fmt.Errorf("sfu: reports: %w", err)
	}
	if err := webrtc.ConfigureTWCCSender(me, reg); err != nil {
		return peer{}, fmt.Errorf("sfu: twcc: %w", err)
	}
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(s.cfg.InitialBitrate),
			gcc.SendSideBWEMinBitrate(50_000), gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	})
	if err != nil {
		return peer{}, fmt.Errorf("sfu: congestion control: %w", err)
	}
	var bwe cc.BandwidthEstimator
	ccf.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { bwe = e })
	reg.Add(ccf)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, reg); err != nil {
		return peer{}, fmt.Errorf("sfu: twcc extension: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s.se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return peer{}, fmt.Errorf("sfu: peer connection: %w", err)
	}
	return peer{pc: pc, bwe: bwe, nack: nb}, nil
}

// room is a meeting: its participants by id.
type room struct {
	s  *SFU
	id string

	mu           sync.Mutex
	participants map[string]*Participant
	speaker      speakerState // housekeeping only
}

func newRoom(s *SFU, id string) *room {
	return &room{s: s, id: id, participants: map[string]*Participant{}}
}

// join adds p (r.mu held): p is told of everyone and their tracks and subscribed to them,
// everyone else is told of p.
func (r *room) join(p *Participant) {
	now := time.Now()
	for _, q := range r.participants {
		q.enqueueEvent(Event{Type: EventParticipantJoined, Room: r.id, Participant: p.id, Time: now})
		p.enqueueEvent(Event{Type: EventParticipantJoined, Room: r.id, Participant: q.id, Time: now})
		q.mu.Lock()
		self, admin := q.selfMute, q.adminMute
		tracks := make([]*publishedTrack, 0, len(q.published))
		for _, t := range q.published {
			tracks = append(tracks, t)
		}
		q.mu.Unlock()
		for k, kind := range []Kind{Audio, Video} {
			if self[k] || admin[k] {
				p.enqueueEvent(Event{Type: EventMute, Room: r.id, Participant: q.id, Kind: kind, SelfMuted: self[k], AdminMuted: admin[k], Time: now})
			}
		}
		for _, t := range tracks {
			p.enqueueEvent(Event{Type: EventTrackPublished, Room: r.id, Participant: q.id, Track: t.info(), Time: now})
			p.subscribe(t)
		}
	}
	r.participants[p.id] = p
	r.s.counters.participants.Add(1)
}

// broadcast queues ev for every participant (r.mu held).
func (r *room) broadcast(ev Event) {
	ev.Room = r.id
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	for _, q := range r.participants {
		q.enqueueEvent(ev)
	}
}

// publish announces t and subscribes everyone else to it.
func (r *room) publish(t *publishedTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.participants[t.owner.id] != t.owner {
		return
	}
	r.broadcast(Event{Type: EventTrackPublished, Participant: t.owner.id, Track: t.info()})
	for _, q := range r.participants {
		if q != t.owner {
			q.subscribe(t)
		}
	}
}

// unpublish removes t from every subscriber.
func (r *room) unpublish(t *publishedTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, dt := range t.subscribers() {
		dt.sub.unsubscribe(dt)
	}
	r.broadcast(Event{Type: EventTrackUnpublished, Participant: t.owner.id, Track: t.info()})
}

// leave removes p from the room and unsubscribes it from everything.
func (r *room) leave(p *Participant, reason error) {
	r.mu.Lock()
	if r.participants[p.id] != p {
		r.mu.Unlock()
		return
	}
	delete(r.participants, p.id)
	r.s.counters.participants.Add(-1)
	p.mu.Lock()
	subs := make([]*downTrack, 0, len(p.subs))
	for _, dt := range p.subs {
		subs = append(subs, dt)
	}
	pubs := make([]*publishedTrack, 0, len(p.published))
	for _, t := range p.published {
		pubs = append(pubs, t)
	}
	p.mu.Unlock()
	for _, dt := range subs {
		dt.pt.removeSubscriber(dt)
	}
	for _, t := range pubs {
		for _, dt := range t.subscribers() {
			dt.sub.unsubscribe(dt)
		}
		r.broadcast(Event{Type: EventTrackUnpublished, Participant: p.id, Track: t.info()})
	}
	why := "left"
	if reason != nil {
		why = reason.Error()
	}
	r.broadcast(Event{Type: EventParticipantLeft, Participant: p.id, Reason: why})
	r.mu.Unlock()
	r.s.removeRoomIfEmpty(r)
}

func (r *room) snapshot() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

// housekeeping runs every tick until Shutdown: bit rates, active speakers, layer choice.
func (s *SFU) housekeeping() {
	defer s.hk.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			dt := now.Sub(last).Seconds()
			last = now
			s.mu.Lock()
			rooms := make([]*room, 0, len(s.rooms))
			for _, r := range s.rooms {
				rooms = append(rooms, r)
			}
			s.mu.Unlock()
			for _, r := range rooms {
				ps := r.snapshot()
				for _, p := range ps {
					p.measure(dt)
				}
				r.detectSpeaker(ps, now)
				for _, p := range ps {
					p.chooseLayers()
				}
			}
			s.counters.measure(dt)
		}
	}
}
