package xmppd_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

const nsSM = "urn:xmpp:sm:3"

func isSM(local string) func(*stream.Element) bool {
	return func(e *stream.Element) bool { return e.Name.Space == nsSM && e.Name.Local == local }
}

// enableResume enables stream management with resumption and returns the resumption id.
func enableResume(t *testing.T, c *xmppdtest.Client, attrs string) *stream.Element {
	t.Helper()
	c.Send(t, `<enable xmlns="`+nsSM+`" resume="true"`+attrs+`/>`)
	e := c.Expect(t, "<enabled/>", isSM("enabled"))
	if e.Get("resume") != "true" || len(e.Get("id")) < 22 {
		t.Fatalf("enabled = %s, want resume='true' and an id of 128 bits or more", e)
	}
	return e
}

// authOnly opens a new connection (TCP or WebSocket) and authenticates user, without binding.
func authOnly(t *testing.T, h *xmppdtest.Harness, user string, ws bool) *xmppdtest.Client {
	t.Helper()
	var c *xmppdtest.Client
	var err error
	if ws {
		c, err = h.DialWebSocket(xmppdtest.WebSocketOptions{})
	} else {
		c, err = h.Dial()
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	if !ws {
		if err := c.StartTLS(); err != nil {
			t.Fatalf("starttls: %v", err)
		}
	}
	if err := c.Auth("SCRAM-SHA-256", user, h.Users[user]); err != nil {
		t.Fatalf("auth %s: %v", user, err)
	}
	if !c.HasFeature(nsSM, "sm") {
		t.Fatalf("post-authentication features %s do not offer <sm xmlns='%s'/>", c.Features, nsSM)
	}
	return c
}

// resume sends <resume/> and returns the server's answer.
func resume(t *testing.T, c *xmppdtest.Client, previd string, h uint32) *stream.Element {
	t.Helper()
	c.Send(t, fmt.Sprintf(`<resume xmlns="%s" previd="%s" h="%d"/>`, nsSM, previd, h))
	e, err := c.Next()
	if err != nil {
		t.Fatalf("answer to <resume/>: %v", err)
	}
	return e
}

// received reads until the result of a ping sent now and at least want messages, and
// returns the ids of the messages, answering the server's <r/> on the way; h counts the
// stanzas received.
func received(t *testing.T, c *xmppdtest.Client, h *uint32, want int) []string {
	t.Helper()
	marker := "marker-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.Send(t, `<iq type="get" id="`+marker+`"><ping xmlns="urn:xmpp:ping"/></iq>`)
	var ids []string
	seen := false
	for !seen || len(ids) < want {
		e, err := c.Next()
		if err != nil {
			t.Fatalf("reading messages (got %v so far): %v", ids, err)
		}
		if e.Name.Space == nsSM {
			if e.Name.Local == "r" {
				c.Send(t, fmt.Sprintf(`<a xmlns="%s" h="%d"/>`, nsSM, *h))
			}
			continue
		}
		*h++
		if e.Name.Local == "iq" && e.Get("id") == marker {
			seen = true
		}
		if e.Name.Local == "message" {
			ids = append(ids, e.Get("id"))
		}
	}
	return ids
}

func sendMessages(t *testing.T, from *xmppdtest.Client, to string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		from.Send(t, `<message to="`+to+`" id="`+id+`" type="chat"><body>`+id+`</body></message>`)
	}
}

func waitDetached(t *testing.T, h *xmppdtest.Harness, n int) {
	t.Helper()
	xmppdtest.Eventually(t, 10*time.Second, strconv.Itoa(n)+" detached sessions", func() bool {
		return xmppd.DetachedSessions(h.Server) == n
	})
}

