// Package media carries a meeting's media signalling between the participants' XMPP
// sessions and the Call Bridge's SFU (package sfu): SDP offers and answers, trickled ICE
// candidates, mute, the sizes videos are shown at, and the SFU's events (tracks published
// and ended, mute states, the active speaker). Its namespace is urn:confab:media:1; the
// exchange is written down in docs/protocol.md.
//
// A participant's media lives as long as its place in the meeting: only a participant who
// has joined the space (package meeting) may publish or subscribe; its SFU participant is
// its call leg (same id), in a room per call; when the leg ends — the participant leaves, is
// removed, loses its XMPP session, the call ends, the link to the XMPP server drops — its
// media ends too (LegEnded). A session resumed with XEP-0198 keeps its leg, so it keeps its
// media.
//
// # The media ladder
//
// Each leg's ladder (package ladder) is built on demand from what the Service keeps while
// the leg lasts: the ICE servers its <session/> gave it, its latest <report/> (its browser's
// own view: candidates gathered, TURN servers that failed, the selected pair), and the SFU's
// record of its connection — live, or as the SFU left it when it ended the media, which the
// client is then told in <ended cause="…" text="…"/>. Probes (probe.go) are connection tests
// that join no meeting: an SFU participant alone in a room, for the web app's "Test your
// connection" page and `confab diagnose media`.
//
// # Goroutines
//
// Handle runs on the caller's goroutine (the link's dispatcher) and does only what is quick
// there (parsing, the leg lookup, <session/>, <report/>); a leg's other requests
// (descriptions, candidates, mute, view, hangup) run in order on a worker goroutine of that
// leg's, started with its first request and ended when it has nothing queued. The SFU calls
// each leg's Signal from a goroutine of its own. The Service also starts, per leg with
// media, one goroutine that waits for the SFU participant to end (to forget it and tell the
// client), one per ended leg that waits for the SFU to release it, and one per probe that
// ends it after ProbeLifetime. All are counted in Service.wg, which Shutdown waits for.
// Service.mu guards the legs, the workers, the ladders' records and the probes, and is a
// leaf: it is never held while calling the SFU, the meetings or writing to the link.
package media

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/stream"
)

// NS is the namespace of the media signalling.
const NS = "urn:confab:media:1"

// Sender is where stanzas go: the Call Bridge's link (*component.Conn).
type Sender interface{ Write(b []byte) error }

// Legs finds a participant's place in a meeting: *meeting.Service.
type Legs interface {
	Leg(spaceID, fullJID string) (meeting.CallLeg, bool)
}

// Options configures a Service.
type Options struct {
	SFU    *sfu.SFU // required
	Legs   Legs     // required
	Logger *slog.Logger
	// ICEServers returns the STUN/TURN servers a participant's browser should use, with
	// credentials made for userID (a call leg's id, or a probe's) valid for ttl; nil gives
	// none.
	ICEServers func(userID string, ttl time.Duration) []sfu.ICEServer
	// CredentialLifetime is the ttl asked for a call leg's credentials (default 24 hours:
	// longer than a meeting lasts, since an allocation cannot be refreshed past it).
	CredentialLifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service is the media signalling of one Call Bridge.
type Service struct {
	o   Options
	log *slog.Logger
	wg  sync.WaitGroup

	mu      sync.Mutex
	legs    map[string]*leg    // by call leg id
	workers map[string]*worker // by call leg id: see enqueue
	closed  bool
	// What the ladder of each call leg is built from, by leg id, kept while the leg lasts:
	// the ICE servers it was given, its latest report, the record of its media that the
	// SFU ended.
	sessions map[string]session
	reports  map[string]*ladder.Report
	ended    map[string]endedMedia
	probes   map[string]*probe
}

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CredentialLifetime <= 0 {
		o.CredentialLifetime = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, log: o.Logger.With("component", "media"), legs: map[string]*leg{}, workers: map[string]*worker{},
		sessions: map[string]session{}, reports: map[string]*ladder.Report{}, ended: map[string]endedMedia{},
		probes: map[string]*probe{}}
}

// leg is one participant's media: its SFU participant, and where its stanzas go.
type leg struct {
	svc                        *Service
	id, callID, spaceJID, full string
	p                          *sfu.Participant
	seq                        atomic.Uint64

	mu   sync.Mutex
	conn Sender // the link the participant's last stanza came over
}

