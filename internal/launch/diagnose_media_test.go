package launch

import (
	"context"
	"crypto/x509"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/diagnose"
)

// caPool is the pool of `confab up`'s CA.
func caPool(t *testing.T, u *Up) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(u.Local.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pem)
	return p
}

// TestDiagnoseMedia: `confab diagnose media` (a pion client) against `confab up` on
// loopback connects over every path — UDP, ICE-TCP, the embedded TURN server over UDP, TCP
// and TLS — and reports each with the server's ladder; a TURN server whose shared secret is
// wrong fails its path with turn-credentials and the remedy, and the verdict stays direct.
func TestDiagnoseMedia(t *testing.T) {
	u := startUp(t, t.TempDir())
	// The embedded server again, by another name, with a wrong secret.
	bad := "localhost:" + port(u.CallBridge.TURN.UDP)
	if code, body := apiDo(t, u, "POST", "/api/v1/turnServers", url.Values{"serverAddress": {bad}, "sharedSecret": {"not-the-secret"},
		"tcpPortNumberOverride": {port(u.CallBridge.TURN.TCP)}}); code != 200 {
		t.Fatalf("POST turnServer: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep := diagnose.RunMedia(ctx, diagnose.MediaSettings{URL: "https://localhost:" + port(u.CallBridge.Addrs.Web), RootCAs: caPool(t, u),
		Logf: t.Logf})
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if rep.Verdict != "direct" || rep.Error != "" {
		t.Errorf("verdict %q (%s), want direct", rep.Verdict, rep.Error)
	}
	e := u.CallBridge.TURN
	want := map[string]string{
		"udp": "direct UDP", "tcp": "ICE-TCP",
		"turn:127.0.0.1:" + port(e.UDP) + "?transport=udp":  "relay: TURN over UDP",
		"turn:127.0.0.1:" + port(e.TCP) + "?transport=tcp":  "relay: TURN over TCP",
		"turns:127.0.0.1:" + port(e.TLS) + "?transport=tcp": "relay: TURN over TLS",
	}
	var sawBad bool
	for _, p := range rep.Paths {
		path, ok := want[p.Name]
		if !ok {
			if p.Result != diagnose.Fail || p.Ladder.Cause != ladder.CauseTURNCredentials {
				t.Errorf("path %s (the wrong secret): %s, cause %q, want FAIL with %s", p.Name, p.Result, p.Ladder.Cause, ladder.CauseTURNCredentials)
			}
			sawBad = true
			continue
		}
		delete(want, p.Name)
		if p.Result != diagnose.Pass || !strings.HasPrefix(p.Ladder.Path, path) {
			t.Errorf("path %s: %s, media path %q, want PASS on %s", p.Name, p.Result, p.Ladder.Path, path)
		}
	}
	if len(want) > 0 || !sawBad {
		t.Errorf("paths not tried: %v (the wrong secret's tried: %v)", want, sawBad)
	}
	for _, s := range []string{"cause:  turn-credentials", "remedy: Give the turnServer the TURN server's shared secret", "RESULT: PASS (direct)"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the table lacks %q", s)
		}
	}
}
