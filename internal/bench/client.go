package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/stream"
)

// Namespaces of stream negotiation.
const (
	nsTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind = "urn:ietf:params:xml:ns:xmpp-bind"
	nsPing = "urn:xmpp:ping"
)

// SASL mechanisms the load tool can use.
const (
	MechSCRAMSHA256 = "SCRAM-SHA-256"
	MechPLAIN       = "PLAIN"
)

// Kinds of error, as counted in results.
const (
	ErrConnect     = "connect"
	ErrTLS         = "tls"
	ErrTimeout     = "timeout"
	ErrClosed      = "closed"
	ErrStream      = "stream-error"
	ErrSASL        = "sasl"
	ErrBind        = "bind"
	ErrProtocol    = "protocol"
	ErrComponent   = "component"
	ErrInterrupted = "interrupted"
)

// Error is a failed step, with the kind it is counted under.
type Error struct {
	Kind string // one of the Err* kinds, possibly with ":condition"
	Err  error
}

func (e *Error) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Kind returns the error kind of err for counting: the Kind of an *Error, ErrTimeout for a
// deadline, ErrClosed for a connection the server closed, else ErrProtocol.
func Kind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Kind != ErrStream && e.Kind != ErrSASL && isTimeout(e.Err) {
			return ErrTimeout
		}
		return e.Kind
	}
	switch {
	case isTimeout(err):
		return ErrTimeout
	case errors.Is(err, context.Canceled):
		return ErrInterrupted
	case isClosed(err):
		return ErrClosed
	}
	return ErrProtocol
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, stream.ErrClosed) || errors.Is(err, errEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

var errEOF = errors.New("connection closed by the server")

func fail(kind string, err error) error { return &Error{Kind: kind, Err: err} }

// Target is the XMPP server under test.
type Target struct {
	// Addr is the client port (STARTTLS), host:port on loopback.
	Addr string
	// WebSocketURL, when set, makes clients use XMPP over WebSocket [RFC 7395] instead.
	WebSocketURL string
	// Domain is the XMPP domain.
	Domain string
	// TLS is the client TLS configuration (trust, server name, key exchange).
	TLS *tls.Config
	// Mechanism is MechSCRAMSHA256 (the default) or MechPLAIN.
	Mechanism string
	// Timeout bounds each read and write (default 10s).
	Timeout time.Duration

	scramMu sync.Mutex
	scram   map[string]*scram.Client // per user: caches the salted password by salt
}

func (t *Target) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return 10 * time.Second
}

