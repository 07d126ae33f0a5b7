package webapp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/web/browsertest"
	"confab.dev/confab/internal/web/webapp"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// appEnv is the browser app served over HTTPS with a real XMPP server behind its
// /xmpp-websocket (as `confab up` mounts it) and a test Call Bridge on the component port.
type appEnv struct {
	h       *xmppdtest.Harness
	url     string
	guests  *harnessGuests
	browser *browsertest.Browser
}

func startAppEnv(t *testing.T, o xmppdtest.Options) *appEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	h := xmppdtest.Start(t, o)
	e := &appEnv{h: h, guests: &harnessGuests{h: h}}
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{h.ServerCert.Cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// The certificate names localhost: the page's origin is https://localhost:port.
	e.url = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	srv.Config.Handler = webapp.New(webapp.Options{
		Config: func() webapp.Config {
			return webapp.Config{Domain: h.Domain, CallBridgeJID: xmppdtest.DefaultCallBridge + "." + h.Domain}
		},
		Guests:    e.guests,
		WebSocket: h.Server.WebSocketHandler(),
	})
	e.browser = browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{h.ServerCert.Leaf}})
	return e
}

// harnessGuests is the GuestJoiner of these tests: call ID 100 with passcode 4321 is the
// space "Design review"; it creates the guest in the test Call Bridge's directory, as the
// meeting service creates it in the store.
type harnessGuests struct {
	h         *xmppdtest.Harness
	mu        sync.Mutex
	n         int
	err       error
	jids      []string
	rejoins   []string
	rejoinErr error
}

func (g *harnessGuests) JoinAsGuest(_ context.Context, callID, passcode, name, _ string) (webapp.GuestGrant, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return webapp.GuestGrant{}, g.err
	}
	if callID != "100" || passcode != "4321" {
		return webapp.GuestGrant{}, webapp.ErrInvalidCallID
	}
	return g.newGrantLocked(name)
}

// newGrantLocked makes a guest account for "Design review", with a rejoin credential.
func (g *harnessGuests) newGrantLocked(name string) (webapp.GuestGrant, error) {
	g.n++
	user := fmt.Sprintf("guest%06d", 482912+g.n)
	password := fmt.Sprintf("one-time-%d", g.n)
	if err := g.h.Directory.Add(user, password); err != nil {
		return webapp.GuestGrant{}, err
	}
	jid := user + "@" + g.h.Domain
	g.jids = append(g.jids, jid)
	return webapp.GuestGrant{JID: jid, Password: password, SpaceJID: "design@" + xmppdtest.DefaultCallBridge + "." + g.h.Domain, SpaceName: "Design review", Name: name,
		Rejoin: fmt.Sprintf("rejoin-%d", g.n), RejoinExpires: time.Now().Add(2 * time.Hour)}, nil
}

func (g *harnessGuests) failRejoin(err error) {
	g.mu.Lock()
	g.rejoinErr = err
	g.mu.Unlock()
}

func (g *harnessGuests) rejoinsSeen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.rejoins...)
}

func (g *harnessGuests) fail(err error) {
	g.mu.Lock()
	g.err = err
	g.mu.Unlock()
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func waitState(t *testing.T, ctx context.Context, states ...string) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := browsertest.WaitState(wctx, states...)
	if err != nil && !contains(states, got) {
		t.Fatalf("%v", err)
	}
	return got
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// clearFields empties the inputs with these ids.
func clearFields(ids ...string) chromedp.Action[chromedp.Void] {
	js := ""
	for _, id := range ids {
		js += `document.getElementById("` + id + `").value = "";`
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](js+"undefined")(ctx, tg)
		return err
	})
}

func signIn(t *testing.T, ctx context.Context, url, user, password string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#signin-form")),
	)
	waitState(t, ctx, "ready")
	do(t, ctx, "fill the sign-in form",
		chromedp.SendKeys(chromedp.CSS("#signin-username"), user),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), password),
		chromedp.Click(chromedp.CSS("#signin-submit")),
	)
}

