package component

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

const testSecret = "0123456789abcdef-shared"

func testLookup(jid string) (string, secret.Secret, bool) {
	switch jid {
	case "cb1.example.com":
		return "cb1", secret.New(testSecret), true
	case "nosecret.example.com":
		return "nosecret", secret.Secret{}, true
	case "cb1.other.org": // registered, but not under the server's domain
		return "cb1", secret.New(testSecret), true
	}
	return "", secret.Secret{}, false
}

func testConfig() AcceptConfig {
	return AcceptConfig{Domain: "example.com", Lookup: testLookup, Timeout: 5 * time.Second}
}

type acceptResult struct {
	c   *Conn
	err error
}

// serveOne accepts one connection on ln and runs Accept on it.
func serveOne(ctx context.Context, ln net.Listener, cfg AcceptConfig) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			ch <- acceptResult{err: err}
			return
		}
		c, err := Accept(ctx, nc, cfg)
		ch <- acceptResult{c, err}
	}()
	return ch
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for the other side")
		panic("unreachable")
	}
}

// condition returns the stream error condition in err, or "" if there is none.
func condition(err error) string {
	var se *stream.Error
	if errors.As(err, &se) {
		return se.Condition
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.Condition
	}
	return ""
}

// peerError reads what the server sent on a raw connection (header, then <stream:error/>)
// and returns the error condition it carried.
func peerError(t *testing.T, nc net.Conn) string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := stream.NewReader(nc, stream.Limits{})
	if _, err := r.ReadOpen(""); err != nil {
		t.Fatalf("reading the server's header: %v", err)
	}
	for {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("reading the server's stream error: %v", err)
		}
		if se, ok := RemoteError(e); ok {
			if _, err := r.Next(); !errors.Is(err, stream.ErrClosed) {
				t.Errorf("after the stream error: %v, want </stream:stream>", err)
			}
			return se.Condition
		}
	}
}

func TestHandshakeSuccess(t *testing.T) {
	p := newTestPKI(t)
	ln := p.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := serveOne(ctx, ln, testConfig())

	cc, err := Handshake(ctx, p.dial(t, ln.Addr().String()), "cb1.example.com", secret.New(testSecret), stream.Limits{})
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	defer cc.Close("", "")
	r := wait(t, res)
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	sc := r.c
	defer sc.Close("", "")
	if got, want := sc.JID(), "cb1.example.com"; got != want {
		t.Errorf("server JID = %q, want %q", got, want)
	}
	if got, want := sc.Name(), "cb1"; got != want {
		t.Errorf("server Name = %q, want %q", got, want)
	}
	if got, want := cc.JID(), "cb1.example.com"; got != want {
		t.Errorf("client JID = %q, want %q", got, want)
	}
	if cc.Name() != "" {
		t.Errorf("client Name = %q, want empty", cc.Name())
	}
	if sc.StreamID() != cc.StreamID() || sc.StreamID() == "" {
		t.Errorf("stream ids: server %q, client %q, want equal and set", sc.StreamID(), cc.StreamID())
	}
	if sc.RemoteAddr() == nil {
		t.Error("RemoteAddr is nil")
	}
}

func TestHandshakeFailures(t *testing.T) {
	tests := []struct {
		name, jid, secret, want string
	}{
		{"wrong secret", "cb1.example.com", "not-the-secret", stream.NotAuthorized},
		{"empty registry secret", "nosecret.example.com", "", stream.NotAuthorized},
		{"unknown name", "cb9.example.com", testSecret, stream.HostUnknown},
		{"outside the domain", "cb1.other.org", testSecret, stream.HostUnknown},
	}
	p := newTestPKI(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := p.listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := serveOne(ctx, ln, testConfig())
			_, err := Handshake(ctx, p.dial(t, ln.Addr().String()), tt.jid, secret.New(tt.secret), stream.Limits{})
			var he *HandshakeError
			if !errors.As(err, &he) || he.Condition != tt.want {
				t.Errorf("Handshake error = %v, want *HandshakeError %s", err, tt.want)
			}
			r := wait(t, res)
			if got := condition(r.err); got != tt.want || r.c != nil {
				t.Errorf("Accept = %v, %v; want stream error %s", r.c, r.err, tt.want)
			}
		})
	}
}

