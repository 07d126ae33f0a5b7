package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// signalQueue bounds the messages waiting for a participant's Signal.
const signalQueue = 1024

// maxPendingCandidates bounds the candidates kept until the first offer arrives.
const maxPendingCandidates = 64

// Participant is one client in a room: one PeerConnection (BUNDLE, rtcp-mux) over which it
// publishes its tracks and receives everyone else's. Its methods are safe for concurrent use;
// after it has left they return ErrParticipantGone.
type Participant struct {
	s    *SFU
	room *room
	id   string
	sig  Signal
	pc   *webrtc.PeerConnection
	bwe  cc.BandwidthEstimator
	nack *nackBudget
	log  *slog.Logger

	out       chan outMsg   // to the Signal, drained by run
	kick      chan struct{} // a token: negotiation may be needed
	done      chan struct{} // closed when the participant starts closing
	closed    chan struct{} // closed when it has closed
	closeOnce sync.Once
	wg        sync.WaitGroup // run, layer readers, RTCP readers
	timer     *time.Timer    // the connect timeout
	connected atomic.Bool
	limit     limiter
	c         participantCounters
	tr        transportState // what the media ladder shows
	// statsMu orders GetStats before the PeerConnection's close: pion's close clears the
	// stats getter GetStats reads without a lock of its own (a data race under -race).
	// Held for reading around GetStats, for writing to set pcClosed.
	statsMu  sync.RWMutex
	pcClosed bool
	// deliveryMute, by Kind.index: nothing of that kind is forwarded to the participant
	// (the administrator's txAudioMute, txVideoMute). Read by every write to it.
	deliveryMute [2]atomic.Bool

	layerMu  sync.Mutex // serialises chooseLayers; taken before mu
	negMu    sync.Mutex // serialises negotiation; taken before any other lock
	answered bool       // the client's first offer has been answered (negMu)
	cands    []webrtc.ICECandidateInit

	mu         sync.Mutex
	closing    bool
	published  map[*webrtc.RTPReceiver]*publishedTrack
	subs       map[string]*downTrack // by track id
	toAdd      []*downTrack
	toRemove   []*downTrack
	needOffer  bool
	restartICE bool
	selfMute   [2]bool // by Kind.index
	adminMute  [2]bool
	maxBitrate int
	streamIDs  map[string]string // client stream id → server stream id
	sizes      map[string][2]int // client-reported sizes by client track id
	state      string
}

type outMsg struct {
	desc *Description
	ev   Event
}

func newParticipant(s *SFU, id string, sig Signal, pp peer) *Participant {
	p := &Participant{
		s: s, id: id, sig: sig, pc: pp.pc, bwe: pp.bwe, nack: pp.nack,
		out:       make(chan outMsg, signalQueue),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		closed:    make(chan struct{}),
		published: map[*webrtc.RTPReceiver]*publishedTrack{},
		subs:      map[string]*downTrack{},
		streamIDs: map[string]string{},
		sizes:     map[string][2]int{},
		state:     "new",
	}
	p.tr.t.Joined = time.Now()
	p.tr.t.ICEState, p.tr.t.DTLSState = "new", "new"
	p.limit.init(s.cfg.MaxPacketRate, s.cfg.MaxBitRate)
	return p
}

// start installs pion's callbacks and starts the run loop and the connect timeout.
func (p *Participant) start() {
	p.log = p.s.log.With("room", p.room.id, "participant", p.id)
	p.pc.OnTrack(p.onTrack)
	p.pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) { p.tr.iceState(st, time.Now()) })
	if dt := p.pc.SCTP().Transport(); dt != nil {
		dt.OnStateChange(func(st webrtc.DTLSTransportState) {
			p.tr.dtlsState(st, time.Now())
			// pion no longer closes the PeerConnection by itself when DTLS closes
			// (SettingEngine.DisableCloseByDTLS): the participant leaves, as it would.
			if st == webrtc.DTLSTransportStateClosed && !p.gone() {
				p.s.goClose(p, ErrConnectionClosed)
			}
		})
		if it := dt.ICETransport(); it != nil {
			it.OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) { p.tr.selected(pair, time.Now()) })
		}
	}
	p.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		p.mu.Lock()
		p.state = st.String()
		p.mu.Unlock()
		p.enqueueEvent(Event{Type: EventConnectionState, Room: p.room.id, Participant: p.id, State: st.String(), Time: time.Now()})
		switch st {
		case webrtc.PeerConnectionStateConnected:
			if !p.connected.Swap(true) {
				p.timer.Stop()
				p.log.Info("connected")
			}
		case webrtc.PeerConnectionStateFailed:
			p.s.goClose(p, ErrConnectionFailed)
		}
	})
	p.timer = time.AfterFunc(p.s.cfg.ConnectTimeout, func() {
		if !p.connected.Load() {
			p.log.Info("connect timeout", "after", p.s.cfg.ConnectTimeout)
			p.s.goClose(p, ErrConnectTimeout)
		}
	})
	p.wg.Add(1)
	go p.run()
}

