// Package sfutest is a WebRTC client for tests of the SFU and of what is built on it (the
// Call Bridge, load tools): a pion PeerConnection that publishes synthetic Opus and
// VP8/H.264 streams (simulcast if asked) whose frames are a function of (source, layer,
// frame number), stamped with their send time, and checks every frame it receives against
// that function.
//
// The client's signalling is a Signaller: New joins a room of an in-process SFU through the
// sfu API (the test is the signalling channel); NewClient and Start take any other
// Signaller (the Call Bridge's XMPP signalling, another server's API), which delivers the
// server's messages through the client's Description and Event methods.
package sfutest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"confab.dev/confab/internal/callbridge/sfu"
)

const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Layer is one simulcast layer (or the only one) of a video track.
type Layer struct {
	RID           string // "" without simulcast
	Width, Height int
	FrameSize     int // bytes per frame (default 300)
	KeyFrameSize  int // bytes per key frame (default FrameSize)
}

// VideoTrack describes a video track to publish.
type VideoTrack struct {
	Codec    Codec  // VP8 (default) or H264
	StreamID string // the msid stream id; "screen..." makes it a screen share
	Layers   []Layer
	FPS      int // default 30
	KeyEvery int // a key frame every KeyEvery frames (default 60), and on PLI
}

// Signaller carries the client's messages to the server.
type Signaller interface {
	// SendDescription sends the client's offer or answer. An offer that crossed a server
	// offer is refused with an error wrapping sfu.ErrGlare: the server's offer is on its
	// way, and the client offers again after answering it.
	SendDescription(sfu.Description) error
	// SendCandidate trickles one of the client's ICE candidates.
	SendCandidate(sfu.Candidate) error
	// Leave ends the client's media with the server.
	Leave() error
}

// participantSignaller is the in-process Signaller: an *sfu.Participant.
type participantSignaller struct{ p *sfu.Participant }

func (s participantSignaller) SendDescription(d sfu.Description) error {
	return s.p.HandleDescription(d)
}
func (s participantSignaller) SendCandidate(c sfu.Candidate) error { return s.p.AddCandidate(c) }
func (s participantSignaller) Leave() error                        { return s.p.Leave() }

// Frame is a complete frame a client received, for Options.OnFrame.
type RecvFrame struct {
	Track    string // the track's id (msid track id)
	Kind     sfu.Kind
	ID       FrameID
	Verified bool      // every byte matched the generator
	First    time.Time // when the packet carrying the frame's header arrived
	Late     bool      // completed after a newer frame (by a retransmission)
}

// Options configure a Client.
type Options struct {
	Audio bool        // publish Opus (with the audio level extension)
	Video *VideoTrack // publish a camera
	// Network is "udp" (default) or "tcp" (ICE-TCP).
	Network string
	// RewriteSDP rewrites the server's descriptions before use (to point the client at a
	// relay).
	RewriteSDP func(string) string
	// Log receives pion's logs (default: errors only, to the test log).
	Log logging.LoggerFactory
	// AnswerOnly makes a client that never offers: the server offers (a subscription to
	// another server's room). It adds no receive-only transceivers of its own.
	AnswerOnly bool
	// OnFrame, when set, is called for every complete frame received, from the track's
	// reader goroutine, with the client's lock held: it must be quick.
	OnFrame func(RecvFrame)
	// OnRepair, when set, is called when a packet missing from a received track's sequence
	// arrives (by retransmission), with the time since its gap was seen; same rules as
	// OnFrame.
	OnRepair func(time.Duration)
	// SettingEngine, when set, adjusts pion's settings after the client's own.
	SettingEngine func(*webrtc.SettingEngine)
	// UDPConn, when set, is the one UDP socket the client's ICE uses (a mux): its port is
	// known (a test can shape or drop what goes to it) and it may have been opened in
	// another network namespace. The client closes it.
	UDPConn net.PacketConn
}

