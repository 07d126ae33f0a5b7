package xmppd_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// ping sends an XEP-0199 ping to the server and waits for the result: proof the session
// (and the server) still works.
func ping(t *testing.T, c *xmppdtest.Client, id string) {
	t.Helper()
	c.Send(t, `<iq type="get" id="`+id+`" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
	e := c.Expect(t, "ping result "+id, xmppdtest.IsKind("iq", id))
	if e.Get("type") != "result" {
		t.Fatalf("ping answered with %s", e)
	}
}

// stillWorks logs a fresh client in and pings the server.
func stillWorks(t *testing.T, h *xmppdtest.Harness) {
	t.Helper()
	c := h.Login(t, "bob")
	ping(t, c, "alive")
	c.Close()
}

// readAll reads what the server sends on a raw connection until it closes it.
func readAll(t *testing.T, nc net.Conn, timeout time.Duration) string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read until close: %v (got %q)", err, b)
	}
	return string(b)
}

func TestNoSASLBeforeTLS(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	c, err := h.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Mechanisms(); len(got) != 0 {
		t.Errorf("SASL mechanisms offered before TLS: %v", got)
	}
	if !c.HasFeature("urn:ietf:params:xml:ns:xmpp-tls", "starttls") {
		t.Errorf("features before TLS lack <starttls/>: %s", c.Features)
	}
}

func TestBeforeTLSOrAuth(t *testing.T) {
	tests := []struct {
		name     string
		tls      bool // negotiate TLS first
		send     string
		wantCond string
	}{
		{"auth before tls", false, `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGFsaWNlAGFsaWNlLXNlY3JldC0x</auth>`, "not-authorized"},
		{"message before tls", false, `<message to="bob@example.com"><body>hi</body></message>`, "not-authorized"},
		{"message before auth", true, `<message to="bob@example.com"><body>hi</body></message>`, "not-authorized"},
		{"iq before auth", true, `<iq type="get" id="p" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`, "not-authorized"},
		{"bind before auth", true, `<iq type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`, "not-authorized"},
	}
	h := xmppdtest.Start(t, xmppdtest.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := h.Dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.tls {
				if err := c.StartTLS(); err != nil {
					t.Fatal(err)
				}
			}
			c.Send(t, tt.send)
			if se := c.ExpectStreamError(t); se.Condition != tt.wantCond {
				t.Errorf("stream error = %s (%s), want %s", se.Condition, se.Text, tt.wantCond)
			}
			stillWorks(t, h)
		})
	}
}

func TestStreamHeader(t *testing.T) {
	tests := []struct {
		name, header, wantCond string
	}{
		{"wrong domain", `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.org" version="1.0">`, "host-unknown"},
		{"no to", `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0">`, "host-unknown"},
		{"no version", `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com">`, "unsupported-version"},
		{"wrong namespace", `<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0">`, "invalid-namespace"},
		{"dtd", `<?xml version="1.0"?><!DOCTYPE stream [<!ENTITY x "y">]><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0">`, "restricted-xml"},
	}
	h := xmppdtest.Start(t, xmppdtest.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := h.DialRaw()
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write([]byte(tt.header)); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, nc, 5*time.Second)
			// The server answers with its own header first, then the error [RFC 6120 §4.9.1.2].
			if !strings.Contains(got, "<stream:stream") || !strings.Contains(got, "<"+tt.wantCond+" ") {
				t.Errorf("server sent %q, want a stream header and a %s stream error", got, tt.wantCond)
			}
			stillWorks(t, h)
		})
	}
}

