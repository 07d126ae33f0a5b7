package webapp_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/web/webapp"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// RejoinGuest gives the harness's guests their way back: a new account for the same meeting,
// unless the credential is one the test marked as expired.
func (g *harnessGuests) RejoinGuest(_ context.Context, credential, _ string) (webapp.GuestGrant, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rejoins = append(g.rejoins, credential)
	if credential == "expired" || g.rejoinErr != nil {
		if g.rejoinErr != nil {
			return webapp.GuestGrant{}, g.rejoinErr
		}
		return webapp.GuestGrant{}, webapp.ErrRejoinExpired
	}
	return g.newGrantLocked("Ada Lovelace")
}

// meetingEnv is a browser that joined "Design review" as guest Ada Lovelace, with the test
// Call Bridge playing the meeting: Grace is there already.
type meetingEnv struct {
	*appEnv
	ctx      context.Context
	cb       *xmppdtest.CallBridge
	guest    string // the page's full JID
	space    string
	self     string // the page's participant id
	joinedAt string // the address the page sent its join to
}

const design = "design@cb1.example.com"

func joinedGuest(t *testing.T) *meetingEnv {
	t.Helper()
	e := startAppEnv(t, xmppdtest.Options{})
	m := &meetingEnv{appEnv: e, ctx: e.browser.Context(t, 150*time.Second), cb: e.h.CallBridge, space: design}
	do(t, m.ctx, "open the join page", chromedp.Navigate(e.url+"/join"), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	waitState(t, m.ctx, "ready")
	do(t, m.ctx, "fill the join form",
		chromedp.SendKeys(chromedp.CSS("#join-callid"), "100"),
		chromedp.SendKeys(chromedp.CSS("#join-passcode"), "4321"),
		chromedp.SendKeys(chromedp.CSS("#join-name"), "Ada Lovelace"),
		chromedp.Click(chromedp.CSS("#join-submit")))
	joinNow(t, m.ctx)
	m.admit(t, "p2")
	return m
}

// admit answers the page's next join presence with the roster: Grace, then the page as id.
func (m *meetingEnv) admit(t *testing.T, id string) {
	t.Helper()
	for {
		p := nextStanza(t, m.cb, "presence")
		if p.Get("type") == "unavailable" {
			continue // the page leaving what the Call Bridge may still hold, before joining again
		}
		m.guest, m.joinedAt = p.Get("from"), p.Get("to")
		break
	}
	m.self = id
	m.cb.Send(t, m.participant("p1", "Grace Hopper", "grace@example.com", "owner", "", ""))
	m.cb.Send(t, m.participant(id, "Ada Lovelace", strings.SplitN(m.guest, "/", 2)[0], "guest", ` self="true"`, ""))
	waitState(t, m.ctx, "in-meeting")
}

func (m *meetingEnv) participant(id, name, jid, role, extra, typ string) string {
	t := ""
	if typ != "" {
		t = ` type="` + typ + `"`
	}
	return `<presence` + t + ` from="` + m.space + `/` + id + `" to="` + m.guest + `"><participant xmlns="urn:confab:meeting:1" id="` + id + `" name="` + name + `" jid="` + jid + `" role="` + role + `"` + extra + `/></presence>`
}

func evalString(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return s
}

// TestMeetingInterruptedAndBack: the Call Bridge loses the meeting (its own unavailable
// presence without a reason, as when its link dropped). The page says so at once, keeps what
// was said in the chat, marks a message written meanwhile as not sent, joins again by itself
// and says it is back; Retry then sends the message.
func TestMeetingInterruptedAndBack(t *testing.T) {
	m := joinedGuest(t)
	do(t, m.ctx, "write before", chromedp.SendKeys(chromedp.CSS("#chat-input"), "Before the break"), chromedp.Click(chromedp.CSS("#chat-send")))
	msg := nextStanza(t, m.cb, "message")
	m.cb.Send(t, `<message type="groupchat" id="`+stream.Escape(msg.Get("id"))+`" from="`+m.space+`/p2" to="`+m.guest+`"><body>Before the break</body><participant xmlns="urn:confab:meeting:1" id="p2" name="Ada Lovelace"/></message>`)
	do(t, m.ctx, "sent", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-self="true"][data-status="sent"]`)))

	// The meeting is lost; the Call Bridge cannot take the join at once.
	m.cb.Send(t, m.participant("p2", "Ada Lovelace", "", "guest", ` self="true"`, "unavailable"))
	waitState(t, m.ctx, "reconnecting")
	if got := text(t, m.ctx, "#connection-text"); got != "The meeting was interrupted; reconnecting…" {
		t.Errorf("banner = %q", got)
	}
	do(t, m.ctx, "write while interrupted", chromedp.SendKeys(chromedp.CSS("#chat-input"), "While away"), chromedp.Click(chromedp.CSS("#chat-send")))
	do(t, m.ctx, "marked not sent", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-status="failed"] .chat-retry`)))
	if got := text(t, m.ctx, `#chat-log li[data-status="failed"] .chat-note`); got != "Not sent: the meeting is reconnecting" {
		t.Errorf("note = %q", got)
	}
	m.browser.Screenshot(t, m.ctx, "rejoin-1-interrupted")

	// The page joins again by itself: a leave for whatever was left, then a join.
	join := nextStanza(t, m.cb, "presence")
	for join.Get("type") == "unavailable" {
		join = nextStanza(t, m.cb, "presence")
	}
	m.cb.Send(t, `<presence type="error" from="`+m.space+`" to="`+join.Get("from")+`"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`)
	do(t, m.ctx, "the next attempt is announced", chromedp.WaitVisible(chromedp.CSS(`#connection-detail`)))
	m.admit(t, "p7")
	do(t, m.ctx, "back", chromedp.WaitNotVisible(chromedp.CSS("#connection")))
	do(t, m.ctx, "the new roster", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="p7"][data-self="true"]`)))
	if n := evalString(t, m.ctx, `String(document.querySelectorAll('#participants li').length)`); n != "2" {
		t.Errorf("%s participants listed after the rejoin, want 2 (the old roster replaced)", n)
	}
	if got := evalString(t, m.ctx, `[...document.querySelectorAll('#chat-log li.system')].map(e => e.textContent).join("|")`); !strings.Contains(got, "You are back in the meeting.") {
		t.Errorf("system lines %q lack the return", got)
	}
	if got := evalString(t, m.ctx, `[...document.querySelectorAll('#chat-log .chat-body')].map(e => e.textContent).join("|")`); got != "Before the break|While away" {
		t.Errorf("chat after the rejoin = %q, want both messages kept", got)
	}

	// Retry sends it now.
	do(t, m.ctx, "retry", chromedp.Click(chromedp.CSS(`#chat-log li[data-status="failed"] .chat-retry`)))
	msg = nextStanza(t, m.cb, "message")
	m.cb.Send(t, `<message type="groupchat" id="`+stream.Escape(msg.Get("id"))+`" from="`+m.space+`/p7" to="`+m.guest+`"><body>While away</body><participant xmlns="urn:confab:meeting:1" id="p7" name="Ada Lovelace"/></message>`)
	do(t, m.ctx, "both sent", chromedp.WaitNotPresent(chromedp.CSS(`#chat-log li[data-status="failed"]`)))
	m.browser.Screenshot(t, m.ctx, "rejoin-2-back")
}