// ID is the participant's id.
func (p *Participant) ID() string { return p.id }

// Room is the id of the participant's room.
func (p *Participant) Room() string { return p.room.id }

// Done is closed when the participant starts leaving, for whatever reason.
func (p *Participant) Done() <-chan struct{} { return p.done }

// Closed is closed when the participant has left: its connection closed, its goroutines
// ended, its Transport final.
func (p *Participant) Closed() <-chan struct{} { return p.closed }

// sampleICE records the ICE candidates and pairs from the PeerConnection's stats, unless it
// is closed or closing.
func (p *Participant) sampleICE() {
	p.statsMu.RLock()
	defer p.statsMu.RUnlock()
	if p.pcClosed || p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed || p.pc.ICEConnectionState() == webrtc.ICEConnectionStateClosed {
		return
	}
	p.tr.sampleICE(p.pc.GetStats())
}

func (p *Participant) gone() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// run delivers queued messages to the Signal, in order, and makes the server's offers.
func (p *Participant) run() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case m := <-p.out:
			if m.desc != nil {
				p.sig.Description(*m.desc)
			} else {
				p.sig.Event(m.ev)
			}
		case <-p.kick:
			p.negotiate()
		}
	}
}

func (p *Participant) enqueue(m outMsg) {
	if p.gone() {
		return
	}
	select {
	case p.out <- m:
	default:
		p.log.Warn("signal queue overflow")
		p.s.goClose(p, ErrSignalOverflow)
	}
}

func (p *Participant) enqueueEvent(ev Event) { p.enqueue(outMsg{ev: ev}) }

func (p *Participant) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// HandleDescription takes the client's offer or answer. The answer to an offer is sent
// through Signal.Description before any later server offer. An offer that crosses a server
// offer returns ErrGlare and is ignored (see the package documentation).
func (p *Participant) HandleDescription(d Description) error {
	if len(d.SDP) > p.s.cfg.MaxSDPSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrSDPTooLarge, len(d.SDP), p.s.cfg.MaxSDPSize)
	}
	if d.Type == Offer {
		if err := checkOffer(d.SDP); err != nil {
			return err
		}
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.gone() {
		return ErrParticipantGone
	}
	switch d.Type {
	case Offer:
		at := time.Now()
		p.tr.set(func(t *Transport) {
			if t.Offer.IsZero() {
				t.Offer = at
			}
		})
		if err := p.handleOffer(d.SDP); err != nil {
			p.tr.set(func(t *Transport) {
				if t.Offer == at && t.Answer.IsZero() {
					t.Offer = time.Time{}
				}
			})
			return err
		}
		p.tr.addRemote(d.SDP)
		return nil
	case Answer:
		if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			return fmt.Errorf("%w: an answer in state %s", ErrBadState, p.pc.SignalingState())
		}
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: d.SDP}); err != nil {
			return fmt.Errorf("%w: %w", ErrBadSDP, err)
		}
		p.poke()
		return nil
	}
	return fmt.Errorf("%w: type %q", ErrBadSDP, d.Type)
}

