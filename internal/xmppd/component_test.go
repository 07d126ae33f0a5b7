package xmppd_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

func cb1Secret(t *testing.T, h *xmppdtest.Harness) secret.Secret {
	t.Helper()
	s, ok := h.Registry.Lookup("cb1")
	if !ok {
		t.Fatal("cb1 is not in the registry")
	}
	return s
}

// waitDone waits for a test Call Bridge's link to end.
func waitDone(t *testing.T, cb *xmppdtest.CallBridge) {
	t.Helper()
	select {
	case <-cb.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("call bridge %s: link still up", cb.Name)
	}
}

func TestComponentHandshakeRefused(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true})
	tests := []struct {
		name, jid string
		secret    secret.Secret
		wantCond  string
	}{
		{"wrong secret", "cb1.example.com", secret.New("not-the-secret"), "not-authorized"},
		{"unknown name", "cb9.example.com", secret.New("whatever"), "host-unknown"},
		{"other domain", "cb1.example.org", cb1Secret(t, h), "host-unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.DialComponent(context.Background(), tt.jid, tt.secret, xmppdtest.DialOptions{})
			var he *component.HandshakeError
			if !errors.As(err, &he) || he.Condition != tt.wantCond {
				t.Fatalf("handshake error = %v, want %s", err, tt.wantCond)
			}
			if n := len(h.Server.Components()); n != 0 {
				t.Errorf("%d links up after a refused handshake", n)
			}
		})
	}
	// After all that, the right secret works.
	cb := h.ConnectCallBridge(t, "cb1")
	stillWorks(t, h)
	if got := len(cb.Logins()); got != 1 {
		t.Errorf("cb1 decided %d logins, want 1", got)
	}
}

// TestDuplicateComponent: a second connection with a connected Call Bridge's name. By
// default it is refused with conflict in answer to its handshake (before, the default was
// kick_old: it silently took the live link's place), and the server raises an alarm: a log
// line, the conflict counted, and duplicatesRefused in the admin listener's /callbridges.
// kick_old stays available by configuration. A probe (confab diagnose) is refused under
// either policy.
func TestDuplicateComponent(t *testing.T) {
	refused := func(t *testing.T, h *xmppdtest.Harness, probe bool) {
		t.Helper()
		dial := h.StartCallBridge
		if probe {
			dial = h.StartProbe
		}
		second, err := dial(context.Background(), "cb1", cb1Secret(t, h), xmppdtest.DialOptions{})
		var he *component.HandshakeError
		if !errors.As(err, &he) || he.Condition != "conflict" {
			if second != nil {
				second.Close()
			}
			t.Fatalf("second connection: %v, want a handshake refused with conflict", err)
		}
		if !strings.Contains(he.Text, "named cb1 is connected (from 127.0.0.1:") {
			t.Errorf("conflict text %q does not say where the connected Call Bridge is", he.Text)
		}
		select {
		case <-h.CallBridge.Done():
			t.Fatalf("the first link ended: %v", h.CallBridge.Err())
		default:
		}
		stillWorks(t, h)
		if got := len(h.CallBridge.Logins()); got != 1 {
			t.Errorf("the first link decided %d logins, want 1", got)
		}
	}
	t.Run("reject by default", func(t *testing.T) {
		logs := &logBuffer{}
		h := xmppdtest.Start(t, xmppdtest.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		refused(t, h, false)
		if !strings.Contains(logs.String(), "ALARM: another connection asked for this Call Bridge's name") {
			t.Error("no alarm in the log")
		}
		if got := metricValue(t, h, `confab_xmpp_component_handshakes_total{outcome="conflict"}`); got != 1 {
			t.Errorf("conflicts counted: %v, want 1", got)
		}
		resp, err := http.Get(h.AdminURL + "/callbridges")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list []xmppd.ComponentInfo
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].DuplicatesRefused != 1 || !strings.HasPrefix(list[0].LastDuplicateFrom, "127.0.0.1:") || list[0].LastDuplicateAt.IsZero() {
			t.Errorf("/callbridges = %+v, want cb1 with one duplicate refused", list)
		}
	})
	t.Run("kick_old", func(t *testing.T) {
		h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.DuplicateComponent = xmppd.KickOld }})
		old := h.CallBridge
		newer := h.ConnectCallBridge(t, "cb1")
		waitDone(t, old)
		if got := old.StreamError(); got != "conflict" {
			t.Errorf("old link ended with %q (%v), want conflict", got, old.Err())
		}
		stillWorks(t, h)
		if got := len(newer.Logins()); got != 1 {
			t.Errorf("the new link decided %d logins, want 1", got)
		}
		if links := h.Server.Components(); len(links) != 1 {
			t.Errorf("links = %+v, want exactly one", links)
		}
	})
	t.Run("probe under kick_old", func(t *testing.T) {
		h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.DuplicateComponent = xmppd.KickOld }})
		refused(t, h, true)
	})
}

