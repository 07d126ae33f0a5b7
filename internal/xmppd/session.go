package xmppd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/throttle"
)

// Outbound queue bounds per session: a peer this far behind is not reading.
const (
	queueLen   = 512
	queueBytes = 4 << 20
	// detachedBytes bounds what a detached session [XEP-0198] keeps (its unacknowledged
	// stanzas and what arrives while it waits): a session nobody may be coming back for
	// holds less than a live one. Past it, the session ends.
	detachedBytes = 1 << 20
)

// errPeerError is a stream error sent by the client: its stream is over.
var errPeerError = errors.New("the client sent a stream error")

// handleC2S runs a client connection accepted on the c2s listener.
func (s *Server) handleC2S(nc net.Conn) {
	s.runSession(newTCPTransport(nc, stream.Limits{MaxStanza: s.cfg.MaxStanzaC2S}, s.cfg.WriteTimeout, s.mono))
}

// session is one client's stream, from connection to close, on either transport.
type session struct {
	srv     *Server
	log     sessionLog
	started time.Time

	// The transport, its kind and remote address, and the gauge it is counted in: set on
	// the reading goroutine, replaced by a resumption under mu. The reader and the flushers
	// use t directly (a resumption happens while neither runs); others call transport().
	t      transport
	kind   string
	remote string
	gauge  prometheus.Gauge

	// ctx is cancelled by abort (and when the session ends): it cuts short a relayed login.
	ctx    context.Context
	cancel context.CancelCauseFunc

	// Set by the handler goroutine while negotiating; read-only once the session is bound.
	headerSent   bool
	authed       bool
	authFailures int
	bare         string            // alice@example.com
	resource     string            // once bound
	full         string            // alice@example.com/resource
	cb           loginrelay.Bridge // the Call Bridge that authenticated the session
	guest        bool              // the Call Bridge said the account is a guest's
	// The source address's key while negotiating, and whether the session still counts as
	// unauthenticated there (Server.addrs); addrKey is cleared once it no longer counts.
	addrKey       string
	unauthCounted bool
	bound         bool
	resumed       *session // the earlier session this connection resumed

	available atomic.Bool
	fullJID   atomic.Pointer[string] // full, for other goroutines
	// lastPresence is the content of the client's last available broadcast presence (nil
	// while unavailable), for contacts that come online or subscribe [RFC 6121 §4.2.3].
	lastPresence atomic.Pointer[[]byte]

	// Limits on what the client sends to others: its stanzas per second, and how many of
	// them wait in components' queues (compqueue.go).
	rate       bucket
	compQueued atomic.Int32

	// Output once the session is bound: the queue a flusher goroutine drains, and when
	// something was last written (for keepalives).
	out       outQueue
	lastWrite activity

	// The session's timer (keepalives, pings, the idle timeout), armed once bound. tickMu
	// serialises its callbacks with stopTimer; it is taken before session.mu and outQueue.mu.
	tickMu      sync.Mutex
	timer       *time.Timer
	tickStopped bool
	pingedAt    time.Duration // lastRead when the last ping was sent
	pings       int

	mu        sync.Mutex // guards the fields below, and t, kind and remote
	aborted   bool
	abortCond string
	abortText string
	directed  map[string]struct{} // addresses the client sent directed available presence to
	sm        smState             // XEP-0198 resumption (sm.go)
	state     sessionState
}

type closeRequest struct {
	goodbye    bool // the peer can still be written to
	cond, text string
	app        []byte // an application-specific condition, after cond
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) runSession(t transport) {
	ss := &session{srv: s, t: t, started: time.Now(), remote: t.remoteAddr(), kind: t.kind()}
	ss.lastWrite.start(s.mono)
	ss.pingedAt = -1 // no ping yet: any reading of the clock differs
	ss.rate.rate, ss.rate.burst = s.cfg.SenderRate, float64(s.cfg.SenderBurst)
	ss.log = sessionLog{ss}
	ss.ctx, ss.cancel = context.WithCancelCause(s.ctx)
	ss.addrKey = throttle.SourceKey(ss.remote)
	if !s.addrs.enter(ss.addrKey, s.cfg.MaxUnauthenticatedPerAddress, s.cfg.MaxNegotiatingPerAddress) {
		s.m.refused.WithLabelValues("per-address").Inc()
		s.limitLog.warn(s.log, "per-address:"+ss.addrKey, "client refused: too many connections from its address are still logging in",
			"source", ss.addrKey, "max_unauthenticated", s.cfg.MaxUnauthenticatedPerAddress, "max_negotiating", s.cfg.MaxNegotiatingPerAddress)
		ss.reject(stream.PolicyViolation, "too many connections from your address are still logging in")
		ss.cancel(nil)
		return
	}
	ss.unauthCounted = true
	defer func() {
		if ss.addrKey != "" {
			s.addrs.leave(ss.addrKey, ss.unauthCounted)
		}
	}()
	if !s.admit() {
		ss.log.Warn("client refused: too many sessions", "max_sessions", s.cfg.MaxSessions)
		ss.reject(stream.ResourceConstraint, "the server has too many sessions")
		ss.cancel(nil)
		return
	}
	if !s.track(ss) {
		ss.reject(stream.SystemShutdown, "the server is shutting down")
		s.release()
		ss.cancel(nil)
		return
	}
	ss.gauge = s.m.sessions.WithLabelValues(t.kind())
	ss.gauge.Inc()
	ss.log.Info("client connected")
	target, err := ss.negotiate()
	s.addrs.leave(ss.addrKey, ss.unauthCounted) // bound, resumed or failed: no longer negotiating
	ss.addrKey = ""
	if err != nil {
		ss.finish(err)
		return
	}
	ss.cancel(nil) // the context only served the login: cancelling it drops it from the server's
	if target != ss {
		// The connection resumed an earlier session [XEP-0198], which now owns the transport;
		// this one was never bound and ends without a word.
		ss.gauge.Dec()
		s.untrack(ss)
		s.release()
	}
	// The session is bound (or resumed). Its stanzas are read on a fresh goroutine and this
	// one ends: its stack grew during the TLS handshake and the login, and an idle session
	// would keep that growth for its whole life.
	s.wg.Add(1) // this goroutine holds a count until it returns, so Shutdown is still waiting
	go func() {
		defer s.wg.Done()
		target.serve()
	}()
}