// TestSignInErrors signs in through the page against a real XMPP server and checks the
// words the page shows for each refusal (web/app/src/messages.js).
func TestSignInErrors(t *testing.T) {
	e := startAppEnv(t, xmppdtest.Options{})
	tests := []struct {
		name, user, password, want string
	}{
		{"foreign domain", "alice@elsewhere.org", "alice-secret-1", "Username is not recognized"},
		{"not a localpart", "ali ce", "alice-secret-1", "Username is not recognized"},
		{"wrong password", "alice", "wrong", "Wrong username or password"},
		{"unknown user", "mallory", "whatever", "Wrong username or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := e.browser.NewTab(t, 60*time.Second)
			signIn(t, ctx, e.url, tt.user, tt.password)
			waitState(t, ctx, "error")
			if got := text(t, ctx, "#signin-error"); got != tt.want {
				t.Errorf("error shown = %q, want %q", got, tt.want)
			}
			e.browser.Screenshot(t, ctx, "signin-"+tt.name)
		})
	}
	// Too many wrong passwords for one name: the XMPP server refuses the next attempt for a
	// while, and the page says for how long.
	t.Run("throttled", func(t *testing.T) {
		ctx := e.browser.NewTab(t, 90*time.Second)
		var got string
		for i := 0; i < 8 && !strings.HasPrefix(got, "Too many failed attempts"); i++ {
			signIn(t, ctx, e.url, "bob", "wrong") // a fresh page each time
			waitState(t, ctx, "error")
			got = text(t, ctx, "#signin-error")
		}
		if !regexp.MustCompile(`^Too many failed attempts; try again in \d+ seconds?$`).MatchString(got) {
			t.Errorf("after repeated wrong passwords the page says %q, want the wait in seconds", got)
		}
		e.browser.Screenshot(t, ctx, "signin-throttled")
	})
}

func TestSignInWithoutCallBridge(t *testing.T) {
	e := startAppEnv(t, xmppdtest.Options{NoCallBridge: true})
	ctx := e.browser.Context(t, 60*time.Second)
	signIn(t, ctx, e.url, "alice", "alice-secret-1")
	waitState(t, ctx, "error")
	if got, want := text(t, ctx, "#signin-error"), "No Call Bridge is available"; got != want {
		t.Errorf("error shown = %q, want %q", got, want)
	}
	e.browser.Screenshot(t, ctx, "signin-no-call-bridge")
}

// joinNow passes the pre-join screen: this browser has no camera or microphone, so its
// main button joins without them.
func joinNow(t *testing.T, ctx context.Context) {
	t.Helper()
	waitState(t, ctx, "prejoin")
	// Click once the screen is laid out: the devices' answer moves the button.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.prejoin === "ready"`)); err != nil {
		t.Fatalf("the pre-join screen: %v", err)
	}
	do(t, ctx, "join from the pre-join screen", chromedp.Click(chromedp.CSS("#prejoin-join")))
}

// answerSpaces reads the spaces request the page sends after sign-in and answers it.
func answerSpaces(t *testing.T, cb *xmppdtest.CallBridge, spaces string) string {
	t.Helper()
	iq := nextStanza(t, cb, "iq")
	var q struct {
		Spaces *struct{} `xml:"urn:confab:meeting:1 spaces"`
	}
	if err := iq.Decode(&q); err != nil || q.Spaces == nil || iq.Get("type") != "get" {
		t.Fatalf("want a spaces iq get, got %s", iq.String())
	}
	cb.Send(t, `<iq type="result" id="`+stream.Escape(iq.Get("id"))+`" from="`+cb.JID+`" to="`+stream.Escape(iq.Get("from"))+`"><spaces xmlns="urn:confab:meeting:1">`+spaces+`</spaces></iq>`)
	return iq.Get("from")
}

// nextStanza returns the next stanza called name the test Call Bridge receives, skipping
// the others and the media signalling (urn:confab:media:1), which this Call Bridge does not
// speak: the page goes on without media. The page's meeting checks (self-pings) are answered
// as a Call Bridge that has the page in the meeting would.
func nextStanza(t *testing.T, cb *xmppdtest.CallBridge, name string) *stream.Element {
	t.Helper()
	for {
		e := cb.Next(t, 20*time.Second)
		if isSelfPing(e) {
			cb.Send(t, `<iq type="result" id="`+stream.Escape(e.Get("id"))+`" from="`+stream.Escape(e.Get("to"))+`" to="`+stream.Escape(e.Get("from"))+`"/>`)
			continue
		}
		if e.Name.Local == name && e.Payload().Space != "urn:confab:media:1" {
			return e
		}
		t.Logf("call bridge: skipping %s", e.String())
	}
}