func TestStreamManagementAcks(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	if !alice.HasFeature(nsSM, "sm") {
		t.Errorf("post-authentication features %s do not offer stream management", alice.Features)
	}
	alice.Send(t, `<enable xmlns="`+nsSM+`"/>`)
	en := alice.Expect(t, "<enabled/>", isSM("enabled"))
	if en.Get("id") != "" || en.Get("resume") != "" {
		t.Errorf("enabled = %s, want neither id nor resume without resume='true'", en)
	}
	// Enabling twice is refused.
	alice.Send(t, `<enable xmlns="`+nsSM+`"/>`)
	if f := alice.Expect(t, "<failed/>", isSM("failed")); !strings.Contains(f.String(), "unexpected-request") {
		t.Errorf("second enable: got %s, want failed with unexpected-request", f)
	}

	// The server counts what it handles: two pings, then <r/>.
	for i := range 2 {
		alice.Send(t, `<iq type="get" id="p`+strconv.Itoa(i)+`"><ping xmlns="urn:xmpp:ping"/></iq>`)
	}
	alice.Send(t, `<r xmlns="`+nsSM+`"/>`)
	var handled uint32
	for {
		e, err := alice.Next()
		if err != nil {
			t.Fatal(err)
		}
		if isSM("a")(e) {
			if got := e.Get("h"); got != "2" {
				t.Errorf("<a h=%q/> after two stanzas, want 2", got)
			}
			break
		}
		if e.IsStanza() {
			handled++
		}
	}

	// The server asks for an acknowledgement when stanzas pile up.
	ids := []string{"m1", "m2", "m3", "m4", "m5", "m6"}
	sendMessages(t, bob, alice.JID, ids...)
	var got []string
	sawR := false
	for len(got) < len(ids) || !sawR {
		e, err := alice.Next()
		if err != nil {
			t.Fatalf("after %v (r: %v): %v", got, sawR, err)
		}
		switch {
		case isSM("r")(e):
			sawR = true
		case e.IsStanza():
			handled++
			if e.Name.Local == "message" {
				got = append(got, e.Get("id"))
			}
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("messages %v, want %v", got, ids)
	}
	alice.Send(t, fmt.Sprintf(`<a xmlns="%s" h="%d"/>`, nsSM, handled))
	ping(t, alice, "still-fine")

	// An acknowledgement of more than was sent is a stream error [XEP-0198 §4].
	alice.Send(t, fmt.Sprintf(`<a xmlns="%s" h="%d"/>`, nsSM, handled+10))
	se := alice.ExpectStreamError(t)
	if se.Condition != "undefined-condition" || !strings.Contains(se.Text, "acknowledged") {
		t.Errorf("stream error %s (%s), want undefined-condition (handled-count-too-high)", se.Condition, se.Text)
	}
}

func TestStreamResumeTCP(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	en := enableResume(t, alice, ` max="60"`)
	if got := en.Get("max"); got != "60" {
		t.Errorf("enabled max = %q, want the client's 60 (under the server's 300)", got)
	}
	id := en.Get("id")

	// Alice gets m1 and m2, but (as far as the server knows) acknowledges only m1: m2 was
	// sent and not acked when the network went.
	sendMessages(t, bob, alice.JID, "m1", "m2")
	ping(t, bob, "routed") // bob's stanzas are handled in order: m1 and m2 are queued for Alice
	var h1 uint32
	if got := received(t, alice, &h1, 2); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("before the drop: %v, want m1 m2", got)
	}
	alice.Drop()
	waitDetached(t, h, 1)
	// Bob writes while Alice is away; the session is still routable.
	sendMessages(t, bob, alice.JID, "m3", "m4")
	ping(t, bob, "bob-sent")

	alice2 := authOnly(t, h, "alice", false)
	r := resume(t, alice2, id, 1) // only m1 reached the application
	if !isSM("resumed")(r) || r.Get("previd") != id {
		t.Fatalf("answer to resume: %s, want <resumed previd=%q/>", r, id)
	}
	// The server handled Alice's ping (the marker) and nothing else: h=1.
	if got := r.Get("h"); got != "1" {
		t.Errorf("resumed h = %q, want 1 (the one stanza Alice sent)", got)
	}
	h2 := uint32(1)
	if got, want := received(t, alice2, &h2, 3), []string{"m2", "m3", "m4"}; !slices.Equal(got, want) {
		t.Errorf("after resuming: %v, want %v (each once, in order)", got, want)
	}
	waitDetached(t, h, 0)
	// The resumed session goes on both ways.
	sendMessages(t, bob, alice.JID, "m5")
	if got := received(t, alice2, &h2, 1); !slices.Equal(got, []string{"m5"}) {
		t.Errorf("after resuming, new message: %v, want m5", got)
	}
	alice2.Send(t, `<message to="`+bob.JID+`" id="back" type="chat"><body>back</body></message>`)
	if m := bob.Expect(t, "alice's message", xmppdtest.IsKind("message", "back")); m.Get("from") != alice.JID {
		t.Errorf("from = %q, want the resumed session's JID %q", m.Get("from"), alice.JID)
	}
}

func TestStreamResumeTakesOverAttached(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	id := enableResume(t, alice, "").Get("id")
	// Alice's old connection is half-open as far as she knows; she resumes on a new one.
	alice2 := authOnly(t, h, "alice", false)
	if r := resume(t, alice2, id, 0); !isSM("resumed")(r) {
		t.Fatalf("answer to resume: %s, want <resumed/>", r)
	}
	if err := alice.ExpectClosed(); err != nil {
		t.Errorf("the old connection: %v, want it closed", err)
	}
	ping(t, alice2, "after-takeover")
}

