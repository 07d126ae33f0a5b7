package launch

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/web/browsertest"
)

// restartable is a `confab up` that a test stops and starts again on the same data directory
// and ports, as an operator restarts the service; only the running one is stopped when the
// test ends.
type restartable struct {
	dir           string
	u             *Up
	adminPassword string
	log           *slog.Logger
	running       bool
}

func startRestartable(t *testing.T, dir string) *restartable {
	t.Helper()
	r := &restartable{dir: dir, log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	u, err := StartUp(context.Background(), UpOptions{
		DataDir: dir,
		C2S:     "127.0.0.1:0", Component: "127.0.0.1:0", Web: "127.0.0.1:0", API: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Media: "127.0.0.1:0",
	}, r.log)
	if err != nil {
		t.Fatalf("StartUp: %v", err)
	}
	r.u, r.adminPassword, r.running = u, u.AdminPassword, true
	t.Cleanup(func() {
		if r.running {
			r.stop(t)
		}
	})
	waitRegistered(t, u)
	return r
}

// stop shuts everything down, as `confab up` does on SIGTERM.
func (r *restartable) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.u.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	r.running = false
}

// start runs `confab up` again on the same data directory and the same ports.
func (r *restartable) start(t *testing.T) {
	t.Helper()
	old := r.u
	o := UpOptions{
		DataDir: r.dir,
		C2S:     old.XMPP.Addrs.C2S, Component: old.XMPP.Addrs.Component, Admin: old.XMPP.Addrs.Admin,
		Web: old.CallBridge.Addrs.Web, API: old.CallBridge.Addrs.API, Media: "127.0.0.1:0",
	}
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.u, err = StartUp(context.Background(), o, r.log)
		if err == nil || time.Now().After(deadline) {
			break
		}
		t.Logf("StartUp again: %v; retrying", err) // a port not yet free
		time.Sleep(200 * time.Millisecond)         // bounded retry of a bind, not synchronisation
	}
	if err != nil {
		t.Fatalf("StartUp again: %v", err)
	}
	r.running = true
	waitRegistered(t, r.u)
}