func isSelfPing(e *stream.Element) bool {
	return e.Name.Local == "iq" && e.Get("type") == "get" && e.Payload() == xml.Name{Space: "urn:confab:meeting:1", Local: "ping"}
}

// TestSignInAndSpaces signs in with SCRAM-SHA-1 (alice) and, for a user without SCRAM keys
// (carol, as a directory user is), with PLAIN after invalid-mechanism; both see their spaces.
func TestSignInAndSpaces(t *testing.T) {
	e := startAppEnv(t, xmppdtest.Options{})
	if err := e.h.Directory.AddPlainOnly("carol", "carol-secret-3"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ user, password, mech string }{
		{"alice", "alice-secret-1", "SCRAM-SHA-1"},
		{"carol", "carol-secret-3", "PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			ctx := e.browser.NewTab(t, 60*time.Second)
			signIn(t, ctx, e.url, tt.user, tt.password)
			full := answerSpaces(t, e.h.CallBridge, `<space jid="design@cb1.example.com" name="Design review" callId="100" uri="design"/><space jid="all@cb1.example.com" name="All hands" callId="200"/>`)
			if !strings.HasPrefix(full, tt.user+"@example.com/") {
				t.Errorf("spaces request from %q, want %s's session", full, tt.user)
			}
			waitState(t, ctx, "signed-in")
			do(t, ctx, "spaces listed", chromedp.WaitVisible(chromedp.CSS(`#spaces-list button[data-space-jid="all@cb1.example.com"]`)))
			if got := text(t, ctx, "#whoami"); got != tt.user+"@example.com" {
				t.Errorf("whoami = %q, want %s@example.com", got, tt.user)
			}
			logins := e.h.CallBridge.Logins()
			if len(logins) == 0 || !logins[len(logins)-1].OK || logins[len(logins)-1].JID != tt.user+"@example.com" {
				t.Errorf("call bridge logins = %+v, want a successful one for %s", logins, tt.user)
			}
			e.browser.Screenshot(t, ctx, "spaces-"+tt.user)
		})
	}
}

