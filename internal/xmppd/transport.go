package xmppd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"confab.dev/confab/internal/stream"
)

// Transports, as labelled in logs and metrics.
const (
	transportTCP       = "tcp"
	transportWebSocket = "websocket"
)

// errInterrupted is returned by a transport read cut short by interrupt.
var errInterrupted = errors.New("read interrupted")

// transport carries one client's XML stream: a TCP connection (with STARTTLS) or a
// WebSocket. The session logic is written once over it.
//
// Reads (readOpen, next) happen on the session's reading goroutine only; writes on one
// goroutine at a time (the handler while negotiating, then the session's flushers, one
// after the other, and last the session's end); interrupt and close(true) may be called
// from any goroutine.
type transport interface {
	kind() string
	remoteAddr() string
	// secure reports whether the stream is protected by TLS.
	secure() bool
	// readOpen reads the client's stream header (<stream:stream> or <open/>).
	readOpen(deadline time.Time) (stream.Header, error)
	// next reads one top-level element; stream.ErrClosed when the client closed the stream.
	next(deadline time.Time) (*stream.Element, error)
	// writeOpen answers a stream header.
	writeOpen(h stream.Header) error
	// write writes one serialised element (one WebSocket message).
	write(b []byte) error
	// keepalive keeps an idle connection open through NATs and proxies: whitespace on TCP
	// [RFC 6120 §4.6.1], a ping frame on WebSocket (where a message must be a whole element).
	keepalive() error
	// writeClose writes a stream error (if cond is set) and the end of the stream.
	writeClose(cond, text string) error
	// startTLS upgrades the connection (TCP only) and restarts the stream.
	startTLS(ctx context.Context, cfg *tls.Config, timeout time.Duration) error
	// restart prepares for a new stream header on the same connection (after SASL success).
	restart()
	// interrupt makes the pending and every later read fail with errInterrupted.
	interrupt()
	// close closes the connection (hard: at once, without waiting for anything) and waits
	// for the transport's own goroutines.
	close(hard bool)
	// lastRead is when bytes last arrived from the client, on the server's monotonic clock.
	lastRead() time.Duration
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// activity records when something last happened (bytes arrived, a write), as a reading of
// a monotonic clock: the server's (Server.mono), so that a step of the wall clock neither
// makes every session look idle nor hides a silent one. (It kept wall-clock nanoseconds,
// which dropped the monotonic reading of time.Now.)
type activity struct {
	ns    atomic.Int64
	clock func() time.Duration
}

// start sets the clock and records now.
func (a *activity) start(clock func() time.Duration) {
	a.clock = clock
	a.touch()
}

func (a *activity) touch()              { a.ns.Store(int64(a.clock())) }
func (a *activity) last() time.Duration { return time.Duration(a.ns.Load()) }

type activityReader struct {
	r io.Reader
	a *activity
}

func (r activityReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.a.touch()
	}
	return n, err
}

// tcpTransport is a client stream on a TCP connection.
type tcpTransport struct {
	raw          net.Conn
	limits       stream.Limits
	writeTimeout time.Duration
	act          activity

	mu          sync.Mutex // guards nc and interrupted (with the read deadline they decide)
	nc          net.Conn   // raw, or the *tls.Conn after STARTTLS
	interrupted bool

	// Used by the reading goroutine only.
	br *bufio.Reader
	r  *stream.Reader
}

func newTCPTransport(nc net.Conn, limits stream.Limits, writeTimeout time.Duration, clock func() time.Duration) *tcpTransport {
	t := &tcpTransport{raw: nc, nc: nc, limits: limits, writeTimeout: writeTimeout}
	t.act.start(clock)
	t.br = bufio.NewReaderSize(activityReader{nc, &t.act}, preTLSBuffer)
	t.r = stream.NewReader(t.br, limits)
	return t
}

// Read buffer sizes. Before STARTTLS only a stream header and <starttls/> arrive. After it,
// tls.Conn holds each decrypted record already, so a small buffer in front of it costs a
// few more calls (one per 256 bytes, a copy from its buffer) for a large stanza and saves
// 3.75 KiB on every idle session against bufio's default.
const (
	preTLSBuffer = 512
	tlsBuffer    = 256
)

func (t *tcpTransport) kind() string       { return transportTCP }
func (t *tcpTransport) remoteAddr() string { return t.raw.RemoteAddr().String() }
func (t *tcpTransport) lastRead() time.Duration {
	return t.act.last()
}

func (t *tcpTransport) secure() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.nc.(*tls.Conn)
	return ok
}

func (t *tcpTransport) conn() net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nc
}

// setReadDeadline sets d, unless the transport was interrupted: then the deadline stays in
// the past. Doing both under mu means an interrupt can never be overwritten.
func (t *tcpTransport) setReadDeadline(d time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.interrupted {
		return errInterrupted
	}
	return t.nc.SetReadDeadline(d)
}

