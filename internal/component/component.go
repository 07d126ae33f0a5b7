// Package component implements both ends of the Jabber Component Protocol [XEP-0114]: the
// accept side that an XMPP server runs on its component port, and the dial side with which a
// Call Bridge registers itself as the component cb1.example.com.
//
// Both sides run inside a connection the caller has already wrapped in TLS (Confab's
// component port speaks TLS from the first byte); the package never sees plaintext on the
// wire. The handshake proves knowledge of the shared secret without sending it:
// the client sends hex(SHA-1(stream id + secret)) [XEP-0114 §3], the server compares it in
// constant time against the value it computes from its registry.
//
// Every read and write during negotiation carries a deadline, and the whole negotiation is
// bounded, so a silent or slow peer costs one goroutine for at most the configured timeout.
package component

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"confab.dev/confab/internal/stream"
)

// Defaults applied when a field is zero.
const (
	DefaultMaxStanza    = 512 << 10
	DefaultTimeout      = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	// closeGrace bounds the goodbye (<stream:error/></stream:stream>) that Close writes.
	closeGrace = 2 * time.Second
)

// Conn is an established component stream. Writes are safe from several goroutines; Next
// must be called from one goroutine at a time.
type Conn struct {
	nc       net.Conn
	r        *stream.Reader
	dr       *deadlineReader
	jid      string
	name     string
	id       string
	wtimeout time.Duration
	probe    bool // the header says this is a probe (Probe): set by the dial side, read by the accept side

	wmu    sync.Mutex // serialises writes; held while one is on the wire
	closed atomic.Bool
	once   sync.Once
	cerr   error
}

// Probe reports whether the peer opened the stream as a probe (see Probe); accept side.
func (c *Conn) Probe() bool { return c.probe }

// JID returns the component's domain, e.g. cb1.example.com.
func (c *Conn) JID() string { return c.jid }

// Name returns the registry name the component authenticated as (accept side), or "" on
// the dial side.
func (c *Conn) Name() string { return c.name }

// StreamID returns the id the accepting server gave the stream.
func (c *Conn) StreamID() string { return c.id }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetIdleTimeout makes Next fail with a timeout when nothing at all (not even whitespace
// keepalives) arrives for d. Zero, the default, waits forever; the owner of the link is then
// expected to run its own keepalive.
func (c *Conn) SetIdleTimeout(d time.Duration) {
	c.dr.idle.Store(int64(d))
	if d <= 0 {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// Next returns the next element from the peer. It returns stream.ErrClosed when the peer
// closed its stream (</stream:stream>), a *stream.Error when the peer broke the protocol (the
// caller should Close with its Condition), and an error wrapping net.ErrClosed after Close.
// A <stream:error/> from the peer is returned as an element; see RemoteError.
func (c *Conn) Next() (*stream.Element, error) {
	e, err := c.r.Next()
	if err != nil && c.closed.Load() {
		return nil, fmt.Errorf("component %s: read: %w", c.jid, net.ErrClosed)
	}
	return e, err
}

// Write writes raw, already-serialised XML: one or more complete elements.
func (c *Conn) Write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("component %s: write: %w", c.jid, net.ErrClosed)
	}
	if err := c.write(b, c.wtimeout); err != nil {
		return fmt.Errorf("component %s: write: %w", c.jid, err)
	}
	return nil
}

// WriteElement serialises e in the jabber:component:accept namespace and writes it.
func (c *Conn) WriteElement(e *stream.Element) error {
	return c.Write(e.AppendTo(nil, stream.NSComponent))
}

// write writes b with a deadline; the caller holds wmu (or owns the conn exclusively).
func (c *Conn) write(b []byte, timeout time.Duration) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(b)
	return err
}