// TestGuestJoinPage joins as a guest through the page: the refusals first, then a real
// join, with the test Call Bridge playing the meeting protocol (participants, chat, leave).
func TestGuestJoinPage(t *testing.T) {
	e := startAppEnv(t, xmppdtest.Options{})
	ctx := e.browser.Context(t, 90*time.Second)
	do(t, ctx, "open the join page", chromedp.Navigate(e.url+"/join"), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	waitState(t, ctx, "ready")
	e.browser.Screenshot(t, ctx, "join")

	fill := func(callID, passcode, name string) {
		t.Helper()
		do(t, ctx, "fill the join form",
			clearFields("join-callid", "join-passcode", "join-name"),
			chromedp.SendKeys(chromedp.CSS("#join-callid"), callID),
			chromedp.SendKeys(chromedp.CSS("#join-passcode"), passcode),
			chromedp.SendKeys(chromedp.CSS("#join-name"), name),
			chromedp.Click(chromedp.CSS("#join-submit")),
		)
	}
	refusals := []struct {
		name, callID, passcode string
		err                    error
		want                   string
	}{
		{"wrong passcode", "100", "0000", nil, "Invalid call ID or passcode"},
		{"unknown call ID", "999", "4321", nil, "Invalid call ID or passcode"},
		{"no call bridge", "100", "4321", webapp.ErrNoCallBridge, "No Call Bridge is available"},
		{"throttled", "100", "4321", &webapp.ThrottledError{RetryAfter: 42 * time.Second}, "Too many attempts; try again in 42 seconds"},
	}
	for _, r := range refusals {
		e.guests.fail(r.err)
		fill(r.callID, r.passcode, "Ada Lovelace")
		waitState(t, ctx, "error")
		if got := text(t, ctx, "#join-error"); got != r.want {
			t.Errorf("%s: error shown = %q, want %q", r.name, got, r.want)
		}
		if r.name == "wrong passcode" {
			e.browser.Screenshot(t, ctx, "join-invalid")
		}
	}
	e.guests.fail(nil)

	cb := e.h.CallBridge
	fill("100", "4321", "Ada Lovelace")
	joinNow(t, ctx)
	join := nextStanza(t, cb, "presence")
	var jp struct {
		Join *struct {
			Name string `xml:"name,attr"`
		} `xml:"urn:confab:meeting:1 join"`
	}
	if err := join.Decode(&jp); err != nil || jp.Join == nil {
		t.Fatalf("want a join presence, got %s", join.String())
	}
	if jp.Join.Name != "Ada Lovelace" || !strings.HasPrefix(join.Get("to"), "design@cb1.example.com/") {
		t.Errorf("join to %q as %q, want design@cb1.example.com/… as Ada Lovelace", join.Get("to"), jp.Join.Name)
	}
	guest := join.Get("from")
	space := "design@cb1.example.com"
	participant := func(id, name, jid, role, extra string) string {
		return `<presence from="` + space + `/` + id + `" to="` + guest + `"><participant xmlns="urn:confab:meeting:1" id="` + id + `" name="` + name + `" jid="` + jid + `" role="` + role + `"` + extra + `/></presence>`
	}
	cb.Send(t, participant("p1", "Grace Hopper", "grace@example.com", "owner", ""))
	cb.Send(t, participant("p2", "Ada Lovelace", strings.SplitN(guest, "/", 2)[0], "guest", ` self="true"`))
	waitState(t, ctx, "in-meeting")
	if got := text(t, ctx, "#meeting-name"); got != "Design review" {
		t.Errorf("meeting name = %q, want Design review", got)
	}
	do(t, ctx, "participants shown",
		chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="p1"][data-name="Grace Hopper"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="p2"][data-self="true"]`)),
	)

	// Chat: the page sends groupchat to the space; the Call Bridge sends it to everyone.
	do(t, ctx, "send a chat message", chromedp.SendKeys(chromedp.CSS("#chat-input"), "Hello, <b>everyone</b>"), chromedp.Click(chromedp.CSS("#chat-send")))
	msg := nextStanza(t, cb, "message")
	if msg.Get("type") != "groupchat" || msg.Get("to") != space {
		t.Errorf("chat sent as %s, want groupchat to %s", msg.String(), space)
	}
	var body struct {
		Body string `xml:"body"`
	}
	if err := msg.Decode(&body); err != nil || body.Body != "Hello, <b>everyone</b>" {
		t.Errorf("chat body = %q (%v)", body.Body, err)
	}
	chat := func(id, name, text string) string {
		return `<message type="groupchat" from="` + space + `/` + id + `" to="` + guest + `"><body>` + stream.Escape(text) + `</body><participant xmlns="urn:confab:meeting:1" id="` + id + `" name="` + name + `"/></message>`
	}
	cb.Send(t, chat("p2", "Ada Lovelace", body.Body))
	cb.Send(t, chat("p1", "Grace Hopper", "Welcome, Ada"))
	do(t, ctx, "chat shown",
		chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-testid="chat-message"][data-self="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-testid="chat-message"][data-from="Grace Hopper"]`)),
	)
	if got := text(t, ctx, `#chat-log li[data-self="true"] .chat-body`); got != "Hello, <b>everyone</b>" {
		t.Errorf("own message shown as %q, want the text as typed (not markup)", got)
	}

	// Someone joins and leaves.
	cb.Send(t, participant("p3", "Katherine Johnson", "katherine@example.com", "member", ""))
	do(t, ctx, "a joiner shown", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="p3"]`)))
	if got := text(t, ctx, "#participant-count"); got != "3" {
		t.Errorf("participant count = %s, want 3", got)
	}
	e.browser.Screenshot(t, ctx, "meeting")
	cb.Send(t, `<presence type="unavailable" from="`+space+`/p3" to="`+guest+`"/>`)
	do(t, ctx, "a leaver removed", chromedp.WaitNotPresent(chromedp.CSS(`#participants li[data-participant-id="p3"]`)))

	// Leave.
	do(t, ctx, "leave", chromedp.Click(chromedp.CSS("#leave")))
	leave := nextStanza(t, cb, "presence")
	if leave.Get("type") != "unavailable" || !strings.HasPrefix(leave.Get("to"), space+"/") {
		t.Errorf("leave sent as %s, want unavailable presence to the space", leave.String())
	}
	waitState(t, ctx, "left")
	e.browser.Screenshot(t, ctx, "left")
	xmppdtest.Eventually(t, 10*time.Second, "the guest's session end", func() bool {
		for _, j := range cb.SessionEnds() {
			if j == guest {
				return true
			}
		}
		return false
	})
}

