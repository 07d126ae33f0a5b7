package xmppd

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"confab.dev/confab/internal/stream"
)

// Stream management [XEP-0198] for client sessions: acknowledgements, and resumption of a
// session whose connection was lost.
//
// A session that enabled resumption is not ended when its transport drops (EOF, a read or
// write error, silence past IdleTimeout): it is detached. It stays bound and routable, and
// what is routed to it is kept with the stanzas it had not had acknowledged, within the
// queue's bounds (overflow ends it). A new connection of the same account that sends
// <resume/> after SASL takes it over: the stanzas the client did not acknowledge are sent
// again, in order, then what was kept meanwhile. If nobody resumes it within its timeout it
// ends as any session ends, and the messages and iqs it never acknowledged are bounced. A
// clean </stream>, or a stream error either side sends, ends it at once.
//
// A detached session has no goroutine: its expiry is a time.AfterFunc, and it is ended on
// a goroutine of its own (counted in Server.wg) by expiry, abort or Shutdown. Its state
// changes under session.mu; Server.smMu guards the ids and is a leaf.

const nsSM = "urn:xmpp:sm:3"

// ackEvery is how many stanzas are sent between the server's requests for an
// acknowledgement; the session's timer also asks when stanzas wait for one.
const ackEvery = 5

// undefinedCondition is the stream error condition of XEP-0198 §4's handled-count-too-high.
const undefinedCondition = "undefined-condition"

// smRequest is the server's request for an acknowledgement.
var smRequest = []byte(`<r xmlns="` + nsSM + `"/>`)

// sessionState is where a bound session is in its life; guarded by session.mu.
type sessionState int

const (
	stateAttached sessionState = iota // a connection serves it
	stateDetached                     // its connection is gone; it waits to be resumed
	stateEnding                       // it is being ended
)

// smState is a session's resumption state; guarded by session.mu.
type smState struct {
	id       string        // the resumption id, once enabled with resume
	max      time.Duration // how long the session waits, detached, for a resumption
	linkless bool          // detached: no transport
	takeover bool          // the transport is being dropped for a resumption elsewhere
	reserved bool          // detached, and being resumed: expiry and abort leave it alone
	expired  bool          // the expiry came while reserved
	dropped  bool          // the transport was lost (a write failed, silence): detach
	gen      int           // counts detachments, so that a stale expiry does nothing
	expiry   *time.Timer
	detached chan struct{} // closed when the session detaches (made when it attaches)
}

// handledCountError is an acknowledgement of more stanzas than were sent [XEP-0198 §4].
type handledCountError struct{ h, sent uint32 }

func (e *handledCountError) Error() string {
	return fmt.Sprintf("the client acknowledged %d stanzas; %d were sent", e.h, e.sent)
}

func (e *handledCountError) appCondition() []byte {
	var x stream.Builder
	return x.Empty("handled-count-too-high", "xmlns", nsSM, "h", strconv.FormatUint(uint64(e.h), 10), "send-count", strconv.FormatUint(uint64(e.sent), 10)).B
}

// errResumeExpired ends a detached session that nobody resumed.
var errResumeExpired = errors.New("not resumed in time")

// newSMID returns a resumption id: 144 random bits, URL-safe.
func newSMID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// smFailed is XEP-0198's <failed/> with a stanza error condition.
func smFailed(cond string) []byte {
	var x stream.Builder
	return x.Open("failed", "xmlns", nsSM).Empty(cond, "xmlns", stream.NSStanzaErr).End("failed").B
}

// parseH reads an 'h' attribute: an unsigned 32-bit counter.
func parseH(e *stream.Element) (uint32, bool) {
	n, err := strconv.ParseUint(e.Get("h"), 10, 32)
	return uint32(n), err == nil
}

// handled counts a stanza received from the client.
func (q *outQueue) handled() {
	q.mu.Lock()
	if q.sm {
		q.received++
	}
	q.mu.Unlock()
}

// enable turns stream management on and queues enabled before any stanza it will count.
func (q *outQueue) enable(enabled []byte) (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sm = true
	q.items = append(q.items, enabled)
	q.bytes += len(enabled)
	return q.startLocked()
}