func (p *Participant) handleOffer(sdp string) error {
	if st := p.pc.SignalingState(); st == webrtc.SignalingStateHaveLocalOffer {
		return ErrGlare
	} else if st != webrtc.SignalingStateStable {
		return fmt.Errorf("%w: an offer in state %s", ErrBadState, st)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.rollback()
		return fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	if err := p.setLocal(answer); err != nil {
		p.rollback()
		return err
	}
	p.answered = true
	for _, c := range p.cands {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("queued candidate rejected", "err", err)
		}
	}
	p.cands = nil
	p.poke()
	return nil
}

func (p *Participant) rollback() {
	_ = p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback})
}

// setLocal sets d as the local description, waits for the (host-only, immediate) gathering
// and queues the description with every candidate in it. negMu held.
func (p *Participant) setLocal(d webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(d); err != nil {
		return fmt.Errorf("%w: set local %s: %w", ErrBadSDP, d.Type, err)
	}
	select {
	case <-gathered:
	case <-p.done:
		return ErrParticipantGone
	case <-time.After(5 * time.Second):
		p.log.Warn("gathering did not complete; sending the candidates found")
	}
	ld := p.pc.LocalDescription()
	typ := Answer
	if ld.Type == webrtc.SDPTypeOffer {
		typ = Offer
	}
	p.tr.localCandidates(ld.SDP)
	if typ == Answer {
		p.tr.set(func(t *Transport) {
			if t.Answer.IsZero() {
				t.Answer = time.Now()
			}
		})
	}
	p.enqueue(outMsg{desc: &Description{Type: typ, SDP: ld.SDP}})
	return nil
}

// negotiate applies pending subscription changes and makes a server offer when the
// connection needs one and the negotiation is stable. Runs on p's run goroutine.
func (p *Participant) negotiate() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.gone() || !p.answered || p.pc.SignalingState() != webrtc.SignalingStateStable {
		return // kicked again by the answer, or by the end of the client's offer
	}
	p.mu.Lock()
	add, remove := p.toAdd, p.toRemove
	p.toAdd, p.toRemove = nil, nil
	need := p.needOffer || len(add) > 0 || len(remove) > 0
	restart := p.restartICE
	p.needOffer, p.restartICE = false, false
	p.mu.Unlock()
	for _, dt := range remove {
		if dt.sender != nil {
			if err := p.pc.RemoveTrack(dt.sender); err != nil {
				p.log.Debug("remove track", "track", dt.id, "err", err)
			}
			dt.sender = nil
		}
	}
	for _, dt := range add {
		if dt.removed.Load() {
			continue
		}
		tr, err := p.pc.AddTransceiverFromTrack(dt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.log.Warn("add track", "track", dt.id, "err", err)
			continue
		}
		if codecs := downstreamCodecs(dt.pt.codec); codecs != nil {
			if err := tr.SetCodecPreferences(codecs); err != nil {
				p.log.Debug("codec preferences", "track", dt.id, "err", err)
			}
		}
		dt.sender = tr.Sender()
		p.mu.Lock()
		if !p.closing {
			p.wg.Add(1)
			go p.readRTCP(dt, dt.sender)
		}
		p.mu.Unlock()
	}
	if !need {
		return
	}
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err == nil {
		err = p.setLocal(offer)
	}
	if err != nil && !p.gone() {
		p.log.Warn("server offer", "err", err)
	}
}

// AddCandidate adds a candidate the client trickled. Candidates that arrive before the
// client's first offer are kept (up to 64) and added with it.
func (p *Participant) AddCandidate(c Candidate) error {
	if c.Candidate == "" {
		return nil
	}
	if len(c.Candidate) > 1024 {
		return fmt.Errorf("%w: %d bytes", ErrBadCandidate, len(c.Candidate))
	}
	mid, idx := c.SDPMid, c.SDPMLineIndex
	init := webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: &mid, SDPMLineIndex: &idx}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.gone() {
		return ErrParticipantGone
	}
	if p.pc.RemoteDescription() == nil {
		if len(p.cands) >= maxPendingCandidates {
			return fmt.Errorf("%w: more than %d candidates before the offer", ErrBadCandidate, maxPendingCandidates)
		}
		p.cands = append(p.cands, init)
		p.tr.addRemote(c.Candidate)
		return nil
	}
	if err := p.pc.AddICECandidate(init); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCandidate, err)
	}
	p.tr.addRemote(c.Candidate)
	return nil
}

