package xmppd_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// The hostile-input catalogue of the XMPP server: every kind of bad input, silence and abuse
// it is known to survive, with the answer the peer gets. Each case either runs here, against
// a server of its own with a bystander session logged in, after which the bystander must still
// be served and a new client must still log in; or names the test that covers it elsewhere
// (the catalogue checks that the test exists). docs/reliability.md lists the same cases; a
// test below keeps the two in step.

// Short timeouts for the cases about silence.
const (
	hOpen = 300 * time.Millisecond
	hTLS  = 300 * time.Millisecond
	hAuth = 1500 * time.Millisecond
)

type hostileCase struct {
	name string
	// want is the outcome: a stream error condition, a SASL or stanza error condition, or
	// one of the outcomes below.
	want string
	// see names the test that covers the case ("TestX/sub" or "package.TestX"); run is nil.
	see string
	// run plays the case against h and returns the outcome.
	run func(t *testing.T, h *xmppdtest.Harness) string
	// cfg adjusts the server (limits, timeouts) for the case.
	cfg func(*xmppd.Config)
}

// Outcomes that are not an error condition.
const (
	outClosed      = "closed"      // the server closed the connection without a stream error (nobody to tell: TLS not up, or the peer is gone)
	outTLSRefused  = "tls-refused" // the TLS handshake fails
	outHTTP400     = "http-400"    // the WebSocket handshake is refused
	outHTTP403     = "http-403"    // the WebSocket handshake is refused
	outWSTooBig    = "ws-1009"     // the WebSocket is closed with status 1009 (message too big)
	outRetryBind   = "bad-request, the client may bind again"
	outBounced     = "jid-malformed (bounced), the stream goes on"
	outSASLBlocked = "temporary-auth-failure: too many failed login attempts"
)