func TestComponentInvalidFrom(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true})
	for _, from := range []string{"cb2.example.com", "example.com", "alice@example.com/x", ""} {
		t.Run("from="+from, func(t *testing.T) {
			cb := h.ConnectCallBridge(t, "cb1")
			attr := ""
			if from != "" {
				attr = ` from="` + from + `"`
			}
			cb.Send(t, `<message`+attr+` to="alice@example.com"><body>spoof</body></message>`)
			waitDone(t, cb)
			if got := cb.StreamError(); got != "invalid-from" {
				t.Errorf("link ended with %q (%v), want invalid-from", got, cb.Err())
			}
		})
	}
	h.ConnectCallBridge(t, "cb1")
	stillWorks(t, h)
}

func TestComponentOversizedStanza(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.MaxStanzaComponent = 8 << 10 }})
	cb := h.CallBridge
	// The server may close the link before the whole stanza is written: the write's error
	// does not matter, the stream error does.
	_ = cb.Conn.Write([]byte(`<message from="cb1.example.com" to="alice@example.com"><body>` + strings.Repeat("y", 16<<10) + `</body></message>`))
	waitDone(t, cb)
	if got := cb.StreamError(); got != "policy-violation" {
		t.Errorf("link ended with %q (%v), want policy-violation", got, cb.Err())
	}
	h.ConnectCallBridge(t, "cb1")
	stillWorks(t, h)
}

func TestComponentMutualTLS(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{MutualTLS: true})
	// The harness's Call Bridge presented the client certificate and is up.
	stillWorks(t, h)

	_, err := h.DialComponent(context.Background(), "cb1.example.com", cb1Secret(t, h), xmppdtest.DialOptions{})
	if err == nil {
		t.Fatal("a component without a client certificate was accepted")
	}
	var he *component.HandshakeError
	if errors.As(err, &he) && (he.Condition == "not-authorized" || he.Condition == "host-unknown") {
		t.Fatalf("err = %v: refused by the handshake, want refused by TLS", err)
	}
	// The link that is up was not disturbed.
	select {
	case <-h.CallBridge.Done():
		t.Fatalf("link ended: %v", h.CallBridge.Err())
	default:
	}
	// The server counts the refusal after the client has seen it: wait for the count.
	xmppdtest.Eventually(t, 5*time.Second, "the TLS refusal counted", func() bool {
		return metricValue(t, h, `confab_xmpp_component_handshakes_total{outcome="tls-error"}`) == 1
	})
}

func TestRegistryChanged(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	cb2 := h.ConnectCallBridge(t, "cb2")
	cb1 := h.CallBridge

	// A changed secret closes the link that authenticated with the old one.
	if err := h.Registry.SetSecret("cb2", secret.New("a-brand-new-secret-for-cb2")); err != nil {
		t.Fatal(err)
	}
	h.Server.RegistryChanged()
	waitDone(t, cb2)
	if got := cb2.StreamError(); got != "not-authorized" {
		t.Errorf("cb2 ended with %q (%v), want not-authorized", got, cb2.Err())
	}

	// A deleted name closes its link.
	if err := h.Registry.Delete("cb1"); err != nil {
		t.Fatal(err)
	}
	h.Server.RegistryChanged()
	waitDone(t, cb1)
	if got := cb1.StreamError(); got != "not-authorized" {
		t.Errorf("cb1 ended with %q (%v), want not-authorized", got, cb1.Err())
	}
	// The server forgets a link after its peer has seen the close: wait for it.
	xmppdtest.Eventually(t, 5*time.Second, "no links left", func() bool { return len(h.Server.Components()) == 0 })
	if _, err := h.DialComponent(context.Background(), "cb1.example.com", cb1.Secret, xmppdtest.DialOptions{}); err == nil {
		t.Error("a deleted Call Bridge could register again")
	}
	// cb2 with its new secret registers.
	h.ConnectCallBridge(t, "cb2")
	stillWorks(t, h)
}

func TestTwoCallBridgesShareLogins(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	cb2 := h.ConnectCallBridge(t, "cb2")
	for i := 0; i < 6; i++ {
		h.Login(t, "alice").Close()
	}
	n1, n2 := len(h.CallBridge.Logins()), len(cb2.Logins())
	if n1+n2 != 6 || n1 == 0 || n2 == 0 {
		t.Errorf("logins decided by cb1=%d cb2=%d, want 6 spread over both", n1, n2)
	}
}

