package xmppd

// A bound session's timer: keepalives, XEP-0199 pings and the idle timeout, on the server's
// monotonic clock.

import (
	"fmt"
	"time"

	"confab.dev/confab/internal/stream"
)

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
		ping := newStanza("iq", "get", fmt.Sprintf("ping-%d", ss.pings), ss.srv.domain, ss.full, pingPayload())
		ss.deliver(ping)
	case now-ss.lastWrite.last() >= cfg.KeepAlive:
		if ss.out.pushKeepalive() {
			ss.startFlusher()
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
