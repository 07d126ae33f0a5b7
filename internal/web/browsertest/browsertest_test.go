package browsertest_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/web/browsertest"
)

// TestTrustIsByKey: the browser loads a page from the server whose certificate it was
// told to trust and refuses one it was not, so tests cannot pass against a server whose
// certificate a real browser would refuse.
func TestTrustIsByKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	page := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `<!doctype html><title>%s</title><body data-state="ready"><p id="who">%s</p></body>`, name, name)
		})
	}
	trusted := httptest.NewTLSServer(page("trusted"))
	defer trusted.Close()
	// httptest's servers all share one built-in key: the other server needs its own.
	ca, err := certs.NewCA("browsertest CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(certs.Options{CommonName: "other", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(page("other"))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{pair.Cert}}
	other.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	other.StartTLS()
	defer other.Close()

	b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{trusted.Certificate()}})
	ctx := b.Context(t, 30*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(trusted.URL), chromedp.WaitVisible(chromedp.CSS("#who"))); err != nil {
		t.Fatalf("trusted server: %v", err)
	}
	if state, err := browsertest.WaitState(ctx, "ready"); err != nil || state != "ready" {
		t.Errorf("WaitState = %q, %v", state, err)
	}
	p := b.Screenshot(t, ctx, "trusted")
	if !strings.HasSuffix(p, "trusted.png") {
		t.Errorf("screenshot saved as %s", p)
	}

	tab := b.NewTab(t, 30*time.Second)
	err = chromedp.Do(tab, chromedp.Navigate(other.URL))
	who, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("who") ? document.getElementById("who").textContent : ""`))
	if err == nil && who == "other" {
		t.Fatalf("the browser loaded a page whose certificate it was not told to trust")
	}
	t.Logf("untrusted server refused: %v", err)
}

// TestFakeMedia: with FakeMedia, getUserMedia gives the camera and microphone files the
// test made (at the files' size), getDisplayMedia a screen without a picker, and Deny and
// NoDevices the refusals a page must handle.
func TestFakeMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>media</title><body data-state="ready"></body>`)
	}))
	defer srv.Close()
	video, audio := browsertest.MediaFiles(t, t.TempDir(), 320, 240, 15)
	const probe = `(async () => {
		const out = {};
		try {
			const s = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
			const v = s.getVideoTracks()[0].getSettings();
			out.camera = v.width + "x" + v.height;
			out.microphone = s.getAudioTracks().length;
			s.getTracks().forEach(t => t.stop());
		} catch (e) { out.userMedia = e.name; }
		try {
			const s = await navigator.mediaDevices.getDisplayMedia({video: true});
			out.screen = s.getVideoTracks()[0].getSettings().displaySurface;
			s.getTracks().forEach(t => t.stop());
		} catch (e) { out.displayMedia = e.name; }
		return out;
	})()`
	type result struct {
		Camera       string `json:"camera"`
		Microphone   int    `json:"microphone"`
		Screen       string `json:"screen"`
		UserMedia    string `json:"userMedia"`
		DisplayMedia string `json:"displayMedia"`
	}
	tests := []struct {
		name  string
		media browsertest.FakeMedia
		want  result
	}{
		{"files", browsertest.FakeMedia{Video: video, Audio: audio}, result{Camera: "320x240", Microphone: 1, Screen: "monitor"}},
		{"deny", browsertest.FakeMedia{Video: video, Audio: audio, Deny: true}, result{UserMedia: "NotAllowedError", DisplayMedia: "NotAllowedError"}},
		{"no devices", browsertest.FakeMedia{NoDevices: true}, result{UserMedia: "NotFoundError", DisplayMedia: "NotReadableError"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{srv.Certificate()}, Media: &tt.media, Quiet: true})
			ctx := b.Context(t, 30*time.Second)
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[result](probe, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