// ack drops the stanzas the client acknowledged with h.
func (q *outQueue) ack(h uint32) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := h - q.acked
	if n > q.sent-q.acked || int(n) > len(q.unacked) {
		return &handledCountError{h: h, sent: q.sent}
	}
	for _, b := range q.unacked[:n] {
		q.unackedN -= len(b)
	}
	clear(q.unacked[:n])
	q.unacked = q.unacked[n:]
	if len(q.unacked) == 0 {
		q.unacked = nil
	}
	q.acked = h
	q.reqOut = false
	return nil
}

// answer queues <a h/> for the client's <r/>.
func (q *outQueue) answer() (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.detached {
		return false
	}
	var x stream.Builder
	a := x.Empty("a", "xmlns", nsSM, "h", strconv.FormatUint(uint64(q.received), 10)).B
	q.items = append(q.items, a)
	q.bytes += len(a)
	return q.startLocked()
}

// suspend stops writing: the transport is lost. Stanzas are kept, nonzas dropped.
func (q *outQueue) suspend() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.detached = true
	clear(q.items)
	q.items, q.bytes = nil, 0
}

// reattach queues resumed, then every stanza not acknowledged, and writes again. The
// caller starts the flusher it reports.
func (q *outQueue) reattach(resumed []byte) (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.detached = false
	q.items = append(make([][]byte, 0, 1+len(q.unacked)), resumed)
	q.items = append(q.items, q.unacked...)
	q.bytes = len(resumed) + q.unackedN
	q.reqOut = false
	q.sinceReq = len(q.unacked)
	if q.sinceReq > 0 {
		q.items = append(q.items, smRequest)
		q.sinceReq, q.reqOut = 0, true
	}
	return q.startLocked()
}

// counts returns what the queue counted: stanzas received, and whether sm is on.
func (q *outQueue) smCounts() (received uint32, on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.received, q.sm
}

// smElement handles an XEP-0198 element on a bound session's stream.
func (ss *session) smElement(e *stream.Element) error {
	switch e.Name.Local {
	case "enable":
		return ss.smEnable(e)
	case "r":
		if _, on := ss.out.smCounts(); !on {
			return &stream.Error{Condition: stream.UnsupportedStanza, Text: "stream management is not enabled"}
		}
		if ss.out.answer() {
			ss.startFlusher()
		}
		return nil
	case "a":
		if _, on := ss.out.smCounts(); !on {
			return &stream.Error{Condition: stream.UnsupportedStanza, Text: "stream management is not enabled"}
		}
		h, ok := parseH(e)
		if !ok {
			return &stream.Error{Condition: stream.BadFormat, Text: "<a/> needs h, an unsigned 32-bit integer"}
		}
		return ss.out.ack(h)
	case "resume":
		ss.sendNonza(smFailed("unexpected-request"))
		return nil
	}
	return &stream.Error{Condition: stream.UnsupportedStanza, Text: "<" + e.Name.Local + "/> of " + nsSM + " is not understood"}
}

// smEnable answers <enable/> [XEP-0198 §3].
func (ss *session) smEnable(e *stream.Element) error {
	if _, on := ss.out.smCounts(); on {
		ss.sendNonza(smFailed("unexpected-request"))
		return nil
	}
	s := ss.srv
	attrs := []string{"xmlns", nsSM}
	if r := e.Get("resume"); r == "true" || r == "1" {
		max := s.cfg.ResumeTimeout
		if n, err := strconv.ParseUint(e.Get("max"), 10, 32); err == nil && n > 0 && time.Duration(n)*time.Second < max {
			max = time.Duration(n) * time.Second
		}
		id := newSMID()
		s.smMu.Lock()
		s.smIDs[id] = ss
		s.smMu.Unlock()
		ss.mu.Lock()
		ss.sm.id, ss.sm.max = id, max
		ss.sm.detached = make(chan struct{})
		ss.mu.Unlock()
		attrs = append(attrs, "id", id, "resume", "true", "max", strconv.Itoa(int(max/time.Second)))
		ss.log.Info("stream management enabled", "resume_max", max)
	} else {
		ss.log.Debug("stream management enabled without resumption")
	}
	var x stream.Builder
	if ss.out.enable(x.Empty("enabled", attrs...).B) {
		ss.startFlusher()
	}
	return nil
}