func TestBadInputAfterLogin(t *testing.T) {
	tests := []struct {
		name, send, wantCond string
	}{
		{"oversized stanza", `<message to="bob@example.com"><body>` + strings.Repeat("x", 8<<10) + `</body></message>`, "policy-violation"},
		{"dtd", `<!DOCTYPE foo>`, "restricted-xml"},
		{"comment", `<!-- hello -->`, "restricted-xml"},
		{"processing instruction", `<?foo bar?>`, "restricted-xml"},
		{"not well formed", `<message><body></message>`, "not-well-formed"},
		{"spoofed from", `<message from="bob@example.com/x" to="bob@example.com"><body>hi</body></message>`, "invalid-from"},
		{"not a stanza", `<foo xmlns="urn:example:foo"/>`, "unsupported-stanza-type"},
		{"deep nesting", `<message>` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</message>`, "policy-violation"},
	}
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.MaxStanzaC2S = 4 << 10 }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.Login(t, "alice")
			c.Send(t, tt.send)
			if se := c.ExpectStreamError(t); se.Condition != tt.wantCond {
				t.Errorf("stream error = %s (%s), want %s", se.Condition, se.Text, tt.wantCond)
			}
			stillWorks(t, h)
		})
	}
}

func TestOpenTimeout(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.OpenTimeout = time.Second }})
	nc, err := h.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	got := readAll(t, nc, 5*time.Second)
	if !strings.Contains(got, "<connection-timeout ") {
		t.Errorf("silent peer got %q, want a connection-timeout stream error", got)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("silent peer closed after %s, want about the open timeout", d)
	}
	stillWorks(t, h)
}

func TestAuthTimeout(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.AuthTimeout = 300 * time.Millisecond }})
	c := h.DialTLS(t)
	if se := c.ExpectStreamError(t); se.Condition != "connection-timeout" {
		t.Errorf("unauthenticated stream got %s, want connection-timeout", se.Condition)
	}
}

func TestIdleTimeout(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) {
		c.IdleTimeout = time.Second
		c.KeepAlive = 50 * time.Millisecond
	}})
	c := h.Login(t, "alice")
	// The server pings a silent client at half the idle timeout; one that never answers is
	// closed with connection-timeout.
	sawPing := false
	for {
		e, err := c.Next()
		var se *xmppdtest.StreamError
		if errors.As(err, &se) {
			if se.Condition != "connection-timeout" {
				t.Fatalf("stream error %s, want connection-timeout", se.Condition)
			}
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if e.Name.Local == "iq" && e.Get("type") == "get" && bytes.Contains(e.Inner, []byte("urn:xmpp:ping")) {
			sawPing = true
		}
	}
	if !sawPing {
		t.Error("the server did not ping the silent client before closing it")
	}
}

func TestMaxSessions(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.MaxSessions = 2 }})
	a := h.Login(t, "alice")
	b := h.Login(t, "bob")
	nc, err := h.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := readAll(t, nc, 5*time.Second); !strings.Contains(got, "<resource-constraint ") {
		t.Errorf("third connection got %q, want a resource-constraint stream error", got)
	}
	// A slot frees up when a session ends.
	b.Close()
	xmppdtest.Eventually(t, 5*time.Second, "a free session slot", func() bool {
		c, err := h.Dial()
		if err != nil {
			return false
		}
		defer c.Close()
		return true
	})
	ping(t, a, "p1")
}

func TestResourceConflictReplacesOldSession(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	login := func() *xmppdtest.Client {
		c, err := h.Dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := c.StartTLS(); err != nil {
			t.Fatal(err)
		}
		if err := c.Auth("PLAIN", "alice", h.Users["alice"]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Bind("phone"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := login()
	ping(t, old, "p0")
	newer := login()
	if se := old.ExpectStreamError(t); se.Condition != "conflict" {
		t.Errorf("old session got %s, want conflict", se.Condition)
	}
	ping(t, newer, "p1")
	bob := h.Login(t, "bob")
	bob.Send(t, `<message to="alice@example.com/phone" id="m1"><body>to the new one</body></message>`)
	if m := newer.Expect(t, "message", xmppdtest.IsKind("message", "m1")); xmppdtest.Body(m) != "to the new one" {
		t.Errorf("got %s", m)
	}
}

func TestTooManyAuthFailures(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	c := h.DialTLS(t)
	var last error
	for i := 0; i < 5; i++ {
		last = c.Auth("PLAIN", "alice", "wrong")
		var se *xmppdtest.StreamError
		if errors.As(last, &se) {
			if se.Condition != "policy-violation" {
				t.Fatalf("stream error %s, want policy-violation", se.Condition)
			}
			if i != 3 {
				t.Errorf("closed at attempt %d, want after the 3rd failure", i+1)
			}
			return
		}
	}
	t.Fatalf("five failed attempts and the stream is still open (last: %v)", last)
}

func TestSASLAbortAndBadInput(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	tests := []struct {
		name     string
		steps    []string
		wantCond string
	}{
		{"abort mid-exchange", []string{
			`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="SCRAM-SHA-256">biwsbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnYyOXhrbFE=</auth>`,
			`<abort xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>`}, "aborted"},
		{"unknown mechanism", []string{`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="DIGEST-MD5"/>`}, "invalid-mechanism"},
		{"bad base64", []string{`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">!!!</auth>`}, "incorrect-encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.DialTLS(t)
			for i, s := range tt.steps {
				c.Send(t, s)
				e, err := c.Next()
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if i < len(tt.steps)-1 {
					if e.Name.Local != "challenge" {
						t.Fatalf("step %d: got %s, want a challenge", i, e)
					}
					continue
				}
				if e.Name.Local != "failure" {
					t.Fatalf("got %s, want a failure", e)
				}
				if f := xmppdtest.ParseSASLFailure(e); f.Condition != tt.wantCond {
					t.Errorf("failure %s, want %s", f.Condition, tt.wantCond)
				}
			}
			if err := c.Auth("SCRAM-SHA-256", "alice", h.Users["alice"]); err != nil {
				t.Fatalf("auth after the failure: %v", err)
			}
		})
	}
}