// Client is a test participant.
type Client struct {
	tb   testing.TB // nil outside tests
	Name string
	Src  uint32           // the source id in the frames it publishes
	P    *sfu.Participant // the in-process participant (New), else nil
	sig  Signaller
	pc   *webrtc.PeerConnection
	mux  ice.UDPMux
	o    Options

	sent      atomic.Int64
	nacks     atomic.Int64 // NACK packets received about what the client sends
	writeErrs atomic.Int64
	start     time.Time

	negMu      sync.Mutex
	reoffer    bool
	iceRestart bool

	candMu    sync.Mutex
	described bool            // a description was sent: candidates go out as they come
	held      []sfu.Candidate // candidates gathered before that

	qmu   sync.Mutex
	queue []any // sfu.Description or sfu.Event
	qwake chan struct{}
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu        sync.Mutex
	changed   chan struct{}
	events    []sfu.Event
	tracks    map[string]*RecvTrack
	pubs      map[string]*pubTrack
	connected bool
	errs      []error
	firstVid  time.Time // the first verified video frame
}

// RecvTrack is what a client received on one track.
type RecvTrack struct {
	ID, StreamID string
	Kind         sfu.Kind
	Codec        Codec
	SSRC         uint32
	Packets      int
	Bytes        int // RTP bytes (headers and payloads, decrypted)
	RTX          int // packets that came as retransmissions
	Gaps         int // sequence numbers that were not the previous one + 1 (not counting RTX)
	Frames       int // complete frames
	Verified     int // of which the bytes matched the generator
	Keyframes    int
	Late         int   // frames completed after a newer one (by retransmission)
	Layer        uint8 // of the last frame
	Switches     []Switch
	Sources      map[uint32]bool
	First, Last  FrameID
	Ended        bool
	Missing      int    // sequence numbers skipped and never received (so far)
	Repaired     int    // sequence numbers skipped and received later
	lastSeq      uint16 // the last packet that was not a retransmission
	maxSeq       uint16 // the newest sequence number seen
	havePrev     bool
	haveMax      bool
	asm          map[uint32]*assembly
	gaps         map[uint16]time.Time // missing sequence numbers, by when their gap was seen
}

// Switch is a change of simulcast layer seen by a subscriber.
type Switch struct {
	From, To uint8
	Key      bool // the first frame of the new layer was a key frame
}

type assembly struct {
	pkts       map[uint16][]byte
	start, end int
	first      time.Time // arrival of the packet with the frame header
}

// New makes a client, joins room of the in-process SFU s as name and sends its first
// offer. The client is closed at the test's end.
func New(tb testing.TB, s *sfu.SFU, room, name string, o Options) *Client {
	tb.Helper()
	c, err := NewClient(name, o)
	if err != nil {
		tb.Fatalf("client %s: %v", name, err)
	}
	c.tb = tb
	p, err := s.Join(room, name, c)
	if err != nil {
		c.Close()
		tb.Fatalf("client %s: join: %v", name, err)
	}
	c.P = p
	tb.Cleanup(c.Close)
	if err := c.Start(participantSignaller{p}); err != nil {
		tb.Fatalf("client %s: offer: %v", name, err)
	}
	return c
}

// NewClient makes a client that publishes what o says (its streams start at once; what
// is written before the connection is up is lost, as a browser's would be) and waits for
// Start. The caller closes it.
func NewClient(name string, o Options) (*Client, error) {
	h := fnv.New32a()
	h.Write([]byte(name))
	c := &Client{Name: name, Src: h.Sum32(), o: o, qwake: make(chan struct{}, 1), quit: make(chan struct{}),
		changed: make(chan struct{}), tracks: map[string]*RecvTrack{}, pubs: map[string]*pubTrack{}, start: time.Now()}
	pc, err := c.newPC()
	if err != nil {
		return nil, err
	}
	c.pc = pc
	if o.Audio {
		if err := c.addTrack(webrtc.RTPCodecTypeAudio, &VideoTrack{Codec: Opus, StreamID: "cam-" + name, Layers: []Layer{{FrameSize: 60}}, FPS: 50}); err != nil {
			c.Close()
			return nil, fmt.Errorf("audio: %w", err)
		}
	}
	if o.Video != nil {
		if err := c.addTrack(webrtc.RTPCodecTypeVideo, o.Video); err != nil {
			c.Close()
			return nil, fmt.Errorf("video: %w", err)
		}
	}
	if !o.Audio && o.Video == nil && !o.AnswerOnly {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				c.Close()
				return nil, err
			}
		}
	}
	pc.OnTrack(c.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		c.mu.Lock()
		c.connected = st == webrtc.PeerConnectionStateConnected
		c.notifyLocked()
		c.mu.Unlock()
	})
	return c, nil
}