// RestartICE makes the server offer an ICE restart (new credentials). A client restarts
// ICE itself by offering with new credentials (iceRestart) as usual.
func (p *Participant) RestartICE() error {
	if p.gone() {
		return ErrParticipantGone
	}
	p.mu.Lock()
	p.restartICE, p.needOffer = true, true
	p.mu.Unlock()
	p.poke()
	return nil
}

// Leave removes the participant: its tracks are unpublished, its connection closed, and
// every goroutine and buffer it had is released before Leave returns. It must not be
// called from a Signal method.
func (p *Participant) Leave() error {
	if p.gone() {
		<-p.closed
		return ErrParticipantGone
	}
	p.close(nil)
	return nil
}

// close tears p down once; a concurrent caller waits for the first.
func (p *Participant) close(reason error) {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		p.tr.set(func(t *Transport) { t.Ended, t.EndReason = time.Now(), reason })
		close(p.done)
		p.timer.Stop()
		p.room.leave(p, reason)
		p.sampleICE()
		p.statsMu.Lock()
		p.pcClosed = true
		p.statsMu.Unlock()
		if err := p.pc.GracefulClose(); err != nil {
			p.log.Debug("close", "err", err)
		}
		p.wg.Wait()
		p.log.Info("participant left", "reason", reason)
		close(p.closed)
	})
	<-p.closed
}

// SetSelfMute records the client's own mute of a kind (reported through the signalling):
// while set, its tracks of that kind are not forwarded. The room gets an EventMute.
func (p *Participant) SetSelfMute(kind Kind, muted bool) error {
	return p.setMute(kind, muted, false)
}

func (p *Participant) setMute(kind Kind, muted, admin bool) error {
	if kind != Audio && kind != Video {
		return fmt.Errorf("%w: kind %q", ErrBadArgument, kind)
	}
	if p.gone() {
		return ErrParticipantGone
	}
	k := kind.index()
	p.mu.Lock()
	before := p.selfMute[k] || p.adminMute[k]
	if admin && p.adminMute[k] == muted || !admin && p.selfMute[k] == muted {
		p.mu.Unlock()
		return nil // no change: nothing to tell the room
	}
	if admin {
		p.adminMute[k] = muted
	} else {
		p.selfMute[k] = muted
	}
	self, adm := p.selfMute[k], p.adminMute[k]
	now := self || adm
	var tracks []*publishedTrack
	for _, t := range p.published {
		if t.kind == kind {
			tracks = append(tracks, t)
		}
	}
	p.mu.Unlock()
	for _, t := range tracks {
		t.muted.Store(now)
		if before && !now {
			t.requestKeyframes() // subscribers need a key frame to resume
		}
	}
	p.room.mu.Lock()
	p.room.broadcast(Event{Type: EventMute, Participant: p.id, Kind: kind, SelfMuted: self, AdminMuted: adm})
	p.room.mu.Unlock()
	return nil
}

// SetDeliveryMute stops (or resumes) forwarding every track of a kind to the participant:
// what it receives, as CMS's txAudioMute and txVideoMute. Its own tracks are not affected.
// At resume, video restarts at a key frame asked of each publisher.
func (p *Participant) SetDeliveryMute(kind Kind, muted bool) error {
	if kind != Audio && kind != Video {
		return fmt.Errorf("%w: kind %q", ErrBadArgument, kind)
	}
	if p.gone() {
		return ErrParticipantGone
	}
	if p.deliveryMute[kind.index()].Swap(muted) == muted || muted {
		return nil
	}
	p.mu.Lock()
	var dts []*downTrack
	for _, dt := range p.subs {
		if dt.pt.kind == kind {
			dts = append(dts, dt)
		}
	}
	p.mu.Unlock()
	for _, dt := range dts {
		dt.resync() // a new offset, so that the receiver sees no sequence gap
		if kind == Video {
			dt.pt.pli(dt.target.Load(), true)
			if c := dt.current.Load(); c != dt.target.Load() {
				dt.pt.pli(c, true)
			}
		}
	}
	return nil
}

// DeliveryMuted reports whether forwarding a kind to the participant is stopped.
func (p *Participant) DeliveryMuted(kind Kind) bool { return p.deliveryMute[kind.index()].Load() }