// A component may send its digest in upper case; the comparison is on the hex value.
func TestUpperCaseDigest(t *testing.T) {
	p := newTestPKI(t)
	ln := p.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := serveOne(ctx, ln, testConfig())
	nc := p.dial(t, ln.Addr().String())
	fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='CB1.example.com'>`)
	r := stream.NewReader(nc, stream.Limits{})
	h, err := r.ReadOpen(stream.NSComponent)
	if err != nil {
		t.Fatal(err)
	}
	if h.From != "cb1.example.com" {
		t.Errorf("server header from = %q, want cb1.example.com", h.From)
	}
	fmt.Fprintf(nc, "<handshake>%s</handshake>", strings.ToUpper(digest(h.ID, testSecret)))
	e, err := r.Next()
	if err != nil || e.Name.Local != "handshake" {
		t.Fatalf("answer = %v, %v; want <handshake/>", e, err)
	}
	if a := wait(t, res); a.err != nil {
		t.Fatalf("Accept: %v", a.err)
	} else {
		a.c.Close("", "")
	}
}

// Protocol violations from a raw peer: the server answers with the right stream error.
func TestAcceptRejects(t *testing.T) {
	const ns = `xmlns:stream='http://etherx.jabber.org/streams'`
	tests := []struct {
		name string
		send func(nc net.Conn) // what the peer does
		want string
	}{
		{"wrong namespace", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:client' %s to='cb1.example.com'>`, ns)
		}, stream.InvalidNamespace},
		{"wrong stream namespace", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='urn:nope' to='cb1.example.com'>`)
		}, stream.InvalidNamespace},
		{"garbage instead of a header", func(nc net.Conn) {
			fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		}, stream.NotWellFormed},
		{"garbage after the header", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' %s to='cb1.example.com'><<<>>>`, ns)
		}, stream.NotWellFormed},
		{"no to", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' %s>`, ns)
		}, stream.HostUnknown},
		{"message before handshake", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' %s to='cb1.example.com'><message to='x@example.com'><body>hi</body></message>`, ns)
		}, stream.NotAuthorized},
		{"handshake in another namespace", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' %s to='cb1.example.com'><handshake xmlns='urn:x'>00</handshake>`, ns)
		}, stream.NotAuthorized},
		{"doctype", func(nc net.Conn) {
			fmt.Fprintf(nc, `<!DOCTYPE x [<!ENTITY a "b">]><stream:stream xmlns='jabber:component:accept' %s to='cb1.example.com'>`, ns)
		}, stream.RestrictedXML},
		{"silent after TLS", func(net.Conn) {}, stream.ConnectionTimeout},
		{"header then silence", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' %s to='cb1.example.com'>`, ns)
		}, stream.ConnectionTimeout},
		{"oversized handshake", func(nc net.Conn) {
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' %s to='cb1.example.com'><handshake>%s</handshake>`, ns, strings.Repeat("a", 2048))
		}, stream.PolicyViolation},
	}
	p := newTestPKI(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := p.listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cfg := testConfig()
			cfg.Timeout = 1500 * time.Millisecond // the negotiation, TLS included, on a loaded CI machine
			cfg.Limits.MaxStanza = 1024
			res := serveOne(ctx, ln, cfg)
			nc := p.dial(t, ln.Addr().String())
			start := time.Now()
			tt.send(nc)
			if got := peerError(t, nc); got != tt.want {
				t.Errorf("peer saw %q, want %q", got, tt.want)
			}
			r := wait(t, res)
			if got := condition(r.err); got != tt.want || r.c != nil {
				t.Errorf("Accept = %v, %v; want stream error %s", r.c, r.err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			// The server closed the connection.
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := nc.Read(make([]byte, 1)); err == nil {
				t.Errorf("read %d more bytes after the stream error, want EOF", n)
			}
		})
	}
}

