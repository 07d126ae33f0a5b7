package webadmin_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/web/browsertest"
	"confab.dev/confab/internal/web/webadmin"
)

// typeInto replaces an input's value with text, as a person would type it.
func typeInto(id, text string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""; undefined`, id))(ctx, tg); err != nil {
			return chromedp.Void{}, err
		}
		if text == "" {
			return chromedp.Void{}, nil
		}
		return chromedp.SendKeys(chromedp.CSS("#"+id), text)(ctx, tg)
	}
}

func focused(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `document.activeElement ? document.activeElement.id : ""`)
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel))
}

// TestBrowserSpaces creates a space (after a failed try whose error takes the focus),
// edits it, adds and removes a member, and deletes it through the confirmation.
func TestBrowserSpaces(t *testing.T) {
	e := startBrowserEnv(t, newFakeBackend())
	ctx := e.browser.Context(t, 90*time.Second)
	e.signIn(t, ctx, "/admin/spaces")
	run(t, ctx, "open the new space form", chromedp.Click(chromedp.CSS("#new-space")), chromedp.WaitVisible(chromedp.CSS("#space-form")))
	run(t, ctx, "submit without a name",
		chromedp.SendKeys(chromedp.CSS("#uri"), "weekly"),
		chromedp.Click(chromedp.CSS("#space-save")),
		chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field="name"]`)))
	if got := focused(t, ctx); got != "name" {
		t.Errorf("focus on %q after the failed submit, want #name", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("uri").value`); got != "weekly" {
		t.Errorf("the URI typed was lost: %q", got)
	}
	e.browser.Screenshot(t, ctx, "space-new-error")
	run(t, ctx, "create the space",
		chromedp.SendKeys(chromedp.CSS("#name"), "Weekly sync with a rather long name that has to wrap somewhere on a phone"),
		chromedp.SendKeys(chromedp.CSS("#callId"), "4242"),
		chromedp.SendKeys(chromedp.CSS("#passcode"), "1234"),
		chromedp.Click(chromedp.CSS("#nonMemberAccess")),
		chromedp.Click(chromedp.CSS("#space-save")),
		chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := textOf(t, ctx, "#passcode-state"); got != "set" {
		t.Errorf("passcode state %q, want set", got)
	}
	run(t, ctx, "add a member",
		chromedp.SendKeys(chromedp.CSS("#jid"), "alice@example.com"),
		chromedp.SetValue(chromedp.CSS("#role"), "owner"),
		chromedp.Click(chromedp.CSS("#member-add")),
		chromedp.WaitVisible(chromedp.CSS(`#members-list tr[data-jid="alice@example.com"]`)))
	run(t, ctx, "a bad JID is refused beside the field",
		chromedp.SendKeys(chromedp.CSS("#jid"), "not a jid"),
		chromedp.Click(chromedp.CSS("#member-add")),
		chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field="jid"]`)))
	if got := focused(t, ctx); got != "jid" {
		t.Errorf("focus on %q after the bad JID, want #jid", got)
	}
	run(t, ctx, "rename",
		typeInto("name", "Weekly sync"),
		chromedp.Click(chromedp.CSS("#space-save")),
		chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := textOf(t, ctx, "h1"); got != "Weekly sync" {
		t.Errorf("heading %q after renaming", got)
	}
	e.browser.Screenshot(t, ctx, "space-edit")
	run(t, ctx, "remove the member", chromedp.Click(chromedp.CSS("button.remove-member")),
		chromedp.WaitNotPresent(chromedp.CSS(`#members-list tr[data-jid="alice@example.com"]`)))
	run(t, ctx, "ask to delete", chromedp.Click(chromedp.CSS("#delete-space")), chromedp.WaitVisible(chromedp.CSS("#confirm-delete")))
	if got := textOf(t, ctx, "#confirm-title"); got != "Delete the space “Weekly sync”?" {
		t.Errorf("confirmation title %q", got)
	}
	e.browser.Screenshot(t, ctx, "space-delete-confirm")
	run(t, ctx, "delete", chromedp.Click(chromedp.CSS("#confirm-delete")), chromedp.WaitVisible(chromedp.CSS("#spaces")))
	if n := eval[int](t, ctx, `document.querySelectorAll("#spaces tr[data-space-id]").length`); n != 2 {
		t.Errorf("%d spaces after deleting, want 2", n)
	}
	// Deleting a space with a live call says so.
	run(t, ctx, "ask to delete the space with a call", chromedp.Navigate(e.url+"/admin/spaces/4f0c7e1a/delete"), chromedp.WaitVisible(chromedp.CSS("#confirm-warning")))
	if got := textOf(t, ctx, "#confirm-warning"); !strings.Contains(got, "A call is live in this space with 2 participants") {
		t.Errorf("warning %q", got)
	}
	e.browser.Screenshot(t, ctx, "space-delete-live-call")
}

// TestBrowserUsers adds a local user (after a mismatched confirmation) and resets its
// password.
func TestBrowserUsers(t *testing.T) {
	b := newFakeBackend()
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 90*time.Second)
	e.signIn(t, ctx, "/admin/users")
	run(t, ctx, "add a user with a mistyped confirmation",
		chromedp.SendKeys(chromedp.CSS("#username"), "carol"),
		chromedp.SendKeys(chromedp.CSS("#name"), "Carol Danvers"),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse"),
		chromedp.SendKeys(chromedp.CSS("#confirmPassword"), "correct hose"),
		chromedp.Click(chromedp.CSS("#user-save")),
		chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field="confirmPassword"]`)))
	if got := focused(t, ctx); got != "confirmPassword" {
		t.Errorf("focus on %q, want #confirmPassword", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("username").value + "|" + document.getElementById("password").value`); got != "carol|" {
		t.Errorf("after the error the form holds %q, want the username and no password", got)
	}
	e.browser.Screenshot(t, ctx, "users-add-error")
	run(t, ctx, "add the user",
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse"),
		chromedp.SendKeys(chromedp.CSS("#confirmPassword"), "correct horse"),
		chromedp.Click(chromedp.CSS("#user-save")),
		chromedp.WaitVisible(chromedp.CSS(`#users tr[data-jid="carol@example.com"]`)))
	id := eval[string](t, ctx, `document.querySelector('#users tr[data-jid="carol@example.com"]').dataset.userId`)
	if got := b.password(id); got != "correct horse" {
		t.Errorf("password %q", got)
	}
	e.browser.Screenshot(t, ctx, "users-added")
	run(t, ctx, "reset the password",
		chromedp.Click(chromedp.CSS(`#users tr[data-jid="carol@example.com"] a.reset-password`)),
		chromedp.WaitVisible(chromedp.CSS("#password-form")),
		chromedp.SendKeys(chromedp.CSS("#password"), "battery staple"),
		chromedp.SendKeys(chromedp.CSS("#confirmPassword"), "battery staple"),
		chromedp.Click(chromedp.CSS("#password-save")),
		chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := b.password(id); got != "battery staple" {
		t.Errorf("password after reset %q", got)
	}
}