// TestMeetingCheckFindsTheMeetingGone: nobody tells the page; its own check (a self-ping
// every 15 s) is answered not-acceptable (the Call Bridge forgot it: a restart) and the page
// joins again.
func TestMeetingCheckFindsTheMeetingGone(t *testing.T) {
	m := joinedGuest(t)
	var ping = nextRaw(t, m.cb, 40*time.Second, isSelfPing)
	if want := m.space + "/" + m.self; ping.Get("to") != want {
		t.Errorf("check sent to %q, want the page's own address %q", ping.Get("to"), want)
	}
	m.cb.Send(t, `<iq type="error" id="`+stream.Escape(ping.Get("id"))+`" from="`+stream.Escape(ping.Get("to"))+`" to="`+m.guest+`"><error type="cancel"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	waitState(t, m.ctx, "reconnecting")
	m.admit(t, "p8")
	do(t, m.ctx, "back", chromedp.WaitNotVisible(chromedp.CSS("#connection")))
}

// nextRaw returns the next stanza the test Call Bridge receives for which keep is true,
// skipping the others, within timeout.
func nextRaw(t *testing.T, cb *xmppdtest.CallBridge, timeout time.Duration, keep func(*stream.Element) bool) *stream.Element {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		e := cb.Next(t, time.Until(deadline))
		if keep(e) {
			return e
		}
	}
	t.Fatalf("nothing wanted within %s", timeout)
	return nil
}

// TestMeetingEndedAndRemoved: the Call Bridge ends the guest's participation with a reason;
// the page says which in words (not "connection lost"), the guest is no longer shown as
// signed in, and only after "ended" may it join again, with its rejoin credential.
func TestMeetingEndedAndRemoved(t *testing.T) {
	tests := []struct {
		reason, status, title, want string
		again                       bool
	}{
		{"ended", "The meeting was ended by the organiser", "The meeting has ended", "The meeting was ended by the organiser", true},
		{"removed", "", "You are no longer in the meeting", "You were removed from the meeting", false},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			m := joinedGuest(t)
			status := ""
			if tt.status != "" {
				status = "<status>" + tt.status + "</status>"
			}
			m.cb.Send(t, `<presence type="unavailable" from="`+m.space+`/p2" to="`+m.guest+`">`+status+`<participant xmlns="urn:confab:meeting:1" id="p2" name="Ada Lovelace" role="guest" self="true" reason="`+tt.reason+`"/></presence>`)
			waitState(t, m.ctx, "ended")
			if got := text(t, m.ctx, "#left-title"); got != tt.title {
				t.Errorf("title = %q, want %q", got, tt.title)
			}
			if got := text(t, m.ctx, "#left-message"); got != tt.want {
				t.Errorf("message = %q, want %q", got, tt.want)
			}
			if v := evalString(t, m.ctx, `document.getElementById("whoami").hidden + ":" + document.body.dataset.user`); v != "true:" {
				t.Errorf("header after the end: %q, want no guest shown", v)
			}
			again := evalString(t, m.ctx, `String(!document.getElementById("join-again").hidden)`) == "true"
			if again != tt.again {
				t.Errorf("Join again offered = %v, want %v", again, tt.again)
			}
			m.browser.Screenshot(t, m.ctx, "left-"+tt.reason)
			if !tt.again {
				return
			}
			do(t, m.ctx, "join again", chromedp.Click(chromedp.CSS("#join-again")))
			joinNow(t, m.ctx)
			m.admit(t, "p9")
			if n := len(m.guests.rejoinsSeen()); n != 1 {
				t.Errorf("%d rejoins, want 1 (Join again uses the rejoin credential)", n)
			}
		})
	}
}

// TestChatDelivery: a message is sent only once echoed; one refused by the Call Bridge says
// why; one never answered says so after a few seconds; Retry sends it again.
func TestChatDelivery(t *testing.T) {
	m := joinedGuest(t)
	send := func(body string) *stream.Element {
		t.Helper()
		do(t, m.ctx, "write", chromedp.SendKeys(chromedp.CSS("#chat-input"), body), chromedp.Click(chromedp.CSS("#chat-send")))
		return nextStanza(t, m.cb, "message")
	}
	sel := func(body, status string) string {
		return fmt.Sprintf(`[...document.querySelectorAll('#chat-log li[data-self="true"]')].filter(li => li.querySelector('.chat-body').textContent === %q && li.dataset.status === %q).length`, body, status)
	}
	waitFor := func(body, status string) {
		t.Helper()
		if _, err := chromedp.Run(m.ctx, chromedp.Poll[bool](sel(body, status)+` === 1`)); err != nil {
			t.Fatalf("%q never became %s: %v", body, status, err)
		}
	}
	a := send("Refused one")
	waitFor("Refused one", "pending")
	m.cb.Send(t, `<message type="error" id="`+stream.Escape(a.Get("id"))+`" from="`+m.space+`" to="`+m.guest+`"><error type="cancel"><not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Chat is disabled in this meeting</text></error></message>`)
	waitFor("Refused one", "failed")
	if got := text(t, m.ctx, `#chat-log li[data-status="failed"] .chat-note`); got != "Not sent: Chat is disabled in this meeting" {
		t.Errorf("note = %q", got)
	}
	send("Unanswered")
	waitFor("Unanswered", "failed") // within the page's few seconds
	m.browser.Screenshot(t, m.ctx, "chat-not-sent")
	do(t, m.ctx, "retry", chromedp.Click(chromedp.CSS(`#chat-log li[data-status="failed"]:last-child .chat-retry`)))
	b := nextStanza(t, m.cb, "message")
	m.cb.Send(t, `<message type="groupchat" id="`+stream.Escape(b.Get("id"))+`" from="`+m.space+`/p2" to="`+m.guest+`"><body>Unanswered</body><participant xmlns="urn:confab:meeting:1" id="p2" name="Ada Lovelace"/></message>`)
	waitFor("Unanswered", "sent")
}