// serve reads the bound session's stanzas until its transport ends; then the session ends,
// or waits detached for a resumption [XEP-0198].
func (ss *session) serve() {
	err := ss.serveStanzas()
	if ss.detach(err) {
		return
	}
	ss.finish(err)
}

// finish ends the session and gives back what it held on the server.
func (ss *session) finish(err error) {
	s := ss.srv
	ss.end(err)
	s.untrack(ss)
	s.release()
}

// reject answers a connection that is not served with a stream error.
func (ss *session) reject(cond, text string) {
	ss.srv.m.streamErrs.WithLabelValues(cond).Inc()
	if ss.t.writeOpen(ss.header("")) == nil {
		_ = ss.t.writeClose(cond, text)
	}
	ss.t.close(false)
}

// String implements tracked; it may be called from any goroutine.
func (ss *session) String() string {
	ss.mu.Lock()
	kind, remote, detached := ss.kind, ss.remote, ss.state == stateDetached
	ss.mu.Unlock()
	if full := ss.fullJID.Load(); full != nil {
		if detached {
			return "detached " + *full
		}
		return kind + " " + *full + " from " + remote
	}
	return kind + " client " + remote
}

// transport returns the session's transport, for goroutines other than its reader and
// flusher (a resumption replaces it).
func (ss *session) transport() transport {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.t
}

func (ss *session) header(to string) stream.Header {
	return stream.Header{NS: stream.NSClient, From: ss.srv.domain, To: to, ID: newID(), Version: "1.0", Lang: "en"}
}

// shutdown implements tracked.
func (ss *session) shutdown() { ss.abort(stream.SystemShutdown, "the XMPP server is shutting down") }

// kill implements tracked.
func (ss *session) kill() { ss.abort("", "killed"); ss.transport().close(true) }

// abort ends the session from another goroutine: the stream is closed with cond (nothing
// is sent when cond is empty). The first reason wins.
func (ss *session) abort(cond, text string) {
	ss.mu.Lock()
	if ss.aborted {
		ss.mu.Unlock()
		return
	}
	ss.aborted, ss.abortCond, ss.abortText = true, cond, text
	t := ss.t
	if ss.state == stateDetached && !ss.sm.reserved {
		ss.endDetachedLocked() // no goroutine serves a detached session
	}
	ss.mu.Unlock()
	ss.cancel(fmt.Errorf("session aborted: %s %s", cond, text))
	t.interrupt()
}

func (ss *session) abortReason() (bool, string, string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.aborted, ss.abortCond, ss.abortText
}

// write writes one element while negotiating (the handler goroutine owns the transport).
func (ss *session) write(b []byte) error { return ss.t.write(b) }

// negotiate runs the stream from its first header to a bound resource [RFC 6120 §4.3], or
// to the resumption of an earlier session [XEP-0198], which it returns.
func (ss *session) negotiate() (*session, error) {
	err := ss.negotiateStreams()
	if err != nil {
		return nil, err
	}
	if ss.resumed != nil {
		return ss.resumed, nil
	}
	return ss, nil
}