// Muted reports the participant's mute state for a kind.
func (p *Participant) Muted(kind Kind) (self, admin bool) {
	k := kind.index()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.selfMute[k], p.adminMute[k]
}

func (p *Participant) mutedKind(kind Kind) bool {
	k := kind.index()
	return p.selfMute[k] || p.adminMute[k]
}

// SetMaxResolution limits the simulcast layer of a subscribed video track to the largest
// whose frame fits width×height (the size the client renders it at); 0×0 removes the limit.
func (p *Participant) SetMaxResolution(trackID string, width, height int) error {
	if width < 0 || height < 0 {
		return fmt.Errorf("%w: size %dx%d", ErrBadArgument, width, height)
	}
	dt, err := p.sub(trackID)
	if err != nil {
		return err
	}
	dt.maxW.Store(int32(width))
	dt.maxH.Store(int32(height))
	p.chooseLayers()
	return nil
}

// SetPreferredLayer makes a subscribed simulcast track forward the layer with that rid
// whenever the bandwidth allows (instead of the best that fits); "" removes the preference.
func (p *Participant) SetPreferredLayer(trackID, rid string) error {
	dt, err := p.sub(trackID)
	if err != nil {
		return err
	}
	dt.prefMu.Lock()
	dt.preferred = rid
	dt.prefMu.Unlock()
	p.chooseLayers()
	return nil
}

// SetMaxBitrate caps the bandwidth the participant's subscriptions may use, below the
// estimate (bits per second; 0 removes the cap).
func (p *Participant) SetMaxBitrate(bps int) error {
	if bps < 0 {
		return fmt.Errorf("%w: bit rate %d", ErrBadArgument, bps)
	}
	if p.gone() {
		return ErrParticipantGone
	}
	p.mu.Lock()
	p.maxBitrate = bps
	p.mu.Unlock()
	p.chooseLayers()
	return nil
}

// ReportVideoSize records the size of a video track the client sends (by its client
// track id), for the statistics of codecs whose frames do not say (H.264).
func (p *Participant) ReportVideoSize(clientTrackID string, width, height int) error {
	if width < 0 || height < 0 {
		return fmt.Errorf("%w: size %dx%d", ErrBadArgument, width, height)
	}
	if p.gone() {
		return ErrParticipantGone
	}
	p.mu.Lock()
	p.sizes[clientTrackID] = [2]int{width, height}
	p.mu.Unlock()
	return nil
}

func (p *Participant) sub(trackID string) (*downTrack, error) {
	if p.gone() {
		return nil, ErrParticipantGone
	}
	p.mu.Lock()
	dt := p.subs[trackID]
	p.mu.Unlock()
	if dt == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTrack, trackID)
	}
	return dt, nil
}

// Subscriptions returns the tracks the participant receives.
func (p *Participant) Subscriptions() []TrackInfo {
	p.mu.Lock()
	dts := make([]*downTrack, 0, len(p.subs))
	for _, dt := range p.subs {
		dts = append(dts, dt)
	}
	p.mu.Unlock()
	out := make([]TrackInfo, 0, len(dts))
	for _, dt := range dts {
		out = append(out, dt.pt.info())
	}
	return out
}

// Published returns the tracks the participant publishes.
func (p *Participant) Published() []TrackInfo {
	p.mu.Lock()
	ts := make([]*publishedTrack, 0, len(p.published))
	for _, t := range p.published {
		ts = append(ts, t)
	}
	p.mu.Unlock()
	out := make([]TrackInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.info())
	}
	return out
}

// subscribe adds a down track for t (room.mu held; takes p.mu).
func (p *Participant) subscribe(t *publishedTrack) {
	dt := newDownTrack(t, p)
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return
	}
	p.subs[t.id] = dt
	p.toAdd = append(p.toAdd, dt)
	p.mu.Unlock()
	t.addSubscriber(dt)
	p.poke()
}

// unsubscribe removes dt (room.mu held; takes p.mu).
func (p *Participant) unsubscribe(dt *downTrack) {
	dt.removed.Store(true)
	dt.pt.removeSubscriber(dt)
	p.mu.Lock()
	if p.subs[dt.pt.id] == dt {
		delete(p.subs, dt.pt.id)
	}
	if !p.closing {
		p.toRemove = append(p.toRemove, dt)
	}
	p.mu.Unlock()
	p.poke()
}