// TestSameNames: two participants named alike are told apart.
func TestSameNames(t *testing.T) {
	m := joinedGuest(t)
	m.cb.Send(t, m.participant("p3", "Grace Hopper", "grace.h@example.com", "member", "", ""))
	do(t, m.ctx, "the second Grace", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="p3"]`)))
	if got := text(t, m.ctx, `#participants li[data-participant-id="p3"] .name`); got != "Grace Hopper (2)" {
		t.Errorf("the second Grace is shown as %q, want Grace Hopper (2)", got)
	}
	if got := text(t, m.ctx, `#participants li[data-participant-id="p3"] .role`); got != "Member · grace.h@example.com" {
		t.Errorf("her detail = %q, want her address beside the role", got)
	}
	if got := text(t, m.ctx, `#participants li[data-participant-id="p1"] .name`); got != "Grace Hopper" {
		t.Errorf("the first Grace is shown as %q", got)
	}
	m.browser.Screenshot(t, m.ctx, "same-names")
}

// TestInvite: the invite panel offers the link (call ID only) and the passcode separately.
func TestInvite(t *testing.T) {
	m := joinedGuest(t)
	do(t, m.ctx, "open the invite panel", chromedp.Click(chromedp.CSS("#invite-toggle")), chromedp.WaitVisible(chromedp.CSS("#invite")))
	link := evalString(t, m.ctx, `document.getElementById("invite-link").value`)
	if want := m.url + "/join?callId=100"; link != want {
		t.Errorf("link = %q, want %q", link, want)
	}
	if strings.Contains(link, "4321") {
		t.Error("the link holds the passcode")
	}
	if got := text(t, m.ctx, "#invite-passcode"); got != "••••" {
		t.Errorf("passcode shown as %q, want it masked", got)
	}
	do(t, m.ctx, "copy the passcode", chromedp.Click(chromedp.CSS(`#invite button[data-copy="passcode"]`)))
	if _, err := chromedp.Run(m.ctx, chromedp.Poll[bool](`document.getElementById("invite-copied").textContent !== ""`)); err != nil {
		t.Fatal(err)
	}
	if got := text(t, m.ctx, "#invite-copied"); got != "Passcode copied: send it separately" {
		t.Errorf("after copying: %q", got)
	}
	m.browser.Screenshot(t, m.ctx, "invite")
	// The link opens the join page with the call ID filled in.
	tab := m.browser.NewTab(t, 30*time.Second)
	do(t, tab, "open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	if v := evalString(t, tab, `document.getElementById("join-callid").value`); v != "100" {
		t.Errorf("call ID filled with %q", v)
	}
	// The name typed before is remembered.
	if v := evalString(t, tab, `document.getElementById("join-name").value`); v != "Ada Lovelace" {
		t.Errorf("name filled with %q, want the one typed before", v)
	}
}