// A peer that never even finishes TCP-level TLS gets cut off by the same timeout.
func TestAcceptSilentBeforeTLS(t *testing.T) {
	p := newTestPKI(t)
	ln := p.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := testConfig()
	cfg.Timeout = 200 * time.Millisecond
	res := serveOne(ctx, ln, cfg)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := wait(t, res)
	if got := condition(r.err); got != stream.ConnectionTimeout {
		t.Errorf("Accept error = %v, want connection-timeout", r.err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(nc); err != nil {
		t.Errorf("the server did not close the TCP connection: %v", err)
	}
}

func TestAcceptContextCancelled(t *testing.T) {
	p := newTestPKI(t)
	ln := p.listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := serveOne(ctx, ln, testConfig())
	nc := p.dial(t, ln.Addr().String())
	fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='cb1.example.com'>`)
	r := stream.NewReader(nc, stream.Limits{})
	if _, err := r.ReadOpen(""); err != nil { // Accept is now waiting for the handshake
		t.Fatal(err)
	}
	cancel()
	a := wait(t, res)
	if got := condition(a.err); got != stream.SystemShutdown || !errors.Is(a.err, context.Canceled) {
		t.Errorf("Accept error = %v, want system-shutdown wrapping context.Canceled", a.err)
	}
}

func TestStreamIDs(t *testing.T) {
	p := newTestPKI(t)
	seen := map[string]bool{}
	for i := range 3 {
		ln := p.listen(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res := serveOne(ctx, ln, testConfig())
		cc, err := Handshake(ctx, p.dial(t, ln.Addr().String()), "cb1.example.com", secret.New(testSecret), stream.Limits{})
		if err != nil {
			t.Fatalf("Handshake %d: %v", i, err)
		}
		a := wait(t, res)
		if a.err != nil {
			t.Fatal(a.err)
		}
		id := cc.StreamID()
		if b, err := hex.DecodeString(id); err != nil || len(b) < 16 {
			t.Errorf("stream id %q: want at least 32 hex digits (128 bits)", id)
		}
		if seen[id] {
			t.Errorf("stream id %q repeated", id)
		}
		seen[id] = true
		cc.Close("", "")
		a.c.Close("", "")
		cancel()
	}
}

// connected returns both ends of an established component link.
func connected(t *testing.T) (server, client *Conn) {
	t.Helper()
	p := newTestPKI(t)
	ln := p.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := serveOne(ctx, ln, testConfig())
	cc, err := Handshake(ctx, p.dial(t, ln.Addr().String()), "cb1.example.com", secret.New(testSecret), stream.Limits{})
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	a := wait(t, res)
	if a.err != nil {
		t.Fatalf("Accept: %v", a.err)
	}
	t.Cleanup(func() { cc.Close("", ""); a.c.Close("", "") })
	return a.c, cc
}

func TestElementsFlowBothWays(t *testing.T) {
	sc, cc := connected(t)
	// Server to component, as an element from another stream.
	msg := &stream.Element{Name: xml.Name{Space: stream.NSClient, Local: "message"}}
	msg.Set("from", "alice@example.com/web")
	msg.Set("to", "cb1.example.com")
	msg.Inner = []byte(`<body>hi &amp; bye</body>`)
	if err := sc.WriteElement(msg); err != nil {
		t.Fatal(err)
	}
	got, err := cc.Next()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name.Space != stream.NSComponent || got.Name.Local != "message" || got.Get("from") != "alice@example.com/web" || string(got.Inner) != `<body>hi &amp; bye</body>` {
		t.Errorf("component got %s", got)
	}
	// Component to server: several elements in one write, from several goroutines.
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				b := fmt.Appendf(nil, `<iq type='get' id='w%d-%d' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq><message id='m%d-%d'/>`, w, i, w, i)
				if err := cc.Write(b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ids := map[string]bool{}
	for range 2 * writers * each {
		e, err := sc.Next()
		if err != nil {
			t.Fatalf("after %d elements: %v", len(ids), err)
		}
		ids[e.Get("id")] = true
	}
	wg.Wait()
	if len(ids) != 2*writers*each {
		t.Errorf("got %d distinct elements, want %d", len(ids), 2*writers*each)
	}
}

// After the handshake the default 512 KiB stanza limit applies.
func TestStanzaLimit(t *testing.T) {
	sc, cc := connected(t)
	big := `<message><body>` + strings.Repeat("x", 600<<10) + `</body></message>`
	ok := `<message><body>` + strings.Repeat("x", 400<<10) + `</body></message>`
	go func() { _ = cc.Write([]byte(ok + big)) }()
	if e, err := sc.Next(); err != nil || len(e.Inner) < 400<<10 {
		t.Fatalf("400 KiB stanza: %v", err)
	}
	_, err := sc.Next()
	if got := condition(err); got != stream.PolicyViolation {
		t.Fatalf("600 KiB stanza: %v, want policy-violation", err)
	}
	sc.Close(stream.PolicyViolation, "stanza too large")
}

func TestCloseWhileNextBlocked(t *testing.T) {
	sc, cc := connected(t)
	next := make(chan error, 1)
	go func() {
		_, err := sc.Next()
		next <- err
	}()
	// Let the reader block (not required for correctness: Close must work either way).
	if err := sc.Close(stream.SystemShutdown, "going down"); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-next; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Next returned %v, want net.ErrClosed", err)
	}
	if err := sc.Close("", ""); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := sc.Write([]byte("<message/>")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
	// The component sees the stream error, then the end of the stream.
	e, err := cc.Next()
	se, ok := RemoteError(e)
	if err != nil || !ok || se.Condition != stream.SystemShutdown || se.Text != "going down" {
		t.Fatalf("component got %v, %v; want <system-shutdown/> 'going down'", e, err)
	}
	if _, err := cc.Next(); !errors.Is(err, stream.ErrClosed) {
		t.Errorf("then %v, want stream.ErrClosed", err)
	}
}

// Concurrent Close calls and a blocked Next: run under -race.
func TestConcurrentClose(t *testing.T) {
	sc, _ := connected(t)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = sc.Next() })
	for range 4 {
		wg.Go(func() { _ = sc.Close("", "") })
		wg.Go(func() { _ = sc.Write([]byte("<message/>")) })
	}
	wg.Wait()
}

func TestIdleTimeout(t *testing.T) {
	sc, cc := connected(t)
	sc.SetIdleTimeout(100 * time.Millisecond)
	if err := cc.Write([]byte(" ")); err != nil { // a keepalive alone is not an element
		t.Fatal(err)
	}
	start := time.Now()
	_, err := sc.Next()
	if !isTimeout(err) {
		t.Fatalf("Next = %v, want a timeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("timed out after %v, before the idle timeout", d)
	}
}

func TestDialFailures(t *testing.T) {
	tests := []struct {
		name   string
		server func(nc net.Conn) // what the fake server does after TLS
		want   string
	}{
		{"silent", func(nc net.Conn) { _, _ = io.Copy(io.Discard, nc) }, "timeout"},
		{"hangs up", func(nc net.Conn) {
			_, _ = nc.Read(make([]byte, 1))
			nc.Close()
		}, "eof"},
		{"not a component stream", func(nc net.Conn) {
			_, _ = nc.Read(make([]byte, 1))
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x'>`)
			_, _ = io.Copy(io.Discard, nc)
		}, "no-stream"},
		{"no id", func(nc net.Conn) {
			_, _ = nc.Read(make([]byte, 1))
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>`)
			_, _ = io.Copy(io.Discard, nc)
		}, "no-stream"},
		{"conflict", func(nc net.Conn) {
			_, _ = nc.Read(make([]byte, 1))
			fmt.Fprintf(nc, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='abc'>`)
			_, _ = nc.Read(make([]byte, 64))
			fmt.Fprintf(nc, `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>already connected</text></stream:error></stream:stream>`)
			_, _ = io.Copy(io.Discard, nc)
		}, "conflict"},
	}
	p := newTestPKI(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := p.listen(t)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				tt.server(nc)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := Handshake(ctx, p.dial(t, ln.Addr().String()), "cb1.example.com", secret.New(testSecret), stream.Limits{})
			var he *HandshakeError
			if !errors.As(err, &he) || he.Condition != tt.want {
				t.Fatalf("Handshake = %v, want *HandshakeError %s", err, tt.want)
			}
			if tt.want == "conflict" && he.Text != "already connected" {
				t.Errorf("text = %q, want the server's", he.Text)
			}
		})
	}
}