const (
	header     = `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0">`
	starttls   = `<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`
	billionLOL = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>`
)

func shortTimeouts(c *xmppd.Config) {
	c.OpenTimeout, c.TLSTimeout, c.AuthTimeout = hOpen, hTLS, hAuth
}

func hostileCases() []hostileCase {
	return []hostileCase{
		// XML the restricted profile refuses [RFC 6120 §11.1].
		{name: "billion laughs (entity expansion) before the stream header", want: stream.RestrictedXML,
			run: rawSend(`<?xml version="1.0"?>` + billionLOL + header + `<x>&lol3;</x>`)},
		{name: "billion laughs inside an authenticated stream", want: stream.RestrictedXML,
			run: afterLogin(billionLOL + `<message><body>&lol3;</body></message>`)},
		{name: "external entity (DOCTYPE SYSTEM)", want: stream.RestrictedXML,
			run: rawSend(`<!DOCTYPE x SYSTEM "file:///etc/passwd">` + header)},
		{name: "DTD in the stream header", want: stream.RestrictedXML, see: "TestStreamHeader/dtd"},
		{name: "DTD after login", want: stream.RestrictedXML, see: "TestBadInputAfterLogin/dtd"},
		{name: "undefined entity reference", want: stream.NotWellFormed,
			run: afterLogin(`<message to="bob@example.com"><body>&lol;</body></message>`)},
		{name: "comment", want: stream.RestrictedXML, see: "TestBadInputAfterLogin/comment"},
		{name: "processing instruction", want: stream.RestrictedXML, see: "TestBadInputAfterLogin/processing_instruction"},
		{name: "mismatched tags", want: stream.NotWellFormed, see: "TestBadInputAfterLogin/not_well_formed"},
		{name: "text outside a stanza", want: stream.NotWellFormed, run: afterLogin(`hello<presence/>`)},
		{name: "undeclared namespace prefix in a stanza", want: stream.NotWellFormed,
			run: afterLogin(`<message to="bob@example.com"><x:body>hi</x:body></message>`)},
		{name: "non-UTF-8 encoding declared", want: stream.UnsupportedEncoding,
			run: rawSend(`<?xml version="1.0" encoding="ISO-8859-1"?>` + header)},
		{name: "invalid UTF-8 in the stream header", want: stream.NotWellFormed,
			run: rawSend(strings.Replace(header, `to="example.com"`, "to=\"ex\xffample.com\"", 1))},
		{name: "invalid UTF-8 in a stanza", want: stream.NotWellFormed,
			run: afterLogin("<message to=\"bob@example.com\"><body>\xff\xfe</body></message>")},
		{name: "XML declaration of another version", want: stream.NotWellFormed, run: rawSend(`<?xml version="2.0"?>` + header)},
		// Size and depth.
		{name: "deep nesting after login", want: stream.PolicyViolation, see: "TestBadInputAfterLogin/deep_nesting"},
		{name: "deep nesting before TLS", want: stream.PolicyViolation,
			run: rawSend(header + strings.Repeat("<a>", 100))},
		{name: "oversized stanza after login", want: stream.PolicyViolation, see: "TestBadInputAfterLogin/oversized_stanza"},
		{name: "endless element before TLS (never closed)", want: stream.PolicyViolation,
			cfg: func(c *xmppd.Config) { c.MaxStanzaC2S = 16 << 10 },
			run: rawSend(header + "<message><body>" + strings.Repeat("x", 64<<10))},
		{name: "oversized WebSocket message", want: outWSTooBig, see: "TestWebSocketFraming/oversized_message"},
		{name: "oversized stanza from a Call Bridge", want: stream.PolicyViolation, see: "TestComponentOversizedStanza"},
		{name: "two elements in one WebSocket message", want: stream.NotWellFormed, see: "TestWebSocketFraming/two_elements_in_a_message"},
		{name: "binary WebSocket message", want: stream.BadFormat, see: "TestWebSocketFraming/binary_message"},
		// Addresses.
		{name: "unknown domain in the stream header", want: stream.HostUnknown, see: "TestStreamHeader/wrong_domain"},
		{name: "malformed JID in the stream header", want: stream.HostUnknown,
			run: rawSend(strings.Replace(header, `to="example.com"`, `to="a@@b/c"`, 1))},
		{name: "spoofed 'from' (another user)", want: stream.InvalidFrom, see: "TestBadInputAfterLogin/spoofed_from"},
		{name: "malformed JID in 'from'", want: stream.InvalidFrom,
			run: afterLogin(`<message from="@@x/" to="bob@example.com"><body>hi</body></message>`)},
		{name: "malformed JID in 'to'", want: outBounced, run: badTo},
		{name: "malformed resource in bind", want: outRetryBind, run: badBind},
		{name: "Call Bridge stanza with a foreign 'from'", want: stream.InvalidFrom, see: "TestComponentInvalidFrom"},
		// Order of negotiation.
		{name: "SASL before TLS", want: stream.NotAuthorized, see: "TestBeforeTLSOrAuth/auth_before_tls"},
		{name: "no SASL mechanism offered before TLS", want: "not offered", see: "TestNoSASLBeforeTLS"},
		{name: "stanza before TLS", want: stream.NotAuthorized, see: "TestBeforeTLSOrAuth/message_before_tls"},
		{name: "stanza before authentication", want: stream.NotAuthorized, see: "TestBeforeTLSOrAuth/message_before_auth"},
		{name: "bind before authentication", want: stream.NotAuthorized, see: "TestBeforeTLSOrAuth/bind_before_auth"},
		{name: "plaintext pipelined after starttls", want: stream.PolicyViolation,
			run: rawSend(header + starttls + `<message to="bob@example.com"/>`)},
		{name: "wrong stream namespace", want: stream.InvalidNamespace, see: "TestStreamHeader/wrong_namespace"},
		{name: "Call Bridge stream in another namespace", want: stream.InvalidNamespace, see: "component.TestAcceptRejects/wrong_namespace"},
		{name: "stanza from a Call Bridge before its handshake", want: stream.NotAuthorized, see: "component.TestAcceptRejects/message_before_handshake"},
		// Silence at each step (slowloris): the bound, then the answer.
		{name: "silent before the stream header", want: stream.ConnectionTimeout, see: "TestOpenTimeout"},
		{name: "stream header trickled a byte at a time", want: stream.ConnectionTimeout, cfg: shortTimeouts, run: trickleHeader},
		{name: "silent after the stream header", want: stream.ConnectionTimeout, cfg: shortTimeouts,
			run: silentAfter(hAuth, func(t *testing.T, h *xmppdtest.Harness) net.Conn { return rawHeader(t, h) })},
		{name: "silent after proceed (no TLS ClientHello)", want: outClosed, cfg: shortTimeouts,
			run: silentAfter(hTLS, func(t *testing.T, h *xmppdtest.Harness) net.Conn {
				nc := rawHeader(t, h)
				write(t, nc, starttls)
				readUntil(t, nc, "<proceed")
				return nc
			})},
		{name: "silent in the middle of the TLS handshake", want: outClosed, cfg: shortTimeouts,
			run: silentAfter(hTLS, func(t *testing.T, h *xmppdtest.Harness) net.Conn {
				nc := rawHeader(t, h)
				write(t, nc, starttls)
				readUntil(t, nc, "<proceed")
				write(t, nc, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") // a ClientHello's first bytes
				return nc
			})},
		{name: "silent after TLS, before SASL", want: stream.ConnectionTimeout, see: "TestAuthTimeout"},
		{name: "silent in the middle of SASL", want: stream.ConnectionTimeout, cfg: shortTimeouts, run: silentMidSASL},
		{name: "silent after SASL, before bind", want: stream.ConnectionTimeout, cfg: shortTimeouts, run: silentBeforeBind},
		{name: "silent after bind (half-open: the peer vanished)", want: stream.ConnectionTimeout, see: "TestIdleTimeout"},
		{name: "half-closed TCP (FIN after the header)", want: outClosed, run: halfClosed},
		{name: "WebSocket silent before open", want: stream.ConnectionTimeout, cfg: shortTimeouts, run: wsSilent},
		{name: "client that does not read (slow consumer)", want: "disconnected", see: "TestSlowConsumerIsDisconnected"},
		{name: "Call Bridge silent before TLS", want: outClosed, cfg: shortTimeouts, run: componentSilent(false)},
		{name: "Call Bridge silent after TLS", want: stream.ConnectionTimeout, cfg: shortTimeouts, run: componentSilent(true)},
		{name: "Call Bridge silent after its stream header", want: stream.ConnectionTimeout, see: "component.TestAcceptRejects/header_then_silence"},
		// TLS and the WebSocket handshake.
		{name: "TLS 1.1 on STARTTLS", want: outTLSRefused, run: oldTLS(false)},
		{name: "TLS 1.1 on the component port", want: outTLSRefused, run: oldTLS(true)},
		{name: "Call Bridge without a client certificate (mutual TLS)", want: outTLSRefused, see: "TestComponentMutualTLS"},
		{name: "WebSocket without the xmpp subprotocol", want: outHTTP400, see: "TestWebSocketHandshakeRefused/no_subprotocol"},
		{name: "WebSocket from a foreign Origin", want: outHTTP403, see: "TestWebSocketHandshakeRefused/foreign_origin"},
		// Abuse of credentials and resources.
		{name: "wrong Call Bridge secret", want: stream.NotAuthorized, see: "TestComponentHandshakeRefused/wrong_secret"},
		{name: "unknown Call Bridge name", want: stream.HostUnknown, see: "TestComponentHandshakeRefused/unknown_name"},
		{name: "repeated wrong Call Bridge secrets from one address", want: stream.PolicyViolation, see: "TestComponentSecretThrottle"},
		{name: "second Call Bridge of a connected name (the default policy, `[components] duplicate = \"reject\"`)", want: stream.Conflict, see: "TestDuplicateComponent/reject_by_default"},
		{name: "three failed SASL attempts on one stream", want: stream.PolicyViolation, see: "TestTooManyAuthFailures"},
		{name: "repeated wrong passwords for one account, over new streams", want: outSASLBlocked, run: passwordGuessing},
		{name: "more connections than MaxSessions", want: stream.ResourceConstraint, see: "TestMaxSessions"},
	}
}