// monoClock is a monotonic clock a test moves by hand (xmppd.Config.Clock).
type monoClock struct{ ns atomic.Int64 }

func (c *monoClock) now() time.Duration      { return time.Duration(c.ns.Load()) }
func (c *monoClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestIdleFollowsTheMonotonicClock: idle detection and keepalives read only the server's
// monotonic clock. They compared wall-clock times (activity kept UnixNano, which drops the
// monotonic reading), so a step of the wall clock forward made every session look idle (all
// closed with connection-timeout at the next tick) and a step back hid silent ones for as
// long as the step. A wall clock cannot be stepped in a test on a shared machine; the clock
// is injected instead: real time passing while it stands still changes nothing, and moving
// it is what pings and closes a silent client.
func TestIdleFollowsTheMonotonicClock(t *testing.T) {
	clock := &monoClock{}
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) {
		c.Clock = clock.now
		c.IdleTimeout = time.Hour // never reached in real time
		c.KeepAlive = 20 * time.Millisecond
	}})
	alice := h.Login(t, "alice")
	// The session's timer looks every 20 ms of real time; with the clock standing still, a
	// quarter of a second (a dozen looks) brings nothing: no ping, no keepalive, no end.
	quiet := make(chan error, 1)
	go func() {
		e, err := alice.Next()
		if err == nil {
			err = fmt.Errorf("got %s", e)
		}
		quiet <- err
	}()
	select {
	case err := <-quiet:
		t.Fatalf("with the clock standing still: %v", err)
	case <-time.After(250 * time.Millisecond):
	}
	// Half the idle timeout on the clock: a ping.
	clock.advance(31 * time.Minute)
	var err error
	select {
	case err = <-quiet:
	case <-time.After(5 * time.Second):
		t.Fatal("no ping within 5 s of the clock passing half the idle timeout")
	}
	if err == nil || !strings.Contains(err.Error(), "urn:xmpp:ping") {
		t.Fatalf("after 31 min on the clock: %v, want the server's ping", err)
	}
	// The whole idle timeout: connection-timeout.
	clock.advance(30 * time.Minute)
	for range 100 {
		_, err := alice.Next()
		var se *xmppdtest.StreamError
		if errors.As(err, &se) {
			if se.Condition != "connection-timeout" {
				t.Fatalf("stream error %s, want connection-timeout", se.Condition)
			}
			return
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	t.Fatal("no connection-timeout after the idle timeout on the clock")
}
