package turnd

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// datagramConn is a UDP socket as pion reads it: messages refused by inspect never reach
// pion, and error responses are observed on their way out.
type datagramConn struct {
	net.PacketConn
	f *front
}

// ReadFrom returns the next datagram that inspect lets through. pion reads with a buffer
// of MaxMessageSize+1 bytes, so a datagram that fills it was larger than MaxMessageSize
// (the kernel truncates it).
func (c *datagramConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			c.f.end(err)
			return n, addr, err
		}
		if c.f.inspect(p[:n], n >= len(p), addr) {
			return n, addr, nil
		}
	}
}

// WriteTo writes a message to a client.
func (c *datagramConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.f.observe(p, addr)
	return c.PacketConn.WriteTo(p, addr)
}

// Errors that end a TCP or TLS connection.
var (
	errStreamOversized = errors.New("turnd: message over MaxMessageSize")
	errStreamMalformed = errors.New("turnd: neither STUN nor ChannelData")
)

// streamConn is one TCP or TLS connection as pion reads it, a net.PacketConn of whole
// messages (RFC 8656 §3.8: STUN messages and ChannelData padded to 4 bytes). A message over
// MaxMessageSize, or bytes that are neither, end the connection: a stream cannot be
// resynchronised.
type streamConn struct {
	s      *Server
	f      *front
	raw    net.Conn // as tracked by the server
	conn   net.Conn // read and written (raw, or TLS over it)
	remote net.Addr
	max    int

	buf  []byte // loop: bytes read and not yet returned, buf[r:w]
	r, w int

	closeOnce sync.Once
}

func newStreamConn(s *Server, f *front, raw, c net.Conn) *streamConn {
	return &streamConn{
		s: s, f: f, raw: raw, conn: c, remote: c.RemoteAddr(),
		max: s.cfg.MaxMessageSize,
		buf: make([]byte, max(4096, 2*s.cfg.MaxMessageSize)),
	}
}

// ReadFrom returns the next whole message that inspect lets through.
func (c *streamConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		msg, err := c.next()
		if err != nil {
			c.Close()
			c.f.end(err)
			return 0, nil, err
		}
		if c.f.inspect(msg, false, c.remote) {
			return copy(p, msg), c.remote, nil
		}
	}
}

// next returns the next message, reading as needed; it is valid until the next call.
func (c *streamConn) next() ([]byte, error) {
	for {
		avail := c.buf[c.r:c.w]
		if size, err := c.frameSize(avail); err != nil {
			return nil, err
		} else if size > 0 && len(avail) >= size {
			c.r += size
			return avail[:size], nil
		}
		if c.r > 0 {
			c.w = copy(c.buf, avail)
			c.r = 0
		}
		timeout := c.s.cfg.IdleTimeout
		if !c.f.allocated {
			timeout = min(timeout, c.s.cfg.AllocateTimeout)
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := c.conn.Read(c.buf[c.w:])
		c.w += n
		if err != nil {
			return nil, err
		}
	}
}

// frameSize returns the size of the message that b starts with, 0 if more bytes are needed
// to tell, or an error (counted) if it is too large or neither STUN nor ChannelData.
func (c *streamConn) frameSize(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, nil
	}
	var size int
	switch b[0] >> 6 {
	case 1: // ChannelData: 4-byte header, data padded to 4 on a stream
		size = 4 + (int(binary.BigEndian.Uint16(b[2:4]))+3)&^3
	case 0:
		if len(b) < 8 {
			return 0, nil
		}
		if !isSTUNHeader(b) {
			c.f.refuse(CauseMalformed, c.remote, "bytes", len(b))
			return 0, errStreamMalformed
		}
		size = stunHeaderSize + int(binary.BigEndian.Uint16(b[2:4]))
	default:
		c.f.refuse(CauseMalformed, c.remote, "bytes", len(b))
		return 0, errStreamMalformed
	}
	if size > c.max {
		c.f.refuse(CauseOversized, c.remote, "bytes", size)
		c.f.badRequest(b, c.remote)
		return 0, errStreamOversized
	}
	return size, nil
}

// WriteTo writes a message to the client, bounded by WriteTimeout; a failed write closes
// the connection.
func (c *streamConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	c.f.observe(p, c.remote)
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	n, err := c.conn.Write(p)
	if err != nil {
		c.Close()
	}
	return n, err
}

// Close closes the connection (idempotent); the pending read then fails and the loop ends.
// It closes the TCP connection under TLS without a close_notify alert, which is a write
// that a client that does not read could hold up for seconds.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		c.raw.Close()
		c.s.untrackConn(c.raw)
	})
	return nil
}

func (c *streamConn) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *streamConn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