// Start connects the client to its signalling: its candidates go to sig, the server's
// messages are applied as they arrive through Description, and (unless
// Options.AnswerOnly) it sends its first offer.
func (c *Client) Start(sig Signaller) error {
	c.sig = sig
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		sc := sfu.Candidate{Candidate: init.Candidate}
		if init.SDPMid != nil {
			sc.SDPMid = *init.SDPMid
		}
		if init.SDPMLineIndex != nil {
			sc.SDPMLineIndex = *init.SDPMLineIndex
		}
		c.candMu.Lock()
		if !c.described {
			// Held until the first description is sent: a signalling channel that is not
			// the SFU's own API must not deliver a candidate before the offer it belongs
			// to (a browser's onicecandidate fires after the offer is on its way).
			c.held = append(c.held, sc)
			c.candMu.Unlock()
			return
		}
		c.candMu.Unlock()
		c.sendCandidate(sc)
	})
	c.mu.Lock()
	select {
	case <-c.quit:
		c.mu.Unlock()
		return sfu.ErrClosed
	default:
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go c.signalLoop()
	if c.o.AnswerOnly {
		return nil
	}
	return c.Negotiate()
}

func (c *Client) sendCandidate(sc sfu.Candidate) {
	if err := c.sig.SendCandidate(sc); err != nil && !errors.Is(err, sfu.ErrParticipantGone) {
		c.fail(fmt.Errorf("add candidate: %w", err))
	}
}

// describedFirst notes that a description went to the server, and sends the candidates
// held until then.
func (c *Client) describedFirst() {
	c.candMu.Lock()
	if c.described {
		c.candMu.Unlock()
		return
	}
	c.described = true
	held := c.held
	c.held = nil
	c.candMu.Unlock()
	for _, sc := range held {
		c.sendCandidate(sc)
	}
}

// Started returns when the client was made.
func (c *Client) Started() time.Time { return c.start }

// FirstVideo returns when the first verified video frame arrived.
func (c *Client) FirstVideo() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.firstVid, !c.firstVid.IsZero()
}

// PeerConnection is the client's pion PeerConnection (for statistics).
func (c *Client) PeerConnection() *webrtc.PeerConnection { return c.pc }

func (c *Client) newPC() (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	reg.Add(repairedRIDFactory{}) // first: closest to the wire, after the NACK responder
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	if c.o.Log != nil {
		se.LoggerFactory = c.o.Log
	} else {
		se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }) // traffic only to loopback
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if c.o.Network == "tcp" {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	if c.o.UDPConn != nil {
		c.mux = webrtc.NewICEUDPMux(se.LoggerFactory.NewLogger("mux"), c.o.UDPConn)
		se.SetICEUDPMux(c.mux)
	}
	if c.o.SettingEngine != nil {
		c.o.SettingEngine(&se)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
}

// Description implements sfu.Signal.
func (c *Client) Description(d sfu.Description) { c.push(d) }

// Event implements sfu.Signal.
func (c *Client) Event(e sfu.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *Client) push(m any) {
	c.qmu.Lock()
	c.queue = append(c.queue, m)
	c.qmu.Unlock()
	select {
	case c.qwake <- struct{}{}:
	default:
	}
}

// signalLoop applies the server's descriptions in order.
func (c *Client) signalLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.quit:
			return
		case <-c.qwake:
		}
		for {
			c.qmu.Lock()
			if len(c.queue) == 0 {
				c.qmu.Unlock()
				break
			}
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.qmu.Unlock()
			if d, ok := m.(sfu.Description); ok {
				if err := c.apply(d); err != nil {
					c.fail(err)
				}
			}
		}
	}
}

