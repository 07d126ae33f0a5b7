package xmppd_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

func TestWebSocketLoginAndMessage(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			c, err := h.DialWebSocket(xmppdtest.WebSocketOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// TLS is the HTTPS listener's: SASL is offered at once, STARTTLS never.
			if c.HasFeature("urn:ietf:params:xml:ns:xmpp-tls", "starttls") {
				t.Error("STARTTLS offered over WebSocket")
			}
			if !slices.Contains(c.Mechanisms(), mech) {
				t.Fatalf("mechanisms %v lack %s", c.Mechanisms(), mech)
			}
			if err := c.Auth(mech, "alice", h.Users["alice"]); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Bind("browser"); err != nil {
				t.Fatal(err)
			}
			bob := h.Login(t, "bob") // over TCP
			c.Send(t, `<message to="`+bob.JID+`" id="w1"><body>from the browser</body></message>`)
			if m := bob.Expect(t, "message", xmppdtest.IsKind("message", "w1")); m.Get("from") != "alice@example.com/browser" {
				t.Errorf("bob got %s", m)
			}
			bob.Send(t, `<message to="alice@example.com/browser" id="w2"><body>back</body></message>`)
			if m := c.Expect(t, "reply", xmppdtest.IsKind("message", "w2")); xmppdtest.Body(m) != "back" {
				t.Errorf("alice got %s", m)
			}
			ping(t, c, "wp")
		})
	}
}

func TestWebSocketHandshakeRefused(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) {
		c.AllowedOrigins = []string{"https://app.example.com:8443"}
	}})
	tests := []struct {
		name       string
		opts       xmppdtest.WebSocketOptions
		wantStatus int // 0: accepted
	}{
		// Without the subprotocol the handshake is refused with HTTP 400 before the upgrade.
		{"no subprotocol", xmppdtest.WebSocketOptions{Subprotocols: []string{}}, http.StatusBadRequest},
		{"other subprotocol", xmppdtest.WebSocketOptions{Subprotocols: []string{"mqtt"}}, http.StatusBadRequest},
		{"foreign origin", xmppdtest.WebSocketOptions{Origin: "https://evil.example.net"}, http.StatusForbidden},
		{"origin with another port", xmppdtest.WebSocketOptions{Origin: "https://app.example.com:9443"}, http.StatusForbidden},
		{"origin with another scheme", xmppdtest.WebSocketOptions{Origin: "http://app.example.com:8443"}, http.StatusForbidden},
		{"allowed origin", xmppdtest.WebSocketOptions{Origin: "https://APP.example.com:8443"}, 0},
		{"no origin (not a browser)", xmppdtest.WebSocketOptions{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := h.DialWebSocketRaw(tt.opts)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("handshake refused: %v", err)
				}
				if c.Subprotocol() != "xmpp" {
					t.Errorf("subprotocol = %q, want xmpp", c.Subprotocol())
				}
				_ = c.CloseNow()
				return
			}
			var he *xmppdtest.HTTPError
			if !errors.As(err, &he) || he.StatusCode != tt.wantStatus {
				t.Fatalf("err = %v, want HTTP %d", err, tt.wantStatus)
			}
		})
	}
}

func TestWebSocketSameOriginDefault(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	if _, err := h.DialWebSocketRaw(xmppdtest.WebSocketOptions{Origin: "https://evil.example.net"}); err == nil {
		t.Error("a foreign origin was accepted with no AllowedOrigins")
	}
	c, err := h.DialWebSocketRaw(xmppdtest.WebSocketOptions{Origin: h.HTTPSURL})
	if err != nil {
		t.Fatalf("the page's own origin %s was refused: %v", h.HTTPSURL, err)
	}
	_ = c.CloseNow()
}

func TestWebSocketFraming(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.MaxStanzaC2S = 4 << 10 }})
	t.Run("oversized message", func(t *testing.T) {
		c := h.LoginWebSocket(t, "alice")
		c.Send(t, `<message to="bob@example.com"><body>`+strings.Repeat("x", 8<<10)+`</body></message>`)
		_, err := c.Next()
		for err == nil {
			_, err = c.Next()
		}
		// The frame is too large to read: the library closes with 1009.
		if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
			t.Errorf("read error %v (close status %d), want close status %d", err, got, websocket.StatusMessageTooBig)
		}
		stillWorks(t, h)
	})
	t.Run("two elements in a message", func(t *testing.T) {
		c := h.LoginWebSocket(t, "alice")
		c.Send(t, `<presence/><presence/>`)
		if se := c.ExpectStreamError(t); se.Condition != "not-well-formed" {
			t.Errorf("stream error %s, want not-well-formed", se.Condition)
		}
		stillWorks(t, h)
	})
	t.Run("binary message", func(t *testing.T) {
		ws, err := h.DialWebSocketRaw(xmppdtest.WebSocketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ws.Write(ctx, websocket.MessageBinary, []byte(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>`)); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				break
			}
			got = append(got, string(data))
		}
		all := strings.Join(got, "")
		if !strings.Contains(all, "<bad-format ") || !strings.Contains(all, `<close xmlns="`+stream.NSFraming+`"/>`) {
			t.Errorf("server sent %q, want a bad-format stream error and <close/>", got)
		}
	})
	t.Run("close", func(t *testing.T) {
		c := h.LoginWebSocket(t, "alice")
		c.Send(t, `<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`)
		if err := c.ExpectClosed(); err != nil {
			t.Errorf("after <close/>: %v, want the server's <close/>", err)
		}
	})
}

func TestWebSocketKeepAlive(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) {
		c.KeepAlive = 20 * time.Millisecond
		c.IdleTimeout = time.Minute
	}})
	var pings atomic.Int64
	ws, err := h.DialWebSocket(xmppdtest.WebSocketOptions{OnPing: func() { pings.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.Login("alice"); err != nil {
		t.Fatal(err)
	}
	// Keepalives on WebSocket are ping frames, never whitespace messages (a message must be
	// a whole element): for 500ms, about 25 keepalive intervals, no message arrives at all.
	ws.Timeout = 500 * time.Millisecond
	e, err := ws.Next()
	if err == nil {
		t.Fatalf("got %s, want nothing but ping frames", e)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read: %v, want the client's deadline", err)
	}
	if n := pings.Load(); n < 3 {
		t.Errorf("%d WebSocket pings in 500ms with a 20ms keepalive, want several", n)
	}
}
