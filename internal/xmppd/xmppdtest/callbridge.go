package xmppdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// DialOptions adjust DialComponent.
type DialOptions struct {
	// ClientCert is presented in the TLS handshake (mutual TLS); nil presents none.
	ClientCert *tls.Certificate
	// Timeout bounds TLS and the handshake (default 5s).
	Timeout time.Duration
	// LocalIP, if set, is the source address to connect from (127.0.0.2 is a second host on
	// Linux's loopback), for tests of what the server does per source address.
	LocalIP net.IP

	probe bool // handshake as a probe (component.Probe)
}

// DialComponent connects to the component port, completes TLS (verifying the server's
// certificate for the domain) and the XEP-0114 handshake as componentJID with secret s.
// Handshake failures are *component.HandshakeError; TLS failures are returned as they are.
func (h *Harness) DialComponent(ctx context.Context, componentJID string, s secret.Secret, o DialOptions) (*component.Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var d net.Dialer
	if o.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.LocalIP}
	}
	nc, err := d.DialContext(ctx, "tcp", h.ComponentAddr)
	if err != nil {
		return nil, fmt.Errorf("dial component port: %w", err)
	}
	cfg := h.ClientTLS(h.Domain)
	if o.ClientCert != nil {
		// Presented whoever issued it, as the Call Bridge's link does (a certificate the
		// server does not trust is the server's to refuse).
		cert := o.ClientCert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	if o.probe {
		return component.Probe(ctx, tc, componentJID, s, stream.Limits{})
	}
	return component.Handshake(ctx, tc, componentJID, s, stream.Limits{})
}

// Login is a login a test Call Bridge decided.
type Login struct {
	JID    string
	OK     bool
	Reason string
}

// CallBridge is a test Call Bridge: a component link that answers login relay requests from
// the harness's Directory, answers XEP-0199 pings, records session-end messages and hands
// every other stanza to the test (Next).
type CallBridge struct {
	Name, JID string
	Secret    secret.Secret
	Conn      *component.Conn

	responder *loginrelay.Responder
	stanzas   chan *stream.Element
	done      chan struct{}
	cancel    context.CancelFunc

	// gate is held by Pause: the reading goroutine waits on it before each read.
	gate sync.Mutex

	mu          sync.Mutex
	err         error
	logins      []Login
	sessionEnds []string
	from        map[string]int // stanzas handed to the test, by sender's bare JID
}

// ConnectCallBridge registers name (if it is not registered yet) and connects a test Call
// Bridge under it, presenting the harness's client certificate. It fails the test if the
// link does not come up, and closes the link when the test ends.
func (h *Harness) ConnectCallBridge(t testing.TB, name string) *CallBridge {
	t.Helper()
	s, ok := h.Registry.Lookup(name)
	if !ok {
		var err error
		if s, err = h.Registry.Add(name); err != nil {
			t.Fatalf("registry: add %s: %v", name, err)
		}
	}
	start := time.Now()
	cb, err := h.StartCallBridge(context.Background(), name, s, DialOptions{ClientCert: &h.ClientCert.Cert})
	if err != nil {
		t.Fatalf("connect call bridge %s: %v", name, err)
	}
	t.Cleanup(cb.Close)
	// This link, not an older one of the same name that it is replacing, must be up (and
	// so attached to the login relay).
	Eventually(t, 5*time.Second, "call bridge link "+cb.JID+" up", func() bool {
		for _, l := range h.Server.Components() {
			if l.JID == cb.JID && l.CallBridge && !l.ConnectedSince.Before(start) {
				return true
			}
		}
		return false
	})
	return cb
}

// StartCallBridge dials as name with secret s and serves the link until Close.
func (h *Harness) StartCallBridge(ctx context.Context, name string, s secret.Secret, o DialOptions) (*CallBridge, error) {
	return h.startCallBridge(ctx, name, s, o, false)
}

// StartProbe is StartCallBridge with a probe's handshake (component.Probe), as confab
// diagnose connects.
func (h *Harness) StartProbe(ctx context.Context, name string, s secret.Secret, o DialOptions) (*CallBridge, error) {
	return h.startCallBridge(ctx, name, s, o, true)
}

func (h *Harness) startCallBridge(ctx context.Context, name string, s secret.Secret, o DialOptions, probe bool) (*CallBridge, error) {
	jid := name + "." + h.Domain
	o.probe = probe
	c, err := h.DialComponent(ctx, jid, s, o)
	if err != nil {
		return nil, err
	}
	cb := &CallBridge{
		Name: name, JID: jid, Secret: s, Conn: c,
		stanzas: make(chan *stream.Element, 256),
		done:    make(chan struct{}),
	}
	cb.responder = &loginrelay.Responder{
		Domain: h.Domain,
		Dir:    h.Directory,
		Logger: h.log.With("test_callbridge", name),
		OnLogin: func(jid string, ok bool, reason string) {
			cb.mu.Lock()
			cb.logins = append(cb.logins, Login{jid, ok, reason})
			cb.mu.Unlock()
		},
		OnSessionEnd: func(jid, reason string) {
			cb.mu.Lock()
			cb.sessionEnds = append(cb.sessionEnds, jid)
			cb.mu.Unlock()
		},
	}
	rctx, cancel := context.WithCancel(context.Background())
	cb.cancel = cancel
	go cb.run(rctx)
	return cb, nil
}