// apply takes a server description. The client is the polite peer: a server offer that
// crosses its own rolls its own back, and it offers again afterwards.
func (c *Client) apply(d sfu.Description) error {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	s := d.SDP
	if c.o.RewriteSDP != nil {
		s = c.o.RewriteSDP(s)
	}
	if d.Type == sfu.Answer {
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s}); err != nil {
			return fmt.Errorf("set answer: %w", err)
		}
		return nil
	}
	if c.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		if err := c.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		c.reoffer = true
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: s}); err != nil {
		return fmt.Errorf("set offer: %w", err)
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if err := c.pc.SetLocalDescription(ans); err != nil {
		return fmt.Errorf("set answer: %w", err)
	}
	if err := c.sig.SendDescription(sfu.Description{Type: sfu.Answer, SDP: ans.SDP}); err != nil {
		return fmt.Errorf("send answer: %w", err)
	}
	c.describedFirst()
	if c.reoffer {
		c.reoffer = false
		return c.offerLocked()
	}
	return nil
}

// Negotiate sends an offer (after adding or removing a track).
func (c *Client) Negotiate() error {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	return c.offerLocked()
}

// RestartICE sends an offer with new ICE credentials.
func (c *Client) RestartICE() error {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.iceRestart = true
	return c.offerLocked()
}

// RemoteUfrag is the ICE username fragment of the server's current description.
func (c *Client) RemoteUfrag() string {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	rd := c.pc.CurrentRemoteDescription()
	if rd == nil {
		return ""
	}
	if m := ufragRE.FindStringSubmatch(rd.SDP); m != nil {
		return m[1]
	}
	return ""
}

var ufragRE = regexp.MustCompile(`a=ice-ufrag:(\S+)`)

func (c *Client) offerLocked() error {
	if c.o.AnswerOnly {
		return nil
	}
	var opts *webrtc.OfferOptions
	if c.iceRestart {
		opts = &webrtc.OfferOptions{ICERestart: true}
		c.iceRestart = false
	}
	offer, err := c.pc.CreateOffer(opts)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	err = c.sig.SendDescription(sfu.Description{Type: sfu.Offer, SDP: offer.SDP})
	if errors.Is(err, sfu.ErrGlare) {
		c.reoffer = true // the server's offer is on its way
		return nil
	}
	if err == nil {
		c.describedFirst()
	}
	return err
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.notifyLocked()
	c.mu.Unlock()
}

// Errors returns the errors the client met in the background.
func (c *Client) Errors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitFor waits until cond holds (checked at every change of the client's state) or the
// timeout passes, and then fails the test saying what it waited for.
func (c *Client) WaitFor(timeout time.Duration, what string, cond func() bool) {
	if c.tb == nil {
		panic("sfutest: WaitFor outside a test; use Until")
	}
	c.tb.Helper()
	if err := c.Until(timeout, cond); err != nil {
		c.tb.Fatalf("client %s: waiting for %s: %v (errors: %v)", c.Name, what, err, c.Errors())
	}
}

// Until waits until cond holds or the timeout passes.
func (c *Client) Until(timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond) // for conditions on the SFU's state
	defer poll.Stop()
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-poll.C:
		case <-deadline.C:
			return fmt.Errorf("not within %v", timeout)
		}
	}
}

// Connected reports whether the PeerConnection is connected.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// Events returns the events received so far.
func (c *Client) Events() []sfu.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sfu.Event(nil), c.events...)
}

// HasEvent reports whether an event matching f was received.
func (c *Client) HasEvent(f func(sfu.Event) bool) bool {
	for _, e := range c.Events() {
		if f(e) {
			return true
		}
	}
	return false
}

// Published returns the tracks published by participant (from the events), newest last,
// without those unpublished since.
func (c *Client) Published(participant string) []sfu.TrackInfo {
	var out []sfu.TrackInfo
	for _, e := range c.Events() {
		if e.Participant != participant {
			continue
		}
		switch e.Type {
		case sfu.EventTrackPublished:
			out = append(out, e.Track)
		case sfu.EventTrackUnpublished:
			for i, t := range out {
				if t.ID == e.Track.ID {
					out = append(out[:i], out[i+1:]...)
					break
				}
			}
		}
	}
	return out
}