// waitCallBridge waits until the component jid is listed as a Call Bridge (it answered the
// server's probe and takes logins).
func waitCallBridge(t *testing.T, h *xmppdtest.Harness, jid string) {
	t.Helper()
	xmppdtest.Eventually(t, 5*time.Second, jid+" a Call Bridge", func() bool {
		for _, c := range h.Server.Components() {
			if c.JID == jid && c.CallBridge {
				return true
			}
		}
		return false
	})
}

// answerProbe answers the login relay's probe (an <abort/> for a session nobody has, sent
// when a component connects) as a Call Bridge does, and reports whether e was one.
func answerProbe(c *component.Conn, e *stream.Element) bool {
	if e.Name.Local != "iq" || !strings.Contains(string(e.Inner), "<abort") {
		return false
	}
	r := &loginrelay.Responder{Domain: "example.com", Dir: loginrelay.NewMemoryDirectory("example.com")}
	if reply := r.HandleIQ(context.Background(), e); reply != nil {
		_ = c.Write(reply)
	}
	return true
}

func TestCallBridgeLostMidLogin(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true})
	// A Call Bridge that takes the login request and then disappears.
	link, err := h.DialComponent(context.Background(), "cb1.example.com", cb1Secret(t, h), xmppdtest.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close("", "")
	got := make(chan *stream.Element, 1)
	go func() {
		defer close(got)
		for {
			e, err := link.Next()
			if err != nil {
				return
			}
			if answerProbe(link, e) {
				continue
			}
			if e.Name.Local == "iq" && strings.Contains(string(e.Inner), "urn:confab:login:1") {
				got <- e
				_ = link.Close("", "")
				return
			}
		}
	}()
	waitCallBridge(t, h, "cb1.example.com")
	c := h.DialTLS(t)
	err = c.Auth("PLAIN", "alice", h.Users["alice"])
	var se *xmppdtest.SASLError
	if !errors.As(err, &se) || se.Condition != "temporary-auth-failure" || !strings.Contains(se.Text, "disconnected") {
		t.Fatalf("auth error = %v, want temporary-auth-failure saying the Call Bridge disconnected", err)
	}
	if <-got == nil {
		t.Error("the Call Bridge never saw the login request")
	}
}

func TestRelayTimeout(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true, Config: func(c *xmppd.Config) { c.RelayTimeout = 300 * time.Millisecond }})
	// A Call Bridge that never answers.
	link, err := h.DialComponent(context.Background(), "cb1.example.com", cb1Secret(t, h), xmppdtest.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close("", "")
	go func() { // it answers the server's question whether it is a Call Bridge, and nothing else
		for {
			e, err := link.Next()
			if err != nil {
				return
			}
			answerProbe(link, e)
		}
	}()
	waitCallBridge(t, h, "cb1.example.com")
	c := h.DialTLS(t)
	start := time.Now()
	err = c.Auth("SCRAM-SHA-256", "alice", h.Users["alice"])
	var se *xmppdtest.SASLError
	if !errors.As(err, &se) || se.Condition != "temporary-auth-failure" || !strings.Contains(se.Text, "in time") {
		t.Fatalf("auth error = %v, want temporary-auth-failure saying the Call Bridge did not answer in time", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the failure took %s with a relay timeout of 300ms", d)
	}
}

// TestComponentFailureLogs: a refused component connection is logged with its real cause.
// A TLS handshake that failed on the client certificate was logged as 'context canceled'
// (the handshake's context was cancelled before its cause was read); a wrong secret did not
// name the Call Bridge whose secret it was.
func TestComponentFailureLogs(t *testing.T) {
	logs := &logBuffer{}
	h := xmppdtest.Start(t, xmppdtest.Options{MutualTLS: true,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	other, err := certs.NewCA("Another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := other.Issue(certs.Options{CommonName: "cb1.example.com", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		secret secret.Secret
		cert   *tls.Certificate
		line   string   // the log message
		want   []string // what the line must say
	}{
		{"no client certificate", cb1Secret(t, h), nil, "component tls handshake failed", []string{"didn't provide a certificate"}},
		{"untrusted client certificate", cb1Secret(t, h), &untrusted.Cert, "component tls handshake failed", []string{"unknown authority"}},
		{"wrong secret", secret.New("not-the-secret"), &h.ClientCert.Cert, "component handshake failed", []string{"callbridge=cb1", "outcome=not-authorized"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := strings.Count(logs.String(), tt.line)
			if _, err := h.DialComponent(context.Background(), "cb1.example.com", tt.secret, xmppdtest.DialOptions{ClientCert: tt.cert}); err == nil {
				t.Fatal("the connection was accepted")
			}
			var line string
			xmppdtest.Eventually(t, 5*time.Second, "the log line "+tt.line, func() bool {
				all := logs.String()
				if strings.Count(all, tt.line) == before {
					return false
				}
				for _, l := range strings.Split(all, "\n") {
					if strings.Contains(l, tt.line) {
						line = l
					}
				}
				return true
			})
			if strings.Contains(line, "context canceled") {
				t.Errorf("log line says 'context canceled': %s", line)
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("log line lacks %q: %s", w, line)
				}
			}
		})
	}
}

// TestDuplicateComponentDeadOldLink: with reject, a Call Bridge whose old link is half-open
// (it lost it without the server noticing) would be locked out until the idle timeout.
// A refused duplicate makes the server ping the connected component; one that does not
// answer within min(5 s, IdleTimeout/2) is closed, and the newcomer's next attempt gets in.
func TestDuplicateComponentDeadOldLink(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.IdleTimeout = 2 * time.Second }})
	old := h.CallBridge
	old.Pause() // the old link is dead: nothing it is sent is read, nothing is answered
	defer old.Resume()
	if cb, err := h.StartCallBridge(context.Background(), "cb1", cb1Secret(t, h), xmppdtest.DialOptions{}); err == nil {
		cb.Close()
		t.Fatal("the second connection was accepted while the first was registered")
	}
	xmppdtest.Eventually(t, 5*time.Second, "the silent component closed", func() bool { return len(h.Server.Components()) == 0 })
	h.ConnectCallBridge(t, "cb1")
	stillWorks(t, h)
}