// Close ends the stream: a <stream:error/> with cond and text if cond is not empty, then
// </stream:stream>, then it closes the network connection. It is idempotent and safe to
// call while another goroutine is blocked in Next or Write; only the first call writes.
func (c *Conn) Close(cond, text string) error {
	c.once.Do(func() {
		c.closed.Store(true)
		// Bound any write already on the wire so the goodbye gets its turn quickly.
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeGrace))
		c.wmu.Lock()
		var b []byte
		if cond != "" {
			b = stream.AppendError(b, cond, text)
		}
		b = append(b, stream.Close...)
		_ = c.write(b, closeGrace) // best effort: the peer may already be gone
		c.wmu.Unlock()
		if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.cerr = fmt.Errorf("component %s: close: %w", c.jid, err)
		}
	})
	return c.cerr
}

// RemoteError returns the condition and text of a <stream:error/> element received from the
// peer, and false if e is not one.
func RemoteError(e *stream.Element) (*stream.Error, bool) {
	if e == nil || e.Name.Space != stream.NSStreams || e.Name.Local != "error" {
		return nil, false
	}
	var v struct {
		Children []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	se := &stream.Error{Condition: stream.InternalServerError}
	if err := e.Decode(&v); err != nil {
		se.Text = "unreadable stream error from the peer"
		return se, true
	}
	for _, ch := range v.Children {
		if ch.XMLName.Space != stream.NSStreamErr {
			continue
		}
		if ch.XMLName.Local == "text" {
			se.Text = strings.TrimSpace(ch.Text)
		} else {
			se.Condition = ch.XMLName.Local
		}
	}
	return se, true
}

// deadlineReader pushes the read deadline forward before every read when an idle timeout is
// set, so that the timeout measures silence, not the length of the connection.
type deadlineReader struct {
	nc   net.Conn
	idle atomic.Int64 // time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if idle := time.Duration(d.idle.Load()); idle > 0 {
		if err := d.nc.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return 0, err
		}
	}
	return d.nc.Read(p)
}

func newConn(nc net.Conn, limits stream.Limits, wtimeout time.Duration) *Conn {
	if limits.MaxStanza <= 0 {
		limits.MaxStanza = DefaultMaxStanza
	}
	if wtimeout <= 0 {
		wtimeout = DefaultWriteTimeout
	}
	dr := &deadlineReader{nc: nc}
	return &Conn{nc: nc, dr: dr, r: stream.NewReader(dr, limits), wtimeout: wtimeout}
}

// negotiation bounds a handshake: a deadline on the connection for the whole exchange, and a
// context watcher that cuts the connection short when ctx is cancelled.
type negotiation struct {
	nc       net.Conn
	deadline time.Time
	mu       sync.Mutex
	done     bool
	stop     func() bool
}

func startNegotiation(ctx context.Context, nc net.Conn, timeout time.Duration) *negotiation {
	n := &negotiation{nc: nc, deadline: time.Now().Add(timeout)}
	if d, ok := ctx.Deadline(); ok && d.Before(n.deadline) {
		n.deadline = d
	}
	_ = nc.SetReadDeadline(n.deadline)
	n.stop = context.AfterFunc(ctx, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if !n.done {
			_ = nc.SetDeadline(time.Unix(1, 0)) // unblock any read or write now
		}
	})
	return n
}

// finish stops watching ctx and lifts the negotiation's deadlines.
func (n *negotiation) finish() {
	n.stop()
	n.mu.Lock()
	n.done = true
	n.mu.Unlock()
	_ = n.nc.SetDeadline(time.Time{})
}

// writeTimeout is the per-write timeout during negotiation: no later than the deadline.
func (n *negotiation) writeTimeout(wt time.Duration) time.Duration {
	if left := time.Until(n.deadline); left < wt {
		return max(left, time.Millisecond)
	}
	return wt
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, stream.ErrClosed)
}

// newStreamID returns 128 random bits in hex.
func newStreamID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// digest is the XEP-0114 handshake value: lowercase hex SHA-1 of stream id + secret.
func digest(id, secret string) string {
	h := sha1.Sum([]byte(id + secret))
	return hex.EncodeToString(h[:])
}