// TrackOf returns what was received of participant's track of kind and source.
func (c *Client) TrackOf(participant string, kind sfu.Kind, source sfu.Source) (RecvTrack, bool) {
	for _, t := range c.Published(participant) {
		if t.Kind == kind && (source == "" || t.Source == source) {
			return c.Track(t.ID)
		}
	}
	return RecvTrack{}, false
}

// Track returns a copy of what was received on a track (by the server's track id).
func (c *Client) Track(id string) (RecvTrack, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rt, ok := c.tracks[id]
	if !ok {
		return RecvTrack{}, false
	}
	cp := *rt
	cp.Switches = append([]Switch(nil), rt.Switches...)
	cp.Sources = map[uint32]bool{}
	for k, v := range rt.Sources {
		cp.Sources[k] = v
	}
	cp.asm, cp.gaps = nil, nil
	return cp, true
}

// Tracks returns the ids of the tracks received (ended ones too).
func (c *Client) Tracks() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.tracks {
		ids = append(ids, id)
	}
	return ids
}

// SendPLI asks the SFU for a key frame of a received track.
func (c *Client) SendPLI(trackID string) error {
	rt, ok := c.Track(trackID)
	if !ok {
		return fmt.Errorf("no track %q", trackID)
	}
	return c.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: rt.SSRC}})
}

// SendNACK asks the SFU to retransmit the n sequence numbers of a received track before
// the newest received (as a subscriber that lost them would).
func (c *Client) SendNACK(trackID string, n int) error {
	c.mu.Lock()
	rt, ok := c.tracks[trackID]
	var ssrc uint32
	var seqs []uint16
	if ok {
		ssrc = rt.SSRC
		for i := n; i > 0; i-- {
			seqs = append(seqs, rt.maxSeq-uint16(i))
		}
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("no track %q", trackID)
	}
	return c.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}})
}

func (c *Client) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	kind := sfu.Audio
	codec := Opus
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		kind = sfu.Video
		codec = VP8
		if strings.EqualFold(remote.Codec().MimeType, string(H264)) {
			codec = H264
		}
	}
	rt := &RecvTrack{ID: remote.ID(), StreamID: remote.StreamID(), Kind: kind, Codec: codec, SSRC: uint32(remote.SSRC()),
		Sources: map[uint32]bool{}, asm: map[uint32]*assembly{}, gaps: map[uint16]time.Time{}}
	c.mu.Lock()
	select {
	case <-c.quit:
		c.mu.Unlock()
		return
	default:
	}
	c.tracks[rt.ID] = rt
	c.wg.Add(1)
	c.notifyLocked()
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		for {
			n, attrs, err := remote.Read(buf)
			if err != nil {
				c.mu.Lock()
				rt.Ended = true
				c.notifyLocked()
				c.mu.Unlock()
				return
			}
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			isRTX := attrs != nil && attrs.Get(webrtc.AttributeRtxSequenceNumber) != nil
			c.mu.Lock()
			rt.Bytes += n
			rt.packet(c, &pkt, isRTX)
			c.notifyLocked()
			c.mu.Unlock()
		}
	}()
}

// maxGaps bounds the missing sequence numbers a track remembers; older ones count as lost.
const maxGaps = 512