// CheckLoopback refuses targets that are not on a loopback address: the load tool is for
// measuring servers on this machine, never for loading someone else's.
func (t *Target) CheckLoopback(ctx context.Context) error {
	addrs := []string{}
	if t.Addr != "" {
		addrs = append(addrs, t.Addr)
	}
	if t.WebSocketURL != "" {
		u := strings.TrimPrefix(strings.TrimPrefix(t.WebSocketURL, "wss://"), "ws://")
		host, _, _ := strings.Cut(u, "/")
		addrs = append(addrs, host)
	}
	if len(addrs) == 0 {
		return errors.New("no target address")
	}
	for _, a := range addrs {
		if err := CheckLoopback(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// CheckLoopback returns an error unless addr (host or host:port) resolves only to loopback
// addresses.
func CheckLoopback(ctx context.Context, addr string) error {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: the load tool only measures servers on this machine", addr)
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, not a loopback address: the load tool only measures servers on this machine", host, ip)
		}
	}
	return nil
}

func (t *Target) scramClient(user, pass string) (*scram.Client, error) {
	t.scramMu.Lock()
	defer t.scramMu.Unlock()
	if c := t.scram[user+"\x00"+pass]; c != nil {
		return c, nil
	}
	c, err := scram.SHA256.NewClient(user, pass, "")
	if err != nil {
		return nil, err
	}
	if t.scram == nil {
		t.scram = make(map[string]*scram.Client)
	}
	t.scram[user+"\x00"+pass] = c
	return c, nil
}

// Phases are the durations of a login's steps.
type Phases struct {
	Connect, TLS, Auth, Bind time.Duration
}

// Conn is an authenticated, bound client stream. Its methods are not safe for concurrent
// use, except Close.
type Conn struct {
	JID string
	w   wire
	t   *Target
}

// wire is a client's transport: TCP with STARTTLS, or a WebSocket.
type wire interface {
	open(domain string) error
	readOpen(deadline time.Time) error
	send(b []byte, deadline time.Time) error
	next(deadline time.Time) (*stream.Element, error)
	startTLS(ctx context.Context, cfg *tls.Config) error
	restart()
	close() error
}

// Login connects, negotiates TLS, authenticates as user and binds resource (a server-chosen
// one if empty). Errors are *Error.
func (t *Target) Login(ctx context.Context, user, pass, resource string) (*Conn, Phases, error) {
	var ph Phases
	start := time.Now()
	c := &Conn{t: t}
	var err error
	if t.WebSocketURL != "" {
		c.w, err = dialWebSocket(ctx, t.WebSocketURL, t.TLS, t.timeout())
		if err != nil {
			return nil, ph, err
		}
	} else {
		d := net.Dialer{Timeout: t.timeout()}
		nc, err := d.DialContext(ctx, "tcp", t.Addr)
		if err != nil {
			return nil, ph, fail(ErrConnect, err)
		}
		c.w = newTCPWire(nc)
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.w.close()
		}
	}()
	features, err := c.open()
	if err != nil {
		return nil, ph, err
	}
	ph.Connect = time.Since(start)
	mark := time.Now()
	if t.WebSocketURL == "" {
		if !hasChild(features, "<starttls") {
			return nil, ph, fail(ErrProtocol, errors.New("the server offers no STARTTLS"))
		}
		if err := c.send(`<starttls xmlns="` + nsTLS + `"/>`); err != nil {
			return nil, ph, err
		}
		e, err := c.next()
		if err != nil {
			return nil, ph, err
		}
		if e.Name.Local != "proceed" {
			return nil, ph, fail(ErrTLS, fmt.Errorf("starttls refused: %s", e))
		}
		if err := c.w.startTLS(ctx, t.TLS); err != nil {
			return nil, ph, fail(ErrTLS, err)
		}
		if features, err = c.open(); err != nil {
			return nil, ph, err
		}
	}
	ph.TLS = time.Since(mark)
	mark = time.Now()
	mech := t.Mechanism
	if mech == "" {
		mech = MechSCRAMSHA256
	}
	if !hasChild(features, ">"+mech+"<") {
		return nil, ph, fail(ErrSASL+":mechanism-not-offered", fmt.Errorf("the server does not offer %s", mech))
	}
	if err := c.auth(mech, user, pass); err != nil {
		return nil, ph, err
	}
	c.w.restart()
	if _, err := c.open(); err != nil {
		return nil, ph, err
	}
	ph.Auth = time.Since(mark)
	mark = time.Now()
	if err := c.bind(resource); err != nil {
		return nil, ph, err
	}
	ph.Bind = time.Since(mark)
	ok = true
	return c, ph, nil
}

func hasChild(e *stream.Element, s string) bool { return strings.Contains(string(e.Inner), s) }

func (c *Conn) deadline() time.Time { return time.Now().Add(c.t.timeout()) }

func (c *Conn) send(s string) error { return c.Send([]byte(s)) }

// Send writes raw XML.
func (c *Conn) Send(b []byte) error {
	if err := c.w.send(b, c.deadline()); err != nil {
		return fail(ErrClosed, err)
	}
	return nil
}

// next reads the next element; a stream error becomes an *Error of kind stream-error:cond.
func (c *Conn) next() (*stream.Element, error) { return c.NextBefore(c.deadline()) }

// NextBefore reads the next element, waiting until deadline (none if zero).
func (c *Conn) NextBefore(deadline time.Time) (*stream.Element, error) {
	e, err := c.w.next(deadline)
	if err != nil {
		var se *stream.Error
		if errors.As(err, &se) {
			return nil, fail(ErrProtocol, err)
		}
		if isTimeout(err) {
			return nil, fail(ErrTimeout, err)
		}
		return nil, fail(ErrClosed, err)
	}
	if e.Name.Space == stream.NSStreams && e.Name.Local == "error" {
		return nil, fail(ErrStream+":"+firstChild(e.Inner), fmt.Errorf("stream error: %s", e.Inner))
	}
	return e, nil
}

// firstChild returns the local name of the first child element in raw XML.
func firstChild(inner []byte) string {
	s := string(inner)
	i := strings.IndexByte(s, '<')
	if i < 0 {
		return "unknown"
	}
	s = s[i+1:]
	end := strings.IndexAny(s, " />")
	if end < 0 {
		return "unknown"
	}
	name := s[:end]
	if _, local, ok := strings.Cut(name, ":"); ok {
		name = local
	}
	return name
}

