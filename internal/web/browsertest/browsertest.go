// Package browsertest drives a real, headless Chromium from tests through the DevTools
// protocol (github.com/chromedp/chromedp): the system's /usr/bin/chromium (Debian package
// chromium), a fresh profile per browser, the page's console and uncaught exceptions copied
// to the test log, and screenshots saved where a person (or CI) can look at them.
//
//	b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{srv.Certificate()}})
//	ctx := b.Context(t, 30*time.Second)
//	err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
//	b.Screenshot(t, ctx, "signin")
//
// Certificates are trusted by their public key (Chromium's --ignore-certificate-errors-spki-list,
// which it honours only with its own --user-data-dir, as here): the browser still checks
// every other certificate, so a test cannot pass against a server it should have refused.
// Without Chromium the test skips, or fails under CONFAB_REQUIRE_PEERS=1 (package testenv).
//
// Options.Media gives the browser fake media devices: a camera and a microphone that play
// files (MediaFiles makes them with ffmpeg), a screen that getDisplayMedia captures without
// a picker, and permission prompts answered by the flags rather than by a person.
package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/testenv"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Options configure Start.
type Options struct {
	// TrustCerts are server certificates the browser accepts by their public key, whoever
	// issued them (a test CA's leaf, an httptest.NewTLSServer's certificate).
	TrustCerts []*x509.Certificate
	// Width and Height are the window's size in CSS pixels (default 1280x900).
	Width, Height int
	// Quiet stops copying the page's console to the test log.
	Quiet bool
	// Media, when set, gives the browser fake media devices (see FakeMedia).
	Media *FakeMedia
	// Command, when set, changes the browser's command before it starts: a test runs
	// Chromium inside a network namespace with `ip netns exec` this way (the DevTools
	// protocol goes over a pipe, which a namespace does not cut).
	Command func(cmd *exec.Cmd)
}

// FakeMedia are Chromium's fake media devices and answers to the permission prompts:
// --use-fake-device-for-media-stream (a fake camera, microphone and, with
// display-media-type=monitor, a fake screen for getDisplayMedia, all headless),
// --use-fake-ui-for-media-stream (every prompt answered, yes or with Deny no), and the
// files the camera and the microphone play.
type FakeMedia struct {
	// Video is a .y4m or .mjpeg file the camera loops ("" is Chromium's own pattern).
	Video string
	// Audio is a .wav file the microphone loops ("" is Chromium's beep).
	Audio string
	// Deny answers every camera, microphone and screen prompt with no (NotAllowedError).
	Deny bool
	// NoDevices leaves the fake devices out: the browser looks for the machine's own, and
	// CI's machines and containers have none (NotFoundError), as a computer without a
	// camera or microphone. Prompts are still answered.
	NoDevices bool
	// StrictAutoplay makes sound wait for a user gesture (a real click or key press; a
	// script's click() is none), as a browser that has not seen the site before does.
	// Headless Chromium otherwise lets pages play sound at once.
	StrictAutoplay bool
}

func (m *FakeMedia) flags() []chromedp.ExecAllocatorOption {
	ui := "1"
	if m.Deny {
		ui = "deny"
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.Flag("use-fake-ui-for-media-stream", ui)}
	if m.StrictAutoplay {
		opts = append(opts, chromedp.Flag("autoplay-policy", "document-user-activation-required"))
	}
	if m.NoDevices {
		return opts
	}
	opts = append(opts, chromedp.Flag("use-fake-device-for-media-stream", "display-media-type=monitor"))
	if m.Video != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-video-capture", m.Video))
	}
	if m.Audio != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-audio-capture", m.Audio))
	}
	return opts
}