// smBeforeBind handles an XEP-0198 element after SASL and before a resource is bound:
// <resume/>, or an early <enable/>. done is true when the connection resumed a session.
func (ss *session) smBeforeBind(e *stream.Element) (done bool, err error) {
	if e.Name.Local != "resume" {
		return false, ss.write(smFailed("unexpected-request"))
	}
	s := ss.srv
	fail := func(why string) (bool, error) {
		s.m.resumeFailed.Inc()
		ss.log.Info("resumption refused", "why", why)
		return false, ss.write(smFailed("item-not-found"))
	}
	h, ok := parseH(e)
	if !ok {
		s.m.resumeFailed.Inc()
		return false, ss.write(smFailed("bad-request"))
	}
	s.smMu.Lock()
	old := s.smIDs[e.Get("previd")]
	s.smMu.Unlock()
	if old == nil || old.bare != ss.bare {
		return fail("unknown or expired id, or another account's")
	}
	if !old.takeOver(ss) {
		return fail("the session ended")
	}
	// old is detached and reserved for us: check h before anything is sent.
	if err := old.out.ack(h); err != nil {
		old.unreserve()
		return false, err
	}
	received, _ := old.out.smCounts()
	old.mu.Lock()
	old.sm.reserved, old.sm.expired = false, false
	if old.sm.expiry != nil {
		old.sm.expiry.Stop()
	}
	old.t, old.kind, old.remote = ss.t, ss.kind, ss.remote
	old.sm.linkless = false
	old.sm.detached = make(chan struct{})
	old.gauge = s.m.sessions.WithLabelValues(ss.kind)
	old.state = stateAttached
	aborted := old.aborted
	old.mu.Unlock()
	old.gauge.Inc()
	s.m.detached.Dec()
	s.m.resumed.Inc()
	old.lastWrite.touch()
	var x stream.Builder
	resumed := x.Empty("resumed", "xmlns", nsSM, "h", strconv.FormatUint(uint64(received), 10), "previd", e.Get("previd")).B
	if old.out.reattach(resumed) {
		old.startFlusher()
	}
	old.startTimer()
	old.log.Info("session resumed", "client_h", h)
	if aborted {
		ss.t.interrupt() // aborted while reserved (a shutdown): it ends at its first read
	}
	ss.resumed = old
	return true, nil
}

// takeOver reserves the session, detached, for the resumption by another connection: an
// attached session's connection is dropped first. It reports false when the session is
// ending or being resumed by someone else.
func (ss *session) takeOver(by *session) bool {
	ss.mu.Lock()
	if ss.state == stateAttached && !ss.aborted {
		ss.sm.takeover = true
		t, detached := ss.t, ss.sm.detached
		ss.mu.Unlock()
		ss.log.Info("session resumed from another connection; dropping this one", "new_remote", by.remote)
		t.interrupt()
		t.close(true)
		tm := time.NewTimer(ss.srv.cfg.WriteTimeout + time.Second)
		select {
		case <-detached:
		case <-tm.C:
		}
		tm.Stop()
		ss.mu.Lock()
	}
	defer ss.mu.Unlock()
	if ss.aborted || ss.state != stateDetached || ss.sm.reserved {
		return false
	}
	ss.sm.reserved = true
	return true
}

// unreserve gives a reserved session back to its expiry after a failed resumption, or ends
// it if it was aborted or expired meanwhile.
func (ss *session) unreserve() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sm.reserved = false
	if ss.aborted || ss.sm.expired {
		ss.endDetachedLocked()
	}
}

// endDetachedLocked ends a detached session on a goroutine of its own (none serves it).
// ss.mu is held: the wg.Add is ordered before a Shutdown's wait, which only starts after
// Shutdown has aborted every tracked session (this one included) under its mu.
func (ss *session) endDetachedLocked() {
	ss.state = stateEnding
	ss.srv.wg.Add(1)
	go func() {
		defer ss.srv.wg.Done()
		ss.finish(nil)
	}()
}

// drop loses the transport of a resumable session from any goroutine (a write failed, the
// client went silent): the reader is interrupted and the session detaches. It reports
// false, doing nothing, for a session that cannot be resumed.
func (ss *session) drop(why string) bool {
	ss.mu.Lock()
	if ss.sm.id == "" || ss.aborted || ss.state != stateAttached {
		ss.mu.Unlock()
		return false
	}
	ss.sm.dropped = true
	t := ss.t
	ss.mu.Unlock()
	ss.log.Info("connection lost", "why", why)
	ss.out.suspend()
	t.interrupt()
	t.close(true)
	return true
}

