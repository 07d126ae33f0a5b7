package xmppd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"confab.dev/confab/internal/sameorigin"
	"confab.dev/confab/internal/stream"
)

// wsCloseGrace bounds the wait for the peer's WebSocket close frame.
const wsCloseGrace = time.Second

// wsSubprotocol is the WebSocket subprotocol of RFC 7395 §3.1.
const wsSubprotocol = "xmpp"

// WebSocketHandler returns the handler of XMPP over WebSocket [RFC 7395], to be mounted at
// /xmpp-websocket on the caller's HTTPS server.
//
// A handshake that does not offer the "xmpp" subprotocol is refused with HTTP 400 before the
// upgrade; one from an Origin not allowed (Config.AllowedOrigins) with HTTP 403. A message
// larger than MaxStanzaC2S makes the WebSocket library close the connection with status 1009
// (message too big): RFC 7395 has no way to say more once a frame is too large to read.
func (s *Server) WebSocketHandler() http.Handler {
	return http.HandlerFunc(s.serveWebSocket)
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !offersSubprotocol(r, wsSubprotocol) {
		s.log.Info("websocket handshake refused: no xmpp subprotocol", "remote", r.RemoteAddr, "offered", r.Header.Values("Sec-WebSocket-Protocol"))
		http.Error(w, `the WebSocket subprotocol "xmpp" is required (RFC 7395)`, http.StatusBadRequest)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// Browsers send an Origin; other clients need none.
		if err := sameorigin.Allowed(r, origin, s.cfg.AllowedOrigins); err != nil {
			s.log.Info("websocket handshake refused: origin not allowed", "remote", r.RemoteAddr, "origin", origin, "err", err)
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
	}
	s.mu.Lock()
	shutting := s.shuttingDown
	if !shutting {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if shutting {
		http.Error(w, "the XMPP server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{wsSubprotocol},
		// The Origin was checked above, against full origins (scheme, host and port).
		InsecureSkipVerify: true,
	})
	if err != nil {
		s.log.Info("websocket handshake failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c.SetReadLimit(int64(s.cfg.MaxStanzaC2S))
	t := newWSTransport(c, r, stream.Limits{MaxStanza: s.cfg.MaxStanzaC2S}, s.cfg.WriteTimeout, s.mono)
	s.runSession(t)
}

func offersSubprotocol(r *http.Request, want string) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == want {
				return true
			}
		}
	}
	return false
}

type wsMessage struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

// wsTransport is a client stream over WebSocket [RFC 7395]: one element per text message,
// <open/> and <close/> in the framing namespace, TLS from the HTTPS listener.
type wsTransport struct {
	c            *websocket.Conn
	remote       string
	tls          bool
	limits       stream.Limits
	writeTimeout time.Duration
	act          activity

	ctx    context.Context // ends the pump's read; cancelled by close
	cancel context.CancelFunc

	startPump sync.Once
	msgs      chan wsMessage
	pumpDone  chan struct{}

	intrOnce sync.Once
	intr     chan struct{}
	closed   sync.Once
}

func newWSTransport(c *websocket.Conn, r *http.Request, limits stream.Limits, writeTimeout time.Duration, clock func() time.Duration) *wsTransport {
	t := &wsTransport{
		c:            c,
		remote:       r.RemoteAddr,
		tls:          r.TLS != nil,
		limits:       limits,
		writeTimeout: writeTimeout,
		msgs:         make(chan wsMessage),
		pumpDone:     make(chan struct{}),
		intr:         make(chan struct{}),
	}
	t.act.start(clock)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

func (t *wsTransport) kind() string            { return transportWebSocket }
func (t *wsTransport) remoteAddr() string      { return t.remote }
func (t *wsTransport) lastRead() time.Duration { return t.act.last() }

// secure is true: RFC 7395 streams get their security from the HTTPS listener (or a
// TLS-terminating proxy in front of it), so SASL is offered at once.
func (t *wsTransport) secure() bool { return true }

// pump reads messages for next, so that a read can time out or be interrupted without
// closing the WebSocket (a cancelled Read context would close it).
func (t *wsTransport) pump() {
	defer close(t.pumpDone)
	for {
		typ, data, err := t.c.Read(t.ctx)
		if err == nil {
			t.act.touch()
		}
		select {
		case t.msgs <- wsMessage{typ, data, err}:
		case <-t.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (t *wsTransport) interrupt() {
	t.intrOnce.Do(func() { close(t.intr) })
}

func (t *wsTransport) read(deadline time.Time) (*stream.Element, error) {
	t.startPump.Do(func() { go t.pump() })
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		tm := time.NewTimer(time.Until(deadline))
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case <-t.intr:
		return nil, errInterrupted
	default:
	}
	var m wsMessage
	select {
	case m = <-t.msgs:
	case <-timeout:
		return nil, fmt.Errorf("websocket read: %w", errDeadline)
	case <-t.intr:
		return nil, errInterrupted
	}
	if m.err != nil {
		switch {
		case errors.Is(m.err, websocket.ErrMessageTooBig):
			return nil, &stream.Error{Condition: stream.PolicyViolation, Text: "stanza too large", Err: m.err}
		case websocket.CloseStatus(m.err) != -1, errors.Is(m.err, io.EOF):
			return nil, io.EOF
		}
		return nil, m.err
	}
	if m.typ != websocket.MessageText {
		return nil, &stream.Error{Condition: stream.BadFormat, Text: "XMPP over WebSocket uses text messages only (RFC 7395 §3.2)"}
	}
	return stream.Parse(m.data, stream.NSClient, t.limits)
}

// errDeadline is a read that timed out; isTimeout recognises it.
var errDeadline = fmt.Errorf("deadline exceeded: %w", context.DeadlineExceeded)

func (t *wsTransport) readOpen(deadline time.Time) (stream.Header, error) {
	e, err := t.read(deadline)
	if err != nil {
		return stream.Header{}, err
	}
	if e.Name.Space != stream.NSFraming || e.Name.Local != "open" {
		return stream.Header{}, &stream.Error{Condition: stream.NotWellFormed, Text: "expected <open xmlns='" + stream.NSFraming + "'/>"}
	}
	h := stream.Header{NS: stream.NSClient, To: e.Get("to"), From: e.Get("from"), Version: e.Get("version")}
	for _, a := range e.Attr {
		if a.Name.Space == "xml" && a.Name.Local == "lang" {
			h.Lang = a.Value
		}
	}
	return h, nil
}

func (t *wsTransport) next(deadline time.Time) (*stream.Element, error) {
	e, err := t.read(deadline)
	if err != nil {
		return nil, err
	}
	if e.Name.Space == stream.NSFraming && e.Name.Local == "close" {
		return nil, stream.ErrClosed
	}
	return e, nil
}

func (t *wsTransport) writeOpen(h stream.Header) error {
	b := []byte(`<open xmlns="` + stream.NSFraming + `"`)
	for _, a := range [...][2]string{{"from", h.From}, {"to", h.To}, {"id", h.ID}, {"version", h.Version}, {"xml:lang", h.Lang}} {
		if a[1] != "" {
			b = append(b, ' ')
			b = append(b, a[0]...)
			b = append(b, `="`...)
			b = stream.AppendEscaped(b, a[1])
			b = append(b, '"')
		}
	}
	return t.write(append(b, "/>"...))
}

func (t *wsTransport) write(b []byte) error {
	ctx, cancel := context.WithTimeout(t.ctx, t.writeTimeout)
	defer cancel()
	return t.c.Write(ctx, websocket.MessageText, b)
}

// keepalive sends a WebSocket ping. A pong that is late is not an error: the peer's silence
// is judged by the idle timeout, which its answers to XEP-0199 pings reset.
func (t *wsTransport) keepalive() error {
	// The library waits for the pong before returning: wait briefly, as the session's writer
	// is held up meanwhile.
	ctx, cancel := context.WithTimeout(t.ctx, min(t.writeTimeout, time.Second))
	defer cancel()
	err := t.c.Ping(ctx)
	if err != nil && (errors.Is(err, net.ErrClosed) || t.ctx.Err() != nil) {
		return err
	}
	return nil
}

func (t *wsTransport) writeClose(cond, text string) error {
	if cond != "" {
		if err := t.write(appendStreamError(nil, cond, text)); err != nil {
			return err
		}
	}
	return t.write([]byte(`<close xmlns="` + stream.NSFraming + `"/>`))
}

func (t *wsTransport) startTLS(context.Context, *tls.Config, time.Duration) error {
	return &stream.Error{Condition: stream.PolicyViolation, Text: "STARTTLS is not used over WebSocket (RFC 7395 §3.6)"}
}

func (t *wsTransport) restart() {}

func (t *wsTransport) close(hard bool) {
	t.closed.Do(func() {
		if hard {
			_ = t.c.CloseNow()
		} else {
			// Close waits for the peer's close frame (up to 5s in the library). A peer that
			// does not answer within wsCloseGrace is cut off: cancelling the pump's read
			// closes the connection, which ends the wait.
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = t.c.Close(websocket.StatusNormalClosure, "")
			}()
			tm := time.NewTimer(wsCloseGrace)
			select {
			case <-done:
			case <-tm.C:
				t.cancel()
				_ = t.c.CloseNow()
				<-done
			}
			tm.Stop()
		}
		t.cancel()
		t.startPump.Do(func() { close(t.pumpDone) }) // never started
		<-t.pumpDone
	})
}
