package launch

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/web/browsertest"
)

// TestBrowserMeeting is the newcomer's first day, in two real browsers against `confab up`:
// a user signs in and joins the demo space, a guest joins it with its call ID and passcode,
// each sees the other, they chat, and a wrong passcode is refused in words.
func TestBrowserMeeting(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	u := startUp(t, t.TempDir())
	createUser(t, u, "alice", "Alice Example", "correct horse battery")
	leaf := serverLeaf(t, u)
	app := "https://localhost:" + port(u.CallBridge.Addrs.Web)

	alice := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}})
	guest := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}})
	actx := alice.Context(t, 90*time.Second)
	gctx := guest.Context(t, 90*time.Second)

	// Alice signs in and joins the demo space from her list.
	signIn(t, actx, app, "alice", "correct horse battery")
	spaceSel := `#spaces-list button[data-space-jid^="` + u.Demo.ID + `@"]`
	run(t, actx, "the demo space is listed", chromedp.WaitVisible(chromedp.CSS(spaceSel)))
	alice.Screenshot(t, actx, "1-alice-signed-in")
	run(t, actx, "join the demo space", chromedp.Click(chromedp.CSS(spaceSel)))
	joinNow(t, actx)

	// A wrong passcode is refused with its message.
	run(t, gctx, "open the join page", chromedp.Navigate(app+"/join"), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	wait(t, gctx, "ready")
	run(t, gctx, "join with a wrong passcode",
		chromedp.SendKeys(chromedp.CSS("#join-callid"), u.Demo.CallID),
		chromedp.SendKeys(chromedp.CSS("#join-passcode"), "000000"),
		chromedp.SendKeys(chromedp.CSS("#join-name"), "Ada Guest"),
		chromedp.Click(chromedp.CSS("#join-submit")))
	run(t, gctx, "the refusal is shown", chromedp.WaitVisible(chromedp.CSS("#join-error")))
	if got := text(t, gctx, "#join-error"); got != "Invalid call ID or passcode" {
		t.Errorf("wrong passcode: page says %q, want %q", got, "Invalid call ID or passcode")
	}
	guest.Screenshot(t, gctx, "2-guest-wrong-passcode")

	// The guest joins with the right passcode.
	run(t, gctx, "retype the passcode",
		clear("join-passcode"),
		chromedp.SendKeys(chromedp.CSS("#join-passcode"), u.DemoPasscode),
		chromedp.Click(chromedp.CSS("#join-submit")))
	joinNow(t, gctx)

	// Each sees the other.
	run(t, actx, "Alice sees the guest", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-name="Ada Guest"]`)))
	run(t, gctx, "the guest sees Alice", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-name="Alice Example"]`)))
	if calls := u.CallBridge.Meetings.Calls(); len(calls) != 1 || calls[0].Legs != 2 {
		t.Errorf("calls = %+v, want one call with two participants", calls)
	}

	// They chat.
	run(t, gctx, "the guest writes", chromedp.SendKeys(chromedp.CSS("#chat-input"), "Hello Alice, can you hear me?"), chromedp.Click(chromedp.CSS("#chat-send")))
	run(t, actx, "Alice reads it", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-from="Ada Guest"]`)))
	if got := text(t, actx, `#chat-log li[data-from="Ada Guest"] .chat-body`); got != "Hello Alice, can you hear me?" {
		t.Errorf("Alice reads %q", got)
	}
	run(t, actx, "Alice answers", chromedp.SendKeys(chromedp.CSS("#chat-input"), "Loud and clear."), chromedp.Click(chromedp.CSS("#chat-send")))
	run(t, gctx, "the guest reads it", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-from="Alice Example"]`)))
	alice.Screenshot(t, actx, "3-alice-in-meeting")
	guest.Screenshot(t, gctx, "4-guest-in-meeting")

	// The guest leaves: Alice sees it, the guest account is gone, the call goes on with one.
	run(t, gctx, "the guest leaves", chromedp.Click(chromedp.CSS("#leave")))
	wait(t, gctx, "left")
	run(t, actx, "Alice sees the guest leave", chromedp.WaitNotPresent(chromedp.CSS(`#participants li[data-name="Ada Guest"]`)))
	deadline := time.Now().Add(10 * time.Second)
	for u.CallBridge.Meetings.Guests() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling the guest table, not synchronising with it
	}
	if n := u.CallBridge.Meetings.Guests(); n != 0 {
		t.Errorf("%d guest accounts left after the guest left", n)
	}
	// The last one out ends the call.
	run(t, actx, "Alice leaves", chromedp.Click(chromedp.CSS("#leave")))
	wait(t, actx, "signed-in") // a signed-in user goes back to her spaces
	deadline = time.Now().Add(10 * time.Second)
	for len(u.CallBridge.Meetings.Calls()) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if calls := u.CallBridge.Meetings.Calls(); len(calls) != 0 {
		t.Errorf("calls after everyone left: %+v", calls)
	}
}