// restartCallBridge stops the Call Bridge alone and starts a new one on the same store and
// ports, the XMPP server staying up (as `confab callbridge` restarts beside `confab xmpp`).
func (r *restartable) restartCallBridge(t *testing.T) {
	t.Helper()
	u := r.u
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	api, web := u.CallBridge.Addrs.API, u.CallBridge.Addrs.Web
	if err := u.CallBridge.Shutdown(ctx); err != nil {
		t.Errorf("Call Bridge shutdown: %v", err)
	}
	ca, err := certs.LoadCA(u.Local.CAFile, u.Local.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var cc config.CallBridge
	cc.DataDir = r.dir
	cc.Listen.API, cc.Listen.Web = api, web
	cc.Media.UDP = "127.0.0.1:0"
	cc.TLS.Cert, cc.TLS.Key = u.Local.CertFile, u.Local.KeyFile
	u.CallBridge, err = StartCallBridge(context.Background(), cc, r.log, CallBridgeOptions{
		WebSocket: u.XMPP.Server.WebSocketHandler(),
		Trust:     &LinkTrust{RootCAs: ca.Pool()},
	})
	if err != nil {
		t.Fatalf("start the Call Bridge again: %v", err)
	}
	waitRegistered(t, u)
}

// setOverride changes the Call Bridge's serverAddressOverride through the REST API, as an
// operator does: its link to the XMPP server drops and is made again with the new value.
func (r *restartable) setOverride(t *testing.T, override string) {
	t.Helper()
	c := caClient(t, r.u)
	req, _ := http.NewRequest("PUT", "https://"+r.u.CallBridge.Addrs.API+"/api/v1/system/configuration/xmpp",
		strings.NewReader(url.Values{"serverAddressOverride": {override}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(r.u.AdminUser, r.adminPassword)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT serverAddressOverride=%s: %d", override, resp.StatusCode)
	}
}

// waitFor waits up to d for the page's state to be one of states (an "error" state fails).
func waitFor(t *testing.T, ctx context.Context, d time.Duration, states ...string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if _, err := browsertest.WaitState(wctx, states...); err != nil {
		t.Fatal(err)
	}
}

// poll waits up to d for a JavaScript condition of the page.
func poll(t *testing.T, ctx context.Context, d time.Duration, what, js string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitCalls waits until the Call Bridge has one call with legs participants.
func waitCalls(t *testing.T, r *restartable, legs int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		calls := r.u.CallBridge.Meetings.Calls()
		if len(calls) == 1 && calls[0].Legs == legs {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls = %+v, want one call with %d participants", calls, legs)
		}
		time.Sleep(50 * time.Millisecond) // polling the Call Bridge's state
	}
}

const (
	interrupted = "The meeting was interrupted; reconnecting…"
	ended       = "The meeting was ended by the organiser"
)

// guestJoins opens the join page, joins the demo space as name and passes the pre-join
// screen.
func guestJoins(t *testing.T, ctx context.Context, app string, u *Up, name string) {
	t.Helper()
	run(t, ctx, "open the join page", chromedp.Navigate(app+"/join"), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	wait(t, ctx, "ready")
	run(t, ctx, "join as a guest",
		chromedp.SendKeys(chromedp.CSS("#join-callid"), u.Demo.CallID),
		chromedp.SendKeys(chromedp.CSS("#join-passcode"), u.DemoPasscode),
		chromedp.SendKeys(chromedp.CSS("#join-name"), name),
		chromedp.Click(chromedp.CSS("#join-submit")))
	joinNow(t, ctx)
}

// TestBrowserMeetingSurvives: a user and a guest in a meeting, and an administrator in the
// web admin, go through the Call Bridge's link dropping and coming back, the administrator
// ending the call, a restart of `confab up`, and the administrator removing the guest. At each
// step each of them reads what happened, and is back without typing anything again.
func TestBrowserMeetingSurvives(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	r := startRestartable(t, t.TempDir())
	u := r.u
	createUser(t, u, "alice", "Alice Example", "correct horse battery")
	leaf := serverLeaf(t, u)
	app := "https://localhost:" + port(u.CallBridge.Addrs.Web)
	adminURL := "https://localhost:" + port(u.CallBridge.Addrs.API)
	opts := browsertest.Options{TrustCerts: []*x509.Certificate{leaf}}
	alice := browsertest.Start(t, opts)
	guest := browsertest.Start(t, opts)
	admin := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{leaf}, Height: 1000})
	actx := alice.Context(t, 6*time.Minute)
	gctx := guest.Context(t, 6*time.Minute)
	mctx := admin.Context(t, 6*time.Minute)
	people := []struct {
		name string
		b    *browsertest.Browser
		ctx  context.Context
	}{{"alice", alice, actx}, {"guest", guest, gctx}}
	shots := func(step string) {
		for _, p := range people {
			p.b.Screenshot(t, p.ctx, step+"-"+p.name)
		}
	}

	// Everyone in: Alice from her spaces, the guest with the call ID and passcode, the
	// administrator on the calls page.
	signIn(t, actx, app, "alice", "correct horse battery")
	spaceSel := `#spaces-list button[data-space-jid^="` + u.Demo.ID + `@"]`
	run(t, actx, "join the demo space", chromedp.WaitVisible(chromedp.CSS(spaceSel)), chromedp.Click(chromedp.CSS(spaceSel)))
	joinNow(t, actx)
	guestJoins(t, gctx, app, u, "Ada Guest")
	run(t, actx, "Alice sees the guest", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-name="Ada Guest"]`)))
	run(t, mctx, "the administrator signs in",
		chromedp.Navigate(adminURL+"/admin/calls"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), u.AdminUser),
		chromedp.SendKeys(chromedp.CSS("#login-password"), r.adminPassword),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#calls")))
	poll(t, mctx, 20*time.Second, "two participants on the calls page", `document.querySelectorAll("#calls tr[data-participant-id]").length === 2`)
	shots("1-in")
	admin.Screenshot(t, mctx, "1-in-admin-calls")

	// 1. The link to the XMPP server drops (an operator points it elsewhere): the Call Bridge
	// forgets the meeting, and both pages say so within their check's interval.
	r.setOverride(t, "localhost:1")
	for _, p := range people {
		poll(t, p.ctx, 45*time.Second, p.name+" reads that the meeting was interrupted",
			`document.body.dataset.connection === "rejoining" && document.getElementById("connection-text").textContent === `+fmt.Sprintf("%q", interrupted))
	}
	if calls := u.CallBridge.Meetings.Calls(); len(calls) != 0 {
		t.Errorf("with the link down, calls = %+v; want none", calls)
	}
	shots("2-link-down")
	run(t, mctx, "the administrator's status page", chromedp.Navigate(adminURL+"/admin/status"), chromedp.WaitVisible(chromedp.CSS("#signal-flow")))
	poll(t, mctx, 20*time.Second, "the link is shown down", `document.body.dataset.linkState !== "registered"`)
	admin.Screenshot(t, mctx, "2-link-down-admin")

	// The link comes back: both are back in the meeting by themselves.
	r.setOverride(t, "localhost:"+port(u.XMPP.Addrs.Component))
	for _, p := range people {
		poll(t, p.ctx, 60*time.Second, p.name+" is back in the meeting",
			`document.body.dataset.state === "in-meeting" && document.getElementById("connection").hidden`)
	}
	waitCalls(t, r, 2)
	run(t, gctx, "the guest writes", chromedp.SendKeys(chromedp.CSS("#chat-input"), "Still here?"), chromedp.Click(chromedp.CSS("#chat-send")))
	run(t, actx, "Alice reads it", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-from="Ada Guest"]`)))
	poll(t, gctx, 10*time.Second, "the guest's message is sent", `document.querySelector('#chat-log li[data-self="true"]').dataset.status === "sent"`)
	shots("3-link-back")

	// 2. The administrator ends the call: both read who ended it, and join again without
	// typing (the guest with its rejoin credential).
	run(t, mctx, "end the call", chromedp.Navigate(adminURL+"/admin/calls"),
		chromedp.Click(chromedp.CSS("a.end-call")), chromedp.WaitVisible(chromedp.CSS("#confirm-end")),
		chromedp.Click(chromedp.CSS("#confirm-end")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	for _, p := range people {
		waitFor(t, p.ctx, 20*time.Second, "ended")
		if got := text(t, p.ctx, "#left-message"); got != ended {
			t.Errorf("%s reads %q, want %q", p.name, got, ended)
		}
	}
	if got, _ := chromedp.Run(gctx, chromedp.Evaluate[string](`document.getElementById("whoami").hidden + ":" + document.getElementById("whoami").textContent`)); got != "true:" {
		t.Errorf("the guest's header after the end: %q, want no guest shown", got)
	}
	shots("4-ended")
	admin.Screenshot(t, mctx, "4-ended-admin")
	for _, p := range people {
		run(t, p.ctx, p.name+" joins again", chromedp.Click(chromedp.CSS("#join-again")))
		joinNow(t, p.ctx)
	}
	waitCalls(t, r, 2)

	// 3. `confab up` restarts: both read that they are being reconnected, and are back in
	// the meeting by themselves; the administrator is still signed in.
	r.stop(t)
	for _, p := range people {
		poll(t, p.ctx, 30*time.Second, p.name+" reads that the connection was interrupted",
			`!document.getElementById("connection").hidden && document.body.dataset.connection !== ""`)
	}
	shots("5-restarting")
	r.start(t)
	u = r.u
	for _, p := range people {
		poll(t, p.ctx, 90*time.Second, p.name+" is back in the meeting after the restart",
			`document.body.dataset.state === "in-meeting" && document.getElementById("connection").hidden`)
	}
	waitCalls(t, r, 2)
	shots("6-restarted")
	run(t, mctx, "the administrator, still signed in, sees the call", chromedp.Navigate(adminURL+"/admin/calls"), chromedp.WaitReady(chromedp.CSS("body")))
	poll(t, mctx, 20*time.Second, "two participants on the calls page, no sign-in", `!document.getElementById("login-form") && document.querySelectorAll("#calls tr[data-participant-id]").length === 2`)
	admin.Screenshot(t, mctx, "6-restarted-admin")

	// 4. The administrator removes the guest: the guest reads so, and is not offered to join
	// again by itself; Alice sees the guest leave.
	legs, _ := u.CallBridge.Meetings.Participants(u.CallBridge.Meetings.Calls()[0].ID)
	guestLeg := ""
	for _, l := range legs {
		if l.Type == "guest" {
			guestLeg = l.ID
		}
	}
	run(t, mctx, "remove the guest",
		chromedp.Click(chromedp.CSS(`tr[data-participant-id="`+guestLeg+`"] a.remove-participant`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-remove")),
		chromedp.Click(chromedp.CSS("#confirm-remove")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	waitFor(t, gctx, 20*time.Second, "ended")
	if got := text(t, gctx, "#left-message"); got != "You were removed from the meeting" {
		t.Errorf("the removed guest reads %q", got)
	}
	if again, _ := chromedp.Run(gctx, chromedp.Evaluate[bool](`!document.getElementById("join-again").hidden`)); again {
		t.Error("a removed guest is offered to join again by itself")
	}
	run(t, actx, "Alice sees the guest leave", chromedp.WaitNotPresent(chromedp.CSS(`#participants li[data-name="Ada Guest"]`)))
	guest.Screenshot(t, gctx, "7-removed-guest")
}

// TestBrowserCallBridgeRestart: the Call Bridge alone restarts on the same store and ports,
// the XMPP server staying up (the browsers' sessions with it go on). The new Call Bridge
// knows neither the meeting nor the guest's account: the user joins again; the guest gets a
// new account with its rejoin credential, signed with the key in the store, and joins again.
func TestBrowserCallBridgeRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	r := startRestartable(t, t.TempDir())
	u := r.u
	createUser(t, u, "alice", "Alice Example", "correct horse battery")
	leaf := serverLeaf(t, u)
	app := "https://localhost:" + port(u.CallBridge.Addrs.Web)
	opts := browsertest.Options{TrustCerts: []*x509.Certificate{leaf}}
	alice := browsertest.Start(t, opts)
	guest := browsertest.Start(t, opts)
	actx := alice.Context(t, 4*time.Minute)
	gctx := guest.Context(t, 4*time.Minute)

	signIn(t, actx, app, "alice", "correct horse battery")
	spaceSel := `#spaces-list button[data-space-jid^="` + u.Demo.ID + `@"]`
	run(t, actx, "join the demo space", chromedp.WaitVisible(chromedp.CSS(spaceSel)), chromedp.Click(chromedp.CSS(spaceSel)))
	joinNow(t, actx)
	guestJoins(t, gctx, app, u, "Ada Guest")
	waitCalls(t, r, 2)
	firstGuest := ""
	if legs, ok := u.CallBridge.Meetings.Participants(u.CallBridge.Meetings.Calls()[0].ID); ok {
		for _, l := range legs {
			if l.Type == "guest" {
				firstGuest = l.RemoteParty
			}
		}
	}

	r.restartCallBridge(t)
	for _, ctx := range []context.Context{actx, gctx} {
		poll(t, ctx, 90*time.Second, "back in the meeting with the new Call Bridge",
			`document.body.dataset.state === "in-meeting" && document.getElementById("connection").hidden && document.querySelectorAll("#participants li").length === 2`)
	}
	waitCalls(t, r, 2)
	legs, _ := r.u.CallBridge.Meetings.Participants(r.u.CallBridge.Meetings.Calls()[0].ID)
	for _, l := range legs {
		if l.Type == "guest" && (l.RemoteParty == firstGuest || l.Name != "Ada Guest") {
			t.Errorf("the guest came back as %s (%s), want a new account named Ada Guest", l.RemoteParty, l.Name)
		}
	}
	alice.Screenshot(t, actx, "callbridge-restarted-alice")
	guest.Screenshot(t, gctx, "callbridge-restarted-guest")
}