// TestComponentNotACallBridgeTakesNoLogins: a component registered beside the Call Bridges
// that does not speak the login relay (here one that answers every iq service-unavailable,
// as an IRC gateway or a bot does) is asked once as it connects and never gets a login.
// Before, logins went round robin over every component, and every other login failed with
// temporary-auth-failure.
func TestComponentNotACallBridgeTakesNoLogins(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	sec, err := h.Registry.Add("irc")
	if err != nil {
		t.Fatal(err)
	}
	irc, err := h.DialComponent(context.Background(), "irc.example.com", sec, xmppdtest.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer irc.Close("", "")
	var relayed atomic.Int32
	go func() {
		for {
			e, err := irc.Next()
			if err != nil {
				return
			}
			if e.Name.Local == "iq" && (e.Get("type") == "get" || e.Get("type") == "set") {
				if strings.Contains(string(e.Inner), "urn:confab:login:1") {
					relayed.Add(1)
				}
				_ = irc.Write(stream.ErrorReply(e, stream.StanzaError{Type: stream.ErrCancel, Condition: "service-unavailable"}))
			}
		}
	}()
	xmppdtest.Eventually(t, 5*time.Second, "irc listed, not as a Call Bridge", func() bool {
		for _, c := range h.Server.Components() {
			if c.JID == "irc.example.com" {
				return !c.CallBridge
			}
		}
		return false
	})
	for i := range 10 {
		c := h.Login(t, "alice")
		ping(t, c, fmt.Sprintf("p%d", i))
		c.Close()
	}
	if got := len(h.CallBridge.Logins()); got != 10 {
		t.Errorf("cb1 decided %d logins, want all 10", got)
	}
	if n := relayed.Load(); n != 1 {
		t.Errorf("irc got %d login relay requests, want 1 (the probe)", n)
	}
}

// TestComponentClosedBeforeHandshake: a peer that completes TLS and hangs up (a Call Bridge
// that rejected the server's certificate names at its step 8, or confab diagnose
// -no-register) is logged and counted as closed-before-handshake, not as a not-well-formed
// stream error the server never sent.
func TestComponentClosedBeforeHandshake(t *testing.T) {
	logs := &logBuffer{}
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	nc, err := net.DialTimeout("tcp", h.ComponentAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(nc, h.ClientTLS(h.Domain))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tc.Close()
	xmppdtest.Eventually(t, 5*time.Second, "the close counted", func() bool {
		return metricValue(t, h, `confab_xmpp_component_handshakes_total{outcome="closed-before-handshake"}`) == 1
	})
	if got := metricValue(t, h, `confab_xmpp_stream_errors_total{condition="not-well-formed"}`); got > 0 {
		t.Errorf("stream errors not-well-formed counted: %v, want none (none was sent)", got)
	}
	if got := metricValue(t, h, `confab_xmpp_component_handshakes_total{outcome="not-well-formed"}`); got > 0 {
		t.Errorf("handshakes not-well-formed counted: %v, want none", got)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="component connection closed by the peer before the handshake" transport=component`) ||
		!strings.Contains(out, "outcome=closed-before-handshake") || !strings.Contains(out, "rejected this server's certificate") {
		t.Errorf("log:\n%s\nwant the close, its outcome and a hint", out)
	}
	if strings.Contains(out, "not-well-formed") {
		t.Errorf("log says not-well-formed:\n%s", out)
	}
}