func (t *tcpTransport) interrupt() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.interrupted = true
	_ = t.nc.SetReadDeadline(time.Unix(1, 0))
}

// readErr turns a read error into errInterrupted when the transport was interrupted.
func (t *tcpTransport) readErr(err error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.interrupted && isTimeout(err) {
		return errInterrupted
	}
	return err
}

func (t *tcpTransport) readOpen(deadline time.Time) (stream.Header, error) {
	if err := t.setReadDeadline(deadline); err != nil {
		return stream.Header{}, err
	}
	h, err := t.r.ReadOpen(stream.NSClient)
	return h, t.readErr(err)
}

func (t *tcpTransport) next(deadline time.Time) (*stream.Element, error) {
	if err := t.setReadDeadline(deadline); err != nil {
		return nil, err
	}
	e, err := t.r.Next()
	return e, t.readErr(err)
}

func (t *tcpTransport) writeOpen(h stream.Header) error {
	return t.write(stream.AppendOpen(nil, h))
}

func (t *tcpTransport) write(b []byte) error {
	nc := t.conn()
	if err := nc.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
		return err
	}
	_, err := nc.Write(b)
	return err
}

func (t *tcpTransport) keepalive() error { return t.write([]byte(" ")) }

func (t *tcpTransport) writeClose(cond, text string) error {
	var b []byte
	if cond != "" {
		b = appendStreamError(b, cond, text)
	}
	return t.write(append(b, stream.Close...))
}

func (t *tcpTransport) startTLS(ctx context.Context, cfg *tls.Config, timeout time.Duration) error {
	// Whitespace after <starttls/> is legal between top-level elements [RFC 6120 §11.7]
	// (mattn/go-xmpp writes "<starttls .../>\n"); anything else would have been sent in the
	// clear: a protocol violation.
	if n := t.br.Buffered(); n > 0 {
		b, _ := t.br.Peek(n)
		if len(bytes.TrimLeft(b, xmlSpace)) > 0 {
			return &stream.Error{Condition: stream.PolicyViolation, Text: "data sent after <starttls/> before the TLS handshake"}
		}
		_, _ = t.br.Discard(n)
	}
	t.mu.Lock()
	if t.interrupted {
		t.mu.Unlock()
		return errInterrupted
	}
	// Whitespace may also arrive on its own, after our <proceed/>: it is skipped before the
	// ClientHello (whose first byte, 0x16, is never whitespace).
	tc := tls.Server(&spaceSkipper{Conn: t.raw}, cfg)
	t.nc = tc
	t.mu.Unlock()
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("tls handshake took longer than %s", timeout))
	defer cancel()
	_ = t.raw.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("tls handshake: %w (%w)", context.Cause(ctx), err)
		}
		return fmt.Errorf("tls handshake: %w", err)
	}
	_ = t.raw.SetDeadline(time.Time{})
	t.br = bufio.NewReaderSize(activityReader{tc, &t.act}, tlsBuffer)
	t.r = stream.NewReader(t.br, t.limits)
	return nil
}

// xmlSpace is XML's whitespace [XML 1.0 §2.3].
const xmlSpace = " \t\r\n"

// spaceSkipper drops the whitespace that comes before the first other byte read from Conn.
type spaceSkipper struct {
	net.Conn
	started bool
}

func (s *spaceSkipper) Read(p []byte) (int, error) {
	for {
		n, err := s.Conn.Read(p)
		if s.started || n == 0 {
			return n, err
		}
		rest := bytes.TrimLeft(p[:n], xmlSpace)
		if len(rest) == 0 {
			if err != nil {
				return 0, err
			}
			continue // only whitespace so far: bounded by the handshake's deadline
		}
		s.started = true
		return copy(p, rest), err
	}
}

func (t *tcpTransport) restart() {
	// The same buffered reader: a client may pipeline its new header after the last SASL step.
	t.r = stream.NewReader(t.br, t.limits)
}

func (t *tcpTransport) close(hard bool) {
	if hard {
		_ = t.raw.Close()
		return
	}
	nc := t.conn()
	// Bound the TLS close_notify.
	_ = nc.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	_ = nc.Close()
}

// appendStreamError appends a <stream:error/> that declares its prefix, so that it stands
// alone in a WebSocket message and is equally valid inside a TCP stream.
func appendStreamError(b []byte, cond, text string) []byte {
	b = append(b, `<stream:error xmlns:stream="`+stream.NSStreams+`"><`...)
	b = append(b, cond...)
	b = append(b, ` xmlns="`+stream.NSStreamErr+`"/>`...)
	if text != "" {
		b = append(b, `<text xmlns="`+stream.NSStreamErr+`" xml:lang="en">`...)
		b = stream.AppendEscaped(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}
