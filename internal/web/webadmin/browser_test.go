package webadmin_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/web/browsertest"
	"confab.dev/confab/internal/web/webadmin"
)

// browserEnv is the web admin on HTTPS (real clock) with a fake backend, and a Chromium
// that trusts the server's certificate.
type browserEnv struct {
	b       *fakeBackend
	url     string
	browser *browsertest.Browser
	srv     *httptest.Server
}

func startBrowserEnv(t *testing.T, b *fakeBackend) *browserEnv {
	t.Helper()
	return startBrowserEnvSize(t, b, 1280, 1000)
}

func startBrowserEnvSize(t *testing.T, b *fakeBackend, width, height int) *browserEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	mux.Handle(webadmin.Prefix, webadmin.New(webadmin.Options{Backend: b, Logger: log}))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return &browserEnv{
		b:       b,
		url:     srv.URL,
		srv:     srv,
		browser: browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{srv.Certificate()}, Width: width, Height: height}),
	}
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (e *browserEnv) signIn(t *testing.T, ctx context.Context, next string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(e.url+next),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "correct horse"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#admin-user")),
	)
}

// waitFor polls a JavaScript condition in the page until it is true.
func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js)); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, js, err)
	}
}

func stepOutcomes(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `Array.from(document.querySelectorAll("#signal-flow g.step")).map(g => g.dataset.outcome[0]).join("")`)
}