// The request payloads a participant sends (IQ set, or get for <session/>).
type request struct {
	Session     *struct{} `xml:"urn:confab:media:1 session"`
	Description *struct {
		Type string `xml:"type,attr"`
		SDP  string `xml:",chardata"`
	} `xml:"urn:confab:media:1 description"`
	Candidate *struct {
		Mid       string `xml:"mid,attr"`
		MLine     string `xml:"mline,attr"`
		Candidate string `xml:",chardata"`
	} `xml:"urn:confab:media:1 candidate"`
	Mute *struct {
		Kind  string `xml:"kind,attr"`
		Muted string `xml:"muted,attr"`
	} `xml:"urn:confab:media:1 mute"`
	View *struct {
		Track  string `xml:"track,attr"`
		Width  int    `xml:"width,attr"`
		Height int    `xml:"height,attr"`
		Layer  string `xml:"layer,attr"`
	} `xml:"urn:confab:media:1 view"`
	Hangup *struct{}  `xml:"urn:confab:media:1 hangup"`
	Report *reportXML `xml:"urn:confab:media:1 report"`
}

// Handle answers an IQ in the media namespace addressed to a space
// (<spaceId>@<callBridgeJid>) and reports whether it was one. Its answer (a result or a
// stanza error) goes to conn; the SFU's descriptions and events follow as messages from the
// space to the participant.
func (s *Service) Handle(ctx context.Context, conn Sender, e *stream.Element) bool {
	if e.Name.Local != "iq" || e.Payload().Space != NS {
		return false
	}
	typ := e.Get("type")
	if typ != "get" && typ != "set" {
		return true // results and errors of our own are never answered
	}
	reply := func(se stream.StanzaError) {
		s.write(conn, stream.ErrorReply(e, se))
	}
	to, err1 := jid.Parse(e.Get("to"))
	from, err2 := jid.Parse(e.Get("from"))
	if err1 != nil || err2 != nil || to.Localpart() == "" || from.Resourcepart() == "" {
		reply(stream.StanzaError{Type: stream.ErrModify, Condition: "bad-request", Text: "Media requests go from a full JID to a space"})
		return true
	}
	var req request
	if err := e.Decode(&req); err != nil {
		reply(stream.StanzaError{Type: stream.ErrModify, Condition: "bad-request", Text: "Unreadable media request"})
		return true
	}
	cl, ok := s.o.Legs.Leg(to.Localpart(), from.String())
	if !ok {
		reply(stream.StanzaError{Type: stream.ErrCancel, Condition: "not-acceptable", Text: "Join the space before sending media"})
		return true
	}
	switch {
	case req.Session == nil && req.Description == nil && req.Candidate == nil && req.Mute == nil &&
		req.View == nil && req.Hangup == nil && req.Report == nil:
		reply(stream.StanzaError{Type: stream.ErrCancel, Condition: "service-unavailable"})
		return true
	case req.Session != nil:
		s.write(conn, s.sessionResult(e, cl))
		s.keepIfLive(cl.ID, to.Localpart(), cl.FullJID)
		return true
	case typ != "set":
		reply(stream.StanzaError{Type: stream.ErrModify, Condition: "bad-request", Text: "Use type='set'"})
		return true
	case req.Report != nil:
		// Quick (kept in memory), so on the dispatcher.
		rep, err := req.Report.report(s.o.Now())
		if err == nil {
			s.report(cl, to.Localpart(), rep)
		}
		s.answer(conn, e, err)
		return true
	}
	// Descriptions take pion milliseconds (SDP with one section per track); done here they
	// held the link's dispatcher, and every login behind it, while 50 people joined. They run
	// on the leg's own worker instead, in the order they came.
	if !s.enqueue(cl.ID, func() { s.handleSet(conn, e, &req, cl, to.Bare().String(), from.String()) }) {
		reply(stream.StanzaError{Type: stream.ErrWait, Condition: "resource-constraint", Text: "Too many media requests at once; slow down"})
	}
	return true
}