func TestHostileInput(t *testing.T) {
	for _, tc := range hostileCases() {
		if tc.run == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := xmppdtest.Start(t, xmppdtest.Options{Config: tc.cfg})
			bystander := h.Login(t, "bob")
			if got := tc.run(t, h); got != tc.want {
				t.Errorf("outcome %q, want %q", got, tc.want)
			}
			// Others are still served: the session that was there, and a new one.
			ping(t, bystander, "still-there")
			stillWorks(t, h)
		})
	}
}

// TestHostileCatalogue checks that every case names a test that exists, or runs here, and
// that docs/reliability.md lists every case with its outcome.
func TestHostileCatalogue(t *testing.T) {
	tests := map[string]map[string]bool{"": testFuncs(t, "."), "component": testFuncs(t, "../component")}
	doc, err := os.ReadFile("../../docs/reliability.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // case name -> its table row
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 3 {
			rows[strings.TrimSpace(cells[1])] = line
		}
	}
	seen := map[string]bool{}
	for _, tc := range hostileCases() {
		if seen[tc.name] {
			t.Errorf("case %q listed twice", tc.name)
		}
		seen[tc.name] = true
		if (tc.run == nil) == (tc.see == "") {
			t.Errorf("case %q: want exactly one of run and see", tc.name)
		}
		if tc.see != "" {
			pkg, name, ok := strings.Cut(tc.see, ".")
			if !ok {
				pkg, name = "", tc.see
			}
			fn, _, _ := strings.Cut(name, "/")
			if !tests[pkg][fn] {
				t.Errorf("case %q: no test %s", tc.name, tc.see)
			}
		}
		row, ok := rows[tc.name]
		if !ok {
			t.Errorf("docs/reliability.md has no row for %q", tc.name)
		} else if !strings.Contains(row, tc.want) {
			t.Errorf("docs/reliability.md: the row of %q does not say %q: %s", tc.name, tc.want, row)
		}
	}
}