// TestSignalFlowPage draws the ladder for a link whose latest attempt failed on the
// certificate's SANs, after an earlier attempt had registered.
func TestSignalFlowPage(t *testing.T) {
	b := newFakeBackend()
	now := time.Now()
	b.recordAttempt(1, now.Add(-10*time.Minute), true, 0)
	b.trace.Add(linkstate.Event{Attempt: 1, Step: linkstate.StepLogin, Start: now.Add(-9 * time.Minute), Duration: 3 * time.Millisecond, Outcome: linkstate.OK, Target: "alice@example.com", Detail: "login of alice@example.com relayed over the link: accepted"})
	b.recordAttempt(2, now.Add(-30*time.Second), true, linkstate.StepSAN)
	b.setStatus(linkstate.Status{State: linkstate.Backoff, ComponentJID: "cb1.example.com", Server: "xmpp.example.com:5223", Address: "192.0.2.10:5223",
		Since: now.Add(-30 * time.Second), Attempt: 2, NextAttempt: now.Add(20 * time.Second), LastError: "the XMPP server's certificate does not name xmpp.example.com"})
	b.setAlarms([]linkstate.Alarm{{ID: "1", Type: "xmppRegistrationFailure", FailureReason: linkstate.ReasonConnect, TLSCause: "missing-san",
		Detail: "the XMPP server's certificate does not name xmpp.example.com", ActiveSince: now.Add(-30 * time.Second)}})
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 60*time.Second)
	e.signIn(t, ctx, "/admin/status")
	if _, err := browsertest.WaitState(ctx, "live"); err != nil {
		t.Fatalf("status page never went live: %v", err)
	}
	if got, want := stepOutcomes(t, ctx), "fosoooofnnnn"; got != want {
		t.Errorf("step outcomes %s, want %s", got, want)
	}
	// The diagram is drawn: twelve arrows, four lanes, each arrow inside the picture.
	geo := eval[struct {
		Lanes, Arrows int
		Inside        bool
		Lane          []string
	}](t, ctx, `(() => {
		const svg = document.getElementById("signal-flow");
		const box = svg.getBoundingClientRect();
		const arrows = Array.from(svg.querySelectorAll("g.step .arrow"));
		return {
			lanes: svg.querySelectorAll("g.lane").length,
			arrows: arrows.filter(a => a.getBBox().width > 0).length,
			inside: arrows.every(a => { const r = a.getBoundingClientRect(); return r.left >= box.left && r.right <= box.right && r.height >= 0; }),
			lane: Array.from(svg.querySelectorAll(".lane-name")).map(n => n.textContent),
		};
	})()`)
	if geo.Lanes != 4 || geo.Arrows != 12 || !geo.Inside {
		t.Errorf("diagram: %d lanes, %d drawn arrows, inside %v; want 4, 12, true", geo.Lanes, geo.Arrows, geo.Inside)
	}
	if strings.Join(geo.Lane, ",") != "Web client,XMPP server,Call Bridge,DNS" {
		t.Errorf("lanes %v", geo.Lane)
	}
	stroke := eval[string](t, ctx, `getComputedStyle(document.querySelector("#step-8 .arrow")).stroke`)
	if !strings.Contains(stroke, "192") { // --failed: rgb(192, 38, 45)
		t.Errorf("failed step drawn in %s, want red", stroke)
	}
	failures := eval[string](t, ctx, `document.getElementById("failures").innerText`)
	if !strings.Contains(failures, "reissue the XMPP server's certificate") || !strings.Contains(failures, "missing-san") {
		t.Errorf("failure panel %q lacks the cause and remedy", failures)
	}
	if got := eval[string](t, ctx, `document.querySelector("#alarms tr[data-testid=alarm]").dataset.reason`); got != "connectFailure" {
		t.Errorf("alarm reason %q, want connectFailure", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("link-state").textContent`); got != "Waiting to retry" {
		t.Errorf("link state %q", got)
	}
	e.browser.Screenshot(t, ctx, "signal-flow-san-failure")
	e.browser.ScreenshotElement(t, ctx, "signal-flow-diagram", "#signal-flow")
}

// TestConfigLive changes the XMPP settings in the form and watches, in another tab and
// without a reload, the status page show the link go down and come back.
func TestConfigLive(t *testing.T) {
	b := newFakeBackend()
	b.calls = nil // no live call, so saving needs no second confirmation (TestBrowserSettingsWarning)
	now := time.Now()
	b.recordAttempt(1, now.Add(-time.Hour), false, 0)
	b.setStatus(linkstate.Status{State: linkstate.Registered, ComponentJID: "cb1.example.com", Server: "xmpp.example.com:5223", Address: "192.0.2.10:5223", Since: now.Add(-time.Hour), Attempt: 1})
	applied := make(chan struct{}, 1)
	b.onSet = func(b *fakeBackend) {
		// As the link does on Apply: close the registration, start attempt 2, fail.
		b.trace.Add(linkstate.Event{Attempt: 1, Step: linkstate.StepActive, Start: time.Now(), Outcome: linkstate.Skipped, Cause: "settings-changed", Detail: "settings changed: reconnecting"})
		b.recordAttempt(2, time.Now(), false, linkstate.StepConnect)
		b.setStatus(linkstate.Status{State: linkstate.Backoff, ComponentJID: "cb2.example.com", Server: "xmpp2.example.com:5223", Since: time.Now(), Attempt: 2, LastError: "connection refused"})
		b.setAlarms([]linkstate.Alarm{{ID: "2", Type: "xmppRegistrationFailure", FailureReason: linkstate.ReasonConnect, ActiveSince: time.Now()}})
		applied <- struct{}{}
	}
	e := startBrowserEnv(t, b)
	status := e.browser.Context(t, 90*time.Second)
	e.signIn(t, status, "/admin/status")
	if _, err := browsertest.WaitState(status, "live"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, status, "registered", `document.body.dataset.linkState === "registered"`)
	e.browser.Screenshot(t, status, "status-registered")
	run(t, status, "mark the page", chromedp.Evaluate[chromedp.Void](`window.confabMarker = 42; undefined`))

	form := e.browser.NewTab(t, 60*time.Second)
	run(t, form, "open the settings",
		chromedp.Navigate(e.url+"/admin/configuration/general"),
		chromedp.WaitVisible(chromedp.CSS("#xmpp-form")),
	)
	if got := eval[string](t, form, `document.getElementById("secret-state").textContent`); got != "set" {
		t.Errorf("secret state %q, want set", got)
	}
	if got := eval[string](t, form, `document.getElementById("sharedSecret").value`); got != "" {
		t.Errorf("the secret field holds %q, want empty", got)
	}
	e.browser.Screenshot(t, form, "config-before")
	run(t, form, "change the settings",
		clearInputs("uniqueName", "serverAddressOverride"),
		chromedp.SendKeys(chromedp.CSS("#uniqueName"), "cb2"),
		chromedp.SendKeys(chromedp.CSS("#serverAddressOverride"), "xmpp2.example.com"),
		chromedp.Click(chromedp.CSS("#xmpp-save")),
		chromedp.WaitVisible(chromedp.CSS("#saved")),
	)
	select {
	case <-applied:
	case <-time.After(10 * time.Second):
		t.Fatal("the settings were not applied")
	}
	calls := b.setCalls()
	if len(calls) != 1 || calls[0].uniqueName != "cb2" || calls[0].override != "xmpp2.example.com" || calls[0].domain != "example.com" || calls[0].secret != nil {
		t.Errorf("saved %+v, want cb2, example.com, xmpp2.example.com, secret kept", calls)
	}
	if got := eval[string](t, form, `document.getElementById("uniqueName").value`); got != "cb2" {
		t.Errorf("the form shows unique name %q after saving, want cb2", got)
	}
	e.browser.Screenshot(t, form, "config-saved")

	waitFor(t, status, "the link going down", `document.body.dataset.linkState === "backoff"`)
	waitFor(t, status, "step 6 red", `document.getElementById("step-6").dataset.outcome === "failed"`)
	if got := stepOutcomes(t, status); got != "foosofnnnnnn" {
		t.Errorf("step outcomes %s after the change, want foosofnnnnnn", got)
	}
	waitFor(t, status, "the alarm", `document.querySelectorAll("#alarms tr[data-testid=alarm]").length === 1`)
	e.browser.Screenshot(t, status, "status-down")

	// The link comes back.
	b.recordAttempt(3, time.Now(), false, 0)
	b.setStatus(linkstate.Status{State: linkstate.Registered, ComponentJID: "cb2.example.com", Server: "xmpp2.example.com:5223", Address: "192.0.2.20:5223", Since: time.Now(), Attempt: 3})
	b.setAlarms(nil)
	waitFor(t, status, "the link coming back", `document.body.dataset.linkState === "registered"`)
	waitFor(t, status, "all steps green", `document.getElementById("step-11").dataset.outcome === "ok" && document.getElementById("step-1").dataset.outcome === "ok"`)
	waitFor(t, status, "the alarm cleared", `!document.getElementById("no-alarms").hidden`)
	if got := eval[int](t, status, `window.confabMarker || 0`); got != 42 {
		t.Errorf("the status page was reloaded (marker %d); it must update in place", got)
	}
	if got := eval[string](t, status, `document.getElementById("link-server").textContent`); got != "xmpp2.example.com:5223" {
		t.Errorf("server %q, want xmpp2.example.com:5223", got)
	}
	e.browser.Screenshot(t, status, "status-back")
}

func clearInputs(ids ...string) chromedp.Action[chromedp.Void] {
	var js strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&js, "document.getElementById(%q).value = \"\";", id)
	}
	js.WriteString("undefined")
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		return chromedp.Evaluate[chromedp.Void](js.String())(ctx, tg)
	}
}

// TestListPagesInBrowser renders the users, spaces and calls pages and the sign-in error.
func TestListPagesInBrowser(t *testing.T) {
	e := startBrowserEnv(t, newFakeBackend())
	ctx := e.browser.Context(t, 60*time.Second)
	run(t, ctx, "wrong password",
		chromedp.Navigate(e.url+"/admin/"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "wrong"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := eval[string](t, ctx, `document.getElementById("login-error").textContent`); got != "Sign in failed" {
		t.Errorf("sign-in error %q", got)
	}
	e.browser.Screenshot(t, ctx, "login-failed")
	e.signIn(t, ctx, "/admin/calls")
	for _, p := range []struct{ path, sel string }{
		{"/admin/calls", `#calls section[data-call-id="c-1"] tr[data-participant-id="p2"]`},
		{"/admin/users", `#users tr[data-jid="alice@example.com"]`},
		{"/admin/spaces", `#spaces tr[data-space-id="9b2d5c30"]`},
	} {
		run(t, ctx, p.path, chromedp.Navigate(e.url+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		e.browser.Screenshot(t, ctx, strings.TrimPrefix(p.path, "/admin/"))
	}
}

// TestBrowserAPIPage: in Chromium, an administrator opens Configuration > API, finds the
// call leg profiles, creates one, creates a space that uses it, changes the space and deletes
// it, all through the real REST API.
func TestBrowserAPIPage(t *testing.T) {
	b := newFakeBackend()
	st := withAPI(t, b)
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 90*time.Second)
	e.signIn(t, ctx, "/admin/configuration/general")
	run(t, ctx, "open the API page",
		chromedp.Click(chromedp.CSS(`a[data-subnav="api"]`)),
		chromedp.WaitVisible(chromedp.CSS("#api-collections")),
		chromedp.SendKeys(chromedp.CSS("#api-search"), "leg prof"),
	)
	if n := eval[int](t, ctx, `Array.from(document.querySelectorAll("#api-collections li")).filter(li => !li.hidden).length`); n != 1 {
		t.Errorf("the search for \"leg prof\" leaves %d object types, want 1", n)
	}
	run(t, ctx, "create a call leg profile",
		chromedp.Click(chromedp.CSS(`a[data-path="/callLegProfiles"]`)),
		chromedp.WaitVisible(chromedp.CSS("#api-create")),
		chromedp.Click(chromedp.CSS("#api-create")),
		chromedp.WaitVisible(chromedp.CSS("#api-form")),
		chromedp.SendKeys(chromedp.CSS("#p-name"), "Hosts"),
		chromedp.SetValue(chromedp.CSS("#p-muteOthersAllowed"), "true"),
		chromedp.SetValue(chromedp.CSS("#p-defaultLayout"), "speakerOnly"),
		chromedp.Click(chromedp.CSS("#api-save")),
		chromedp.WaitVisible(chromedp.CSS("#api-notice")),
	)
	profiles, _, err := st.ListObjects(context.Background(), store.KindCallLegProfile, store.UsageAny, 0, 0)
	if err != nil || len(profiles) != 1 || profiles[0].Fields["muteOthersAllowed"] != "true" || profiles[0].Fields["name"] != "Hosts" {
		t.Fatalf("profiles after the form: %+v, %v", profiles, err)
	}
	profile := profiles[0].ID
	run(t, ctx, "list the profiles",
		chromedp.Navigate(e.url+"/admin/configuration/api?path=/callLegProfiles"),
		chromedp.WaitVisible(chromedp.CSS(`#api-list tbody tr[data-id="`+profile+`"]`)),
	)
	e.browser.Screenshot(t, ctx, "api-profiles")
	run(t, ctx, "create a space",
		chromedp.Navigate(e.url+"/admin/configuration/api?path=/coSpaces"),
		chromedp.WaitVisible(chromedp.CSS("#api-create")),
		chromedp.Click(chromedp.CSS("#api-create")),
		chromedp.WaitVisible(chromedp.CSS("#p-name")),
		chromedp.SendKeys(chromedp.CSS("#p-name"), "Town hall"),
		chromedp.SendKeys(chromedp.CSS("#p-uri"), "townhall"),
		chromedp.SendKeys(chromedp.CSS("#p-callLegProfile"), profile),
		chromedp.SetValue(chromedp.CSS("#p-nonMemberAccess"), "true"),
		chromedp.Click(chromedp.CSS("#api-save")),
		chromedp.WaitVisible(chromedp.CSS("#api-object")),
	)
	e.browser.Screenshot(t, ctx, "api-space")
	if got := eval[string](t, ctx, `document.querySelector('#api-object tr[data-field="callLegProfile"] td').textContent`); got != profile {
		t.Errorf("the space's callLegProfile field shows %q, want %s", got, profile)
	}
	run(t, ctx, "a refused change",
		chromedp.SetValue(chromedp.CSS("#p-defaultLayout"), "stacked"),
		chromedp.SetValue(chromedp.CSS("#p-callId"), "not digits"),
		chromedp.Click(chromedp.CSS("#api-save")),
		chromedp.WaitVisible(chromedp.CSS("#api-error")),
	)
	if msg := eval[string](t, ctx, `document.querySelector("#api-error").textContent`); !strings.Contains(msg, "callId") {
		t.Errorf("the refusal says %q, want it to name callId", msg)
	}
	e.browser.Screenshot(t, ctx, "api-refused")
	run(t, ctx, "delete the space",
		chromedp.Click(chromedp.CSS("#api-allow-delete")),
		chromedp.Click(chromedp.CSS("#api-delete")),
		chromedp.WaitVisible(chromedp.CSS("#api-list")),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll("#api-list tbody tr[data-id]").length`); n != 0 {
		t.Errorf("%d spaces listed after the delete", n)
	}
	e.browser.Screenshot(t, ctx, "api-list-after-delete")
}

// TestLadderInBrowser: the calls page's media ladders in Chromium, a ladder opened by the
// administrator staying open across the page's refreshes (which a changed ladder makes);
// and the TURN page.
func TestLadderInBrowser(t *testing.T) {
	b := newFakeBackend()
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 60*time.Second)
	e.signIn(t, ctx, "/admin/calls")
	run(t, ctx, "the calls page", chromedp.Navigate(e.url+"/admin/calls"), chromedp.WaitVisible(chromedp.CSS(`#ladder-p2`)))
	run(t, ctx, "open p2's ladder", chromedp.Click(chromedp.CSS(`#ladder-p2 summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#ladder-p2 tr[data-step="checks"]`)))
	// The ladder changes: the page is refreshed with it, and p2's stays open.
	b.mu.Lock()
	b.calls[0].Participants[1].Ladder.Steps[2].Detail = "2 host"
	b.mu.Unlock()
	waitFor(t, ctx, "the refreshed ladder", `!!document.querySelector('#ladder-p2[open]') && document.querySelector('.ladder-row[data-ladder-for="p2"]').textContent.includes("2 host")`)
	e.browser.Screenshot(t, ctx, "calls-media-ladder")
	run(t, ctx, "the TURN page", chromedp.Navigate(e.url+"/admin/configuration/turn"), chromedp.WaitVisible(chromedp.CSS(`#turn-allocations tr[data-leg="p1"]`)))
	e.browser.Screenshot(t, ctx, "turn-page")
}