func (ss *session) negotiateStreams() error {
	s := ss.srv
	authDeadline := ss.started.Add(s.cfg.AuthTimeout)
	for {
		openDeadline := time.Now().Add(s.cfg.OpenTimeout)
		if authDeadline.Before(openDeadline) {
			openDeadline = authDeadline
		}
		ss.headerSent = false // a new stream: our header for it is not sent yet
		h, err := ss.t.readOpen(openDeadline)
		if err != nil {
			return err
		}
		hdr := ss.header(h.From)
		if tt, tcp := ss.t.(*tcpTransport); tcp && ss.checkHeader(h) == nil {
			// The header and the features in one write: a syscall and a TLS record fewer for
			// each of a login's three streams.
			if err := tt.write(append(stream.AppendOpen(nil, hdr), ss.features()...)); err != nil {
				return err
			}
			ss.headerSent = true
		} else {
			if err := ss.t.writeOpen(hdr); err != nil {
				return err
			}
			ss.headerSent = true
			if err := ss.checkHeader(h); err != nil {
				return err
			}
			if err := ss.write(ss.features()); err != nil {
				return err
			}
		}
		restart, err := ss.negotiateStep(authDeadline)
		if err != nil || !restart {
			return err
		}
		ss.t.restart()
	}
}

func (ss *session) checkHeader(h stream.Header) error {
	to := strings.TrimSuffix(strings.ToLower(h.To), ".")
	if to != ss.srv.domain {
		if h.To == "" {
			return &stream.Error{Condition: stream.HostUnknown, Text: "the stream header has no 'to' (it must be " + ss.srv.domain + ")"}
		}
		return &stream.Error{Condition: stream.HostUnknown, Text: "this server serves " + ss.srv.domain + ", not " + h.To}
	}
	major, _, _ := strings.Cut(h.Version, ".")
	if h.Version == "" || major == "0" {
		return &stream.Error{Condition: stream.UnsupportedVersion, Text: "XMPP 1.0 is required (version='1.0')"}
	}
	return nil
}

// features is the <stream:features/> for the negotiation's current state.
func (ss *session) features() []byte {
	b := []byte(`<stream:features xmlns:stream="` + stream.NSStreams + `">`)
	switch {
	case !ss.t.secure():
		b = append(b, `<starttls xmlns="`+nsTLS+`"><required/></starttls>`...)
	case !ss.authed:
		b = append(b, `<mechanisms xmlns="`+nsSASL+`">`...)
		for _, m := range mechanisms {
			b = append(b, "<mechanism>"+m+"</mechanism>"...)
		}
		b = append(b, `</mechanisms>`...)
	default:
		b = append(b, `<bind xmlns="`+nsBind+`"/><session xmlns="`+nsSession+`"><optional/></session><sm xmlns="`+nsSM+`"/>`...)
	}
	return append(b, "</stream:features>"...)
}

// negotiateStep reads elements until the stream restarts (after TLS or SASL: true) or the
// resource is bound (false).
func (ss *session) negotiateStep(deadline time.Time) (restart bool, err error) {
	for {
		e, err := ss.t.next(deadline)
		if err != nil {
			return false, err
		}
		switch {
		case isStreamError(e):
			ss.log.Info("client sent a stream error", "error", e.String())
			return false, errPeerError
		case !ss.t.secure():
			if e.Name != (xname(nsTLS, "starttls")) {
				return false, &stream.Error{Condition: stream.NotAuthorized, Text: "STARTTLS is required before anything else"}
			}
			if err := ss.write([]byte(`<proceed xmlns="` + nsTLS + `"/>`)); err != nil {
				return false, err
			}
			if err := ss.t.startTLS(ss.ctx, ss.srv.cfg.TLS, ss.srv.cfg.TLSTimeout); err != nil {
				var se *stream.Error
				if errors.As(err, &se) {
					return false, err
				}
				return false, &tlsError{err}
			}
			ss.log.Debug("tls established")
			return true, nil
		case !ss.authed:
			switch e.Name {
			case xname(nsSASL, "auth"):
				ok, err := ss.authenticate(e, deadline)
				if err != nil {
					return false, err
				}
				if ok {
					return true, nil
				}
			case xname(nsSASL, "abort"):
				if err := ss.saslFailure("aborted", ""); err != nil {
					return false, err
				}
			default:
				return false, &stream.Error{Condition: stream.NotAuthorized, Text: "authenticate (SASL) first"}
			}
		default:
			if e.Name == (xname(stream.NSClient, "iq")) && e.Get("type") == "set" && payload(e) == (xname(nsBind, "bind")) {
				return false, ss.bind(e)
			}
			if e.Name.Space == nsSM {
				done, err := ss.smBeforeBind(e)
				if err != nil || done {
					return false, err
				}
				continue
			}
			if e.IsStanza() {
				return false, &stream.Error{Condition: stream.NotAuthorized, Text: "bind a resource first"}
			}
			return false, &stream.Error{Condition: stream.UnsupportedStanza, Text: "unexpected <" + e.Name.Local + "/> after authentication"}
		}
	}
}

// tlsError is a failed TLS handshake: nothing more can be said on the connection.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

func isStreamError(e *stream.Element) bool {
	return e.Name.Space == stream.NSStreams && e.Name.Local == "error"
}