func TestStreamResumeFailures(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	id := enableResume(t, alice, "").Get("id")
	alice.Drop()
	waitDetached(t, h, 1)

	for _, tc := range []struct {
		name, user, previd string
	}{
		{"unknown id", "alice", "not-an-id-of-this-server-000000"},
		{"another account's id", "bob", id},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := authOnly(t, h, tc.user, false)
			r := resume(t, c, tc.previd, 0)
			if !isSM("failed")(r) || !strings.Contains(r.String(), "item-not-found") {
				t.Fatalf("answer: %s, want <failed><item-not-found/></failed>", r)
			}
			// The client may bind as usual instead.
			if _, err := c.Bind(""); err != nil {
				t.Fatalf("bind after a failed resumption: %v", err)
			}
			ping(t, c, "bound")
		})
	}
	// Alice's session waited through all that.
	if n := xmppd.DetachedSessions(h.Server); n != 1 {
		t.Errorf("%d detached sessions, want Alice's still there", n)
	}
	t.Run("handled count too high", func(t *testing.T) {
		c := authOnly(t, h, "alice", false)
		c.Send(t, fmt.Sprintf(`<resume xmlns="%s" previd="%s" h="7"/>`, nsSM, id))
		if se := c.ExpectStreamError(t); se.Condition != "undefined-condition" {
			t.Errorf("stream error %s, want undefined-condition (handled-count-too-high)", se.Condition)
		}
	})
	c := authOnly(t, h, "alice", false)
	if r := resume(t, c, id, 0); !isSM("resumed")(r) {
		t.Errorf("the rightful resumption after the failures: %s, want <resumed/>", r)
	}
}

func TestStreamResumeExpires(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.ResumeTimeout = 300 * time.Millisecond }})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	en := enableResume(t, alice, ` max="3600"`)
	if got := en.Get("max"); got != "0" && got != "1" {
		// 300ms rounds down to 0 seconds: what matters is that 3600 is not granted.
		t.Errorf("enabled max = %q, want the server's limit, not the client's 3600", got)
	}
	alice.Drop()
	waitDetached(t, h, 1)
	sendMessages(t, bob, alice.JID, "lost")
	bob.Send(t, `<iq type="get" id="q1" to="`+alice.JID+`"><query xmlns="jabber:iq:version"/></iq>`)
	// Nobody resumes: the session ends and what it never acknowledged is bounced.
	waitDetached(t, h, 0)
	bounce := bob.Expect(t, "the bounce of the message", xmppdtest.IsKind("message", "lost"))
	if bounce.Get("type") != "error" || xmppdtest.ErrorCondition(bounce) != "recipient-unavailable" {
		t.Errorf("bounce = %s, want a recipient-unavailable error", bounce)
	}
	iq := bob.Expect(t, "the answer to the iq", xmppdtest.IsKind("iq", "q1"))
	if iq.Get("type") != "error" || xmppdtest.ErrorCondition(iq) != "service-unavailable" {
		t.Errorf("iq answer = %s, want service-unavailable", iq)
	}
	// The address is gone.
	sendMessages(t, bob, alice.JID, "after")
	if m := bob.Expect(t, "error", xmppdtest.IsKind("message", "after")); m.Get("type") != "error" {
		t.Errorf("message to the expired session's JID: %s, want an error", m)
	}
	xmppdtest.Eventually(t, 5*time.Second, "the Call Bridge told of the session's end", func() bool {
		return slices.Contains(h.CallBridge.SessionEnds(), alice.JID)
	})
	c := authOnly(t, h, "alice", false)
	if r := resume(t, c, en.Get("id"), 0); !isSM("failed")(r) || !strings.Contains(r.String(), "item-not-found") {
		t.Errorf("resuming an expired session: %s, want failed with item-not-found", r)
	}
}

func TestStreamResumeWebSocket(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.LoginWebSocket(t, "alice")
	bob := h.Login(t, "bob")
	id := enableResume(t, alice, "").Get("id")
	sendMessages(t, bob, alice.JID, "w1")
	ping(t, bob, "routed")
	var n uint32
	if got := received(t, alice, &n, 1); !slices.Equal(got, []string{"w1"}) {
		t.Fatalf("before the drop: %v", got)
	}
	alice.Drop()
	waitDetached(t, h, 1)
	sendMessages(t, bob, alice.JID, "w2", "w3")
	ping(t, bob, "sent")
	alice2 := authOnly(t, h, "alice", true)
	if r := resume(t, alice2, id, n); !isSM("resumed")(r) {
		t.Fatalf("answer to resume over WebSocket: %s", r)
	}
	if got, want := received(t, alice2, &n, 2), []string{"w2", "w3"}; !slices.Equal(got, want) {
		t.Errorf("after resuming over a new WebSocket: %v, want %v", got, want)
	}
}

func TestShutdownEndsDetachedSessions(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	enableResume(t, alice, "")
	alice.Drop()
	waitDetached(t, h, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := xmppd.DetachedSessions(h.Server); n != 0 {
		t.Errorf("%d detached sessions after shutdown, want 0", n)
	}
}
