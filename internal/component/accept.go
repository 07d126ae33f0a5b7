package component

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// AcceptConfig configures the accept side. The zero value of each field but Lookup is usable.
type AcceptConfig struct {
	// Domain is the server's XMPP domain. When set, only subdomains of it are accepted as
	// component JIDs (anything else is host-unknown).
	Domain string
	// Lookup returns the registry name and shared secret of a component JID, and false if no
	// component of that JID may register. It is given the JID lower-cased.
	Lookup func(componentJID string) (name string, s secret.Secret, ok bool)
	// Limits bounds the stanzas the component may send (MaxStanza defaults to 512 KiB).
	Limits stream.Limits
	// Timeout bounds the whole negotiation, from the first byte to <handshake/> (default 10s).
	Timeout time.Duration
	// WriteTimeout bounds each write, during negotiation and after (default 10s).
	WriteTimeout time.Duration
	// Screen, if set, is called once the peer's stream header has been read and answered,
	// before the component is looked up, with the JID it names (lower-cased; possibly empty).
	// An error refuses the stream: a *stream.Error is sent as it is, anything else as
	// policy-violation. A server uses it to turn away a source that failed too often.
	Screen func(componentJID string) error
	// Admit, if set, is called after the handshake digest has been verified and before
	// <handshake/> is sent, with the component's JID and registry name, and whether the
	// stream header said it is a probe (see Probe). An error refuses the component as
	// Screen's does, so a Call Bridge that may not register now (another link of the same
	// name is up) learns it in answer to its handshake, not after it.
	Admit func(componentJID, name string, probe bool) error
}

// Accept runs the server side of the XEP-0114 negotiation on conn: it reads the stream
// header (namespace jabber:component:accept, else invalid-namespace), checks that its 'to' is
// a registered component (else host-unknown), answers with a stream id of 128 random bits,
// reads <handshake>hex(sha1(id+secret))</handshake>, compares it in constant time (else
// not-authorized) and replies <handshake/>. AcceptConfig.Screen and Admit may refuse the
// component on the way.
//
// On failure Accept has closed conn. It returns a *stream.Error whose Condition says what
// went wrong when it could send that error (connection-timeout when the negotiation ran out
// of time, system-shutdown wrapping ctx.Err() when ctx was cancelled), or a *ClosedError
// when the peer closed the connection (or it failed) first and nothing was sent.
func Accept(ctx context.Context, conn net.Conn, cfg AcceptConfig) (*Conn, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := newConn(conn, cfg.Limits, cfg.WriteTimeout)
	n := startNegotiation(ctx, conn, timeout)
	a := acceptor{c: c, n: n, cfg: cfg}
	err := a.run()
	n.finish()
	if err == nil {
		return c, nil
	}
	se, tell := a.classify(ctx, err)
	if se == nil {
		// The peer is gone: nothing to tell it, nothing sent.
		a.fail(nil, false)
		return nil, &ClosedError{HeaderRead: a.headerSent, JID: a.c.jid, Err: err}
	}
	a.fail(se, tell)
	return nil, se
}

// OutcomeClosed names a negotiation the peer ended by closing the connection, as a server
// counts and logs it (beside the stream error conditions it sends).
const OutcomeClosed = "closed-before-handshake"

// A ClosedError is a negotiation that ended because the peer closed the connection (or the
// connection failed) before the handshake completed. No stream error was sent: nobody was
// left to read one. After TLS and before any stream header it is what a Call Bridge that
// rejected the server's certificate does, and `confab diagnose -no-register`, and a TLS
// health check.
type ClosedError struct {
	// HeaderRead says whether the peer's stream header had been read (and answered).
	HeaderRead bool
	// JID is the component the header named, if it was read.
	JID string
	// Err is what the read returned (io.EOF, a reset).
	Err error
}

func (e *ClosedError) Error() string {
	if e.HeaderRead {
		return fmt.Sprintf("the peer closed the connection after its stream header (to %q), before the handshake: %v", e.JID, e.Err)
	}
	return fmt.Sprintf("the peer closed the connection before opening a component stream: %v", e.Err)
}

// Unwrap returns the read error.
func (e *ClosedError) Unwrap() error { return e.Err }

type acceptor struct {
	probe      bool // the peer's header carries NSProbe's probe='true'
	c          *Conn
	n          *negotiation
	cfg        AcceptConfig
	headerSent bool
}

func (a *acceptor) send(b []byte) error {
	return a.c.write(b, a.n.writeTimeout(a.c.wtimeout))
}