// signIn opens the web app at app in ctx's tab and signs in.
func signIn(t *testing.T, ctx context.Context, app, user, password string) {
	t.Helper()
	run(t, ctx, "open the sign-in page", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	wait(t, ctx, "ready")
	run(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS("#signin-username"), user),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), password),
		chromedp.Click(chromedp.CSS("#signin-submit")))
	wait(t, ctx, "signed-in")
}

// joinNow passes the pre-join screen with its main button ("Join now", or "Join without
// camera and microphone" in a browser without devices) and waits to be in the meeting.
func joinNow(t *testing.T, ctx context.Context) {
	t.Helper()
	wait(t, ctx, "prejoin")
	// Click once the screen is laid out: the devices' answer moves the button.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.prejoin === "ready"`)); err != nil {
		t.Fatalf("the pre-join screen: %v", err)
	}
	run(t, ctx, "join now", chromedp.Click(chromedp.CSS("#prejoin-join")))
	wait(t, ctx, "in-meeting")
}

func serverLeaf(t *testing.T, u *Up) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(u.Local.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	start := time.Now()
	err := chromedp.Do(ctx, steps...)
	if d := time.Since(start); d > 10*time.Second {
		t.Logf("%s: slow, %s", what, d.Round(time.Millisecond)) // so a timeout in CI says where the time went
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wait(t *testing.T, ctx context.Context, states ...string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := browsertest.WaitState(wctx, states...); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// clear empties the input with this id.
func clear(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](`document.getElementById("`+id+`").value = ""; undefined`)(ctx, tg)
		return err
	})
}

// TestBrowserAdminSignalFlow: the administrator signs in to the web admin, breaks the XMPP
// settings on Configuration > General, and watches the signal flow on the Status page (in
// another tab, without reloading) show the link go down with the failing step and the
// alarm, then come back when the setting is restored.
func TestBrowserAdminSignalFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	u := startUp(t, t.TempDir())
	leaf := serverLeaf(t, u)
	admin := "https://localhost:" + port(u.CallBridge.Addrs.API)
	b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}, Height: 1100})
	status := b.Context(t, 90*time.Second)

	run(t, status, "sign in to the web admin",
		chromedp.Navigate(admin+"/admin/"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), u.AdminUser),
		chromedp.SendKeys(chromedp.CSS("#login-password"), u.AdminPassword),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#admin-user")))
	run(t, status, "open Status", chromedp.Navigate(admin+"/admin/status"), chromedp.WaitVisible(chromedp.CSS("#signal-flow")))
	run(t, status, "the link is registered", chromedp.WaitVisible(chromedp.CSS(`body[data-link-state="registered"]`)))
	run(t, status, "step 10 is green", chromedp.WaitVisible(chromedp.CSS(`#step-10[data-outcome="ok"]`)))
	b.Screenshot(t, status, "admin-1-registered")

	// Another tab: point the Call Bridge at a port where no XMPP server listens.
	cfg := b.NewTab(t, 60*time.Second)
	orig := u.CallBridge.Link.Config().ServerAddressOverride
	run(t, cfg, "open Configuration > General", chromedp.Navigate(admin+"/admin/configuration/general"), chromedp.WaitVisible(chromedp.CSS("#xmpp-form")))
	run(t, cfg, "break the server address", clear("serverAddressOverride"),
		chromedp.SendKeys(chromedp.CSS("#serverAddressOverride"), "localhost:1"),
		chromedp.Click(chromedp.CSS("#xmpp-save")),
		chromedp.WaitVisible(chromedp.CSS("#saved")))

	run(t, status, "the link goes down", chromedp.WaitNotPresent(chromedp.CSS(`body[data-link-state="registered"]`)))
	run(t, status, "step 6 (TCP) fails", chromedp.WaitVisible(chromedp.CSS(`#step-6[data-outcome="failed"]`)))
	run(t, status, "the alarm shows", chromedp.WaitVisible(chromedp.CSS(`#alarms tr[data-reason="connectFailure"]`)))
	b.Screenshot(t, status, "admin-2-connect-failure")
	if a := u.CallBridge.Link.Alarms(); len(a) != 1 || a[0].FailureReason != "connectFailure" {
		t.Errorf("alarms = %+v, want one connectFailure", a)
	}

	run(t, cfg, "restore the server address", clear("serverAddressOverride"),
		chromedp.SendKeys(chromedp.CSS("#serverAddressOverride"), orig),
		chromedp.Click(chromedp.CSS("#xmpp-save")),
		chromedp.WaitVisible(chromedp.CSS("#saved")))
	run(t, status, "the link comes back", chromedp.WaitVisible(chromedp.CSS(`body[data-link-state="registered"]`)))
	run(t, status, "the alarm clears", chromedp.WaitVisible(chromedp.CSS("#no-alarms")))
	b.Screenshot(t, status, "admin-3-back")
}