// bind binds a resource [RFC 6120 §7], starts the writer and registers the session. A
// resource already bound is taken over: the older session gets a conflict stream error.
func (ss *session) bind(iq *stream.Element) error {
	var req struct {
		Resource string `xml:"resource"`
	}
	if err := decodePayload(iq, &req); err != nil {
		if err := ss.write(errorReply(iq, "", stream.StanzaError{Type: "modify", Condition: "bad-request"}).AppendFrame(nil, stream.NSClient)); err != nil {
			return err
		}
		return ss.bindAgain()
	}
	res := strings.TrimSpace(req.Resource)
	if res == "" {
		res = newID()[:12]
	}
	bare, err := jid.Parse(ss.bare)
	if err != nil {
		return fmt.Errorf("bound user %q: %w", ss.bare, err)
	}
	full, err := bare.WithResource(res)
	if err != nil {
		// Not a valid resourcepart: refuse this request; the client may try another.
		reply := errorReply(iq, "", stream.StanzaError{Type: "modify", Condition: "bad-request"})
		if err := ss.write(reply.AppendFrame(nil, stream.NSClient)); err != nil {
			return err
		}
		return ss.bindAgain()
	}
	ss.resource = full.Resourcepart()
	ss.full = full.String()
	ss.fullJID.Store(&ss.full)

	// The bind result goes first in the queue, and its flusher starts only once the
	// session is routable: a client that has its JID can be sent to, and nothing routed to
	// it can overtake the result. From here on the handler goroutine writes nothing until
	// the session ends; flushers do.
	ss.lastWrite.touch()
	ss.out.hold()
	ss.deliver(result(iq, "", []byte(`<bind xmlns="`+nsBind+`"><jid>`+stream.Escape(ss.full)+`</jid></bind>`)))
	ss.bound = true
	old := ss.srv.router.bind(ss)
	go ss.flushLoop()
	ss.startTimer()
	if old != nil {
		ss.log.Info("resource taken over by a new session; closing the old one")
		old.abort(stream.Conflict, "replaced by a new session for the same resource")
	}
	ss.log.Info("session established", "callbridge", ss.cb.JID())
	return nil
}

// bindAgain waits for another bind request after a refused one.
func (ss *session) bindAgain() error {
	for {
		e, err := ss.t.next(ss.started.Add(ss.srv.cfg.AuthTimeout))
		if err != nil {
			return err
		}
		if e.Name == (xname(stream.NSClient, "iq")) && e.Get("type") == "set" && payload(e) == (xname(nsBind, "bind")) {
			return ss.bind(e)
		}
		return &stream.Error{Condition: stream.NotAuthorized, Text: "bind a resource first"}
	}
}

// deliver implements endpoint: it queues e for the client.
func (ss *session) deliver(e *stream.Element) { ss.send(e.AppendFrame(nil, stream.NSClient)) }

// send queues a stanza already serialised, and starts a flusher if none runs. A client that
// lets its queue fill up does not read: it is disconnected rather than allowed to hold
// anyone up.
func (ss *session) send(b []byte) { ss.queue(b, true) }

// sendNonza queues an element that is not a stanza (XEP-0198's <a/>, <r/>, <enabled/>...):
// it is not counted, nor kept for a resumption.
func (ss *session) sendNonza(b []byte) { ss.queue(b, false) }

func (ss *session) queue(b []byte, stanza bool) {
	ok, start := ss.out.push(b, stanza)
	if !ok {
		ss.overflow()
		return
	}
	if start {
		go ss.flushLoop()
	}
}

// outQueue is a session's outbound queue. It is bounded like a channel of queueLen elements
// and queueBytes bytes, but holds memory only for what is queued: an idle session, the
// common case, holds none (a channel of queueLen would hold 12 KiB). An empty element is a
// keepalive.
//
// A flusher goroutine drains it while it has something: push asks its caller to start one
// when none runs, and the flusher ends when it finds the queue empty. So an idle session
// has no goroutine for its output.
//
// With stream management [XEP-0198] enabled, the stanzas queued are also counted and kept,
// in order, until the client acknowledges them, within the same bounds; while the session
// is detached they are only kept, to be sent when it resumes.
type outQueue struct {
	mu       sync.Mutex
	items    [][]byte
	bytes    int
	flushing bool // a flusher runs (or will, or the queue is drained by hand, in a benchmark)
	closed   bool // the session is ending or its connection failed: nothing more is queued
	flushers sync.WaitGroup

	sm       bool     // stream management is enabled
	detached bool     // no transport: stanzas are kept, nothing is written
	sent     uint32   // stanzas queued since enabled (mod 2^32)
	acked    uint32   // the client's last h
	received uint32   // stanzas handled from the client since enabled (mod 2^32)
	unacked  [][]byte // stanzas queued and not acknowledged, oldest first
	unackedN int      // their bytes
	sinceReq int      // stanzas queued since the last <r/>
	reqOut   bool     // an <r/> awaits its <a/>
}

