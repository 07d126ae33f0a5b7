package xmppd

// The end of a session: which stream error (if any) closes it, the close itself, and who is
// told afterwards (contacts, the Call Bridge, senders of unacknowledged stanzas).

import (
	"errors"
	"io"
	"mellium.im/xmpp/jid"
	"time"

	"confab.dev/confab/internal/stream"
)

type closeRequest struct {
	goodbye    bool // the peer can still be written to
	cond, text string
	app        []byte // an application-specific condition, after cond
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
	aborted, acond, atext := ss.abortReason()
	var req closeRequest
	var reason string
	switch {
	case linkless:
		req, reason = closeRequest{}, detachedReason(aborted, acond)
	case aborted:
		req, reason = abortedClose(acond, atext)
	default:
		req, reason = ss.closeFor(err)
	}
	if req.cond != "" {
		s.m.streamErrs.WithLabelValues(req.cond).Inc()
	}
	unacked := ss.closeStream(req, linkless)
	ss.cancel(nil)
	ss.logEnd(err, aborted, req, reason)
	if ss.bound {
		ss.tellOthers(reason, unacked)
	}
}

// Why a session ended, as the Call Bridge is told (session-end reason).
const (
	reasonClosed  = "closed"
	reasonTimeout = "timeout"
	reasonError   = "error"
)

// detachedReason is the reason of a detached session's end: it timed out, unless it was
// ended (an error; or closed by a shutdown or a takeover).
func detachedReason(aborted bool, acond string) string {
	switch {
	case !aborted:
		return reasonTimeout
	case acond == stream.SystemShutdown || acond == stream.Conflict:
		return reasonClosed
	}
	return reasonError
}

// abortedClose is the close of a session ended from another goroutine (abort): with its
// condition, or without a word when it has none.
func abortedClose(acond, atext string) (closeRequest, string) {
	req := closeRequest{goodbye: acond != "", cond: acond, text: atext}
	switch acond {
	case stream.ConnectionTimeout:
		return req, reasonTimeout
	case stream.SystemShutdown, stream.Conflict:
		return req, reasonClosed
	}
	return req, reasonError
}

// closeFor is the close of a session whose reading ended with err.
func (ss *session) closeFor(err error) (closeRequest, string) {
	var se *stream.Error
	var te *tlsError
	var hce *handledCountError
	switch {
	case err == nil, errors.Is(err, stream.ErrClosed):
		return closeRequest{goodbye: true}, reasonClosed // the client closed its stream: close ours
	case errors.As(err, &se):
		return closeRequest{goodbye: true, cond: se.Condition, text: se.Text}, reasonError
	case errors.As(err, &hce):
		return closeRequest{goodbye: true, cond: undefinedCondition, text: hce.Error(), app: hce.appCondition()}, reasonError
	case isTimeout(err):
		return closeRequest{goodbye: true, cond: stream.ConnectionTimeout, text: timeoutText(ss)}, reasonTimeout
	case errors.Is(err, errPeerError):
		return closeRequest{goodbye: true}, reasonError
	case errors.As(err, &te), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return closeRequest{}, reasonClosed // nothing can be said on the connection
	}
	return closeRequest{}, reasonError
}

// closeStream writes what is left and the end of the stream (when req says the peer can
// still be written to) and closes the connection. It returns the stanzas the client never
// acknowledged [XEP-0198].
func (ss *session) closeStream(req closeRequest, linkless bool) (unacked [][]byte) {
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
	return unacked
}

func (ss *session) logEnd(err error, aborted bool, req closeRequest, reason string) {
	attrs := []any{"duration", time.Since(ss.started).Round(time.Millisecond), "reason", reason}
	if req.cond != "" {
		attrs = append(attrs, "stream_error", req.cond, "text", req.text)
	}
	if err != nil && !errors.Is(err, stream.ErrClosed) && !aborted {
		attrs = append(attrs, "err", err)
	}
	ss.log.Info("client disconnected", attrs...)
}

// tellOthers tells those who care that a bound session ended: the addresses it sent
// directed presence to, its contacts, the senders of what it never acknowledged, and the
// Call Bridge that authenticated it.
func (ss *session) tellOthers(reason string, unacked [][]byte) {
	s := ss.srv
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

// componentGone tells every session that had sent directed presence to an address of the
// component domain (a client in a meeting of that Call Bridge) that the address is gone, as
// a server does for a contact whose server went away [RFC 6121 §4.6.3]: unavailable
// presence from the address's bare JID, saying why. Without it a browser would go on showing
// a meeting that ended with the Call Bridge's link.
func (s *Server) componentGone(domain string) {
	var text stream.Builder
	text.Elem("status", "The Call Bridge "+domain+" is no longer connected to the XMPP server")
	told := 0
	waiting := map[string]struct{}{}
	for _, ss := range s.router.allSessions() {
		var gone []string
		ss.mu.Lock()
		for to := range ss.directed {
			if j, err := jid.Parse(to); err == nil && j.Domainpart() == domain {
				gone = append(gone, j.Bare().String())
				delete(ss.directed, to)
			}
		}
		ss.mu.Unlock()
		seen := map[string]bool{}
		for _, from := range gone {
			if seen[from] {
				continue
			}
			seen[from] = true
			ss.deliver(newStanza("presence", "unavailable", "", from, ss.full, text.B))
			told++
		}
		if len(gone) > 0 {
			waiting[ss.full] = struct{}{}
		}
	}
	if len(waiting) > 0 {
		s.orphansMu.Lock()
		if s.orphans == nil {
			s.orphans = map[string]map[string]struct{}{}
		}
		if len(s.orphans) < maxOrphanedComponents {
			s.orphans[domain] = waiting
		}
		s.orphansMu.Unlock()
	}
	if told > 0 {
		s.log.Info("told the sessions in meetings of a component that left", "component", domain, "presences", told)
	}
}

// maxOrphanedComponents bounds the components whose departure the server remembers.
const maxOrphanedComponents = 64

// componentBack tells the sessions that were told a component went away (componentGone),
// and are still there, that it is back: available presence from its domain, so that a
// browser rejoins its meeting at once rather than at its next retry.
func (s *Server) componentBack(domain string) {
	s.orphansMu.Lock()
	waiting := s.orphans[domain]
	delete(s.orphans, domain)
	s.orphansMu.Unlock()
	told := 0
	for full := range waiting {
		j, err := jid.Parse(full)
		if err != nil {
			continue
		}
		if ss := s.router.session(j.Bare().String(), j.Resourcepart()); ss != nil {
			ss.deliver(newStanza("presence", "", "", domain, full, nil))
			told++
		}
	}
	if told > 0 {
		s.log.Info("told the sessions of a component's meetings that it is back", "component", domain, "sessions", told)
	}
}