// testFuncs returns the names of the Test functions in the package in dir.
func testFuncs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				names[fd.Name.Name] = true
			}
		}
	}
	return names
}

// Helpers for raw connections.

var streamErrorRE = regexp.MustCompile(`<stream:error[^>]*><([a-z-]+)`)

// verdict reads what the server sends until it closes the connection (or within wait) and
// returns the condition of its stream error, outClosed if it closed without one, or "open".
func verdict(t *testing.T, nc net.Conn, wait time.Duration) string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "open"
	}
	if m := streamErrorRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return outClosed
}

func write(t *testing.T, nc net.Conn, s string) {
	t.Helper()
	_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntil reads until the server has sent marker.
func readUntil(t *testing.T, nc net.Conn, marker string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), marker) {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("waiting for %s: %v (got %q)", marker, err, got)
		}
	}
	_ = nc.SetReadDeadline(time.Time{})
}

func rawDial(t *testing.T, h *xmppdtest.Harness) net.Conn {
	t.Helper()
	nc, err := h.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// rawHeader opens a stream and reads the server's header and features.
func rawHeader(t *testing.T, h *xmppdtest.Harness) net.Conn {
	t.Helper()
	nc := rawDial(t, h)
	write(t, nc, header)
	readUntil(t, nc, "</stream:features>")
	return nc
}

// rawSend sends data on a new connection (ignoring a write the server cut short) and returns
// the server's verdict.
func rawSend(data string) func(*testing.T, *xmppdtest.Harness) string {
	return func(t *testing.T, h *xmppdtest.Harness) string {
		nc := rawDial(t, h)
		_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = nc.Write([]byte(data)) // the server may close before it has read everything
		return verdict(t, nc, 10*time.Second)
	}
}

// afterLogin sends raw XML on an authenticated, bound stream and returns the stream error.
func afterLogin(data string) func(*testing.T, *xmppdtest.Harness) string {
	return func(t *testing.T, h *xmppdtest.Harness) string {
		c := h.Login(t, "alice")
		c.Send(t, data)
		return c.ExpectStreamError(t).Condition
	}
}

// silentAfter runs setup and then says nothing; the server must close the connection about
// bound later (not much sooner, not much later).
func silentAfter(bound time.Duration, setup func(*testing.T, *xmppdtest.Harness) net.Conn) func(*testing.T, *xmppdtest.Harness) string {
	return func(t *testing.T, h *xmppdtest.Harness) string {
		nc := setup(t, h)
		start := time.Now()
		v := verdict(t, nc, 10*time.Second)
		checkBound(t, time.Since(start), bound)
		return v
	}
}

// checkBound checks that a silent peer was cut off within its bound: not before half of it,
// not more than a few seconds after it (the machine may be busy).
func checkBound(t *testing.T, took, bound time.Duration) {
	t.Helper()
	if took < bound/2 || took > bound+5*time.Second {
		t.Errorf("closed after %s, want about %s", took.Round(time.Millisecond), bound)
	}
}

func trickleHeader(t *testing.T, h *xmppdtest.Harness) string {
	nc := rawDial(t, h)
	start := time.Now()
	// What the server sent so far: a look that times out may already have read the start of
	// its answer, which the next look needs to see the stream error whole.
	var got []byte
	look := func(wait time.Duration) string {
		_ = nc.SetReadDeadline(time.Now().Add(wait))
		b, err := io.ReadAll(nc)
		got = append(got, b...)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "open"
		}
		if m := streamErrorRE.FindSubmatch(got); m != nil {
			return string(m[1])
		}
		return outClosed
	}
	for i := 0; i < len(header) && time.Since(start) < 5*time.Second; i++ {
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write([]byte{header[i]}); err != nil {
			break // closed
		}
		tm := time.NewTimer(20 * time.Millisecond) // a slowloris byte every 20ms: never silent for long
		<-tm.C
		if v := look(time.Millisecond); v != "open" {
			checkBound(t, time.Since(start), hOpen)
			return v
		}
	}
	return look(10 * time.Second)
}

