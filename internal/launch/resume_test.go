package launch

import (
	"crypto/x509"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/web/browsertest"
)

// TestBrowserResume: a browser in a meeting loses its network for a moment. Its WebSocket is
// cut and its reconnection held while the other participant writes; the page says it is
// reconnecting; when the network is back the session resumes (XEP-0198): the message written
// meanwhile arrives once, the person never left the meeting, and the chat goes on both ways.
func TestBrowserResume(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	u := startUp(t, t.TempDir())
	createUser(t, u, "alice", "Alice Example", "correct horse battery")
	leaf := serverLeaf(t, u)
	direct := "https://localhost:" + port(u.CallBridge.Addrs.Web)
	// Alice reaches the Web Bridge through a proxy the test can cut, as a network would.
	px := startCutProxy(t, u.CallBridge.Addrs.Web)
	proxied := "https://localhost:" + port(px.addr())

	alice := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}})
	guest := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}})
	actx := alice.Context(t, 120*time.Second)
	gctx := guest.Context(t, 120*time.Second)

	signIn(t, actx, proxied, "alice", "correct horse battery")
	spaceSel := `#spaces-list button[data-space-jid^="` + u.Demo.ID + `@"]`
	run(t, actx, "join the demo space", chromedp.WaitVisible(chromedp.CSS(spaceSel)), chromedp.Click(chromedp.CSS(spaceSel)))
	joinNow(t, actx)

	run(t, gctx, "the guest joins", chromedp.Navigate(direct+"/join"), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	wait(t, gctx, "ready")
	run(t, gctx, "join",
		chromedp.SendKeys(chromedp.CSS("#join-callid"), u.Demo.CallID),
		chromedp.SendKeys(chromedp.CSS("#join-passcode"), u.DemoPasscode),
		chromedp.SendKeys(chromedp.CSS("#join-name"), "Ada Guest"),
		chromedp.Click(chromedp.CSS("#join-submit")))
	joinNow(t, gctx)
	run(t, actx, "Alice sees the guest", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-name="Ada Guest"]`)))
	const before = "Written before the cut"
	run(t, gctx, "the guest writes", chromedp.SendKeys(chromedp.CSS("#chat-input"), before), chromedp.Click(chromedp.CSS("#chat-send")))
	run(t, actx, "Alice reads it", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-from="Ada Guest"]`)))

	// The network goes: Alice's connections are cut, and new ones wait.
	px.cut(true)
	run(t, actx, "the page says it is reconnecting", chromedp.WaitVisible(chromedp.CSS("#connection")))
	alice.Screenshot(t, actx, "resume-1-reconnecting")
	const during = "Written while Alice was away"
	run(t, gctx, "the guest writes meanwhile", chromedp.SendKeys(chromedp.CSS("#chat-input"), during), chromedp.Click(chromedp.CSS("#chat-send")))
	if calls := u.CallBridge.Meetings.Calls(); len(calls) != 1 || calls[0].Legs != 2 {
		t.Errorf("while Alice's socket is down: calls = %+v, want one call with both participants", calls)
	}

	// The network is back.
	px.cut(false)
	run(t, actx, "the session resumes", chromedp.WaitNotVisible(chromedp.CSS("#connection")))
	if _, err := chromedp.Run(actx, chromedp.Poll[bool](`[...document.querySelectorAll('#chat-log .chat-body')].some(e => e.textContent === `+"`"+during+"`"+`)`)); err != nil {
		t.Fatalf("Alice reads what was written meanwhile: %v", err)
	}
	// Each message exactly once: the one written meanwhile was kept for her, and nothing she
	// had already received before the cut came again (the count of stanzas she handled, as
	// her client reported it on resuming, was right).
	for _, body := range []string{before, during} {
		n, err := chromedp.Run(actx, chromedp.Evaluate[int](`[...document.querySelectorAll('#chat-log .chat-body')].filter(e => e.textContent === `+"`"+body+"`"+`).length`))
		if err != nil || n != 1 {
			t.Errorf("Alice's chat shows %q %d times (%v); want once", body, n, err)
		}
	}
	lines, err := chromedp.Run(actx, chromedp.Evaluate[int](`document.querySelectorAll('#chat-log li').length`))
	if err != nil || lines != 3 {
		t.Errorf("Alice's chat has %d lines (%v); want 3: the guest joined, and the two messages", lines, err)
	}
	if st, _ := browsertest.WaitState(actx, "in-meeting"); st != "in-meeting" {
		t.Errorf("Alice's page is in state %q after resuming, want in-meeting", st)
	}
	if calls := u.CallBridge.Meetings.Calls(); len(calls) != 1 || calls[0].Legs != 2 {
		t.Errorf("after resuming: calls = %+v, want one call with both participants", calls)
	}
	run(t, actx, "Alice answers", chromedp.SendKeys(chromedp.CSS("#chat-input"), "Back again."), chromedp.Click(chromedp.CSS("#chat-send")))
	run(t, gctx, "the guest reads it", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-from="Alice Example"]`)))
	alice.Screenshot(t, actx, "resume-2-resumed")
	if px.accepted() < 2 {
		t.Errorf("the proxy accepted %d connections; want the first and at least one reconnection", px.accepted())
	}
}

// cutProxy relays TCP connections to a target; cut(true) closes every open relay and holds
// new connections until cut(false), as a network that goes away and comes back would.
type cutProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	down    bool
	resume  chan struct{} // closed when the network comes back
	open    map[net.Conn]struct{}
	count   int
	stopped bool
	wg      sync.WaitGroup
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, open: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	close(p.resume)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if down == p.down {
		return
	}
	p.down = down
	if down {
		p.resume = make(chan struct{})
		for c := range p.open {
			c.Close()
		}
		return
	}
	close(p.resume)
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.count++
		resume := p.resume
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			<-resume // a connection made while the network is down waits for it
			p.relay(c)
		}()
	}
}

func (p *cutProxy) relay(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.open[c] = struct{}{}
	p.open[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.open, c)
	delete(p.open, up)
	p.mu.Unlock()
}

func (p *cutProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	p.stopped = true
	for c := range p.open {
		c.Close()
	}
	if p.down {
		p.down = false
		close(p.resume)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestBrowserGuestResume: a guest's one-time password is spent at login, so resuming its
// session after a lost socket needs another: the app asks for one with its rejoin credential
// (the same account, a new one-time password) and resumes. The guest never left the meeting:
// its call leg is the same, and what was written meanwhile arrives once.
func TestBrowserGuestResume(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	u := startUp(t, t.TempDir())
	createUser(t, u, "alice", "Alice Example", "correct horse battery")
	leaf := serverLeaf(t, u)
	direct := "https://localhost:" + port(u.CallBridge.Addrs.Web)
	px := startCutProxy(t, u.CallBridge.Addrs.Web)
	proxied := "https://localhost:" + port(px.addr())

	alice := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}})
	guest := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}})
	actx := alice.Context(t, 120*time.Second)
	gctx := guest.Context(t, 120*time.Second)

	signIn(t, actx, direct, "alice", "correct horse battery")
	spaceSel := `#spaces-list button[data-space-jid^="` + u.Demo.ID + `@"]`
	run(t, actx, "join the demo space", chromedp.WaitVisible(chromedp.CSS(spaceSel)), chromedp.Click(chromedp.CSS(spaceSel)))
	joinNow(t, actx)
	guestJoins(t, gctx, proxied, u, "Ada Guest")
	run(t, actx, "Alice sees the guest", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-name="Ada Guest"]`)))
	legID := func() string {
		for _, l := range u.CallBridge.Meetings.CallLegs() {
			if l.Type == "guest" {
				return l.ID + " " + l.RemoteParty
			}
		}
		return ""
	}
	before := legID()

	px.cut(true)
	run(t, gctx, "the guest's page says it is reconnecting", chromedp.WaitVisible(chromedp.CSS("#connection")))
	const during = "Written while the guest was away"
	run(t, actx, "Alice writes meanwhile", chromedp.SendKeys(chromedp.CSS("#chat-input"), during), chromedp.Click(chromedp.CSS("#chat-send")))
	px.cut(false)
	run(t, gctx, "the session resumes", chromedp.WaitNotVisible(chromedp.CSS("#connection")))
	if _, err := chromedp.Run(gctx, chromedp.Poll[bool](`[...document.querySelectorAll('#chat-log .chat-body')].filter(e => e.textContent === `+"`"+during+"`"+`).length === 1`)); err != nil {
		t.Fatalf("the guest reads what was written meanwhile, once: %v", err)
	}
	if after := legID(); after != before || before == "" {
		t.Errorf("the guest's call leg and account went from %q to %q; want the same (resumed, not rejoined)", before, after)
	}
	if st, _ := browsertest.WaitState(gctx, "in-meeting"); st != "in-meeting" {
		t.Errorf("the guest's page is in state %q, want in-meeting", st)
	}
	guest.Screenshot(t, gctx, "guest-resumed")
}