// TestBrowserCalls ends a call and removes a participant, each after its confirmation, and
// sees the list refresh itself when a participant joins.
func TestBrowserCalls(t *testing.T) {
	b := newFakeBackend()
	start := time.Now().Add(-5 * time.Minute)
	b.calls = append(b.calls, webadmin.CallView{ID: "c-2", SpaceID: "9b2d5c30", SpaceName: "All hands", Started: start,
		Participants: []webadmin.ParticipantView{
			{ID: "p3", Name: "Bob Builder", JID: "bob@example.com", Role: "member", Joined: start, Media: &webadmin.MediaView{
				RxAudio: webadmin.StreamView{Codec: "audio/opus", BitRate: 32000, LossFraction: 0.004, Jitter: 3 * time.Millisecond},
				TxAudio: webadmin.StreamView{Codec: "audio/opus", BitRate: 64000},
				RxVideo: webadmin.StreamView{Codec: "video/VP8", BitRate: 1_200_000, LossFraction: 0.01, Width: 1280, Height: 720},
				TxVideo: webadmin.StreamView{Codec: "video/VP8", BitRate: 450_000, Width: 640, Height: 360}}},
			{ID: "p4", Name: "Charlotte Amalie Wilhelmina von Hohenberg-Schwarzenfels (guest)", JID: "guest9038475611@example.com", Role: "guest", Joined: start.Add(time.Minute)},
		}})
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 90*time.Second)
	e.signIn(t, ctx, "/admin/calls")
	run(t, ctx, "the calls", chromedp.WaitVisible(chromedp.CSS(`#calls section[data-call-id="c-2"] tr[data-participant-id="p3"] td.media`)))
	if got := textOf(t, ctx, `tr[data-participant-id="p3"] td.media`); !strings.Contains(got, "opus · 32 kbit/s · loss 0.4% · jitter 3 ms") || !strings.Contains(got, "VP8 · 1.2 Mbit/s · loss 1.0% · 1280×720") {
		t.Errorf("media cell %q", got)
	}
	e.browser.Screenshot(t, ctx, "calls-media")
	// A participant joins: the page shows it without a reload.
	run(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.confabMarker = 7; undefined`))
	b.mu.Lock()
	b.calls[1].Participants = append(b.calls[1].Participants, webadmin.ParticipantView{ID: "p5", Name: "Dana", JID: "dana@example.com", Role: "member", Joined: time.Now()})
	b.mu.Unlock()
	run(t, ctx, "the new participant appears", chromedp.WaitVisible(chromedp.CSS(`tr[data-participant-id="p5"]`)))
	if got := eval[int](t, ctx, `window.confabMarker || 0`); got != 7 {
		t.Errorf("the page was reloaded to refresh")
	}
	run(t, ctx, "ask to remove the guest", chromedp.Click(chromedp.CSS(`tr[data-participant-id="p4"] a.remove-participant`)), chromedp.WaitVisible(chromedp.CSS("#confirm-remove")))
	e.browser.Screenshot(t, ctx, "calls-remove-confirm")
	run(t, ctx, "remove", chromedp.Click(chromedp.CSS("#confirm-remove")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if n := eval[int](t, ctx, `document.querySelectorAll('tr[data-participant-id="p4"]').length`); n != 0 {
		t.Errorf("the removed participant is still listed")
	}
	run(t, ctx, "ask to end the call", chromedp.Click(chromedp.CSS(`section[data-call-id="c-2"] a.end-call`)), chromedp.WaitVisible(chromedp.CSS("#confirm-end")))
	if got := textOf(t, ctx, "#confirm-warning"); got != "This ends the call for 2 participants." {
		t.Errorf("warning %q", got)
	}
	run(t, ctx, "end it", chromedp.Click(chromedp.CSS("#confirm-end")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if n := eval[int](t, ctx, `document.querySelectorAll('section[data-call-id="c-2"]').length`); n != 0 {
		t.Errorf("the ended call is still listed")
	}
	b.mu.Lock()
	ended, removed := b.m.ended, b.m.removed
	b.mu.Unlock()
	if fmt.Sprint(ended, removed) != "[c-2] [p4]" {
		t.Errorf("ended %v, removed %v; want [c-2] [p4]", ended, removed)
	}
}

// TestBrowserSettingsWarning: saving a new unique name while a call is live warns with the
// numbers, and saves only on the second confirmation.
func TestBrowserSettingsWarning(t *testing.T) {
	b := newFakeBackend()
	b.setStatus(linkstate.Status{State: linkstate.Registered})
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 60*time.Second)
	e.signIn(t, ctx, "/admin/configuration/general")
	run(t, ctx, "a mistyped confirmation", typeInto("sharedSecret", "n3w-secret"), typeInto("confirmSharedSecret", "n3w-secreT"),
		chromedp.Click(chromedp.CSS("#xmpp-save")), chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field="confirmSharedSecret"]`)))
	if got := focused(t, ctx); got != "confirmSharedSecret" {
		t.Errorf("focus on %q, want #confirmSharedSecret", got)
	}
	run(t, ctx, "change the unique name", typeInto("uniqueName", "cb2"),
		chromedp.Click(chromedp.CSS("#xmpp-save")), chromedp.WaitVisible(chromedp.CSS("#disrupt-warning")))
	if got := textOf(t, ctx, "#disrupt-title"); got != "Saving will end 1 live call with 2 participants" {
		t.Errorf("warning %q", got)
	}
	if got := focused(t, ctx); got != "disrupt-warning" {
		t.Errorf("focus on %q, want the warning", got)
	}
	if n := len(b.setCalls()); n != 0 {
		t.Fatalf("saved %d times before the confirmation", n)
	}
	e.browser.Screenshot(t, ctx, "general-warning")
	run(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm-save")), chromedp.WaitVisible(chromedp.CSS("#saved")))
	if c := b.setCalls(); len(c) != 1 || c[0].uniqueName != "cb2" {
		t.Errorf("saved %+v, want cb2 once", c)
	}
}

