package launch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
)

// apiDo makes a REST API request as the admin account.
func apiDo(t *testing.T, u *Up, method, path string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "https://"+u.CallBridge.Addrs.API+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	pw, err := os.ReadFile(u.AdminPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(u.AdminUser, strings.TrimSpace(string(pw)))
	resp, err := caClient(t, u).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// turnClient allocates at the TURN server of addr over transport ("udp", "tcp", "tls")
// with the credentials a participant gets; the allocation ends with the test.
func turnClient(t *testing.T, u *Up, transport, addr, user, pass string) net.PacketConn {
	t.Helper()
	var conn net.PacketConn
	switch transport {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	default:
		var c net.Conn
		var err error
		if transport == "tls" {
			pool := x509.NewCertPool()
			pool.AddCert(serverLeaf(t, u))
			ca, _ := os.ReadFile(u.Local.CAFile)
			pool.AppendCertsFromPEM(ca)
			c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatalf("dial %s %s: %v", transport, addr, err)
		}
		conn = turn.NewSTUNConn(c)
	}
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, Username: user, Password: pass, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		c.Close()
		conn.Close()
		t.Fatalf("allocate over %s at %s: %v", transport, addr, err)
	}
	t.Cleanup(func() {
		relay.Close()
		c.Close()
		conn.Close()
	})
	return relay
}

// TestUpTURN: `confab up` runs the embedded TURN server on UDP, TCP and TLS; it is in
// /api/v1/turnServers as it listens, and a participant's ICE servers carry credentials
// issued for its leg that the server accepts on each transport; it relays to the media
// port and nothing else on loopback; its allocations are in the API and its metrics on
// the Call Bridge's /metrics. A second start keeps the administrator's clientAddress; a
// start without TURN takes it out of the list.
func TestUpTURN(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	e := u.CallBridge.TURN
	if e == nil || e.UDP == "" || e.TCP == "" || e.TLS == "" || e.Host != "127.0.0.1" {
		t.Fatalf("embedded TURN %+v, want UDP, TCP and TLS on 127.0.0.1", e)
	}
	code, body := apiDo(t, u, "GET", "/api/v1/turnServers/"+EmbeddedTURNID, nil)
	if code != 200 || !strings.Contains(body, "<serverAddress>"+e.UDP+"</serverAddress>") ||
		!strings.Contains(body, "<tcpPortNumberOverride>"+port(e.TCP)+"</tcpPortNumberOverride>") ||
		!strings.Contains(body, "<tlsPortNumber>"+port(e.TLS)+"</tlsPortNumber>") || !strings.Contains(body, "<embedded>true</embedded>") {
		t.Fatalf("GET the embedded turnServer: %d %s", code, body)
	}

	ice := u.CallBridge.ICEServers(context.Background(), "leg-42", time.Hour)
	if len(ice) != 1 || len(ice[0].URLs) != 3 || !strings.HasSuffix(ice[0].Username, ":leg-42") || ice[0].ID != EmbeddedTURNID {
		t.Fatalf("ICE servers %+v, want the embedded server's three URLs with credentials for leg-42", ice)
	}
	want := []string{"turn:" + e.UDP + "?transport=udp", "turn:" + e.TCP + "?transport=tcp", "turns:" + e.TLS + "?transport=tcp"}
	for i, w := range want {
		if ice[0].URLs[i] != w {
			t.Errorf("URL %d = %s, want %s", i, ice[0].URLs[i], w)
		}
	}

	media, err := net.ResolveUDPAddr("udp", u.CallBridge.Addrs.MediaUDP)
	if err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, tr := range []struct{ name, addr string }{{"udp", e.UDP}, {"tcp", e.TCP}, {"tls", e.TLS}} {
		t.Run(tr.name, func(t *testing.T) {
			relay := turnClient(t, u, tr.name, tr.addr, ice[0].Username, ice[0].Credential)
			if _, err := relay.WriteTo([]byte("not media, but to the media port"), media); err != nil {
				t.Fatalf("write to the media port: %v", err)
			}
			if _, err := relay.WriteTo([]byte("to another port on loopback"), other.LocalAddr()); err != nil {
				t.Fatalf("write: %v", err)
			}
			pollUntil(t, "the relay to count both datagrams", func() bool {
				for _, a := range e.Server.Allocations() {
					if a.Relayed.String() == relay.LocalAddr().String() {
						return a.ToPeer.Packets == 1 && a.ToPeer.Dropped == 1 && a.Transport == tr.name
					}
				}
				return false
			})
			_ = other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, _, err := other.ReadFrom(make([]byte, 100)); err == nil {
				t.Errorf("another loopback port received %d bytes through the relay", n)
			}
			code, body := apiDo(t, u, "GET", "/api/v1/turnServers/"+EmbeddedTURNID+"/allocations", nil)
			if code != 200 || !strings.Contains(body, "<userId>leg-42</userId>") || !strings.Contains(body, "<transport>"+tr.name+"</transport>") {
				t.Errorf("allocations: %d %s", code, body)
			}
		})
	}
	code, body = apiDo(t, u, "GET", "/metrics", nil)
	if code != 200 || !strings.Contains(body, `confab_turn_allocations_created_total{transport="tls"} 1`) ||
		!strings.Contains(body, `confab_turn_refused_total{cause="peer_port"} 3`) {
		t.Errorf("metrics: %d, want the TURN series on the Call Bridge's registry:\n%s", code, grepLines(body, "confab_turn_"))
	}

	// The administrator names the server for browsers; the next start keeps it.
	if code, body := apiDo(t, u, "PUT", "/api/v1/turnServers/"+EmbeddedTURNID, url.Values{"clientAddress": {"turn.example.com"}}); code != 200 {
		t.Fatalf("PUT clientAddress: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	u2 := startUp(t, dir)
	o, err := u2.CallBridge.Store.Object(ctx, store.KindTURNServer, EmbeddedTURNID)
	if err != nil || o.Fields["clientAddress"] != "turn.example.com" || o.Fields["serverAddress"] != u2.CallBridge.TURN.UDP {
		t.Errorf("after a restart: %+v, %v; want clientAddress kept and serverAddress %s", o.Fields, err, u2.CallBridge.TURN.UDP)
	}
	if err := u2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	u3 := startUp(t, dir, func(o *UpOptions) { o.TURN, o.TURNTLS = "off", "off" })
	if u3.CallBridge.TURN != nil {
		t.Error("TURN runs with -turn off -turn-tls off")
	}
	if _, err := u3.CallBridge.Store.Object(ctx, store.KindTURNServer, EmbeddedTURNID); err == nil {
		t.Error("the embedded turnServer is still offered when no TURN server runs")
	}
	if ice := u3.CallBridge.ICEServers(ctx, "leg-1", time.Hour); len(ice) != 0 {
		t.Errorf("ICE servers without TURN: %+v", ice)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// pollUntil polls cond every 20ms until it holds, failing the test after 10s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// TestUpTURNRefusals: what the integration adds to the TURN server's own refusals, checked
// on the embedded server of confab up: no credentials, expired ones (issued from its
// generated secret), forged ones get 401; a twelfth allocation of one call leg gets 486
// (the per-user quota); relaying anywhere but the media port is refused — loopback,
// link-local, and any other address, since the embedded server's default deny list is
// everything; an oversized message gets 400; every refusal is counted, and the server
// goes on serving the participant's relay to the media port.
func TestUpTURNRefusals(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	e := u.CallBridge.TURN
	ice := u.CallBridge.ICEServers(context.Background(), "leg-7", time.Hour)[0]
	secretBytes, err := os.ReadFile(filepath.Join(dir, "turn-secret"))
	if err != nil {
		t.Fatalf("the generated secret: %v", err)
	}
	sec := secret.New(strings.TrimSpace(string(secretBytes)))
	expired, _ := turnd.IssueCredentials(sec, "leg-7", time.Now().Add(-time.Minute))
	forged, _ := turnd.IssueCredentials(secret.New("not the secret"), "leg-7", time.Now().Add(time.Hour))

	allocate := func(user, pass string) (net.PacketConn, error) {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: e.UDP, Username: user, Password: pass, Conn: conn, RTO: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := c.Allocate()
		t.Cleanup(func() {
			if relay != nil {
				relay.Close()
			}
			c.Close()
			conn.Close()
		})
		return relay, err
	}
	code := func(err error) int {
		var te *stun.TurnError
		if errors.As(err, &te) {
			return int(te.ErrorCodeAttr.Code)
		}
		return 0
	}
	for _, tt := range []struct {
		name, user, pass string
		want             int
		cause            string
	}{
		{"no such user", "mallory", "guess", 401, "unknown_user"},
		{"expired", expired.Username, expired.Password.Reveal(), 401, "expired"},
		{"forged", forged.Username, forged.Password.Reveal(), 401, "bad_password"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := allocate(tt.user, tt.pass); code(err) != tt.want {
				t.Errorf("allocate: %v, want %d", err, tt.want)
			}
			if got := metric(t, u, "confab_turn_refused_total", "cause", tt.cause); got < 1 {
				t.Errorf("refused{%s} = %v", tt.cause, got)
			}
		})
	}

	// The participant's own relay works, and is refused everything but the media port.
	relay, err := allocate(ice.Username, ice.Credential)
	if err != nil {
		t.Fatalf("allocate with the leg's credentials: %v", err)
	}
	for _, peer := range []string{"127.0.0.2:5000", "169.254.1.1:5000", "192.0.2.7:5000", "10.1.2.3:5000"} {
		before := refused(t, u)
		_, err := relay.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(peer)))
		if err == nil {
			pollUntil(t, "the refusal of "+peer+" to be counted", func() bool { return refused(t, u) > before })
		} else if code(err) != 403 && !strings.Contains(err.Error(), "403") {
			t.Errorf("relay to %s: %v, want 403", peer, err)
		}
	}
	for _, c := range []string{"peer_loopback", "peer_link_local", "peer_deny_list"} {
		if got := metric(t, u, "confab_turn_refused_total", "cause", c); got < 1 {
			t.Errorf("refused{%s} = %v, want counted", c, got)
		}
	}

	// An oversized message: 400, counted.
	raw, err := net.Dial("udp4", e.UDP)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	big := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	big.Add(stun.AttrData, make([]byte, 2000))
	big.WriteHeader()
	if _, err := raw.Write(big.Raw); err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := raw.Read(buf)
	res := &stun.Message{Raw: buf[:n]}
	var ec stun.ErrorCodeAttribute
	if err != nil || res.Decode() != nil || ec.GetFrom(res) != nil || ec.Code != stun.CodeBadRequest {
		t.Errorf("oversized: %v, answer %v (code %d), want 400", err, res, ec.Code)
	}

	// A flood of one leg's allocations stops at the quota (10, with the relay above).
	var quota int
	for range 12 {
		if _, err := allocate(ice.Username, ice.Credential); code(err) == 486 {
			quota++
		}
	}
	if quota < 2 || metric(t, u, "confab_turn_refused_total", "cause", "quota_user") < 2 {
		t.Errorf("%d allocations over the quota refused with 486, want 2", quota)
	}

	// Still serving: the participant's relay reaches the media port.
	media, _ := net.ResolveUDPAddr("udp", u.CallBridge.Addrs.MediaUDP)
	before := sent(e)
	if _, err := relay.WriteTo([]byte("still here"), media); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the relay to the media port after the refusals", func() bool { return sent(e) > before })
}

// metric reads one series from the Call Bridge's /metrics.
func metric(t *testing.T, u *Up, name, label, value string) float64 {
	t.Helper()
	_, body := apiDo(t, u, "GET", "/metrics", nil)
	prefix := name + "{" + label + `="` + value + `"} `
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// refused sums every refusal of the TURN server.
func refused(t *testing.T, u *Up) float64 {
	t.Helper()
	_, body := apiDo(t, u, "GET", "/metrics", nil)
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "confab_turn_refused_total{") {
			f, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			sum += f
		}
	}
	return sum
}

// sent is what the embedded server's allocations relayed to peers.
func sent(e *EmbeddedTURN) uint64 {
	var n uint64
	for _, a := range e.Server.Allocations() {
		n += a.ToPeer.Packets
	}
	return n
}

// TestCallBridgeTURNSection: confab callbridge runs the embedded TURN server from a [turn]
// section of its file: a secret generated in the data directory, registered in
// /api/v1/turnServers, [turn.peers] allow added to the media port.
func TestCallBridgeTURNSection(t *testing.T) {
	dir := t.TempDir()
	var cfg config.CallBridge
	if err := config.Decode([]byte(`data_dir = "`+dir+`"
[listen]
api = "127.0.0.1:0"
web = "127.0.0.1:0"
[media]
udp = "127.0.0.1:0"
[turn.listen]
udp = "127.0.0.1:0"
tcp = "off"
tls = "127.0.0.1:0"
[turn.peers]
allow = ["127.0.0.2/32"]
`), &cfg); err != nil {
		t.Fatal(err)
	}
	cb, err := StartCallBridge(context.Background(), cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), CallBridgeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cb.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	e := cb.TURN
	if e == nil || e.UDP == "" || e.TCP != "" || e.TLS == "" {
		t.Fatalf("embedded TURN %+v, want UDP and TLS, no TCP", e)
	}
	if st, err := os.Stat(filepath.Join(dir, "turn-secret")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("generated secret: %v, %v", st, err)
	}
	ice := cb.ICEServers(context.Background(), "leg-1", time.Hour)
	if len(ice) != 1 || len(ice[0].URLs) != 2 || !strings.HasPrefix(ice[0].URLs[1], "turns:") {
		t.Fatalf("ICE servers %+v, want UDP and TLS", ice)
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2: %v", err)
	}
	defer peer.Close()
	conn, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: e.UDP, Username: ice[0].Username, Password: ice[0].Credential, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if _, err := relay.WriteTo([]byte("allowed by [turn.peers]"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if n, _, err := peer.ReadFrom(buf); err != nil || string(buf[:n]) != "allowed by [turn.peers]" {
		t.Errorf("the allowed peer got %q, %v", buf[:n], err)
	}
}