func TestDialCancelled(t *testing.T) {
	p := newTestPKI(t)
	ln := p.listen(t)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			defer nc.Close()
			_, _ = io.Copy(io.Discard, nc)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	nc := p.dial(t, ln.Addr().String())
	go func() {
		_, err := Handshake(ctx, nc, "cb1.example.com", secret.New(testSecret), stream.Limits{})
		done <- err
	}()
	cancel()
	err := wait(t, done)
	if got := condition(err); got != "canceled" || !errors.Is(err, context.Canceled) {
		t.Errorf("Handshake = %v, want canceled", err)
	}
}

func TestRemoteError(t *testing.T) {
	e, err := stream.Parse([]byte(`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'> who? </text></stream:error>`), stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	se, ok := RemoteError(e)
	if !ok || se.Condition != stream.HostUnknown || se.Text != "who?" {
		t.Errorf("RemoteError = %+v, %v", se, ok)
	}
	if _, ok := RemoteError(&stream.Element{}); ok {
		t.Error("RemoteError accepted a non-error element")
	}
}

// TestAcceptPeerClosed: a peer that closes the connection during the negotiation (a Call
// Bridge that rejected the server's certificate right after TLS, confab diagnose
// -no-register) is reported as closed, not as a stream error that was never sent.
func TestAcceptPeerClosed(t *testing.T) {
	const ns = `xmlns:stream='http://etherx.jabber.org/streams'`
	p := newTestPKI(t)
	for _, tc := range []struct {
		name       string
		send       string
		headerRead bool
		jid        string
	}{
		{"right after TLS", "", false, ""},
		{"after the stream header", fmt.Sprintf(`<stream:stream xmlns='jabber:component:accept' %s to='cb1.example.com'>`, ns), true, "cb1.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := p.listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := serveOne(ctx, ln, testConfig())
			nc := p.dial(t, ln.Addr().String())
			if tc.send != "" {
				fmt.Fprint(nc, tc.send)
				// Read the server's header, so that the close follows it.
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := stream.NewReader(nc, stream.Limits{}).ReadOpen(""); err != nil {
					t.Fatal(err)
				}
			}
			nc.Close()
			r := wait(t, res)
			var ce *ClosedError
			if !errors.As(r.err, &ce) || r.c != nil {
				t.Fatalf("Accept = %v, %v (%T); want a *ClosedError", r.c, r.err, r.err)
			}
			if ce.HeaderRead != tc.headerRead || ce.JID != tc.jid {
				t.Errorf("ClosedError %+v, want header read %v, JID %q", ce, tc.headerRead, tc.jid)
			}
			var se *stream.Error
			if errors.As(r.err, &se) {
				t.Errorf("Accept reports a stream error %v it never sent", se)
			}
		})
	}
}