// detach keeps a resumable session whose transport ended with err, instead of ending it.
// It runs on the reading goroutine, which then ends; false means the session must end.
func (ss *session) detach(err error) bool {
	var se *stream.Error
	var hce *handledCountError
	ss.mu.Lock()
	lost := ss.sm.takeover || ss.sm.dropped ||
		(err != nil && !errors.Is(err, stream.ErrClosed) && !errors.Is(err, errPeerError) &&
			!errors.As(err, &se) && !errors.As(err, &hce) && !errors.Is(err, errInterrupted))
	if ss.sm.id == "" || ss.aborted || ss.state != stateAttached || !lost {
		ss.mu.Unlock()
		return false
	}
	ss.sm.takeover, ss.sm.dropped = false, false
	t := ss.t
	ss.mu.Unlock()

	// One account may not keep many sessions waiting (each holds up to detachedBytes and a
	// place in MaxSessions): past MaxDetachedPerAccount, the session ends instead.
	if n := ss.srv.detachedOf(ss.bare); n >= ss.srv.cfg.MaxDetachedPerAccount {
		ss.srv.limitLog.warn(ss.log.With(), "detached:"+ss.bare, "session not kept for resumption: its account has too many detached sessions",
			"detached", n, "max_detached_per_account", ss.srv.cfg.MaxDetachedPerAccount)
		return false
	}

	ss.stopTimer()
	ss.out.suspend()
	ss.out.flushers.Wait() // a flusher writing to the lost connection ends with it
	t.close(true)
	ss.gauge.Dec()
	ss.srv.m.detached.Inc()

	ss.mu.Lock()
	ss.sm.linkless = true
	ss.sm.gen++
	gen, max := ss.sm.gen, ss.sm.max
	ss.state = stateDetached
	ss.sm.expiry = time.AfterFunc(max, func() { ss.expire(gen) })
	close(ss.sm.detached)
	ss.mu.Unlock()
	ss.log.Info(fmt.Sprintf("session detached, resumable for %s", max), "err", errText(err))
	return true
}

func errText(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return err.Error()
}

// expire ends a session left detached for its whole resumption timeout.
func (ss *session) expire(gen int) {
	ss.mu.Lock()
	if ss.state != stateDetached || ss.sm.gen != gen {
		ss.mu.Unlock()
		return
	}
	if ss.sm.reserved {
		ss.sm.expired = true // the resumption under way decides
		ss.mu.Unlock()
		return
	}
	after := ss.sm.max
	ss.endDetachedLocked()
	ss.mu.Unlock()
	ss.log.Info("resumable session expired", "after", after)
}

// smForget removes the session's resumption id.
func (ss *session) smForget() {
	ss.mu.Lock()
	id := ss.sm.id
	ss.sm.id = ""
	if ss.sm.expiry != nil {
		ss.sm.expiry.Stop()
	}
	if ss.sm.detached != nil && !ss.sm.linkless {
		close(ss.sm.detached) // a takeOver waiting for it gives up
		ss.sm.detached = nil
	}
	ss.mu.Unlock()
	if id == "" {
		return
	}
	s := ss.srv
	s.smMu.Lock()
	if s.smIDs[id] == ss {
		delete(s.smIDs, id)
	}
	s.smMu.Unlock()
}

// bounceUnacked answers the stanzas the client never acknowledged, as if they had not been
// delivered [RFC 6120 §8.3, §10.5]: a message gets recipient-unavailable, an iq get or set
// service-unavailable; presence and errors are dropped.
func (ss *session) bounceUnacked(unacked [][]byte) {
	s := ss.srv
	for _, b := range unacked {
		e, err := stream.Parse(b, stream.NSClient, stream.Limits{MaxStanza: len(b) + 1})
		if err != nil || e.Get("from") == "" {
			continue
		}
		switch typ := e.Get("type"); {
		case typ == "error":
		case e.Name.Local == "message":
			s.route(errorReply(e, ss.full, stream.StanzaError{Type: "wait", Condition: "recipient-unavailable"}), discard{})
		case e.Name.Local == "iq" && (typ == "get" || typ == "set"):
			s.route(errorReply(e, ss.full, stream.StanzaError{Type: "cancel", Condition: "service-unavailable"}), discard{})
		}
	}
}

// detachedOf counts the detached sessions of an account.
func (s *Server) detachedOf(bare string) int {
	n := 0
	for _, o := range s.router.userSessions(bare, false) {
		o.mu.Lock()
		if o.state == stateDetached {
			n++
		}
		o.mu.Unlock()
	}
	return n
}
