package xmppd

// Stream negotiation [RFC 6120 §4.3]: from the first stream header through STARTTLS and
// SASL to a bound resource (or a resumption [XEP-0198], sm.go).

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/stream"
)

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
	var x stream.Builder
	x.Open("stream:features", "xmlns:stream", stream.NSStreams)
	switch {
	case !ss.t.secure():
		x.Open("starttls", "xmlns", nsTLS).Empty("required").End("starttls")
	case !ss.authed:
		x.Open("mechanisms", "xmlns", nsSASL)
		for _, m := range mechanisms {
			x.Elem("mechanism", m)
		}
		x.End("mechanisms")
	default:
		x.Empty("bind", "xmlns", nsBind)
		x.Open("session", "xmlns", nsSession).Empty("optional").End("session")
		x.Empty("sm", "xmlns", nsSM)
	}
	return x.End("stream:features").B
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
			var x stream.Builder
			if err := ss.write(x.Empty("proceed", "xmlns", nsTLS).B); err != nil {
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
	var x stream.Builder
	ss.deliver(result(iq, "", x.Open("bind", "xmlns", nsBind).Elem("jid", ss.full).End("bind").B))
	ss.bound = true
	old := ss.srv.router.bind(ss)
	ss.startFlusher()
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