func (a *acceptor) run() error {
	a.c.id = newStreamID()
	h, err := a.c.r.ReadOpen(stream.NSComponent)
	if err != nil {
		return err
	}
	a.probe = h.ExtValue(NSProbe, "probe") == "true"
	a.c.probe = a.probe
	jid := strings.TrimSuffix(strings.ToLower(h.To), ".")
	a.c.jid = jid
	foreign := a.cfg.Domain != "" && jid != "" && !strings.HasSuffix(jid, "."+strings.ToLower(a.cfg.Domain))
	// Answer the header before judging it: a stream error must follow our own header. A
	// component of another domain is answered from this server's domain (RFC 6120 §4.7.1:
	// the receiving entity's name), so that it can tell a mistyped domain from an unknown
	// name; see HandshakeError.ServerDomain.
	from := jid
	if foreign {
		from = strings.ToLower(a.cfg.Domain)
	}
	open := stream.AppendOpen(nil, stream.Header{NS: stream.NSComponent, From: from, ID: a.c.id})
	if err := a.send(open); err != nil {
		return err
	}
	a.headerSent = true

	if a.cfg.Screen != nil {
		if err := a.cfg.Screen(jid); err != nil {
			return refusal(err)
		}
	}
	switch {
	case jid == "":
		return &stream.Error{Condition: stream.HostUnknown, Text: "the stream header names no component ('to' is missing)"}
	case foreign:
		return &stream.Error{Condition: stream.HostUnknown, Text: "not a component of " + a.cfg.Domain}
	}
	var (
		name string
		s    secret.Secret
		ok   bool
	)
	if a.cfg.Lookup != nil {
		name, s, ok = a.cfg.Lookup(jid)
	}
	if !ok {
		return &stream.Error{Condition: stream.HostUnknown, Text: "no component " + jid + " is registered"}
	}
	a.c.name = name

	e, err := a.c.r.Next()
	if err != nil {
		return err
	}
	if e.Name.Space != stream.NSComponent || e.Name.Local != "handshake" {
		return &stream.Error{Condition: stream.NotAuthorized, Text: "the first element must be <handshake/>"}
	}
	got := bytes.ToLower(bytes.TrimSpace(e.Inner))
	want := []byte(digest(a.c.id, s.Reveal()))
	// An empty registry secret would make the digest computable by anyone: never accept it.
	if s.IsZero() || subtle.ConstantTimeCompare(got, want) != 1 {
		return &stream.Error{Condition: stream.NotAuthorized, Text: "handshake rejected"}
	}
	if a.cfg.Admit != nil {
		if err := a.cfg.Admit(jid, name, a.probe); err != nil {
			return refusal(err)
		}
	}
	return a.send([]byte("<handshake/>"))
}

// refusal is the stream error for an error of Screen or Admit.
func refusal(err error) *stream.Error {
	var se *stream.Error
	if errors.As(err, &se) {
		return se
	}
	return &stream.Error{Condition: stream.PolicyViolation, Text: "refused", Err: err}
}

// classify turns whatever stopped the negotiation into the stream error to report, and says
// whether the peer can still be told; nil when the peer closed the connection or it failed.
func (a *acceptor) classify(ctx context.Context, err error) (*stream.Error, bool) {
	var se *stream.Error
	switch {
	case errors.As(err, &se):
		return se, true
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &stream.Error{Condition: stream.SystemShutdown, Text: "the server is shutting down", Err: ctx.Err()}, true
	case isTimeout(err) || ctx.Err() != nil:
		return &stream.Error{Condition: stream.ConnectionTimeout, Text: "component negotiation timed out", Err: err}, true
	default: // the peer closed the connection, or it failed: there is nobody left to tell
		return nil, false
	}
}

// fail tells the peer (if it can still listen) and closes the connection.
func (a *acceptor) fail(se *stream.Error, tell bool) {
	c := a.c
	c.closed.Store(true)
	// A peer that never finished the TLS handshake cannot be told anything.
	if cs, ok := c.nc.(interface{ ConnectionState() tls.ConnectionState }); ok && !cs.ConnectionState().HandshakeComplete {
		tell = false
	}
	if tell && se != nil {
		var b []byte
		if !a.headerSent {
			b = stream.AppendOpen(b, stream.Header{NS: stream.NSComponent, From: c.jid, ID: c.id})
		}
		b = stream.AppendError(b, se.Condition, se.Text)
		b = append(b, stream.Close...)
		_ = c.nc.SetDeadline(time.Now().Add(closeGrace))
		_ = c.write(b, closeGrace)
	}
	_ = c.nc.Close()
	c.once.Do(func() {}) // later Close calls are no-ops
}
