package launch

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/web/browsertest"
)

// pathResult is one way in of the connection test page, as shown.
type pathResult struct {
	Path   string `json:"path"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// connectionTest opens /test in b and runs it; it returns each way in's result and the
// verdict.
func connectionTest(t *testing.T, b *browsertest.Browser, app, shot string) ([]pathResult, string, string) {
	t.Helper()
	ctx := b.Context(t, 3*time.Minute)
	run(t, ctx, "open the connection test", chromedp.Navigate(app+"/test"), chromedp.WaitVisible(chromedp.CSS("#test-start")))
	run(t, ctx, "run it", chromedp.Click(chromedp.CSS("#test-start")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-conn-test="done"] #test-verdict`)))
	paths, err := chromedp.Run(ctx, chromedp.Evaluate[[]pathResult](`Array.from(document.querySelectorAll("#test-paths li")).map(li =>
		({path: li.dataset.path, result: li.dataset.result, detail: li.querySelector(".path-detail").textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	verdict, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("test-verdict").dataset.verdict`))
	words, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("test-verdict").textContent`))
	b.Screenshot(t, ctx, shot)
	for _, p := range paths {
		t.Logf("%-45s %-7s %s", p.Path, p.Result, p.Detail)
	}
	t.Logf("verdict %s: %s", verdict, words)
	return paths, verdict, words
}

// TestBrowserConnectionTest: the web app's "Test your connection" page, in Chromium,
// against `confab up` on loopback with its embedded TURN server: every way in works —
// directly over UDP and TCP, and through the TURN server over UDP, TCP and TLS — and the
// page says the network is fine.
func TestBrowserConnectionTest(t *testing.T) {
	u := startUp(t, t.TempDir())
	b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{serverLeaf(t, u)}, Width: 1000, Height: 900})
	paths, verdict, _ := connectionTest(t, b, "https://localhost:"+port(u.CallBridge.Addrs.Web), "connection-test-loopback")
	if verdict != "direct" {
		t.Errorf("verdict %q, want direct", verdict)
	}
	want := map[string]bool{"udp": true, "tcp": true, "turn:127.0.0.1:" + port(u.CallBridge.TURN.UDP) + "?transport=udp": true,
		"turn:127.0.0.1:" + port(u.CallBridge.TURN.TCP) + "?transport=tcp": true, "turns:127.0.0.1:" + port(u.CallBridge.TURN.TLS) + "?transport=tcp": true}
	for _, p := range paths {
		if !want[p.Path] {
			t.Errorf("unexpected way in %s", p.Path)
			continue
		}
		delete(want, p.Path)
		if p.Result != "ok" {
			t.Errorf("%s: %s (%s), want ok", p.Path, p.Result, p.Detail)
		}
	}
	for p := range want {
		t.Errorf("%s was not tried", p)
	}
}