// handleSet does a media request of type set, on the leg's worker.
func (s *Service) handleSet(conn Sender, e *stream.Element, req *request, cl meeting.CallLeg, spaceJID, full string) {
	reply := func(se stream.StanzaError) {
		s.write(conn, stream.ErrorReply(e, se))
	}
	switch {
	case req.Description != nil:
		err := s.description(cl, spaceJID, full, conn, sfu.Description{Type: sfu.SDPType(req.Description.Type), SDP: req.Description.SDP})
		s.answer(conn, e, err)
		return
	}
	l := s.leg(cl.ID, conn)
	if l == nil {
		if req.Hangup != nil {
			s.write(conn, stream.Result(e))
			return
		}
		reply(stream.StanzaError{Type: stream.ErrCancel, Condition: "item-not-found", Text: "No media session: send an offer first"})
		return
	}
	var err error
	switch {
	case req.Candidate != nil:
		idx, _ := strconv.ParseUint(req.Candidate.MLine, 10, 16)
		err = l.p.AddCandidate(sfu.Candidate{Candidate: req.Candidate.Candidate, SDPMid: req.Candidate.Mid, SDPMLineIndex: uint16(idx)})
	case req.Mute != nil:
		err = l.p.SetSelfMute(sfu.Kind(req.Mute.Kind), req.Mute.Muted == "true")
	case req.View != nil:
		if req.View.Layer != "" {
			err = l.p.SetPreferredLayer(req.View.Track, req.View.Layer)
		} else {
			err = l.p.SetMaxResolution(req.View.Track, req.View.Width, req.View.Height)
		}
	case req.Hangup != nil:
		s.end(l, "hung up")
	}
	s.answer(conn, e, err)
}

// workerQueue bounds the media requests of one leg waiting for its worker.
const workerQueue = 64

// worker runs one leg's media requests in order.
type worker struct {
	jobs chan func()
}

// enqueue hands f to the worker of leg id, starting it if there is none; false when its
// queue is full or the Service is shut down.
func (s *Service) enqueue(id string, f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	w := s.workers[id]
	if w == nil {
		w = &worker{jobs: make(chan func(), workerQueue)}
		s.workers[id] = w
		s.wg.Add(1)
		go s.work(id, w)
	}
	select {
	case w.jobs <- f:
		return true
	default:
		return false
	}
}