// TestGuestRejoinRefused: a guest whose session is lost and whose rejoin credential has
// expired is told so on the join page, with the call ID filled in.
func TestGuestRejoinRefused(t *testing.T) {
	m := joinedGuest(t)
	m.guests.failRejoin(webapp.ErrRejoinExpired)
	// The page's session goes: the XMPP server ends it (as when it restarts without
	// resumption) — here the page's tab reloads, which keeps only what the tab kept.
	do(t, m.ctx, "reload", chromedp.Reload())
	waitState(t, m.ctx, "error")
	if got := text(t, m.ctx, "#join-error"); got != "Your place in this meeting has expired: join again with the call ID and passcode" {
		t.Errorf("error = %q", got)
	}
	if v := evalString(t, m.ctx, `document.getElementById("join-callid").value`); v != "100" {
		t.Errorf("call ID = %q, want 100 kept", v)
	}
}

// TestInterruptionSignals: each way the page can learn that the Call Bridge lost the
// meeting makes it say so and join again: unavailable presence from the space or from the
// address it joined at (the XMPP server speaking for a Call Bridge that went away), and a
// stanza error saying the Call Bridge cannot be reached, to a chat message.
func TestInterruptionSignals(t *testing.T) {
	tests := []struct {
		name   string
		signal func(m *meetingEnv) string
	}{
		{"unavailable from the space", func(m *meetingEnv) string {
			return `<presence type="unavailable" from="` + m.space + `" to="` + m.guest + `"/>`
		}},
		{"unavailable from the join address", func(m *meetingEnv) string {
			return `<presence type="unavailable" from="` + m.joinedAt + `" to="` + m.guest + `"/>`
		}},
		{"chat bounced", func(m *meetingEnv) string {
			return `<message type="error" id="x1" from="` + m.space + `" to="` + m.guest + `"><error type="cancel"><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := joinedGuest(t)
			m.cb.Send(t, tt.signal(m))
			waitState(t, m.ctx, "reconnecting")
			m.admit(t, "p5")
			do(t, m.ctx, "back", chromedp.WaitNotVisible(chromedp.CSS("#connection")))
		})
	}
}

// TestSignedInAgainWithoutPassword: a signed-in user's tab keeps the SCRAM keys, not the
// password: a reload signs in again by itself. Once the password was changed (a new salt),
// the kept keys no longer fit and the page asks for the password, the username filled in.
// The name typed for a meeting is what the user is shown as, and is remembered.
func TestSignedInAgainWithoutPassword(t *testing.T) {
	e := startAppEnv(t, xmppdtest.Options{})
	cb := e.h.CallBridge
	ctx := e.browser.Context(t, 90*time.Second)
	spaces := `<space jid="design@cb1.example.com" name="Design review" callId="100" passcode="4321"/>`
	signIn(t, ctx, e.url, "alice", "alice-secret-1")
	answerSpaces(t, cb, spaces)
	waitState(t, ctx, "signed-in")
	if v := evalString(t, ctx, `JSON.stringify(sessionStorage)`); strings.Contains(v, "alice-secret-1") || !strings.Contains(v, "clientKey") {
		t.Errorf("the tab keeps %s; want SCRAM keys and never the password", v)
	}

	// The user names itself for the meeting.
	do(t, ctx, "type a name and join", chromedp.SendKeys(chromedp.CSS("#join-name"), "Alice at home"),
		chromedp.Click(chromedp.CSS(`#spaces-list button[data-space-jid="design@cb1.example.com"]`)))
	joinNow(t, ctx)
	join := nextStanza(t, cb, "presence")
	var jp struct {
		Join *struct {
			Name string `xml:"name,attr"`
		} `xml:"urn:confab:meeting:1 join"`
	}
	if err := join.Decode(&jp); err != nil || jp.Join == nil || jp.Join.Name != "Alice at home" {
		t.Errorf("join %s, want the name typed", join.String())
	}
	me := join.Get("from")
	cb.Send(t, `<presence from="design@cb1.example.com/p9" to="`+me+`"><participant xmlns="urn:confab:meeting:1" id="p9" name="Alice at home" jid="alice@example.com" role="owner" self="true"/></presence>`)
	waitState(t, ctx, "in-meeting")
	do(t, ctx, "the owner's invite offers the passcode", chromedp.Click(chromedp.CSS("#invite-toggle")), chromedp.WaitVisible(chromedp.CSS(`#invite button[data-copy="passcode"]`)))

	// A reload: signed in again with the kept keys, back on the pre-join screen of the
	// meeting, the name remembered.
	do(t, ctx, "reload", chromedp.Reload())
	answerSpaces(t, cb, spaces)
	waitState(t, ctx, "prejoin")
	if v := evalString(t, ctx, `document.getElementById("join-name").value + "|" + document.body.dataset.user`); v != "Alice at home|alice@example.com" {
		t.Errorf("after the reload: %q, want the name remembered and alice signed in", v)
	}
	logins := cb.Logins()
	if last := logins[len(logins)-1]; !last.OK || last.JID != "alice@example.com" {
		t.Errorf("the reload's login: %+v", last)
	}

	// The password changes: the keys are out of date, and the page asks for the password.
	if err := e.h.Directory.Add("alice", "a-new-password-2"); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "reload", chromedp.Reload())
	waitState(t, ctx, "error")
	if got := text(t, ctx, "#signin-error"); got != "Your session ended. Sign in again to go back in." {
		t.Errorf("error = %q", got)
	}
	if v := evalString(t, ctx, `document.getElementById("signin-username").value + "|" + sessionStorage.length`); v != "alice|0" {
		t.Errorf("sign-in page: %q, want alice filled in and nothing kept", v)
	}
	e.browser.Screenshot(t, ctx, "signin-again")
}