// TestBrowserEventLog searches and filters the event log.
func TestBrowserEventLog(t *testing.T) {
	b := newFakeBackend()
	t0 := time.Now().Add(-time.Hour)
	for i := range 70 {
		b.addRecord(t0.Add(time.Duration(i)*time.Second), slog.LevelInfo, "link", fmt.Sprintf("keepalive %d", i), "server", "xmpp.example.com:5223")
	}
	b.addRecord(t0.Add(2*time.Minute), slog.LevelWarn, "media", "participant's ICE failed", "leg", "p2", "reason", "ice-timeout")
	b.addRecord(t0.Add(3*time.Minute), slog.LevelError, "link", "registration refused", "reason", "not-authorized", "secret", "[redacted]")
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 60*time.Second)
	e.signIn(t, ctx, "/admin/logs")
	run(t, ctx, "the log", chromedp.WaitVisible(chromedp.CSS("#log-records tr")))
	if n := eval[int](t, ctx, `document.querySelectorAll("#log-records tr[data-level]").length`); n != 50 {
		t.Errorf("%d rows on page 1, want 50", n)
	}
	if got := textOf(t, ctx, "#log-records tr:first-child td:nth-child(4)"); got != "registration refused" {
		t.Errorf("newest first: the first row is %q", got)
	}
	e.browser.Screenshot(t, ctx, "logs")
	run(t, ctx, "older page", chromedp.Click(chromedp.CSS("#log-older")), chromedp.WaitVisible(chromedp.CSS("#log-newer")))
	if n := eval[int](t, ctx, `document.querySelectorAll("#log-records tr[data-level]").length`); n != 22 {
		t.Errorf("%d rows on page 2, want 22", n)
	}
	run(t, ctx, "search", chromedp.Navigate(e.url+"/admin/logs"), chromedp.WaitVisible(chromedp.CSS("#log-q")),
		chromedp.SendKeys(chromedp.CSS("#log-q"), "ice"), chromedp.Click(chromedp.CSS("#log-search")),
		// The result page, not the one before it (which has such rows too).
		chromedp.WaitVisible(chromedp.CSS(`#log-q[value="ice"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#log-records tr[data-component="media"]`)))
	if got := textOf(t, ctx, "#log-total"); got != "1 record" {
		t.Errorf("search ice: %q", got)
	}
	run(t, ctx, "filter by level and component", chromedp.Navigate(e.url+"/admin/logs"), chromedp.WaitVisible(chromedp.CSS("#log-level")),
		chromedp.SetValue(chromedp.CSS("#log-level"), "warn"), chromedp.SetValue(chromedp.CSS("#log-component"), "link"),
		chromedp.Click(chromedp.CSS("#log-search")),
		chromedp.WaitReady(chromedp.CSS(`#log-level option[value="warn"][selected]`)),
		chromedp.WaitVisible(chromedp.CSS(`#log-records tr[data-level="error"]`)))
	if got := eval[string](t, ctx, `Array.from(document.querySelectorAll("#log-records tr[data-level]")).map(r => r.dataset.level + "/" + r.dataset.component).join(",")`); got != "error/link" {
		t.Errorf("warn+ in link: %s, want error/link", got)
	}
	e.browser.Screenshot(t, ctx, "logs-filtered")
}

