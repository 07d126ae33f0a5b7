package xmppdtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/stream"
)

// Namespaces the client uses.
const (
	nsTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind = "urn:ietf:params:xml:ns:xmpp-bind"
)

// DefaultTimeout bounds each read of a Client.
const DefaultTimeout = 10 * time.Second

// wire is a client's transport: a TCP stream or a WebSocket.
type wire interface {
	open(domain string) error
	readOpen(deadline time.Time) error
	send(b []byte) error
	next(deadline time.Time) (*stream.Element, error)
	startTLS(cfg *tls.Config) error
	restart()
	close() error
	drop() error
}

// Client is a small XMPP client for tests. It is not safe for concurrent use.
type Client struct {
	// JID is the bound full JID (after Bind).
	JID string
	// Features is the last <stream:features/> received.
	Features *stream.Element
	// Timeout bounds each read (DefaultTimeout if zero).
	Timeout time.Duration

	h      *Harness
	w      wire
	closed bool
}

// SASLError is a SASL <failure/> from the server.
type SASLError struct {
	Condition, Text string
}

func (e *SASLError) Error() string { return "sasl failure: " + e.Condition + ": " + e.Text }

// StreamError is a <stream:error/> the server ended the stream with.
type StreamError struct {
	Condition, Text string
}

func (e *StreamError) Error() string { return "stream error: " + e.Condition + ": " + e.Text }