// push queues b. It reports false when the queue is full, and start when the caller must
// start a flusher. Once the queue is closed, b is dropped.
func (q *outQueue) push(b []byte, stanza bool) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true, false
	}
	if stanza && q.sm {
		if len(q.unacked) >= queueLen || q.unackedN+len(b) > queueBytes ||
			q.detached && q.unackedN+len(b) > detachedBytes {
			return false, false
		}
		q.unacked = append(q.unacked, b)
		q.unackedN += len(b)
		q.sent++
		q.sinceReq++
	}
	if q.detached {
		return true, false // kept in unacked if it is a stanza; a nonza is moot
	}
	if len(q.items) >= queueLen || q.bytes+len(b) > queueBytes {
		return false, false
	}
	q.items = append(q.items, b)
	q.bytes += len(b)
	if stanza && q.sm && q.sinceReq >= ackEvery && !q.reqOut {
		q.items = append(q.items, smRequest)
		q.sinceReq, q.reqOut = 0, true
	}
	return true, q.startLocked()
}

// startLocked reports whether the caller must start a flusher, and counts it.
func (q *outQueue) startLocked() bool {
	if q.flushing || len(q.items) == 0 {
		return false
	}
	q.flushing = true
	q.flushers.Add(1)
	return true
}

// hold makes the caller the starter of the next flusher: until it starts one, what is
// queued waits.
func (q *outQueue) hold() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushing = true
	q.flushers.Add(1)
}

// pushKeepalive queues a keepalive if nothing is queued or being written; with stream
// management, an <r/> instead if stanzas await their acknowledgement and none was asked
// for.
func (q *outQueue) pushKeepalive() (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.detached || q.flushing || len(q.items) > 0 {
		return false
	}
	if q.sm && len(q.unacked) > 0 && !q.reqOut {
		q.items = append(q.items, smRequest)
		q.sinceReq, q.reqOut = 0, true
	} else {
		q.items = append(q.items, nil)
	}
	return q.startLocked()
}

// take moves everything queued to the end of dst.
func (q *outQueue) take(dst [][]byte) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeLocked(dst)
}

func (q *outQueue) takeLocked(dst [][]byte) [][]byte {
	dst = append(dst, q.items...)
	clear(q.items)
	q.items = q.items[:0]
	if cap(q.items) > 16 {
		q.items = nil // a burst's memory is not kept
	}
	q.bytes = 0
	return dst
}

// next is take for the flusher: when there is nothing to write (or the queue is closed or
// detached) it reports false, and the flusher must end.
func (q *outQueue) next(dst [][]byte) ([][]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.detached || len(q.items) == 0 {
		q.flushing = false
		return dst, false
	}
	return q.takeLocked(dst), true
}

// flusherExit records that the flusher ended early (its write failed).
func (q *outQueue) flusherExit() {
	q.mu.Lock()
	q.flushing = false
	q.mu.Unlock()
}

// stop closes the queue without waiting (the connection failed).
func (q *outQueue) stop() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// close closes the queue, waits for the flusher and returns what it left, and the stanzas
// never acknowledged (with stream management).
func (q *outQueue) close() (left, unacked [][]byte) {
	q.stop()
	q.flushers.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	unacked = q.unacked
	q.unacked, q.unackedN = nil, 0
	return q.takeLocked(nil), unacked
}

// flushLoop is a flusher: it writes what is queued until the queue is empty.
func (ss *session) flushLoop() {
	defer ss.out.flushers.Done()
	var arr [8][]byte
	for {
		batch, ok := ss.out.next(arr[:0])
		if !ok {
			return
		}
		err := ss.writeBatch(batch)
		clear(batch)
		if err != nil {
			ss.writeFailed(err)
			ss.out.flusherExit()
			return
		}
		ss.lastWrite.touch()
	}
}