func silentMidSASL(t *testing.T, h *xmppdtest.Harness) string {
	c := h.DialTLS(t)
	c.Send(t, `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="SCRAM-SHA-256">biwsbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnYyOXhrbFE=</auth>`)
	if e, err := c.Next(); err != nil || e.Name.Local != "challenge" {
		t.Fatalf("got %v, %v; want a challenge", e, err)
	}
	return c.ExpectStreamError(t).Condition
}

func silentBeforeBind(t *testing.T, h *xmppdtest.Harness) string {
	c := h.DialTLS(t)
	if err := c.Auth("PLAIN", "alice", h.Users["alice"]); err != nil {
		t.Fatal(err)
	}
	return c.ExpectStreamError(t).Condition
}

func halfClosed(t *testing.T, h *xmppdtest.Harness) string {
	nc := rawHeader(t, h)
	if err := nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v := verdict(t, nc, 10*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the half-closed connection was closed after %s", d)
	}
	return v
}

func wsSilent(t *testing.T, h *xmppdtest.Harness) string {
	c, err := h.DialWebSocketRaw(xmppdtest.WebSocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []byte
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			break
		}
		got = append(got, data...)
	}
	checkBound(t, time.Since(start), hOpen)
	if m := streamErrorRE.FindSubmatch(got); m != nil {
		return string(m[1])
	}
	return outClosed
}

