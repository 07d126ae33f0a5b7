package xmppd_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/throttle"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// logBuffer collects a server's logs for a test to search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestComponentSecretThrottle(t *testing.T) {
	logs := &logBuffer{}
	h := xmppdtest.Start(t, xmppdtest.Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Config: func(c *xmppd.Config) {
			c.ComponentThrottle = throttle.Config{MaxFailures: 3, Window: time.Minute, Block: time.Minute, MaxBlock: time.Minute}
		},
	})
	handshake := func(jid string, s secret.Secret, from net.IP) string {
		t.Helper()
		c, err := h.DialComponent(context.Background(), jid, s, xmppdtest.DialOptions{LocalIP: from})
		if err == nil {
			_ = c.Close("", "")
			return "accepted"
		}
		var he *component.HandshakeError
		if !errors.As(err, &he) {
			t.Fatalf("handshake: %v", err)
		}
		return he.Condition + ": " + he.Text
	}
	// failures waits until the server has counted n refused handshakes (the peer hears of
	// the refusal a moment before the server counts it).
	failures := func(n float64) {
		t.Helper()
		xmppdtest.Eventually(t, 5*time.Second, "the failures counted", func() bool {
			// (metricValue is -1 for a series not yet there.)
			return max(metricValue(t, h, `confab_xmpp_component_handshakes_total{outcome="not-authorized"}`), 0)+
				max(metricValue(t, h, `confab_xmpp_component_handshakes_total{outcome="host-unknown"}`), 0) >= n
		})
	}
	attacker, other := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)
	// Wrong secrets and unknown names count alike; the third failure starts a block.
	for i, jid := range []string{"cb1.example.com", "cb7.example.com", "cb1.example.com"} {
		if got := handshake(jid, secret.New("guess"), attacker); strings.HasPrefix(got, "policy-violation") {
			t.Fatalf("attempt %d refused already: %s", i+1, got)
		}
		failures(float64(i + 1))
	}
	if !strings.Contains(logs.String(), "too many failed component handshakes") {
		t.Errorf("the block was not logged:\n%s", logs.String())
	}
	// Blocked: even the right secret is refused, before it is checked.
	got := handshake("cb2.example.com", secret.New("x"), attacker)
	if !strings.HasPrefix(got, "policy-violation") || !strings.Contains(got, "retry in") {
		t.Errorf("blocked source got %q, want policy-violation saying when to retry", got)
	}
	if got := handshake("cb1.example.com", cb1Secret(t, h), attacker); !strings.HasPrefix(got, "policy-violation") {
		t.Errorf("blocked source with the right secret got %q, want policy-violation", got)
	}
	// Another address is not affected, and the link that was up stays up.
	if got := handshake("cb1.example.com", secret.New("guess"), other); !strings.HasPrefix(got, "not-authorized") {
		t.Errorf("another source got %q, want not-authorized", got)
	}
	select {
	case <-h.CallBridge.Done():
		t.Fatalf("the connected Call Bridge lost its link: %v", h.CallBridge.Err())
	default:
	}
	stillWorks(t, h)
	if got := metricValue(t, h, `confab_xmpp_component_handshakes_total{outcome="policy-violation"}`); got != 2 {
		t.Errorf("policy-violation handshakes = %v, want 2", got)
	}
}