// work runs w's jobs until there are none left, then ends (a leg's next request starts a
// new worker): an idle participant holds no goroutine.
func (s *Service) work(id string, w *worker) {
	defer s.wg.Done()
	for {
		select {
		case f := <-w.jobs:
			f()
			continue
		default:
		}
		s.mu.Lock()
		if len(w.jobs) == 0 {
			delete(s.workers, id)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// description starts the leg's media at its first offer, and hands the description to the
// SFU.
func (s *Service) description(cl meeting.CallLeg, spaceJID, full string, conn Sender, d sfu.Description) error {
	l := s.leg(cl.ID, conn)
	if l != nil {
		return l.p.HandleDescription(d)
	}
	if d.Type != sfu.Offer {
		return fmt.Errorf("%w: the first description must be an offer", sfu.ErrBadState)
	}
	l, err := s.start(cl, spaceJID, full, conn)
	if err != nil {
		return err
	}
	if err := l.p.HandleDescription(d); err != nil {
		// Release it now, so that a refused offer leaves nothing behind.
		s.mu.Lock()
		if s.legs[l.id] == l {
			delete(s.legs, l.id)
		}
		s.mu.Unlock()
		l.p.Leave()
		return err
	}
	return nil
}

// start joins the leg to its call's room in the SFU.
func (s *Service) start(cl meeting.CallLeg, spaceJID, full string, conn Sender) (*leg, error) {
	l := &leg{svc: s, id: cl.ID, callID: cl.CallID, spaceJID: spaceJID, full: full, conn: conn}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, sfu.ErrClosed
	}
	if s.legs[cl.ID] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: media of %s already started", sfu.ErrDuplicateParticipant, cl.ID)
	}
	s.legs[cl.ID] = l // reserved while joining, so a second offer cannot start another
	delete(s.ended, cl.ID)
	s.mu.Unlock()
	p, err := s.o.SFU.Join(cl.CallID, cl.ID, l)
	if err != nil {
		s.mu.Lock()
		if s.legs[cl.ID] == l {
			delete(s.legs, cl.ID)
		}
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	if s.legs[cl.ID] != l || s.closed {
		// The leg ended while it joined.
		s.mu.Unlock()
		p.Leave()
		return nil, sfu.ErrParticipantGone
	}
	l.p = p
	s.wg.Add(1)
	s.mu.Unlock()
	go s.watch(l)
	// A leg muted before its media started (mute on join, an administrator) stays muted.
	if m := MutesOf(cl); m != (Mutes{}) {
		s.applyMute(cl.CallID, cl.ID, m)
	}
	s.log.Info("media started", "call", cl.CallID, "leg", cl.ID, "jid", full)
	return l, nil
}

// watch forgets a leg whose SFU participant ended on its own (it never connected, its
// connection failed) and tells the client, which may offer again.
func (s *Service) watch(l *leg) {
	defer s.wg.Done()
	<-l.p.Done()
	s.mu.Lock()
	mine := s.legs[l.id] == l
	if mine {
		delete(s.legs, l.id)
	}
	closed := s.closed
	s.mu.Unlock()
	if !mine || closed {
		return
	}
	// The SFU ended it (never connected, or the connection failed): keep the record for
	// the ladder and tell the client why, in its words.
	<-l.p.Closed()
	em := endedMedia{transport: l.p.Transport(), stats: l.p.Stats(), others: len(l.p.Subscriptions()) > 0}
	s.mu.Lock()
	s.ended[l.id] = em
	s.mu.Unlock()
	s.keepIfLive(l.id, spaceLocal(l.spaceJID), l.full)
	lad := s.ladderOf(l.id, nil)
	s.logLadder(l.callID, l.id, lad)
	l.send(func(x *stream.Builder) {
		x.Empty("ended", "xmlns", NS, "reason", "connection", "cause", lad.Cause, "text", lad.Text)
	})
}

// leg returns the leg's media, noting the link its stanza came over.
func (s *Service) leg(id string, conn Sender) *leg {
	s.mu.Lock()
	l := s.legs[id]
	if l != nil && l.p == nil {
		l = nil // still joining
	}
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	l.conn = conn
	l.mu.Unlock()
	return l
}

// end stops a leg's media, releasing it in the background.
func (s *Service) end(l *leg, why string) {
	s.mu.Lock()
	if s.legs[l.id] != l {
		s.mu.Unlock()
		return
	}
	delete(s.legs, l.id)
	p := l.p // nil while joining: start sees the leg gone and leaves itself
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if p != nil {
			p.Leave()
		}
		s.log.Info("media ended", "call", l.callID, "leg", l.id, "reason", why)
	}()
}

// LegEnded ends the media of a call leg that ended (meeting.Service.ObserveLegs).
func (s *Service) LegEnded(e meeting.LegEnd) {
	s.mu.Lock()
	l := s.legs[e.LegID]
	s.forgetLeg(e.LegID)
	s.mu.Unlock()
	if l != nil {
		s.end(l, e.Reason)
	}
}

// Mutes are a call leg's administrator mutes as they act on its media: Rx* (CMS's
// rxAudioMute, rxVideoMute: what the Call Bridge receives from the participant) stop the
// SFU forwarding that kind of the participant's to anyone; Tx* (txAudioMute, txVideoMute:
// what is transmitted to the participant) stop the SFU forwarding anyone's of that kind to
// the participant.
type Mutes struct {
	RxAudio, RxVideo, TxAudio, TxVideo bool
}

// MutesOf reads a call leg's mutes from its settings.
func MutesOf(cl meeting.CallLeg) Mutes {
	return Mutes{RxAudio: cl.Muted("rxAudioMute"), RxVideo: cl.Muted("rxVideoMute"),
		TxAudio: cl.Muted("txAudioMute"), TxVideo: cl.Muted("txVideoMute")}
}

// LegUpdated applies a call leg's mutes to its media. It is called for every callLegUpdate
// event; a leg without media is skipped (its mutes apply when its media starts).
func (s *Service) LegUpdated(callID, legID string, m Mutes) {
	s.mu.Lock()
	l := s.legs[legID]
	started := l != nil && l.p != nil
	s.mu.Unlock()
	if started {
		s.applyMute(callID, legID, m)
	}
}

func (s *Service) applyMute(callID, legID string, m Mutes) {
	for _, a := range []struct {
		kind     sfu.Kind
		muted    bool
		delivery bool
		set      func(string, string, sfu.Kind, bool) error
	}{
		{sfu.Audio, m.RxAudio, false, s.o.SFU.SetMute}, {sfu.Video, m.RxVideo, false, s.o.SFU.SetMute},
		{sfu.Audio, m.TxAudio, true, s.o.SFU.SetDeliveryMute}, {sfu.Video, m.TxVideo, true, s.o.SFU.SetDeliveryMute},
	} {
		if err := a.set(callID, legID, a.kind, a.muted); err != nil && !errors.Is(err, sfu.ErrUnknownParticipant) {
			s.log.Warn("media: admin mute not applied", "call", callID, "leg", legID, "kind", a.kind, "delivery", a.delivery, "err", err)
		}
	}
}

// Totals returns the bit rates the media server receives from every participant and sends
// to them, by kind (bits/s, over the last second): /system/status's counters.
func (s *Service) Totals() (audioIn, videoIn, audioOut, videoOut int) {
	s.mu.Lock()
	legs := make([]*leg, 0, len(s.legs))
	for _, l := range s.legs {
		if l.p != nil {
			legs = append(legs, l)
		}
	}
	s.mu.Unlock()
	for _, l := range legs {
		st := l.p.Stats()
		audioIn += st.RxAudio.BitRate
		videoIn += st.RxVideo.BitRate + st.RxScreen.BitRate
		audioOut += st.TxAudio.BitRate
		videoOut += st.TxVideo.BitRate
	}
	return
}

// SetMute is the administrator's mute of a leg's audio or video ("audio", "video"): while
// set, the SFU forwards none of it, and every participant is told. A leg without media
// gets sfu.ErrUnknownParticipant.
func (s *Service) SetMute(callID, legID, kind string, muted bool) error {
	return s.o.SFU.SetMute(callID, legID, sfu.Kind(kind), muted)
}

// Stats returns the media statistics of a call leg, if it has media.
func (s *Service) Stats(callID, legID string) (sfu.ParticipantStats, bool) {
	st, err := s.o.SFU.ParticipantStats(callID, legID)
	return st, err == nil
}

// Shutdown ends every leg's media and waits for the Service's goroutines, or until ctx ends.
// The caller shuts the SFU down afterwards.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	legs := make([]*leg, 0, len(s.legs))
	for _, l := range s.legs {
		legs = append(legs, l)
	}
	s.mu.Unlock()
	for _, l := range legs {
		s.end(l, "the Call Bridge is stopping")
	}
	s.endProbes()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("media shutdown: %w", context.Cause(ctx))
	}
}

