package component

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// scriptConn is a net.Conn that plays a peer from a script: reads return the script one byte
// at a time (so that the side under test has written its answer before it reads further),
// then io.EOF; writes are recorded. Once the side under test has written a stream header with
// an id, the marker DIGEST in the rest of the script becomes the handshake digest of that id,
// so that the fuzzer can reach what follows a correct handshake.
type scriptConn struct {
	mu      sync.Mutex
	script  []byte
	secret  string
	out     bytes.Buffer
	swapped bool
	closed  bool
}

var idAttr = regexp.MustCompile(` id="([0-9a-f]+)"`)

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if !c.swapped {
		if m := idAttr.FindSubmatch(c.out.Bytes()); m != nil {
			c.script = bytes.ReplaceAll(c.script, []byte("DIGEST"), []byte(digest(string(m[1]), c.secret)))
			c.swapped = true
		}
	}
	if len(c.script) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = c.script[0]
	c.script = c.script[1:]
	return 1, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *scriptConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (*scriptConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5223} }
func (*scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (*scriptConn) SetDeadline(time.Time) error      { return nil }
func (*scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (*scriptConn) SetWriteDeadline(time.Time) error { return nil }

// acceptConditions are the stream errors Accept may end with on a script (no timeouts: a
// script ends with io.EOF, never silence).
var acceptConditions = []string{
	stream.HostUnknown, stream.NotAuthorized, stream.NotWellFormed, stream.PolicyViolation,
	stream.RestrictedXML, stream.UnsupportedEncoding, stream.InvalidNamespace, stream.Conflict,
}

const fuzzOpen = `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams" to="cb1.example.com">`

// FuzzAccept plays arbitrary bytes to the accept side as a would-be Call Bridge and checks
// that Accept ends with a stream error it is allowed to send, that what it wrote is a stream a
// Call Bridge can read, and that it accepts only the right digest of a registered component.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{
		fuzzOpen + `<handshake>DIGEST</handshake>`,
		fuzzOpen + `<handshake>0000</handshake>`,
		fuzzOpen + `<handshake>DIGEST</handshake><message from="cb1.example.com" to="a@example.com"/>`,
		strings.Replace(fuzzOpen, "cb1.example.com", "nosecret.example.com", 1) + `<handshake>DIGEST</handshake>`,
		strings.Replace(fuzzOpen, "cb1.example.com", "cb1.other.org", 1) + `<handshake>DIGEST</handshake>`,
		strings.Replace(fuzzOpen, "cb1.example.com", "dup.example.com", 1) + `<handshake>DIGEST</handshake>`,
		strings.Replace(fuzzOpen, "jabber:component:accept", "jabber:client", 1),
		fuzzOpen + `<message/>`,
		fuzzOpen + `<!DOCTYPE x>`,
		`<?xml version="1.0"?>` + fuzzOpen + ` <handshake> DIGEST </handshake>`,
		`</stream:stream>`,
		"\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := &scriptConn{script: bytes.Clone(data), secret: testSecret}
		cfg := testConfig()
		cfg.Lookup = func(jid string) (string, secret.Secret, bool) {
			if jid == "dup.example.com" {
				return "dup", secret.New(testSecret), true
			}
			return testLookup(jid)
		}
		cfg.Admit = func(jid, name string, _ bool) error {
			if name == "dup" {
				return &stream.Error{Condition: stream.Conflict, Text: "already connected"}
			}
			return nil
		}
		c, err := Accept(context.Background(), nc, cfg)
		out := nc.written()
		if err == nil {
			if !bytes.Contains(data, []byte("DIGEST")) {
				t.Fatalf("accepted without the digest: %q", data)
			}
			if j := c.JID(); j != "cb1.example.com" {
				t.Fatalf("accepted component %q", j)
			}
			if !bytes.HasSuffix(out, []byte("<handshake/>")) {
				t.Fatalf("accepted, but wrote %q", out)
			}
			// What follows the handshake is read as stanzas until the script ends.
			for n := 0; n <= len(data); n++ {
				if _, err := c.Next(); err != nil {
					break
				}
			}
			_ = c.Close("", "")
			return
		}
		if c != nil {
			t.Fatal("Accept returned a connection with an error")
		}
		var closed *ClosedError
		if errors.As(err, &closed) {
			// The input ran out: nothing may follow our header.
			r := stream.NewReader(bytes.NewReader(out), stream.Limits{})
			if len(out) > 0 {
				if _, err := r.ReadOpen(stream.NSComponent); err != nil {
					t.Fatalf("the accept side wrote a header that does not parse: %v\n%s", err, out)
				}
				if e, err := r.Next(); !errors.Is(err, io.EOF) {
					t.Fatalf("wrote %v (%v) to a peer that had closed the connection, want nothing", e, err)
				}
			}
			return
		}
		var se *stream.Error
		if !errors.As(err, &se) || !slices.Contains(acceptConditions, se.Condition) {
			t.Fatalf("Accept error %T %v: want a stream error with one of %v, or a *ClosedError", err, err, acceptConditions)
		}
		// A peer that hung up is not told; anyone else gets a stream it can parse: our header,
		// the error, the end.
		if len(out) == 0 {
			return
		}
		r := stream.NewReader(bytes.NewReader(out), stream.Limits{})
		if _, err := r.ReadOpen(stream.NSComponent); err != nil {
			t.Fatalf("the accept side wrote a header that does not parse: %v\n%s", err, out)
		}
		e, err := r.Next()
		if err != nil {
			t.Fatalf("after its header the accept side wrote something unreadable: %v\n%s", err, out)
		}
		got, ok := RemoteError(e)
		if !ok || got.Condition != se.Condition {
			t.Fatalf("wrote %s, want a stream error %s", e, se.Condition)
		}
		if _, err := r.Next(); !errors.Is(err, stream.ErrClosed) {
			t.Fatalf("no end of stream after the error: %v\n%s", err, out)
		}
	})
}

// FuzzHandshake plays arbitrary bytes to the dial side as a would-be XMPP server.
func FuzzHandshake(f *testing.F) {
	ok := `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams" from="cb1.example.com" id="abc">`
	for _, s := range []string{
		ok + `<handshake/>`,
		ok + `<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error></stream:stream>`,
		strings.Replace(ok, ` id="abc"`, "", 1) + `<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/><text xmlns="urn:ietf:params:xml:ns:xmpp-streams">no</text></stream:error>`,
		ok + `<message/>`,
		ok + `<handshake/><message from="example.com"/>`,
		`HTTP/1.1 400 Bad Request` + "\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	conds := []string{"no-stream", "eof"}
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := &scriptConn{script: bytes.Clone(data)}
		c, err := Handshake(context.Background(), nc, "cb1.example.com", secret.New(testSecret), stream.Limits{MaxStanza: 4 << 10})
		if err == nil {
			if !bytes.Contains(data, []byte("handshake")) {
				t.Fatalf("handshake succeeded on %q", data)
			}
			for n := 0; n <= len(data); n++ {
				if _, err := c.Next(); err != nil {
					break
				}
			}
			_ = c.Close("", "")
			return
		}
		var he *HandshakeError
		if !errors.As(err, &he) {
			t.Fatalf("Handshake error %T %v, want a *HandshakeError", err, err)
		}
		if he.Err == nil && he.Text == "" && !slices.Contains(conds, he.Condition) {
			// A condition the server sent: it must at least have said one.
			if he.Condition == "" {
				t.Fatalf("empty condition from %q", data)
			}
		}
		if strings.ContainsAny(he.Condition, "<>\"") {
			t.Fatalf("condition %q is not a name", he.Condition)
		}
	})
}
