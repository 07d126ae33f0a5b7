package xmppd_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricValue returns the value of one series in the admin handler's /metrics, e.g.
// `confab_xmpp_logins_total{outcome="success"}`, or -1 if it is absent.
func metricValue(t *testing.T, h *xmppdtest.Harness, series string) float64 {
	t.Helper()
	_, body := get(t, h.AdminURL+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

func TestMetricsAfterLogin(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	ws := h.LoginWebSocket(t, "bob")
	c := h.DialTLS(t)
	_ = c.Auth("PLAIN", "alice", "wrong")
	alice.Send(t, `<message to="`+ws.JID+`" id="m"><body>x</body></message>`)
	ws.Expect(t, "message", xmppdtest.IsKind("message", "m"))
	alice.Send(t, `<iq type="get" id="u" to="nobody.example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
	alice.Expect(t, "error", xmppdtest.IsKind("iq", "u"))

	tests := []struct {
		series string
		want   float64
	}{
		{`confab_xmpp_logins_total{outcome="success"}`, 2},
		{`confab_xmpp_logins_total{outcome="not-authorized"}`, 1},
		{`confab_xmpp_sessions{transport="tcp"}`, 2},
		{`confab_xmpp_sessions{transport="websocket"}`, 1},
		{`confab_xmpp_component_links`, 1},
		{`confab_xmpp_component_handshakes_total{outcome="success"}`, 1},
		{`confab_xmpp_stanzas_routed_total{destination="client",kind="message"}`, 1},
		{`confab_xmpp_stanzas_routed_total{destination="unavailable",kind="iq"}`, 1},
	}
	for _, tt := range tests {
		if got := metricValue(t, h, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
	c.Send(t, `<message/>`) // before auth: a stream error
	c.ExpectStreamError(t)
	xmppdtest.Eventually(t, 5*time.Second, "the stream error counted", func() bool {
		return metricValue(t, h, `confab_xmpp_stream_errors_total{condition="not-authorized"}`) == 1
	})
}

func TestAdminEndpoints(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	code, body := get(t, h.AdminURL+"/healthz")
	if code != http.StatusOK || !strings.Contains(body, `"callBridges": 1`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	code, body = get(t, h.AdminURL+"/callbridges")
	var links []xmppd.ComponentInfo
	if err := json.Unmarshal([]byte(body), &links); err != nil || code != http.StatusOK {
		t.Fatalf("/callbridges = %d %s (%v)", code, body, err)
	}
	if len(links) != 1 {
		t.Fatalf("/callbridges = %+v, want one link", links)
	}
	l := links[0]
	if l.Name != "cb1" || l.JID != "cb1.example.com" || !strings.HasPrefix(l.RemoteAddr, "127.0.0.1:") || time.Since(l.ConnectedSince) > time.Minute {
		t.Errorf("link = %+v", l)
	}
	for _, key := range []string{`"name"`, `"jid"`, `"remoteAddress"`, `"connectedSince"`} {
		if !strings.Contains(body, key) {
			t.Errorf("/callbridges JSON lacks %s: %s", key, body)
		}
	}
}

func TestShutdown(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	tcp := h.Login(t, "alice")
	ws := h.LoginWebSocket(t, "bob")
	half, err := h.Dial() // still negotiating
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	cb := h.CallBridge

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for name, c := range map[string]*xmppdtest.Client{"tcp": tcp, "websocket": ws, "negotiating": half} {
		if se := c.ExpectStreamError(t); se.Condition != "system-shutdown" {
			t.Errorf("%s client got %s, want system-shutdown", name, se.Condition)
		}
	}
	waitDone(t, cb)
	if got := cb.StreamError(); got != "system-shutdown" {
		t.Errorf("call bridge got %q (%v), want system-shutdown", got, cb.Err())
	}
	if _, err := h.Dial(); err == nil {
		t.Error("the c2s listener still accepts after Shutdown")
	}
	code, _ := get(t, h.AdminURL+"/healthz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("/healthz after shutdown = %d, want 503", code)
	}
	// The harness's cleanup checks that Serve returned ErrServerClosed.
}

func TestShutdownTimeoutSaysWhat(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	// A client that negotiated TLS but whose TLS handshake never completes cannot be told
	// anything: it holds a connection until the deadline.
	nc, err := h.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte(`<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0"><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var got string
	for !strings.Contains(got, "<proceed") {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got += string(buf[:n])
	}
	// The server now waits for a ClientHello that never comes; Shutdown cancels the
	// handshake, so it still returns in time.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %s", d)
	}

	// With an expired context, Shutdown names what was still open: here a WebSocket client
	// that does not read, whose close handshake the server is still waiting for.
	h2 := xmppdtest.Start(t, xmppdtest.Options{})
	ws := h2.LoginWebSocket(t, "alice")
	expired, cancel2 := context.WithCancel(context.Background())
	cancel2()
	err = h2.Server.Shutdown(expired)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "websocket "+ws.JID) {
		t.Errorf("shutdown error = %v, want it to name %q and wrap context.Canceled", err, "websocket "+ws.JID)
	}
}