func (c *Conn) open() (*stream.Element, error) {
	if err := c.w.open(c.t.Domain); err != nil {
		return nil, fail(ErrClosed, err)
	}
	if err := c.w.readOpen(c.deadline()); err != nil {
		if isTimeout(err) {
			return nil, fail(ErrTimeout, err)
		}
		return nil, fail(ErrProtocol, err)
	}
	f, err := c.next()
	if err != nil {
		return nil, err
	}
	if f.Name.Local != "features" {
		return nil, fail(ErrProtocol, fmt.Errorf("expected <stream:features/>, got <%s/>", f.Name.Local))
	}
	return f, nil
}

func (c *Conn) auth(mech, user, pass string) error {
	b64 := base64.StdEncoding
	if mech == MechPLAIN {
		msg := b64.EncodeToString([]byte("\x00" + user + "\x00" + pass))
		if err := c.send(`<auth xmlns="` + nsSASL + `" mechanism="PLAIN">` + msg + `</auth>`); err != nil {
			return err
		}
		e, err := c.next()
		if err != nil {
			return err
		}
		return saslOutcome(e)
	}
	sc, err := c.t.scramClient(user, pass)
	if err != nil {
		return fail(ErrSASL+":client", err)
	}
	conv := sc.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return fail(ErrSASL+":client", err)
	}
	if err := c.send(`<auth xmlns="` + nsSASL + `" mechanism="` + mech + `">` + b64.EncodeToString([]byte(first)) + `</auth>`); err != nil {
		return err
	}
	for {
		e, err := c.next()
		if err != nil {
			return err
		}
		switch e.Name.Local {
		case "challenge":
			data, err := b64.DecodeString(strings.TrimSpace(string(e.Inner)))
			if err != nil {
				return fail(ErrProtocol, fmt.Errorf("challenge: %w", err))
			}
			out, err := conv.Step(string(data))
			if err != nil {
				return fail(ErrSASL+":client", err)
			}
			if err := c.send(`<response xmlns="` + nsSASL + `">` + b64.EncodeToString([]byte(out)) + `</response>`); err != nil {
				return err
			}
		case "success":
			if inner := strings.TrimSpace(string(e.Inner)); inner != "" && !conv.Done() {
				data, err := b64.DecodeString(inner)
				if err != nil {
					return fail(ErrProtocol, fmt.Errorf("success: %w", err))
				}
				if _, err := conv.Step(string(data)); err != nil || !conv.Valid() {
					return fail(ErrSASL+":server-signature", errors.New("the server's SCRAM signature does not verify"))
				}
			}
			return nil
		default:
			return saslOutcome(e)
		}
	}
}

func saslOutcome(e *stream.Element) error {
	switch e.Name.Local {
	case "success":
		return nil
	case "failure":
		cond := firstChild(e.Inner)
		return fail(ErrSASL+":"+cond, fmt.Errorf("sasl failure: %s", e.Inner))
	}
	return fail(ErrProtocol, fmt.Errorf("unexpected <%s/> during SASL", e.Name.Local))
}

func (c *Conn) bind(resource string) error {
	req := `<iq type="set" id="bind1"><bind xmlns="` + nsBind + `"/></iq>`
	if resource != "" {
		req = `<iq type="set" id="bind1"><bind xmlns="` + nsBind + `"><resource>` + stream.Escape(resource) + `</resource></bind></iq>`
	}
	if err := c.send(req); err != nil {
		return err
	}
	for {
		e, err := c.next()
		if err != nil {
			return err
		}
		if e.Name.Local != "iq" || e.Get("id") != "bind1" {
			continue
		}
		if e.Get("type") != "result" {
			return fail(ErrBind, fmt.Errorf("bind refused: %s", e.Inner))
		}
		s := string(e.Inner)
		i, j := strings.Index(s, "<jid>"), strings.Index(s, "</jid>")
		if i < 0 || j < i {
			return fail(ErrBind, fmt.Errorf("bind result without a jid: %s", s))
		}
		c.JID = s[i+5 : j]
		return nil
	}
}

