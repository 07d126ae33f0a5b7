package component

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"strings"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// HandshakeError is why the server refused (or never answered) a component handshake.
type HandshakeError struct {
	// Condition is the stream error the server sent ("not-authorized", "host-unknown",
	// "conflict", ...), or, when it sent nothing usable: "no-stream" (it answered something
	// that is not a component stream), "timeout" (nothing in time), "eof" (the connection
	// ended or failed; Err says how), "canceled" (ctx was cancelled).
	Condition string
	// Text is the server's explanation, or ours for the local conditions.
	Text string
	// Err is the underlying error for local conditions (a timeout, an I/O or TLS error).
	Err error
	// ServerDomain is the domain the server answered the stream header from, when it is
	// neither the component's JID nor a parent of it: the server serves another domain (a
	// Confab XMPP server answers a component of a foreign domain so). It tells a mistyped
	// domain from an unregistered name.
	ServerDomain string
}

func (e *HandshakeError) Error() string {
	s := "component handshake: " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Handshake runs the component side of XEP-0114 on conn: it opens a stream to jid, reads the
// server's stream id, sends hex(SHA-1(id + secret)) and waits for <handshake/>. The whole
// exchange ends by ctx's deadline, or after DefaultTimeout if ctx has none; cancelling ctx
// aborts it. On failure conn is closed and the error is a *HandshakeError.
//
// The caller should complete the TLS handshake first (tls.Conn.HandshakeContext), so that a
// certificate problem is reported as such rather than as a failed write here.
func Handshake(ctx context.Context, conn net.Conn, jid string, s secret.Secret, limits stream.Limits) (*Conn, error) {
	return handshake(ctx, conn, jid, s, limits, false)
}

// NSProbe is the namespace of Confab's probe attribute on a component's stream header
// (probe='true'): the connection is a test (confab diagnose), which a Confab XMPP server
// never lets replace a live component of the same name, whatever its policy for
// duplicates; it refuses it with <conflict/> instead. Other servers ignore the attribute.
const NSProbe = "urn:confab:component:probe:1"

// Probe is Handshake for a test connection: the stream header says so (NSProbe), and the
// component is registered only if no component of its name is connected.
func Probe(ctx context.Context, conn net.Conn, jid string, s secret.Secret, limits stream.Limits) (*Conn, error) {
	return handshake(ctx, conn, jid, s, limits, true)
}

func handshake(ctx context.Context, conn net.Conn, jid string, s secret.Secret, limits stream.Limits, probe bool) (*Conn, error) {
	c := newConn(conn, limits, 0)
	c.jid = jid
	c.probe = probe
	n := startNegotiation(ctx, conn, DefaultTimeout)
	err := dial(c, n, s)
	n.finish()
	if err == nil {
		return c, nil
	}
	he := classifyDial(ctx, err)
	c.closed.Store(true)
	if he.Condition == "no-stream" { // the server is talking nonsense: say goodbye politely
		_ = c.write([]byte(stream.Close), closeGrace)
	}
	_ = conn.Close()
	c.once.Do(func() {})
	return nil, he
}

// idlessGrace is how long Handshake waits for a stream error behind a header without id.
const idlessGrace = 100 * time.Millisecond

func dial(c *Conn, n *negotiation, s secret.Secret) error {
	wt := func() time.Duration { return n.writeTimeout(c.wtimeout) }
	h := stream.Header{NS: stream.NSComponent, To: c.jid}
	if c.probe {
		h.Ext = []xml.Attr{{Name: xml.Name{Space: NSProbe, Local: "probe"}, Value: "true"}}
	}
	open := stream.AppendOpen(nil, h)
	if err := c.write(open, wt()); err != nil {
		return err
	}
	h, err := c.r.ReadOpen(stream.NSComponent)
	if err != nil {
		return err
	}
	foreign := foreignDomain(h.From, c.jid)
	err = dialStream(c, s, h, wt)
	var he *HandshakeError
	if foreign != "" && errors.As(err, &he) {
		he.ServerDomain = foreign
	}
	return err
}

// foreignDomain returns from, the 'from' of the server's stream header, when it is neither
// the component's JID nor a domain it belongs to; else "".
func foreignDomain(from, jid string) string {
	from = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(from), "."))
	jid = strings.ToLower(jid)
	if from == "" || from == jid || strings.HasSuffix(jid, "."+from) {
		return ""
	}
	return from
}

func dialStream(c *Conn, s secret.Secret, h stream.Header, wt func() time.Duration) error {
	if h.ID == "" {
		// A server that refuses the stream at once (Prosody: host-unknown for a name it does
		// not know) opens it without an id and sends the stream error right behind it:
		// report that error, waiting only briefly for it.
		_ = c.nc.SetReadDeadline(time.Now().Add(idlessGrace))
		if e, err := c.r.Next(); err == nil {
			if se, ok := RemoteError(e); ok {
				return &HandshakeError{Condition: se.Condition, Text: se.Text}
			}
		}
		return &HandshakeError{Condition: "no-stream", Text: "the server's stream header has no id"}
	}
	c.id = h.ID
	hs := append([]byte("<handshake>"), digest(h.ID, s.Reveal())...)
	hs = append(hs, "</handshake>"...)
	if err := c.write(hs, wt()); err != nil {
		return err
	}
	e, err := c.r.Next()
	if err != nil {
		return err
	}
	if se, ok := RemoteError(e); ok {
		return &HandshakeError{Condition: se.Condition, Text: se.Text}
	}
	if e.Name.Space != stream.NSComponent || e.Name.Local != "handshake" {
		// XEP-0114 allows nothing else before the handshake succeeds.
		return &HandshakeError{Condition: "no-stream", Text: "unexpected <" + e.Name.Local + "> before <handshake/>"}
	}
	return nil
}

func classifyDial(ctx context.Context, err error) *HandshakeError {
	var he *HandshakeError
	var se *stream.Error
	switch {
	case errors.As(err, &he):
		return he
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return &HandshakeError{Condition: "canceled", Text: "handshake abandoned", Err: ctx.Err()}
	case isTimeout(err) || ctx.Err() != nil:
		return &HandshakeError{Condition: "timeout", Text: "no answer from the server in time", Err: err}
	case errors.As(err, &se):
		return &HandshakeError{Condition: "no-stream", Text: "the server did not open a component stream: " + se.Condition + describe(se.Text), Err: err}
	case isEOF(err):
		return &HandshakeError{Condition: "eof", Text: "the server closed the connection", Err: err}
	default:
		return &HandshakeError{Condition: "eof", Text: "connection failed", Err: err}
	}
}

// describe is ": text", or "" for no text.
func describe(text string) string {
	if text == "" {
		return ""
	}
	return ": " + text
}