// answer sends the result of a request, or the stanza error its error maps to.
func (s *Service) answer(conn Sender, e *stream.Element, err error) {
	if err == nil {
		s.write(conn, stream.Result(e))
		return
	}
	se := stanzaError(err)
	if se.Condition == "internal-server-error" {
		s.log.Warn("media request failed", "from", e.Get("from"), "err", err)
	} else {
		s.log.Info("media request refused", "from", e.Get("from"), "condition", se.Condition, "err", err)
	}
	s.write(conn, stream.ErrorReply(e, se))
}

// stanzaError maps the SFU's errors to stanza errors [RFC 6120 §8.3.3].
func stanzaError(err error) stream.StanzaError {
	switch {
	case errors.Is(err, sfu.ErrGlare):
		return stream.StanzaError{Type: stream.ErrWait, Condition: "unexpected-request",
			Text: "Your offer crossed the server's: answer the server's offer, then offer again",
			App:  xml.Name{Space: NS, Local: "glare"}}
	case errors.Is(err, sfu.ErrBadState):
		return stream.StanzaError{Type: stream.ErrModify, Condition: "unexpected-request", Text: err.Error()}
	case errors.Is(err, sfu.ErrNoCommonCodec):
		return stream.StanzaError{Type: stream.ErrCancel, Condition: "not-acceptable", Text: "No common codec: the meeting carries Opus audio and VP8, VP9 or H.264 video"}
	case errors.Is(err, sfu.ErrSDPTooLarge):
		return stream.StanzaError{Type: stream.ErrModify, Condition: "policy-violation", Text: err.Error()}
	case errors.Is(err, sfu.ErrBadSDP), errors.Is(err, sfu.ErrBadCandidate), errors.Is(err, sfu.ErrBadArgument):
		return stream.StanzaError{Type: stream.ErrModify, Condition: "bad-request", Text: err.Error()}
	case errors.Is(err, sfu.ErrUnknownTrack):
		return stream.StanzaError{Type: stream.ErrCancel, Condition: "item-not-found", Text: "No such track"}
	case errors.Is(err, sfu.ErrParticipantGone), errors.Is(err, sfu.ErrUnknownParticipant):
		return stream.StanzaError{Type: stream.ErrCancel, Condition: "item-not-found", Text: "No media session: send an offer first"}
	case errors.Is(err, sfu.ErrDuplicateParticipant):
		return stream.StanzaError{Type: stream.ErrWait, Condition: "conflict", Text: "Media is already starting"}
	case errors.Is(err, sfu.ErrClosed):
		return stream.StanzaError{Type: stream.ErrWait, Condition: "service-unavailable", Text: "The media server is stopping"}
	}
	return stream.StanzaError{Type: stream.ErrWait, Condition: "internal-server-error"}
}