// packet records one received packet and completes frames (c.mu held).
func (rt *RecvTrack) packet(c *Client, pkt *rtp.Packet, isRTX bool) {
	now := time.Now()
	rt.Packets++
	seq := pkt.SequenceNumber
	if isRTX {
		rt.RTX++
	} else {
		if rt.havePrev && seq != rt.lastSeq+1 {
			rt.Gaps++
		}
		rt.lastSeq, rt.havePrev = seq, true
	}
	switch d := int16(seq - rt.maxSeq); {
	case !rt.haveMax:
		rt.maxSeq, rt.haveMax = seq, true
	case d > 0:
		if d > 1 {
			if len(rt.gaps)+int(d-1) > maxGaps {
				rt.Missing += len(rt.gaps)
				clear(rt.gaps)
			}
			for s := rt.maxSeq + 1; s != seq && len(rt.gaps) < maxGaps; s++ {
				rt.gaps[s] = now
			}
		}
		rt.maxSeq = seq
	default: // older than the newest: a retransmission or a reordered packet
		if t, ok := rt.gaps[seq]; ok {
			delete(rt.gaps, seq)
			rt.Repaired++
			if c.o.OnRepair != nil {
				c.o.OnRepair(now.Sub(t))
			}
		}
	}
	a := rt.asm[pkt.Timestamp]
	if a == nil {
		if len(rt.asm) > 256 {
			clear(rt.asm)
		}
		a = &assembly{pkts: map[uint16][]byte{}, start: -1, end: -1}
		rt.asm[pkt.Timestamp] = a
	}
	a.pkts[seq] = append([]byte(nil), pkt.Payload...)
	if frameStart(rt.Codec, pkt.Payload) {
		a.start = int(seq)
	}
	if _, ok := sentAt(pkt.Payload); ok && a.first.IsZero() {
		a.first = now
	}
	if pkt.Marker || rt.Codec == Opus {
		a.end = int(seq)
	}
	if a.start < 0 || a.end < 0 {
		return
	}
	var payloads [][]byte
	for s := uint16(a.start); ; s++ {
		p, ok := a.pkts[s]
		if !ok {
			return
		}
		payloads = append(payloads, p)
		if s == uint16(a.end) || len(payloads) > 1000 {
			break
		}
	}
	delete(rt.asm, pkt.Timestamp)
	id, ok := verify(rt.Codec, payloads)
	rt.Frames++
	if rt.Frames == 1 {
		rt.First = id
	}
	if ok {
		rt.Verified++
		if rt.Kind == sfu.Video && c.firstVid.IsZero() {
			c.firstVid = now
		}
	}
	if id.Key {
		rt.Keyframes++
	}
	rt.Sources[id.Src] = true
	late := rt.Frames > 1 && id.No < rt.Last.No && id.Src == rt.Last.Src
	if c.o.OnFrame != nil {
		first := a.first
		if first.IsZero() {
			first = now
		}
		c.o.OnFrame(RecvFrame{Track: rt.ID, Kind: rt.Kind, ID: id, Verified: ok, First: first, Late: late})
	}
	if late {
		rt.Late++ // completed by a retransmission after newer frames
		return
	}
	if rt.Frames > 1 && id.Layer != rt.Layer {
		rt.Switches = append(rt.Switches, Switch{From: rt.Layer, To: id.Layer, Key: id.Key})
	}
	rt.Layer, rt.Last = id.Layer, id
}

// Totals adds up what the client received on all its tracks.
type Totals struct {
	Tracks, Packets, Bytes, RTX, Gaps, Missing, Repaired, Frames, Verified, Late, Keyframes int
}

// Totals returns what the client received so far, on all tracks; Missing counts the
// sequence numbers still missing now.
func (c *Client) Totals() Totals {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t Totals
	for _, rt := range c.tracks {
		t.Tracks++
		t.Packets += rt.Packets
		t.Bytes += rt.Bytes
		t.RTX += rt.RTX
		t.Gaps += rt.Gaps
		t.Missing += rt.Missing + len(rt.gaps)
		t.Repaired += rt.Repaired
		t.Frames += rt.Frames
		t.Verified += rt.Verified
		t.Late += rt.Late
		t.Keyframes += rt.Keyframes
	}
	return t
}

// Close leaves the room and closes the PeerConnection, waiting for the client's
// goroutines.
func (c *Client) Close() {
	c.once.Do(func() {
		if c.sig != nil {
			_ = c.sig.Leave()
		}
		c.mu.Lock()
		close(c.quit)
		c.mu.Unlock()
		for _, p := range c.pubList() {
			p.stop()
		}
		if c.pc != nil {
			_ = c.pc.GracefulClose()
		}
		c.wg.Wait()
		if c.mux != nil {
			_ = c.mux.Close()
		} else if c.o.UDPConn != nil {
			_ = c.o.UDPConn.Close()
		}
	})
}

// extID finds a negotiated header extension id of a sender.
func extID(s *webrtc.RTPSender, uri string) uint8 {
	for _, e := range s.GetParameters().HeaderExtensions {
		if e.URI == uri {
			return uint8(e.ID)
		}
	}
	return 0
}