func (cb *CallBridge) run(ctx context.Context) {
	defer close(cb.done)
	defer close(cb.stanzas)
	for {
		cb.gate.Lock() // held while the test pauses the Call Bridge
		cb.gate.Unlock()
		e, err := cb.Conn.Next()
		if err != nil {
			cb.setErr(err)
			return
		}
		if se, ok := component.RemoteError(e); ok {
			cb.setErr(se)
			_ = cb.Conn.Close("", "")
			return
		}
		switch {
		case e.Name.Local == "iq":
			if reply := cb.responder.HandleIQ(ctx, e); reply != nil {
				_ = cb.Conn.Write(reply)
				continue
			}
			if e.Get("type") == "get" && isPing(e) {
				var x stream.Builder
				_ = cb.Conn.Write(x.Empty("iq", "type", "result", "id", e.Get("id"), "from", e.Get("to"), "to", e.Get("from")).B)
				continue
			}
		case e.Name.Local == "message" && cb.responder.HandleMessage(e):
			continue
		}
		if from, err := jid.Parse(e.Get("from")); err == nil {
			cb.mu.Lock()
			if cb.from == nil {
				cb.from = make(map[string]int)
			}
			cb.from[from.Bare().String()]++
			cb.mu.Unlock()
		}
		select {
		case cb.stanzas <- e:
		default: // the test is not reading them
		}
	}
}

func isPing(e *stream.Element) bool {
	var v struct {
		Ping *struct{} `xml:"urn:xmpp:ping ping"`
	}
	return e.Decode(&v) == nil && v.Ping != nil
}

func (cb *CallBridge) setErr(err error) {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.err == nil {
		cb.err = err
	}
}

// Send writes raw XML (stanzas in jabber:component:accept, which is the stream's default
// namespace) to the server.
func (cb *CallBridge) Send(t testing.TB, xml string) {
	t.Helper()
	if err := cb.Conn.Write([]byte(xml)); err != nil {
		t.Fatalf("call bridge %s: send: %v", cb.Name, err)
	}
}

// Next returns the next stanza the Call Bridge received that it did not handle itself, or
// fails the test after timeout.
func (cb *CallBridge) Next(t testing.TB, timeout time.Duration) *stream.Element {
	t.Helper()
	select {
	case e, ok := <-cb.stanzas:
		if !ok {
			t.Fatalf("call bridge %s: link ended: %v", cb.Name, cb.Err())
		}
		return e
	case <-time.After(timeout):
		t.Fatalf("call bridge %s: no stanza within %s", cb.Name, timeout)
	}
	return nil
}

// Done is closed when the link has ended; Err then says why (a *stream.Error for a stream
// error from the server).
func (cb *CallBridge) Done() <-chan struct{} { return cb.done }

// Err returns why the link ended, or nil while it is up.
func (cb *CallBridge) Err() error {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.err
}

// StreamError returns the stream error condition the server ended the link with, or "".
func (cb *CallBridge) StreamError() string {
	var se *stream.Error
	if errors.As(cb.Err(), &se) {
		return se.Condition
	}
	return ""
}

// Logins returns the logins this Call Bridge decided so far.
func (cb *CallBridge) Logins() []Login {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return append([]Login(nil), cb.logins...)
}

// SessionEnds returns the full JIDs of the sessions the server reported as ended.
func (cb *CallBridge) SessionEnds() []string {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return append([]string(nil), cb.sessionEnds...)
}

// Pause stops reading from the link until Resume, as a Call Bridge that is busy or stuck:
// what the server sends waits in the socket's buffers, then in the server's queue.
func (cb *CallBridge) Pause() { cb.gate.Lock() }

// Resume reads again after Pause.
func (cb *CallBridge) Resume() { cb.gate.Unlock() }

// ReceivedFrom counts the stanzas from the bare JID that the Call Bridge received and did
// not handle itself (everything but logins, session ends and pings).
func (cb *CallBridge) ReceivedFrom(bare string) int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.from[bare]
}

// Close ends the link (</stream:stream>) and waits for its goroutine.
func (cb *CallBridge) Close() {
	_ = cb.Conn.Close("", "")
	cb.cancel()
	<-cb.done
}

// Links returns the JIDs of the connected Call Bridges, as the admin API lists them.
func (h *Harness) Links() []string {
	var out []string
	for _, l := range h.Server.Components() {
		out = append(out, l.JID)
	}
	return out
}

// WaitLinks polls the server's links until ok accepts them, or fails the test after 5s.
func (h *Harness) WaitLinks(t testing.TB, ok func(jids []string) bool) {
	t.Helper()
	Eventually(t, 5*time.Second, "call bridge links", func() bool { return ok(h.Links()) })
}

// Eventually polls cond until it is true, or fails the test after timeout naming what.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}