// TestBrowserUnreachable stops the server under an open status page: the page says so in a
// banner with the time, and no longer claims the link is registered.
func TestBrowserUnreachable(t *testing.T) {
	b := newFakeBackend()
	b.recordAttempt(1, time.Now().Add(-time.Hour), false, 0)
	b.setStatus(linkstate.Status{State: linkstate.Registered, ComponentJID: "cb1.example.com", Server: "xmpp.example.com:5223", Since: time.Now().Add(-time.Hour), Attempt: 1})
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 60*time.Second)
	e.signIn(t, ctx, "/admin/status")
	if _, err := browsertest.WaitState(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if eval[bool](t, ctx, `!document.getElementById("unreachable").hidden`) {
		t.Errorf("the banner shows while the server is up")
	}
	e.srv.CloseClientConnections()
	e.srv.Close()
	if _, err := browsertest.WaitState(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the banner", `!document.getElementById("unreachable").hidden`)
	got := textOf(t, ctx, "#unreachable")
	if !strings.Contains(got, "The web admin cannot reach the Call Bridge since ") || !strings.Contains(got, "what you see may be out of date") {
		t.Errorf("banner %q", got)
	}
	if since := textOf(t, ctx, "#unreachable-since"); len(since) != 8 || since[2] != ':' || since[5] != ':' {
		t.Errorf("since %q, want HH:MM:SS", since)
	}
	if got := textOf(t, ctx, "#link-state"); strings.Contains(got, "Registered") {
		t.Errorf("the badge still says %q", got)
	}
	e.browser.Screenshot(t, ctx, "status-unreachable")
}

// TestBrowserPhone opens every page at 375 px: nothing is wider than the screen, except
// inside a table's own scroll box.
func TestBrowserPhone(t *testing.T) {
	b := newFakeBackend()
	b.users = append(b.users, webadmin.UserView{ID: "u-long", JID: "maximiliane.von.hohenberg-schwarzenfels@example.com", Name: "Maximiliane Theodora von Hohenberg-Schwarzenfels", Email: "maximiliane.von.hohenberg-schwarzenfels@example.com", Source: "local"})
	b.addRecord(time.Now(), slog.LevelWarn, "media", "participant's ICE failed after a very long time without any answer from the browser", "leg", "0d3c7e52-5b7e-4c1e-9a34-8b8f2c1d9e01", "reason", "ice-timeout")
	b.recordAttempt(1, time.Now().Add(-time.Hour), false, 0)
	b.setStatus(linkstate.Status{State: linkstate.Registered, ComponentJID: "cb1.example.com", Server: "xmpp.example.com:5223", Since: time.Now().Add(-time.Hour), Attempt: 1})
	e := startBrowserEnv(t, b)
	ctx := e.browser.Context(t, 120*time.Second)
	// Headless Chromium's window is at least 500 px wide: emulate the phone's viewport.
	run(t, ctx, "a 375 px phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	e.signIn(t, ctx, "/admin/status")
	if w := eval[int](t, ctx, `window.innerWidth`); w != 375 {
		t.Fatalf("window %d px wide, want 375", w)
	}
	for _, p := range []string{"status", "configuration/general", "users", "ldap", "spaces", "spaces/4f0c7e1a", "calls", "logs", "calls/c-1/end", "nowhere"} {
		run(t, ctx, p, chromedp.Navigate(e.url+"/admin/"+p), chromedp.WaitReady(chromedp.CSS("main")))
		over := eval[[]string](t, ctx, `(() => {
			const out = [];
			if (document.documentElement.scrollWidth > window.innerWidth) out.push("page " + document.documentElement.scrollWidth);
			for (const el of document.querySelectorAll("main *")) {
				if (el.closest(".table-scroll, .ladder-wrap")) continue;
				const r = el.getBoundingClientRect();
				if (r.width > 0 && r.right > window.innerWidth + 0.5) out.push(el.tagName + (el.id ? "#" + el.id : "") + "." + el.className + " right=" + Math.round(r.right));
			}
			return out.slice(0, 5);
		})()`)
		if len(over) > 0 {
			t.Errorf("%s at 375 px: wider than the screen: %v", p, over)
		}
		e.browser.Screenshot(t, ctx, "phone-"+strings.ReplaceAll(p, "/", "-"))
	}
}