// writeBatch writes elements taken from the queue: on TCP in one write, on WebSocket one
// message each. An empty element is a keepalive.
func (ss *session) writeBatch(batch [][]byte) error {
	if len(batch) == 0 {
		return nil
	}
	if _, tcp := ss.t.(*tcpTransport); tcp {
		if len(batch) == 1 && len(batch[0]) > 0 {
			return ss.t.write(batch[0])
		}
		n := 0
		for _, b := range batch {
			n += max(len(b), 1)
		}
		buf := make([]byte, 0, n)
		for _, b := range batch {
			if len(b) == 0 {
				b = keepaliveSpace
			}
			buf = append(buf, b...)
		}
		return ss.t.write(buf)
	}
	for _, b := range batch {
		var err error
		if len(b) == 0 {
			err = ss.t.keepalive()
		} else {
			err = ss.t.write(b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keepaliveSpace is a whitespace keepalive in a TCP stream [RFC 6120 §4.6.1].
var keepaliveSpace = []byte(" ")

func (ss *session) overflow() {
	if aborted, _, _ := ss.abortReason(); aborted {
		return
	}
	ss.log.Warn("outbound queue full: the client does not read; disconnecting it")
	ss.srv.m.streamErrs.WithLabelValues(stream.PolicyViolation).Inc()
	ss.abort("", "outbound queue full")
	ss.transport().close(true)
}

// tickInterval is how often a bound session's timer looks at it.
func (ss *session) tickInterval() time.Duration {
	cfg := ss.srv.cfg
	return max(min(cfg.KeepAlive, cfg.IdleTimeout/4), 5*time.Millisecond)
}

// startTimer arms the session's timer. Its callback runs on a goroutine of its own, briefly,
// and writes nothing itself: it queues pings and keepalives like any other output.
func (ss *session) startTimer() {
	ss.tickMu.Lock()
	defer ss.tickMu.Unlock()
	ss.tickStopped = false
	if ss.timer == nil {
		ss.timer = time.AfterFunc(ss.tickInterval(), ss.tick)
	} else {
		ss.timer.Reset(ss.tickInterval())
	}
}

// stopTimer stops the timer; once it returns, no callback does anything.
func (ss *session) stopTimer() {
	ss.tickMu.Lock()
	defer ss.tickMu.Unlock()
	ss.tickStopped = true
	if ss.timer != nil {
		ss.timer.Stop()
	}
}

// tick watches for silence: an XEP-0199 ping when half the idle timeout has passed without
// a byte from the client, connection-timeout when all of it has (a resumable session is
// detached instead); and a keepalive when nothing was written for KeepAlive.
func (ss *session) tick() {
	ss.tickMu.Lock()
	defer ss.tickMu.Unlock()
	if ss.tickStopped {
		return
	}
	cfg := ss.srv.cfg
	now := ss.srv.mono()
	lastRead := ss.transport().lastRead()
	idle := now - lastRead
	switch {
	case idle >= cfg.IdleTimeout:
		text := fmt.Sprintf("nothing received for %s", cfg.IdleTimeout.Round(time.Millisecond))
		if !ss.drop(text) {
			ss.abort(stream.ConnectionTimeout, text)
		}
		return
	case idle >= cfg.IdleTimeout/2 && ss.pingedAt != lastRead:
		ss.pingedAt = lastRead
		ss.pings++
		ping := newStanza("iq", "get", fmt.Sprintf("ping-%d", ss.pings), ss.srv.domain, ss.full, []byte(`<ping xmlns="`+nsPing+`"/>`))
		ss.deliver(ping)
	case now-ss.lastWrite.last() >= cfg.KeepAlive:
		if ss.out.pushKeepalive() {
			go ss.flushLoop()
		}
	}
	ss.timer.Reset(ss.tickInterval())
}

// writeFailed handles a failed write: the connection is lost. A resumable session is
// detached; any other ends.
func (ss *session) writeFailed(err error) {
	if aborted, _, _ := ss.abortReason(); aborted {
		ss.log.Debug("write to client failed after the session was ended", "err", err)
	} else {
		ss.log.Info("write to client failed; closing", "err", err)
	}
	if ss.drop("write failed") {
		return
	}
	ss.out.stop()
	ss.abort("", "write failed")
	ss.transport().close(true)
}

// serveStanzas reads stanzas until the stream ends [RFC 6120 §8].
func (ss *session) serveStanzas() error {
	for {
		e, err := ss.t.next(time.Time{}) // silence is watched by the session's timer
		if err != nil {
			return err
		}
		if err := ss.handle(e); err != nil {
			return err
		}
	}
}

func (ss *session) handle(e *stream.Element) error {
	if isStreamError(e) {
		ss.log.Info("client sent a stream error", "error", e.String())
		return errPeerError
	}
	if e.Name.Space == nsSM {
		return ss.smElement(e)
	}
	if !e.IsStanza() || e.Name.Space != stream.NSClient {
		return &stream.Error{Condition: stream.UnsupportedStanza, Text: "<" + e.Name.Local + "/> is not a stanza of jabber:client"}
	}
	// The server stamps the sender's full JID [RFC 6120 §8.1.2.1]; a client may write its own
	// full or bare JID, nothing else.
	if from := e.Get("from"); from != "" {
		j, err := jid.Parse(from)
		if err != nil || (j.String() != ss.full && j.String() != ss.bare) {
			return &stream.Error{Condition: stream.InvalidFrom, Text: "'from' must be your own address, " + ss.full}
		}
	}
	ss.out.handled()
	e.Set("from", ss.full)
	to := e.Get("to")
	if to != "" {
		if j, err := jid.Parse(to); err == nil {
			to = j.String()
			e.Set("to", to)
		}
	}
	switch e.Name.Local {
	case "presence":
		if to == "" && !ss.rate.take(ss.srv.mono()) {
			// Broadcast presence fans out to every contact: it counts against the limit.
			ss.srv.m.refused.WithLabelValues("sender-rate").Inc()
			ss.srv.bounceText(e, ss, "policy-violation", "wait", "too many stanzas; slow down")
			return nil
		}
		ss.presence(e, to)
		if to == "" {
			return nil // broadcast presence: sent to the contacts by presence()
		}
	case "iq":
		if text := checkIQ(e); text != "" {
			ss.deliver(errorReply(e, "", stream.StanzaError{Type: "modify", Condition: "bad-request", Text: text}))
			return nil
		}
		if to == "" || to == ss.bare {
			ss.accountIQ(e)
			return nil
		}
	case "message":
		if to == "" {
			e.Set("to", ss.bare) // a message without 'to' is for the sender's own account
		}
	}
	if ss.guest && !ss.guestMayAddress(e, to) {
		ss.srv.m.refused.WithLabelValues("guest").Inc()
		ss.srv.bounceText(e, ss, "forbidden", "auth", "a guest may address only its meeting's Call Bridge")
		return nil
	}
	if !ss.mayRoute(e, to) {
		return nil
	}
	if e.Name.Local == "presence" {
		switch typ := e.Get("type"); typ {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			// Subscriptions between users of this server: handled here, on both rosters.
			if j, err := jid.Parse(to); err == nil && ss.srv.isLocalUser(j.Bare().String()) {
				ss.subscription(typ, j.Bare().String())
				return nil
			}
		case "probe":
			return nil // the server answers probes itself, at initial presence
		}
	}
	ss.srv.route(e, ss)
	return nil
}

// guestMayAddress says whether a guest may send e to: the server, its own account, and the
// Call Bridge that authenticated it (its domain and the addresses at it: its meeting's space
// and participants, which the Call Bridge itself admits or refuses). Errors and iq results
// are answers and may go anywhere. Anything else, any user by bare or full JID or another
// component, is refused.
func (ss *session) guestMayAddress(e *stream.Element, to string) bool {
	switch typ := e.Get("type"); {
	case typ == "error", typ == "result" && e.Name.Local == "iq":
		return true
	}
	if to == "" || to == ss.srv.domain || to == ss.bare || strings.HasPrefix(to, ss.bare+"/") {
		return true
	}
	if ss.cb == nil {
		return false
	}
	j, err := jid.Parse(to)
	return err == nil && j.Domainpart() == ss.cb.JID()
}

// mayRoute applies the sender's limit to a stanza for someone else (the server and the
// sender's own account are not limited): over it, the stanza is refused with
// policy-violation and the flood is logged once in a while.
func (ss *session) mayRoute(e *stream.Element, to string) bool {
	s := ss.srv
	if to == "" || to == s.domain || to == ss.bare || strings.HasPrefix(to, ss.bare+"/") {
		return true
	}
	if ss.rate.take(s.mono()) {
		return true
	}
	s.m.refused.WithLabelValues("sender-rate").Inc()
	s.limitLog.warn(s.log, "sender-rate:"+ss.bare, "client over its stanza rate; stanzas refused with policy-violation",
		"user", ss.bare, "jid", ss.full, "rate_per_second", s.cfg.SenderRate, "burst", s.cfg.SenderBurst)
	s.bounceText(e, ss, "policy-violation", "wait", fmt.Sprintf("too many stanzas: at most %g a second; slow down", s.cfg.SenderRate))
	return false
}

// presence tracks the session's availability and its directed presence [RFC 6121 §4.6].
func (ss *session) presence(e *stream.Element, to string) {
	typ := e.Get("type")
	if to == "" {
		switch typ {
		case "":
			inner := e.Inner
			ss.lastPresence.Store(&inner)
			initial := !ss.available.Swap(true)
			ss.broadcastPresence("", inner, initial)
		case "unavailable":
			ss.lastPresence.Store(nil)
			if ss.available.Swap(false) {
				ss.broadcastPresence("unavailable", e.Inner, false)
			}
		}
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch typ {
	case "":
		if ss.directed == nil {
			ss.directed = make(map[string]struct{})
		}
		ss.directed[to] = struct{}{}
	case "unavailable":
		delete(ss.directed, to)
	}
}

// accountIQ answers an iq the client sent to its own account (no 'to', or its bare JID).
func (ss *session) accountIQ(e *stream.Element) {
	typ := e.Get("type")
	if typ != "get" && typ != "set" {
		return // answers to the server's pings
	}
	if ss.rosterIQ(e, typ) {
		return
	}
	ss.srv.serverStanza(e, ss)
}

// end closes the session: the stream error (if any) or the end of the stream, then the
// connection; then it tells the session's contacts and its Call Bridge.
func (ss *session) end(err error) {
	s := ss.srv
	if ss.bound {
		s.router.unbind(ss)
	}
	ss.mu.Lock()
	linkless := ss.sm.linkless // detached: the connection is gone already
	ss.state = stateEnding
	ss.mu.Unlock()
	ss.smForget()
	if linkless {
		s.m.detached.Dec()
	}
	req := closeRequest{goodbye: !linkless}
	reason := "closed"
	aborted, acond, atext := ss.abortReason()
	var se *stream.Error
	var te *tlsError
	var hce *handledCountError
	switch {
	case linkless:
		reason = "timeout"
		if aborted {
			reason = "error"
			if acond == stream.SystemShutdown || acond == stream.Conflict {
				reason = "closed"
			}
		}
	case aborted:
		req.cond, req.text = acond, atext
		req.goodbye = acond != ""
		switch acond {
		case stream.ConnectionTimeout:
			reason = "timeout"
		case stream.SystemShutdown, stream.Conflict:
		default:
			reason = "error"
		}
	case err == nil, errors.Is(err, stream.ErrClosed):
		// The client closed its stream: close ours.
	case errors.As(err, &se):
		req.cond, req.text = se.Condition, se.Text
		reason = "error"
	case errors.As(err, &hce):
		req.cond, req.text, req.app = undefinedCondition, hce.Error(), hce.appCondition()
		reason = "error"
	case isTimeout(err):
		req.cond, req.text = stream.ConnectionTimeout, timeoutText(ss)
		reason = "timeout"
	case errors.Is(err, errPeerError):
		reason = "error"
	case errors.As(err, &te), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		req.goodbye = false
	default:
		req.goodbye = false
		reason = "error"
	}
	if req.cond != "" {
		s.m.streamErrs.WithLabelValues(req.cond).Inc()
	}
	var unacked [][]byte
	if ss.bound {
		// No more timer callbacks or flushers; then what is left in the queue, and the end
		// of the stream last.
		ss.stopTimer()
		var left [][]byte
		left, unacked = ss.out.close()
		if req.goodbye {
			if err := ss.writeBatch(left); err != nil {
				ss.log.Debug("could not write what was queued", "err", err)
			} else if err := ss.writeEnd(req); err != nil {
				ss.log.Debug("could not write the end of the stream", "err", err)
			}
		}
	} else if req.goodbye {
		if !ss.headerSent {
			_ = ss.t.writeOpen(ss.header(""))
		}
		_ = ss.writeEnd(req)
	}
	if !linkless {
		ss.t.close(!req.goodbye)
		ss.gauge.Dec()
	}
	ss.cancel(nil)

	attrs := []any{"duration", time.Since(ss.started).Round(time.Millisecond), "reason", reason}
	if req.cond != "" {
		attrs = append(attrs, "stream_error", req.cond, "text", req.text)
	}
	if err != nil && !errors.Is(err, stream.ErrClosed) && !aborted {
		attrs = append(attrs, "err", err)
	}
	ss.log.Info("client disconnected", attrs...)

	if !ss.bound {
		return
	}
	ss.mu.Lock()
	directed := ss.directed
	ss.directed = nil
	ss.mu.Unlock()
	for to := range directed {
		s.route(newStanza("presence", "unavailable", "", ss.full, to, nil), discard{})
	}
	if ss.available.Swap(false) {
		ss.lastPresence.Store(nil)
		ss.broadcastPresence("unavailable", nil, false)
	}
	ss.bounceUnacked(unacked)
	if ss.cb != nil {
		s.relay.SessionEnded(ss.cb, ss.full, reason)
	}
}

// writeEnd writes the stream error of req, if any, and the end of the stream.
func (ss *session) writeEnd(req closeRequest) error {
	if req.app == nil {
		return ss.t.writeClose(req.cond, req.text)
	}
	b := appendStreamError(nil, req.cond, req.text)
	b = append(b[:len(b)-len("</stream:error>")], req.app...)
	if err := ss.t.write(append(b, "</stream:error>"...)); err != nil {
		return err
	}
	return ss.t.writeClose("", "")
}

func timeoutText(ss *session) string {
	switch {
	case !ss.headerSent:
		return "no stream header in time"
	case !ss.bound:
		return "not authenticated in time"
	}
	return "the connection timed out"
}

// sessionLog logs with the session's attributes (transport, remote address, user, JID).
// They are added to each line rather than kept preformatted in a logger of the session's
// own (slog's With): a session logs at its start and end, and an idle one should not hold
// a copy of its attributes' text.
type sessionLog struct{ ss *session }

func (l sessionLog) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args) }
func (l sessionLog) Info(msg string, args ...any)  { l.log(slog.LevelInfo, msg, args) }
func (l sessionLog) Warn(msg string, args ...any)  { l.log(slog.LevelWarn, msg, args) }

// With returns a logger with the session's attributes and args, for a few lines in a row.
func (l sessionLog) With(args ...any) *slog.Logger {
	return l.ss.srv.log.With(append(l.attrs(), args...)...)
}

func (l sessionLog) attrs() []any {
	ss := l.ss
	a := make([]any, 0, 12)
	ss.mu.Lock()
	a = append(a, "transport", ss.kind, "remote", ss.remote)
	ss.mu.Unlock()
	if full := ss.fullJID.Load(); full != nil {
		return append(a, "user", ss.bare, "jid", *full)
	}
	if ss.authed {
		a = append(a, "user", ss.bare)
	}
	return a
}

func (l sessionLog) log(level slog.Level, msg string, args []any) {
	lg := l.ss.srv.log
	if !lg.Enabled(context.Background(), level) {
		return
	}
	lg.Log(context.Background(), level, msg, append(l.attrs(), args...)...)
}

// discard is an endpoint that drops what it is given (errors about stanzas the server sent
// on behalf of a session that has ended).
type discard struct{}

func (discard) deliver(*stream.Element) {}