func badTo(t *testing.T, h *xmppdtest.Harness) string {
	c := h.Login(t, "alice")
	c.Send(t, `<message to="a@@b" id="bad-to"><body>hi</body></message>`)
	e := c.Expect(t, "the bounce", xmppdtest.IsKind("message", "bad-to"))
	if e.Get("type") != "error" {
		t.Fatalf("got %s, want an error", e)
	}
	ping(t, c, "after-bad-to")
	return xmppdtest.ErrorCondition(e) + " (bounced), the stream goes on"
}

func badBind(t *testing.T, h *xmppdtest.Harness) string {
	c := h.DialTLS(t)
	if err := c.Auth("PLAIN", "alice", h.Users["alice"]); err != nil {
		t.Fatal(err)
	}
	_, err := c.Bind(strings.Repeat("r", 1100)) // a resourcepart is at most 1023 bytes
	if err == nil || !strings.Contains(err.Error(), "bad-request") {
		t.Fatalf("bind of a 1100-byte resource: %v, want bad-request", err)
	}
	if _, err := c.Bind("phone"); err != nil {
		t.Fatalf("bind after the refusal: %v", err)
	}
	ping(t, c, "bound")
	return outRetryBind
}

func componentSilent(afterTLS bool) func(*testing.T, *xmppdtest.Harness) string {
	return func(t *testing.T, h *xmppdtest.Harness) string {
		nc, err := net.DialTimeout("tcp", h.ComponentAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		bound := hTLS
		if afterTLS {
			tc := tls.Client(nc, h.ClientTLS(h.Domain))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			nc, bound = tc, hOpen
		}
		start := time.Now()
		v := verdict(t, nc, 10*time.Second)
		checkBound(t, time.Since(start), bound)
		return v
	}
}

func oldTLS(component bool) func(*testing.T, *xmppdtest.Harness) string {
	return func(t *testing.T, h *xmppdtest.Harness) string {
		var nc net.Conn
		if component {
			var err error
			if nc, err = net.DialTimeout("tcp", h.ComponentAddr, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close() })
		} else {
			nc = rawHeader(t, h)
			write(t, nc, starttls)
			readUntil(t, nc, "<proceed")
		}
		cfg := h.ClientTLS(h.Domain)
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		tc := tls.Client(nc, cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		err := tc.Handshake()
		if err == nil {
			return fmt.Sprintf("accepted %s", tls.VersionName(tc.ConnectionState().Version))
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("handshake error %v: want one about the protocol version", err)
		}
		return outTLSRefused
	}
}

// passwordGuessing tries wrong passwords for one account over fresh streams (each stream
// allows three attempts) until the Call Bridge's throttle answers.
func passwordGuessing(t *testing.T, h *xmppdtest.Harness) string {
	for stream := 0; stream < 4; stream++ {
		c, err := h.Dial()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.StartTLS(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			err := c.Auth("PLAIN", "alice", "guess")
			var se *xmppdtest.SASLError
			if !errors.As(err, &se) {
				break // the stream was closed after its third failure
			}
			if se.Condition == "temporary-auth-failure" && strings.Contains(se.Text, "Too many failed login attempts") {
				c.Close()
				// The right password waits too, and bob is not affected (checked by the caller).
				c2, err := h.Dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c2.Close()
				if err := c2.StartTLS(); err != nil {
					t.Fatal(err)
				}
				if err := c2.Auth("PLAIN", "alice", h.Users["alice"]); err == nil {
					t.Error("a blocked account logged in")
				}
				return outSASLBlocked
			}
			if se.Condition != "not-authorized" {
				t.Fatalf("attempt: %v", se)
			}
		}
		c.Close()
	}
	return "never throttled"
}