// AnswerPing answers e if it is a server ping (XEP-0199) and reports whether it was.
func (c *Conn) AnswerPing(e *stream.Element) (bool, error) {
	if e.Name.Local != "iq" || e.Get("type") != "get" || !strings.Contains(string(e.Inner), nsPing) {
		return false, nil
	}
	reply := `<iq type="result" id="` + stream.Escape(e.Get("id")) + `"`
	if from := e.Get("from"); from != "" {
		reply += ` to="` + stream.Escape(from) + `"`
	}
	return true, c.Send([]byte(reply + `/>`))
}

// Close ends the stream and the connection.
func (c *Conn) Close() error { return c.w.close() }

// tcpWire is a client stream on TCP.
type tcpWire struct {
	raw net.Conn
	mu  sync.Mutex // guards nc for close
	nc  net.Conn
	br  *bufio.Reader
	r   *stream.Reader
}

var clientLimits = stream.Limits{MaxStanza: 1 << 20}

func newTCPWire(nc net.Conn) *tcpWire {
	w := &tcpWire{raw: nc, nc: nc, br: bufio.NewReaderSize(nc, 2048)}
	w.r = stream.NewReader(w.br, clientLimits)
	return w
}

func (w *tcpWire) conn() net.Conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nc
}

func (w *tcpWire) open(domain string) error {
	return w.send(stream.AppendOpen(nil, stream.Header{NS: stream.NSClient, To: domain, Version: "1.0", Lang: "en"}), time.Now().Add(10*time.Second))
}

func (w *tcpWire) readOpen(deadline time.Time) error {
	_ = w.conn().SetReadDeadline(deadline)
	_, err := w.r.ReadOpen(stream.NSClient)
	return err
}

func (w *tcpWire) send(b []byte, deadline time.Time) error {
	nc := w.conn()
	_ = nc.SetWriteDeadline(deadline)
	_, err := nc.Write(b)
	return err
}

func (w *tcpWire) next(deadline time.Time) (*stream.Element, error) {
	_ = w.conn().SetReadDeadline(deadline)
	return w.r.Next()
}

func (w *tcpWire) startTLS(ctx context.Context, cfg *tls.Config) error {
	tc := tls.Client(w.raw, cfg)
	_ = w.raw.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	_ = w.raw.SetDeadline(time.Time{})
	w.mu.Lock()
	w.nc = tc
	w.mu.Unlock()
	w.br = bufio.NewReaderSize(tc, 2048)
	w.restart()
	return nil
}

func (w *tcpWire) restart() { w.r = stream.NewReader(w.br, clientLimits) }

func (w *tcpWire) close() error {
	nc := w.conn()
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write([]byte(stream.Close))
	return w.raw.Close()
}

// wsWire is a client stream over WebSocket [RFC 7395].
type wsWire struct{ c *websocket.Conn }

func dialWebSocket(ctx context.Context, url string, cfg *tls.Config, timeout time.Duration) (*wsWire, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"xmpp"}})
	if err != nil {
		return nil, fail(ErrConnect, err)
	}
	c.SetReadLimit(1 << 20)
	return &wsWire{c: c}, nil
}

func (w *wsWire) open(domain string) error {
	return w.send([]byte(`<open xmlns="`+stream.NSFraming+`" to="`+stream.Escape(domain)+`" version="1.0"/>`), time.Now().Add(10*time.Second))
}

func (w *wsWire) readOpen(deadline time.Time) error {
	e, err := w.next(deadline)
	if err != nil {
		return err
	}
	if e.Name.Local != "open" {
		return fmt.Errorf("expected <open/>, got <%s/>", e.Name.Local)
	}
	return nil
}

func (w *wsWire) send(b []byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return w.c.Write(ctx, websocket.MessageText, b)
}

func (w *wsWire) next(deadline time.Time) (*stream.Element, error) {
	ctx := context.Background()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	_, data, err := w.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	e, err := stream.Parse(data, stream.NSClient, clientLimits)
	if err != nil {
		return nil, err
	}
	if e.Name.Space == stream.NSFraming && e.Name.Local == "close" {
		return nil, stream.ErrClosed
	}
	return e, nil
}

func (w *wsWire) startTLS(context.Context, *tls.Config) error {
	return errors.New("no STARTTLS over WebSocket")
}
func (w *wsWire) restart() {}

func (w *wsWire) close() error {
	_ = w.send([]byte(`<close xmlns="`+stream.NSFraming+`"/>`), time.Now().Add(time.Second))
	return w.c.CloseNow()
}