// serverStreamID maps a client stream id to the server's (p.mu held).
func (p *Participant) serverStreamID(client string) string {
	id, ok := p.streamIDs[client]
	if !ok {
		id = p.s.newID("m")
		p.streamIDs[client] = id
	}
	return id
}

// onTrack runs on a pion goroutine for each incoming stream (each simulcast layer).
func (p *Participant) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	kind := Audio
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		kind = Video
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return
	}
	t := p.published[recv]
	isNew := t == nil
	if isNew {
		source := SourceMicrophone
		if kind == Video {
			source = SourceCamera
			if strings.HasPrefix(strings.ToLower(remote.StreamID()), "screen") {
				source = SourceScreen
			}
		}
		t = newPublishedTrack(p, remote, recv, kind, source, p.serverStreamID(remote.StreamID()))
		t.muted.Store(p.mutedKind(kind))
		p.published[recv] = t
	}
	l := t.addLayer(remote)
	p.wg.Add(2)
	p.mu.Unlock()
	p.log.Info("track", "track", t.id, "kind", kind, "rid", remote.RID(), "codec", remote.Codec().MimeType, "stream", remote.StreamID())
	if isNew {
		p.room.publish(t)
	}
	go p.readLayer(t, l)
	go p.readSenderReports(recv, remote.RID())
	t.requestKeyframe(l)
}

// readSenderReports reads the RTCP the publisher sends about one incoming stream, so that
// pion's receiver-report interceptor sees its sender reports (the receiver reports then
// carry LSR and DLSR, from which the publisher computes the round-trip time). It ends when
// the stream does.
func (p *Participant) readSenderReports(recv *webrtc.RTPReceiver, rid string) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		var err error
		if rid == "" {
			_, _, err = recv.Read(buf)
		} else {
			_, _, err = recv.ReadSimulcast(buf, rid)
		}
		if err != nil {
			return
		}
	}
}

// readLayer reads one incoming stream until it ends and forwards each packet.
func (p *Participant) readLayer(t *publishedTrack, l *layer) {
	defer p.wg.Done()
	buf := getBuffer()
	defer putBuffer(buf)
	for {
		n, attrs, err := l.remote.Read(buf[:])
		if err != nil {
			break
		}
		rtx := attrs != nil && attrs.Get(webrtc.AttributeRtxSequenceNumber) != nil
		t.handle(l, buf[:n], rtx)
	}
	if !t.removeLayer(l) {
		return
	}
	p.mu.Lock()
	if p.published[t.recv] == t {
		delete(p.published, t.recv)
	}
	closing := p.closing
	p.mu.Unlock()
	if !closing {
		p.log.Info("track ended", "track", t.id)
		p.room.unpublish(t)
	}
}

// readRTCP reads the RTCP a subscriber sends about one down track (after pion's
// interceptors have answered NACKs and read the reports): key frame requests go to the
// publisher, receiver reports to the statistics.
func (p *Participant) readRTCP(dt *downTrack, sender *webrtc.RTPSender) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pkt := range pkts {
			switch pk := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.c.keyframeRequests.Add(1)
				if l := dt.current.Load(); l != nil {
					dt.pt.requestKeyframe(l)
				} else if l := dt.target.Load(); l != nil {
					dt.pt.requestKeyframe(l)
				}
			case *rtcp.ReceiverReport:
				for _, r := range pk.Reports {
					dt.report(r)
				}
			}
		}
	}
}

var errNoEstimate = errors.New("no estimate")

// estimate is the bandwidth available for the participant's subscriptions.
func (p *Participant) estimate() (int, error) {
	p.mu.Lock()
	limit := p.maxBitrate
	p.mu.Unlock()
	est := 0
	if p.bwe != nil {
		est = p.bwe.GetTargetBitrate()
	}
	switch {
	case est <= 0 && limit <= 0:
		return 0, errNoEstimate
	case est <= 0:
		return limit, nil
	case limit > 0 && limit < est:
		return limit, nil
	}
	return est, nil
}