// sessionResult answers <session/>: the ICE servers the participant's browser should use.
func (s *Service) sessionResult(e *stream.Element, cl meeting.CallLeg) []byte {
	x := stream.Reply(e, "result", "")
	x.Open("session", "xmlns", NS, "leg", cl.ID)
	var servers []sfu.ICEServer
	if s.o.ICEServers != nil {
		servers = s.o.ICEServers(cl.ID, s.o.CredentialLifetime)
	}
	s.mu.Lock()
	s.sessions[cl.ID] = session{at: s.o.Now(), servers: servers}
	s.mu.Unlock()
	{
		for _, is := range servers {
			x.Open("ice-server", "username", is.Username, "credential", is.Credential)
			for _, u := range is.URLs {
				x.Elem("url", u)
			}
			x.End("ice-server")
		}
	}
	return x.End("session").End("iq").B
}

func (s *Service) write(conn Sender, b []byte) {
	if err := conn.Write(b); err != nil {
		s.log.Warn("media: write to the XMPP server failed", "err", err)
	}
}

// send writes one message from the space to the participant, built by body.
func (l *leg) send(body func(x *stream.Builder)) {
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	var x stream.Builder
	x.Open("message", "id", "media-"+l.id+"-"+strconv.FormatUint(l.seq.Add(1), 10), "from", l.spaceJID, "to", l.full)
	body(&x)
	l.svc.write(conn, x.End("message").B)
}

// Description delivers the SFU's offer or answer (sfu.Signal).
func (l *leg) Description(d sfu.Description) {
	l.send(func(x *stream.Builder) { x.Elem("description", d.SDP, "xmlns", NS, "type", string(d.Type)) })
}

// Event delivers an SFU event (sfu.Signal).
func (l *leg) Event(ev sfu.Event) {
	switch ev.Type {
	case sfu.EventTrackPublished, sfu.EventTrackUnpublished:
		state := "published"
		if ev.Type == sfu.EventTrackUnpublished {
			state = "ended"
		}
		t := ev.Track
		l.send(func(x *stream.Builder) {
			x.Empty("track", "xmlns", NS, "id", t.ID, "stream", t.StreamID, "participant", t.Participant,
				"kind", string(t.Kind), "source", string(t.Source), "codec", t.Codec, "state", state)
		})
	case sfu.EventMute:
		l.send(func(x *stream.Builder) {
			x.Empty("mute", "xmlns", NS, "participant", ev.Participant, "kind", string(ev.Kind),
				"self", strconv.FormatBool(ev.SelfMuted), "admin", strconv.FormatBool(ev.AdminMuted))
		})
	case sfu.EventActiveSpeaker:
		l.send(func(x *stream.Builder) { x.Empty("speaker", "xmlns", NS, "participant", ev.Participant) })
	case sfu.EventLayerChanged:
		l.send(func(x *stream.Builder) { x.Empty("layer", "xmlns", NS, "track", ev.Track.ID, "rid", ev.Layer) })
	case sfu.EventConnectionState:
		l.send(func(x *stream.Builder) { x.Empty("connection", "xmlns", NS, "state", ev.State) })
		if ev.State == "connected" {
			lad := l.svc.ladderOf(l.id, nil)
			l.svc.log.Info("media connected", "call", l.callID, "leg", l.id, "path", lad.Path)
		}
	}
}

// spaceLocal is the space id of a space's JID (its localpart).
func spaceLocal(spaceJID string) string {
	local, _, _ := strings.Cut(spaceJID, "@")
	return local
}