// Dial connects to the c2s port and opens a stream (before STARTTLS). It does not fail the
// test; the features are in c.Features.
func (h *Harness) Dial() (*Client, error) {
	nc, err := net.DialTimeout("tcp", h.C2SAddr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &Client{h: h, w: newTCPWire(nc)}
	if err := c.Open(); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// DialFrom is Dial from the source address ip (127.0.0.2 is a second host on Linux's
// loopback), for tests of what the server does per source address.
func (h *Harness) DialFrom(ip net.IP) (*Client, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
	nc, err := d.Dial("tcp", h.C2SAddr)
	if err != nil {
		return nil, err
	}
	c := &Client{h: h, w: newTCPWire(nc)}
	if err := c.Open(); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// DialRaw connects to the c2s port without sending anything.
func (h *Harness) DialRaw() (net.Conn, error) {
	return net.DialTimeout("tcp", h.C2SAddr, 5*time.Second)
}

// WebSocketOptions adjust DialWebSocket.
type WebSocketOptions struct {
	// Subprotocols offered (default ["xmpp"]); set to an empty non-nil slice to offer none.
	Subprotocols []string
	// Origin, if set, is sent as the Origin header.
	Origin string
	// OnPing, if set, is called for every WebSocket ping frame received (while reading).
	OnPing func()
}

// DialWebSocket connects to the WebSocket endpoint and opens a stream.
func (h *Harness) DialWebSocket(o WebSocketOptions) (*Client, error) {
	c, err := h.DialWebSocketRaw(o)
	if err != nil {
		return nil, err
	}
	cl := &Client{h: h, w: &wsWire{c: c}}
	if err := cl.Open(); err != nil {
		_ = c.CloseNow()
		return nil, err
	}
	return cl, nil
}

// DialWebSocketRaw completes the WebSocket handshake only. A refused handshake's error
// carries the HTTP status (see websocket.Dial).
func (h *Harness) DialWebSocketRaw(o WebSocketOptions) (*websocket.Conn, error) {
	protos := o.Subprotocols
	if protos == nil {
		protos = []string{"xmpp"}
	}
	hdr := http.Header{}
	if o.Origin != "" {
		hdr.Set("Origin", o.Origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{
		HTTPClient:   h.HTTPClient(),
		HTTPHeader:   hdr,
		Subprotocols: protos,
	}
	if o.OnPing != nil {
		opts.OnPingReceived = func(context.Context, []byte) bool { o.OnPing(); return true }
	}
	c, resp, err := websocket.Dial(ctx, h.WebSocketURL, opts)
	if err != nil {
		if resp != nil {
			return nil, &HTTPError{StatusCode: resp.StatusCode, Err: err}
		}
		return nil, err
	}
	c.SetReadLimit(4 << 20)
	return c, nil
}

// HTTPError is a WebSocket handshake refused with an HTTP status.
type HTTPError struct {
	StatusCode int
	Err        error
}

func (e *HTTPError) Error() string { return fmt.Sprintf("http %d: %v", e.StatusCode, e.Err) }
func (e *HTTPError) Unwrap() error { return e.Err }

// HTTPClient returns an HTTP client that trusts the test CA.
func (h *Harness) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: h.ClientTLS("")}}
}

// DialTLS connects over TCP and negotiates TLS (STARTTLS), failing the test on any error.
// The client is closed when the test ends.
func (h *Harness) DialTLS(t testing.TB) *Client {
	t.Helper()
	c, err := h.Dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.StartTLS(); err != nil {
		t.Fatalf("starttls: %v", err)
	}
	return c
}

// Login connects over TCP, negotiates TLS, authenticates user with SCRAM-SHA-256 and binds
// a resource, failing the test on any error. The client is closed when the test ends.
func (h *Harness) Login(t testing.TB, user string) *Client {
	t.Helper()
	c := h.DialTLS(t)
	h.login(t, c, user)
	return c
}

// LoginWebSocket is Login over WebSocket.
func (h *Harness) LoginWebSocket(t testing.TB, user string) *Client {
	t.Helper()
	c, err := h.DialWebSocket(WebSocketOptions{})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	h.login(t, c, user)
	return c
}

func (h *Harness) login(t testing.TB, c *Client, user string) {
	t.Helper()
	if err := c.Login(user); err != nil {
		t.Fatal(err)
	}
}

// Login authenticates a test user (one of the harness's Users) with SCRAM-SHA-256 and binds
// a resource the server picks.
func (c *Client) Login(user string) error {
	pass, ok := c.h.Users[user]
	if !ok {
		return fmt.Errorf("no test user %q", user)
	}
	if err := c.Auth("SCRAM-SHA-256", user, pass); err != nil {
		return fmt.Errorf("auth %s: %w", user, err)
	}
	if _, err := c.Bind(""); err != nil {
		return fmt.Errorf("bind %s: %w", user, err)
	}
	return nil
}

func (c *Client) deadline() time.Time {
	if c.Timeout > 0 {
		return time.Now().Add(c.Timeout)
	}
	return time.Now().Add(DefaultTimeout)
}

// Open sends a stream header and reads the server's header and features.
func (c *Client) Open() error {
	if err := c.w.open(c.h.Domain); err != nil {
		return err
	}
	if err := c.w.readOpen(c.deadline()); err != nil {
		return err
	}
	f, err := c.Next()
	if err != nil {
		return err
	}
	if f.Name.Space != stream.NSStreams || f.Name.Local != "features" {
		return fmt.Errorf("expected <stream:features/>, got %s", f)
	}
	c.Features = f
	return nil
}

// HasFeature reports whether the last features contain a child named local in ns.
func (c *Client) HasFeature(ns, local string) bool {
	if c.Features == nil {
		return false
	}
	var v struct {
		Children []struct{ XMLName xml.Name } `xml:",any"`
	}
	if c.Features.Decode(&v) != nil {
		return false
	}
	for _, ch := range v.Children {
		if ch.XMLName.Space == ns && ch.XMLName.Local == local {
			return true
		}
	}
	return false
}

// Mechanisms returns the SASL mechanisms offered in the last features.
func (c *Client) Mechanisms() []string {
	if c.Features == nil {
		return nil
	}
	var v struct {
		Mechs []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
	}
	_ = c.Features.Decode(&v)
	return v.Mechs
}

// StartTLS negotiates TLS [RFC 6120 §5] and reopens the stream.
func (c *Client) StartTLS() error {
	if err := c.SendRaw(`<starttls xmlns="` + nsTLS + `"/>`); err != nil {
		return err
	}
	e, err := c.Next()
	if err != nil {
		return err
	}
	if e.Name.Space != nsTLS || e.Name.Local != "proceed" {
		return fmt.Errorf("starttls: got %s", e)
	}
	if err := c.w.startTLS(c.h.ClientTLS(c.h.Domain)); err != nil {
		return err
	}
	return c.Open()
}

// Auth authenticates with mech (SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN) and, on success, restarts
// the stream. A SASL failure is a *SASLError.
func (c *Client) Auth(mech, user, pass string) error {
	var step func(challenge []byte) ([]byte, error)
	var conv *scram.ClientConversation
	switch mech {
	case "PLAIN":
		step = func([]byte) ([]byte, error) { return []byte("\x00" + user + "\x00" + pass), nil }
	case "SCRAM-SHA-256", "SCRAM-SHA-1":
		fn := scram.SHA256
		if mech == "SCRAM-SHA-1" {
			fn = scram.SHA1
		}
		cl, err := fn.NewClient(user, pass, "")
		if err != nil {
			return err
		}
		conv = cl.NewConversation()
		step = func(ch []byte) ([]byte, error) {
			s, err := conv.Step(string(ch))
			return []byte(s), err
		}
	default:
		return fmt.Errorf("client: mechanism %s not implemented", mech)
	}
	first, err := step(nil)
	if err != nil {
		return err
	}
	if err := c.SendRaw(`<auth xmlns="` + nsSASL + `" mechanism="` + mech + `">` + base64.StdEncoding.EncodeToString(first) + `</auth>`); err != nil {
		return err
	}
	for {
		e, err := c.Next()
		if err != nil {
			return err
		}
		if e.Name.Space != nsSASL {
			return fmt.Errorf("auth: unexpected %s", e)
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(e.Inner)))
		switch e.Name.Local {
		case "challenge":
			if err != nil {
				return fmt.Errorf("auth: challenge: %w", err)
			}
			resp, err := step(data)
			if err != nil {
				return fmt.Errorf("auth: %w", err)
			}
			if err := c.SendRaw(`<response xmlns="` + nsSASL + `">` + base64.StdEncoding.EncodeToString(resp) + `</response>`); err != nil {
				return err
			}
		case "success":
			if conv != nil {
				if err != nil {
					return fmt.Errorf("auth: success data: %w", err)
				}
				if _, err := conv.Step(string(data)); err != nil || !conv.Valid() {
					return fmt.Errorf("auth: the server's SCRAM signature does not verify: %v", err)
				}
			}
			c.w.restart()
			return c.Open()
		case "failure":
			return ParseSASLFailure(e)
		default:
			return fmt.Errorf("auth: unexpected %s", e)
		}
	}
}

// ParseSASLFailure reads a SASL <failure/>.
func ParseSASLFailure(e *stream.Element) *SASLError {
	var v struct {
		Children []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	f := &SASLError{}
	_ = e.Decode(&v)
	for _, ch := range v.Children {
		if ch.XMLName.Local == "text" {
			f.Text = ch.Text
		} else {
			f.Condition = ch.XMLName.Local
		}
	}
	return f
}

// Bind binds resource (the server picks one if empty) and returns the full JID.
func (c *Client) Bind(resource string) (string, error) {
	req := `<iq type="set" id="bind1"><bind xmlns="` + nsBind + `">`
	if resource != "" {
		req += "<resource>" + stream.Escape(resource) + "</resource>"
	}
	if err := c.SendRaw(req + `</bind></iq>`); err != nil {
		return "", err
	}
	e, err := c.Next()
	if err != nil {
		return "", err
	}
	var v struct {
		Type string `xml:"type,attr"`
		JID  string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
	}
	if err := e.Decode(&v); err != nil || v.Type != "result" || v.JID == "" {
		return "", fmt.Errorf("bind: got %s", e)
	}
	c.JID = v.JID
	return v.JID, nil
}

// SendRaw writes raw XML: one element (one WebSocket message).
func (c *Client) SendRaw(x string) error { return c.w.send([]byte(x)) }

// Send writes raw XML, failing the test on error.
func (c *Client) Send(t testing.TB, x string) {
	t.Helper()
	if err := c.SendRaw(x); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// Next reads the next element. A <stream:error/> from the server is returned as a
// *StreamError; the end of the server's stream as stream.ErrClosed.
func (c *Client) Next() (*stream.Element, error) {
	e, err := c.w.next(c.deadline())
	if err != nil {
		return nil, err
	}
	if se, ok := component.RemoteError(e); ok {
		return nil, &StreamError{Condition: se.Condition, Text: se.Text}
	}
	return e, nil
}

// Expect reads elements until one satisfies match, failing the test on an error or after
// the client's timeout. Server pings met on the way are answered.
func (c *Client) Expect(t testing.TB, what string, match func(*stream.Element) bool) *stream.Element {
	t.Helper()
	for {
		e, err := c.Next()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(e) {
			return e
		}
		if e.Name.Local == "iq" && e.Get("type") == "get" && isPing(e) {
			var x stream.Builder
			_ = c.SendRaw(string(x.Empty("iq", "type", "result", "id", e.Get("id"), "to", e.Get("from")).B))
		}
	}
}

// ExpectStreamError reads until the server's stream error and returns its condition;
// anything else (including a clean end of stream) fails the test.
func (c *Client) ExpectStreamError(t testing.TB) *StreamError {
	t.Helper()
	for {
		_, err := c.Next()
		var se *StreamError
		switch {
		case errors.As(err, &se):
			return se
		case err != nil:
			t.Fatalf("expected a stream error, got %v", err)
		}
	}
}

// ExpectClosed reads until the connection ends: returns nil after the server's end of
// stream or a closed connection, the error otherwise.
func (c *Client) ExpectClosed() error {
	for {
		_, err := c.Next()
		if err == nil {
			continue
		}
		if errors.Is(err, stream.ErrClosed) || isClosedErr(err) {
			return nil
		}
		return err
	}
}

// Drop closes the connection without ending the stream, as a lost network would (the
// server sees the connection end, not a </stream>).
func (c *Client) Drop() {
	if c.closed {
		return
	}
	c.closed = true
	_ = c.w.drop()
}

// Close ends the stream and the connection.
func (c *Client) Close() {
	if c.closed {
		return
	}
	c.closed = true
	_ = c.w.close()
}

// Stanza matchers for Expect.

// IsKind matches a stanza by element name and, if id is set, id.
func IsKind(kind, id string) func(*stream.Element) bool {
	return func(e *stream.Element) bool {
		return e.Name.Local == kind && (id == "" || e.Get("id") == id)
	}
}

// ErrorCondition returns the defined condition of a stanza error, or "".
func ErrorCondition(e *stream.Element) string {
	var v struct {
		Error struct {
			Children []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"error"`
	}
	if e.Decode(&v) != nil {
		return ""
	}
	for _, ch := range v.Error.Children {
		if ch.XMLName.Space == stream.NSStanzaErr && ch.XMLName.Local != "text" {
			return ch.XMLName.Local
		}
	}
	return ""
}

// Body returns the <body/> of a message.
func Body(e *stream.Element) string {
	var v struct {
		Body string `xml:"body"`
	}
	_ = e.Decode(&v)
	return v.Body
}

func isClosedErr(err error) bool {
	if errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset") {
		return true
	}
	return websocket.CloseStatus(err) != -1
}

// tcpWire is a client stream on TCP.
type tcpWire struct {
	raw net.Conn
	nc  net.Conn
	br  *bufio.Reader
	r   *stream.Reader
}

func newTCPWire(nc net.Conn) *tcpWire {
	w := &tcpWire{raw: nc, nc: nc, br: bufio.NewReader(nc)}
	w.r = stream.NewReader(w.br, stream.Limits{MaxStanza: 4 << 20})
	return w
}

func (w *tcpWire) open(domain string) error {
	return w.send(stream.AppendOpen(nil, stream.Header{NS: stream.NSClient, To: domain, Version: "1.0", Lang: "en"}))
}

func (w *tcpWire) readOpen(deadline time.Time) error {
	_ = w.nc.SetReadDeadline(deadline)
	_, err := w.r.ReadOpen(stream.NSClient)
	return err
}

func (w *tcpWire) send(b []byte) error {
	_ = w.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := w.nc.Write(b)
	return err
}

func (w *tcpWire) next(deadline time.Time) (*stream.Element, error) {
	_ = w.nc.SetReadDeadline(deadline)
	return w.r.Next()
}

func (w *tcpWire) startTLS(cfg *tls.Config) error {
	tc := tls.Client(w.raw, cfg)
	_ = w.raw.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	_ = w.raw.SetDeadline(time.Time{})
	w.nc = tc
	w.br = bufio.NewReader(tc)
	w.restart()
	return nil
}

func (w *tcpWire) restart() { w.r = stream.NewReader(w.br, stream.Limits{MaxStanza: 4 << 20}) }

func (w *tcpWire) drop() error { return w.raw.Close() }

func (w *tcpWire) close() error {
	_ = w.send([]byte(stream.Close))
	return w.nc.Close()
}

// wsWire is a client stream over WebSocket [RFC 7395].
type wsWire struct{ c *websocket.Conn }

func (w *wsWire) open(domain string) error {
	return w.send([]byte(`<open xmlns="` + stream.NSFraming + `" to="` + stream.Escape(domain) + `" version="1.0"/>`))
}

func (w *wsWire) readOpen(deadline time.Time) error {
	e, err := w.next(deadline)
	if err != nil {
		return err
	}
	if e.Name.Space != stream.NSFraming || e.Name.Local != "open" {
		if se, ok := component.RemoteError(e); ok {
			return &StreamError{Condition: se.Condition, Text: se.Text}
		}
		return fmt.Errorf("expected <open/>, got %s", e)
	}
	return nil
}

func (w *wsWire) send(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return w.c.Write(ctx, websocket.MessageText, b)
}

func (w *wsWire) next(deadline time.Time) (*stream.Element, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, data, err := w.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	e, err := stream.Parse(data, stream.NSClient, stream.Limits{MaxStanza: 4 << 20})
	if err != nil {
		return nil, err
	}
	if e.Name.Space == stream.NSFraming && e.Name.Local == "close" {
		return nil, stream.ErrClosed
	}
	return e, nil
}

func (w *wsWire) startTLS(*tls.Config) error { return errors.New("no STARTTLS over WebSocket") }
func (w *wsWire) restart()                   {}

func (w *wsWire) drop() error { return w.c.CloseNow() }

func (w *wsWire) close() error {
	_ = w.send([]byte(`<close xmlns="` + stream.NSFraming + `"/>`))
	return w.c.Close(websocket.StatusNormalClosure, "")
}
