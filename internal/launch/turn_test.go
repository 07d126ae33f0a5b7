package launch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"confab.dev/confab/internal/store"
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
			waitFor(t, "the relay to count both datagrams", func() bool {
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

// waitFor polls cond every 20ms until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
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
