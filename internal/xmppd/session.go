package xmppd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// sessionLog logs with the session's attributes (transport, remote address, user, JID).
// They are added to each line rather than kept preformatted in a logger of the session's
// own (slog's With): a session logs at its start and end, and an idle one should not hold
// a copy of its attributes' text.
type sessionLog struct{ ss *session }

func (l sessionLog) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args) }

func (l sessionLog) Info(msg string, args ...any) { l.log(slog.LevelInfo, msg, args) }

func (l sessionLog) Warn(msg string, args ...any) { l.log(slog.LevelWarn, msg, args) }

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