// TestNoSecretsInLogs logs in with PLAIN and SCRAM, fails a login and a Call Bridge
// handshake, and checks that no password, SASL payload or shared secret reaches the log of
// the server or of the Call Bridge (the harness sends both to one logger, at debug level).
func TestNoSecretsInLogs(t *testing.T) {
	logs := &logBuffer{}
	h := xmppdtest.Start(t, xmppdtest.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := h.DialTLS(t)
	const wrongPassword = "wrong-password-4f9a1c"
	if err := c.Auth("PLAIN", "alice", wrongPassword); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if err := c.Auth("PLAIN", "alice", h.Users["alice"]); err != nil {
		t.Fatal(err)
	}
	h.Login(t, "bob") // SCRAM-SHA-256
	const wrongSecret = "not-the-secret-7d2e9b"
	if _, err := h.DialComponent(context.Background(), "cb1.example.com", secret.New(wrongSecret), xmppdtest.DialOptions{}); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	stillWorks(t, h)
	secrets := map[string]string{
		"alice's password":        h.Users["alice"],
		"bob's password":          h.Users["bob"],
		"the wrong password":      wrongPassword,
		"the PLAIN payload":       base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + h.Users["alice"])),
		"the wrong PLAIN":         base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + wrongPassword)),
		"cb1's shared secret":     cb1Secret(t, h).Reveal(),
		"the wrong shared secret": wrongSecret,
	}
	all := logs.String()
	if !strings.Contains(all, "login") {
		t.Fatalf("nothing logged about logins:\n%s", all)
	}
	for what, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("%s appears in the log", what)
		}
	}
}

// TestComponentUnblock: a Call Bridge whose administrator fixes a wrong secret is not locked
// out for minutes by the component port's throttle. The refusal says until when the address
// is blocked; the admin listener lists the block, with the name last tried, and clears it by
// name or address (confab xmpp callbridge unblock); the right secret is accepted at once.
// Before, the only way was to wait (up to 5 minutes) or restart the XMPP server.
func TestComponentUnblock(t *testing.T) {
	logs := &logBuffer{}
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Config: func(c *xmppd.Config) {
			c.ComponentThrottle = throttle.Config{MaxFailures: 2, Window: time.Minute, Block: 5 * time.Minute, MaxBlock: 5 * time.Minute}
		},
	})
	dial := func(s secret.Secret) error {
		c, err := h.DialComponent(context.Background(), "cb1.example.com", s, xmppdtest.DialOptions{})
		if err == nil {
			_ = c.Close("", "")
		}
		return err
	}
	admin := func(method, path string, header bool) (int, string) {
		req, err := http.NewRequest(method, h.AdminURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if header {
			req.Header.Set(xmppd.AdminRequestHeader, "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, target := range []string{"cb1", "127.0.0.1"} {
		t.Run(target, func(t *testing.T) {
			for range 2 {
				_ = dial(secret.New("a-wrong-secret"))
			}
			xmppdtest.Eventually(t, 5*time.Second, "the block", func() bool { return len(h.Server.ComponentBlocks()) == 1 })
			err := dial(cb1Secret(t, h))
			var he *component.HandshakeError
			if !errors.As(err, &he) || he.Condition != "policy-violation" || !strings.Contains(he.Text, "blocked until 20") || !strings.Contains(he.Text, "callbridge unblock") {
				t.Fatalf("right secret while blocked: %v, want policy-violation saying until when and how to clear it", err)
			}
			if code, body := admin("GET", "/callbridges/blocked", false); code != 200 || !strings.Contains(body, `"name": "cb1"`) || !strings.Contains(body, `"source": "ip:127.0.0.1"`) {
				t.Errorf("GET /callbridges/blocked = %d %s, want the block of 127.0.0.1 as cb1", code, body)
			}
			if code, _ := admin("POST", "/callbridges/unblock?target="+target, false); code != http.StatusForbidden {
				t.Errorf("unblock without %s: %d, want 403", xmppd.AdminRequestHeader, code)
			}
			if code, body := admin("POST", "/callbridges/unblock?target="+target, true); code != 200 || !strings.Contains(body, "ip:127.0.0.1") {
				t.Fatalf("unblock %s = %d %s", target, code, body)
			}
			if err := dial(cb1Secret(t, h)); err != nil {
				t.Fatalf("right secret after unblock: %v", err)
			}
		})
	}
	if !strings.Contains(logs.String(), "blocked_until=") || !strings.Contains(logs.String(), "clear_with=\"confab xmpp callbridge unblock cb1\"") {
		t.Errorf("the block's log line does not say until when and how to clear it:\n%s", logs.String())
	}
}