// MediaFiles makes, with ffmpeg, the files a FakeMedia plays: dir/camera.y4m, two seconds
// of ffmpeg's moving test pattern (testsrc2) at width x height and fps frames a second,
// and dir/tone.wav, two seconds of a 440 Hz tone whose loudness rises and falls four times
// a second (speech-like, so that noise suppression leaves it alone). Without ffmpeg the
// test skips, or fails under CONFAB_REQUIRE_PEERS=1.
func MediaFiles(t testing.TB, dir string, width, height, fps int) (video, audio string) {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	video = filepath.Join(dir, "camera.y4m")
	audio = filepath.Join(dir, "tone.wav")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", width, height, fps), "-t", "2", "-pix_fmt", "yuv420p", video},
		{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-af", "volume=eval=frame:volume='0.6+0.4*sin(2*PI*4*t)'", "-t", "2", "-ac", "1", audio},
	} {
		cmd := exec.Command(ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	return video, audio
}

// Browser is one running Chromium with its own profile (cookies, storage): two Browsers
// are two people.
type Browser struct {
	ctx     context.Context // the browser's context: cancelling it ends the process
	cancel  context.CancelFunc
	dir     string
	log     *testLog
	quiet   bool
	readers sync.WaitGroup // console readers, which end with their tab
}

// Start launches Chromium for t and closes it when t ends.
func Start(t testing.TB, o Options) *Browser {
	t.Helper()
	path := testenv.File(t, ChromiumPath, "Chromium (Debian package chromium)")
	if o.Width <= 0 {
		o.Width = 1280
	}
	if o.Height <= 0 {
		o.Height = 900
	}
	profile := t.TempDir()
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts,
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // tests run as root in CI's container; the sandbox needs a user namespace
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(o.Width, o.Height),
	)
	if o.Media != nil {
		opts = append(opts, o.Media.flags()...)
	}
	if o.Command != nil {
		opts = append(opts, chromedp.ModifyCmdFunc(o.Command))
	}
	if len(o.TrustCerts) > 0 {
		var hashes []string
		for _, c := range o.TrustCerts {
			hashes = append(hashes, SPKIHash(c))
		}
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(hashes, ",")))
	}
	tl := &testLog{t: t}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(func(string, ...any) {}))
	b := &Browser{ctx: ctx, dir: artifactsDir(t), log: tl, quiet: o.Quiet}
	b.cancel = func() {
		cancelCtx()
		cancelAlloc()
	}
	t.Cleanup(func() {
		tl.stop()
		// Cancelling the first tab's context ends the browser process and waits for it.
		b.cancel()
		b.readers.Wait()
	})
	// Start the process now, so that a broken install fails here and not in the test. The
	// first Run must get the browser's own context: the process lives as long as the
	// context it was started with.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.listen(ctx, "tab0")
	return b
}

// SPKIHash is the base64 SHA-256 of a certificate's public key, as Chromium's
// --ignore-certificate-errors-spki-list wants it.
func SPKIHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Context returns the browser's first tab, bounded by timeout (and by the test's end); pass
// it to chromedp.Run.
func (b *Browser) Context(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	t.Cleanup(cancel)
	return ctx
}

// NewTab opens another tab of the same browser (same profile), bounded by timeout.
func (b *Browser) NewTab(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(b.ctx)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	b.listen(tab, "tab")
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(func() {
		cancel()
		cancelTab()
	})
	return ctx
}

// Dir is the directory screenshots are saved in.
func (b *Browser) Dir() string { return b.dir }

// Screenshot saves a PNG of the whole page of ctx's tab as <Dir>/<name>.png, logs its path
// and returns it. A screenshot that cannot be taken fails the test.
func (b *Browser) Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.dir, safeName(name)+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot %s: %s", name, p)
	return p
}

// listen copies the tab's console messages and uncaught exceptions to the test log until
// the tab closes.
func (b *Browser) listen(ctx context.Context, tab string) {
	if b.quiet {
		return
	}
	msgs := chromedp.Console(ctx)
	b.readers.Add(1)
	go func() {
		defer b.readers.Done()
		for m, err := range msgs {
			if err != nil {
				return // the tab's context ended
			}
			if m.IsException() {
				b.log.logf("%s uncaught exception: %s (%s:%d)", tab, m.Text, m.URL, m.Line+1)
				continue
			}
			b.log.logf("%s console.%s: %s", tab, m.Type, m.Text)
		}
	}()
}

// testLog logs to t until the test's cleanup starts (logging after the end panics).
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf(format, args...)
	}
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return strings.Trim(unsafeChars.ReplaceAllString(s, "_"), "_") }

// artifactsDir is $CONFAB_ARTIFACTS/<test name> when that is set (CI keeps it), else a
// temporary directory of the test.
func artifactsDir(t testing.TB) string {
	root := os.Getenv("CONFAB_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, safeName(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

// WaitState waits until the page's <body data-state> is one of states and returns it; the
// browser app and the web admin both publish their state there. When the page reaches a
// state not in states but equal to "error", it stops waiting and returns an error naming
// the page's data-error.
func WaitState(ctx context.Context, states ...string) (string, error) {
	want := make(map[string]bool, len(states))
	for _, s := range states {
		want[s] = true
	}
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](`({state: document.body ? (document.body.dataset.state || "") : "", error: document.body ? (document.body.dataset.error || "") : ""})`))
		if err == nil {
			if want[got.State] {
				return got.State, nil
			}
			if got.State == "error" {
				return got.State, fmt.Errorf("page state is error: %q", got.Error)
			}
		}
		select {
		case <-ctx.Done():
			return got.State, fmt.Errorf("waiting for page state %v (last %q): %w", states, got.State, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond): // polling interval
		}
	}
}

type pageState struct {
	State string `json:"state"`
	Error string `json:"error"`
}

// ScreenshotElement saves a PNG of the first element matching the CSS selector, at the
// page's full resolution, as <Dir>/<name>.png, logs its path and returns it.
func (b *Browser) ScreenshotElement(t testing.TB, ctx context.Context, name, selector string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("screenshot %s of %s: %v", name, selector, err)
	}
	p := filepath.Join(b.dir, safeName(name)+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot %s: %s", name, p)
	return p
}
