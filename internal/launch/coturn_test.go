package launch

import (
	"context"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/diagnose"
	"confab.dev/confab/internal/peers"
	"confab.dev/confab/internal/web/browsertest"
)

// TestCoturnAsTURNServer: an external coturn (Debian's, with its own configuration:
// use-auth-secret, its own realm and ports) configured through /api/v1/turnServers, with
// no embedded TURN server: the credentials the Call Bridge issues for each participant are
// coturn's, and media gets through it over UDP, TCP and TLS — for confab diagnose media
// (pion) and for Chromium's connection test.
func TestCoturnAsTURNServer(t *testing.T) {
	u := startUp(t, t.TempDir(), func(o *UpOptions) { o.TURN, o.TURNTLS = "off", "off" })
	const sharedSecret = "coturn-and-confab-share-this"
	ct := peers.StartCoturnT(t, peers.CoturnOptions{Realm: "coturn.test", Secret: sharedSecret,
		CertFile: u.Local.CertFile, KeyFile: u.Local.KeyFile, AllowedPeers: []string{"127.0.0.1"}})
	t.Logf("coturn %s on %s (TLS %s)", ct.Version, ct.UDPAddr, ct.TLSAddr)
	if code, body := apiDo(t, u, "POST", "/api/v1/turnServers", url.Values{"serverAddress": {ct.UDPAddr}, "type": {"standard"},
		"sharedSecret": {sharedSecret}, "tlsPortNumber": {port(ct.TLSAddr)}}); code != 200 {
		t.Fatalf("POST turnServer: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep := diagnose.RunMedia(ctx, diagnose.MediaSettings{URL: "https://localhost:" + port(u.CallBridge.Addrs.Web), RootCAs: caPool(t, u),
		Only: "turn", Logf: t.Logf})
	var out strings.Builder
	_ = rep.WriteTable(&out)
	t.Log("\n" + out.String())
	want := map[string]string{
		"turn:" + ct.UDPAddr + "?transport=udp":  "relay: TURN over UDP",
		"turn:" + ct.TCPAddr + "?transport=tcp":  "relay: TURN over TCP",
		"turns:" + ct.TLSAddr + "?transport=tcp": "relay: TURN over TLS",
	}
	for _, p := range rep.Paths {
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected path %s", p.Name)
			continue
		}
		delete(want, p.Name)
		if p.Result != diagnose.Pass || !strings.HasPrefix(p.Ladder.Path, w) {
			t.Errorf("%s: %s on %q, want PASS on %s", p.Name, p.Result, p.Ladder.Path, w)
		}
	}
	if len(want) > 0 {
		t.Errorf("not tried: %v", want)
	}

	b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{serverLeaf(t, u)}, Width: 1000, Height: 900})
	paths, verdict, _ := connectionTest(t, b, "https://localhost:"+port(u.CallBridge.Addrs.Web), "connection-test-coturn")
	if verdict != "direct" {
		t.Errorf("verdict %q, want direct", verdict)
	}
	relayed := 0
	for _, p := range paths {
		if strings.HasPrefix(p.Path, "turn") {
			relayed++
			if p.Result != "ok" {
				t.Errorf("Chromium through coturn %s: %s (%s)", p.Path, p.Result, p.Detail)
			}
		}
	}
	if relayed != 3 {
		t.Errorf("Chromium tried %d relays through coturn, want 3", relayed)
	}
}