// TestJoinRefusedByCallBridge: the Call Bridge refuses the join presence; the page says so
// and lets the guest try again.
func TestJoinRefusedByCallBridge(t *testing.T) {
	e := startAppEnv(t, xmppdtest.Options{})
	ctx := e.browser.Context(t, 60*time.Second)
	do(t, ctx, "open the join page", chromedp.Navigate(e.url+"/join?callId=100"), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	waitState(t, ctx, "ready")
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#join-callid"))); v != "100" {
		t.Errorf("call ID prefilled with %q, want 100 from the URL", v)
	}
	do(t, ctx, "fill the join form",
		chromedp.SendKeys(chromedp.CSS("#join-passcode"), "4321"),
		chromedp.SendKeys(chromedp.CSS("#join-name"), "Ada"),
		chromedp.Click(chromedp.CSS("#join-submit")),
	)
	joinNow(t, ctx)
	cb := e.h.CallBridge
	join := nextStanza(t, cb, "presence")
	cb.Send(t, `<presence type="error" from="design@cb1.example.com" to="`+join.Get("from")+`"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">This meeting has ended</text></error></presence>`)
	waitState(t, ctx, "error")
	if got := text(t, ctx, "#join-error"); got != "This meeting has ended" {
		t.Errorf("error shown = %q, want the Call Bridge's text", got)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.view`)); v != "join" {
		t.Errorf("view = %q, want join", v)
	}
}

// TestSignedInJoin: a signed-in user looks up a call ID (refused, then found), joins a
// space from the list, leaves, and is back at the spaces list, still signed in.
func TestSignedInJoin(t *testing.T) {
	e := startAppEnv(t, xmppdtest.Options{})
	cb := e.h.CallBridge
	ctx := e.browser.Context(t, 90*time.Second)
	signIn(t, ctx, e.url, "alice", "alice-secret-1")
	spaces := `<space jid="design@cb1.example.com" name="Design review" callId="100"/>`
	answerSpaces(t, cb, spaces)
	waitState(t, ctx, "signed-in")

	// Call ID lookup, refused by the Call Bridge.
	do(t, ctx, "look up a call ID",
		chromedp.SendKeys(chromedp.CSS("#join-callid"), "555"),
		chromedp.SendKeys(chromedp.CSS("#join-passcode"), "1"),
		chromedp.Click(chromedp.CSS("#join-submit")),
	)
	iq := nextStanza(t, cb, "iq")
	var q struct {
		Lookup *struct {
			CallID   string `xml:"callId,attr"`
			Passcode string `xml:"passcode,attr"`
		} `xml:"urn:confab:meeting:1 lookup"`
	}
	if err := iq.Decode(&q); err != nil || q.Lookup == nil || q.Lookup.CallID != "555" || q.Lookup.Passcode != "1" {
		t.Fatalf("want a lookup of 555/1, got %s", iq.String())
	}
	cb.Send(t, `<iq type="error" id="`+stream.Escape(iq.Get("id"))+`" from="`+cb.JID+`" to="`+stream.Escape(iq.Get("from"))+`"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	waitState(t, ctx, "error")
	if got := text(t, ctx, "#join-error"); got != "Invalid call ID or passcode" {
		t.Errorf("error shown = %q", got)
	}

	// Join from the list.
	do(t, ctx, "join from the list", chromedp.Click(chromedp.CSS(`#spaces-list button[data-space-jid="design@cb1.example.com"]`)))
	joinNow(t, ctx)
	join := nextStanza(t, cb, "presence")
	me := join.Get("from")
	if !strings.HasPrefix(me, "alice@example.com/") || !strings.HasPrefix(join.Get("to"), "design@cb1.example.com/") {
		t.Fatalf("join %s", join.String())
	}
	cb.Send(t, `<presence from="design@cb1.example.com/p9" to="`+me+`"><participant xmlns="urn:confab:meeting:1" id="p9" name="alice" jid="alice@example.com" role="owner" self="true"/></presence>`)
	waitState(t, ctx, "in-meeting")

	do(t, ctx, "leave", chromedp.Click(chromedp.CSS("#leave")))
	if leave := nextStanza(t, cb, "presence"); leave.Get("type") != "unavailable" {
		t.Errorf("leave sent as %s", leave.String())
	}
	answerSpaces(t, cb, spaces)
	waitState(t, ctx, "signed-in")
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.view`)); v != "join" {
		t.Errorf("view after leaving = %q, want join", v)
	}
	e.browser.Screenshot(t, ctx, "signed-in-after-leave")
}
