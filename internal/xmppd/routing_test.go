package xmppd_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

func TestMessageClientToClient(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	alice.Send(t, `<message to="`+bob.JID+`" id="m1" type="chat"><body>hello bob</body></message>`)
	m := bob.Expect(t, "message", xmppdtest.IsKind("message", "m1"))
	if got := m.Get("from"); got != alice.JID {
		t.Errorf("from = %q, want the sender's full JID %q (stamped by the server)", got, alice.JID)
	}
	if got := xmppdtest.Body(m); got != "hello bob" {
		t.Errorf("body = %q", got)
	}
	// A client may write its own address as from; the server stamps the full JID anyway.
	bob.Send(t, `<message from="bob@example.com" to="`+alice.JID+`" id="m2"><body>hi</body></message>`)
	if got := alice.Expect(t, "reply", xmppdtest.IsKind("message", "m2")).Get("from"); got != bob.JID {
		t.Errorf("reply from = %q, want %q", got, bob.JID)
	}
}

func TestMessageToBareJID(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob1 := h.Login(t, "bob")
	bob2 := h.Login(t, "bob")
	bob3 := h.Login(t, "bob") // never sends presence: not available

	// Before any presence no resource is available: service-unavailable.
	alice.Send(t, `<message to="bob@example.com" id="m0"><body>anyone?</body></message>`)
	e := alice.Expect(t, "error", xmppdtest.IsKind("message", "m0"))
	if e.Get("type") != "error" || xmppdtest.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("got %s, want a service-unavailable error", e)
	}

	for i, c := range []*xmppdtest.Client{bob1, bob2} {
		c.Send(t, `<presence/>`)
		ping(t, c, "after-presence-"+string(rune('a'+i))) // the presence was processed
	}
	alice.Send(t, `<message to="bob@example.com" id="m1"><body>both</body></message>`)
	for _, c := range []*xmppdtest.Client{bob1, bob2} {
		if got := xmppdtest.Body(c.Expect(t, "message", xmppdtest.IsKind("message", "m1"))); got != "both" {
			t.Errorf("%s got body %q", c.JID, got)
		}
	}
	// bob3 is not available: it must not get it. Its next stanza is the answer to a ping.
	ping(t, bob3, "p3")

	// Presence to a bare JID goes to every session.
	alice.Send(t, `<presence to="bob@example.com" id="pr1"/>`)
	for _, c := range []*xmppdtest.Client{bob1, bob2, bob3} {
		c.Expect(t, "directed presence", xmppdtest.IsKind("presence", "pr1"))
	}
	// A message to a resource that does not exist falls back to the bare JID.
	alice.Send(t, `<message to="bob@example.com/gone" id="m2" type="chat"><body>fallback</body></message>`)
	bob1.Expect(t, "fallback message", xmppdtest.IsKind("message", "m2"))
}

func TestServiceUnavailable(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	tests := []struct {
		name, send, id, wantCond string
	}{
		{"iq to unknown component", `<iq type="get" id="q1" to="nothing.example.com"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, "q1", "service-unavailable"},
		{"iq to remote domain", `<iq type="get" id="q2" to="example.org"><ping xmlns="urn:xmpp:ping"/></iq>`, "q2", "service-unavailable"},
		{"iq to offline full jid", `<iq type="get" id="q3" to="bob@example.com/nope"><ping xmlns="urn:xmpp:ping"/></iq>`, "q3", "service-unavailable"},
		{"iq to another user's bare jid", `<iq type="get" id="q4" to="bob@example.com"><vCard xmlns="vcard-temp"/></iq>`, "q4", "service-unavailable"},
		{"unknown iq to the server", `<iq type="get" id="q5" to="example.com"><query xmlns="jabber:iq:version"/></iq>`, "q5", "service-unavailable"},
		{"message to unknown domain", `<message type="chat" id="q6" to="someone@example.net"><body>x</body></message>`, "q6", "service-unavailable"},
		{"malformed to", `<message id="q7" to="@@"><body>x</body></message>`, "q7", "jid-malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice.Send(t, tt.send)
			e := alice.Expect(t, "the error", func(e *stream.Element) bool { return e.Get("id") == tt.id })
			if e.Get("type") != "error" || xmppdtest.ErrorCondition(e) != tt.wantCond {
				t.Errorf("got %s, want a %s stanza error", e, tt.wantCond)
			}
		})
	}
	t.Run("never an error for an error", func(t *testing.T) {
		alice.Send(t, `<message type="error" id="e1" to="nothing.example.com"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
		alice.Send(t, `<iq type="result" id="e2" to="nothing.example.com"/>`)
		alice.Send(t, `<iq type="error" id="e3" to="bob@example.com/x"/>`)
		// The next thing alice receives must be the answer to this ping, not an error.
		alice.Send(t, `<iq type="get" id="after" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
		e, err := alice.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Get("id") != "after" {
			t.Errorf("got %s, want the ping result (no error in answer to an error or a result)", e)
		}
	})
}

func TestServerIQ(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	for _, transport := range []string{"tcp", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			var c *xmppdtest.Client
			if transport == "tcp" {
				c = h.Login(t, "alice")
			} else {
				c = h.LoginWebSocket(t, "alice")
			}
			tests := []struct {
				name, send, id, want string
			}{
				{"ping", `<iq type="get" id="i1" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`, "i1", ""},
				{"ping without to", `<iq type="get" id="i2"><ping xmlns="urn:xmpp:ping"/></iq>`, "i2", ""},
				{"disco#info", `<iq type="get" id="i3" to="example.com"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, "i3", `category="server"`},
				{"roster", `<iq type="get" id="i4"><query xmlns="jabber:iq:roster"/></iq>`, "i4", `jabber:iq:roster`},
				{"session", `<iq type="set" id="i5" to="example.com"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>`, "i5", ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c.Send(t, tt.send)
					e := c.Expect(t, "result", xmppdtest.IsKind("iq", tt.id))
					if e.Get("type") != "result" {
						t.Fatalf("got %s, want a result", e)
					}
					if !strings.Contains(string(e.Inner), tt.want) {
						t.Errorf("result %s lacks %q", e, tt.want)
					}
				})
			}
		})
	}
}

func TestClientComponentClient(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	cb := h.CallBridge
	alice := h.Login(t, "alice")

	// Client to component: any address at the component's domain reaches it.
	alice.Send(t, `<message to="room1@cb1.example.com" id="c1"><body>join</body></message>`)
	m := cb.Next(t, 5*time.Second)
	if m.Get("id") != "c1" || m.Get("from") != alice.JID || m.Get("to") != "room1@cb1.example.com" {
		t.Fatalf("component got %s", m)
	}
	if m.Name.Space != stream.NSComponent {
		t.Errorf("stanza reached the component in %q, want %q", m.Name.Space, stream.NSComponent)
	}
	// Component to client.
	cb.Send(t, `<message from="room1@cb1.example.com" to="`+alice.JID+`" id="c2"><body>welcome</body></message>`)
	got := alice.Expect(t, "component message", xmppdtest.IsKind("message", "c2"))
	if got.Get("from") != "room1@cb1.example.com" || xmppdtest.Body(got) != "welcome" {
		t.Errorf("client got %s", got)
	}
	// A component's iq to the server is answered by the server.
	cb.Send(t, `<iq type="get" id="c3" from="cb1.example.com" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if r := cb.Next(t, 5*time.Second); r.Get("id") != "c3" || r.Get("type") != "result" {
		t.Errorf("component ping answered with %s", r)
	}
	// And a client's ping to the component is answered by it (the test Call Bridge does).
	alice.Send(t, `<iq type="get" id="c4" to="cb1.example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if r := alice.Expect(t, "component pong", xmppdtest.IsKind("iq", "c4")); r.Get("type") != "result" || r.Get("from") != "cb1.example.com" {
		t.Errorf("client ping to the component answered with %s", r)
	}
	// A component's stanza to an unknown user is refused back to it.
	cb.Send(t, `<message from="cb1.example.com" to="nobody@example.com/x" id="c5" type="chat"><body>?</body></message>`)
	if r := cb.Next(t, 5*time.Second); r.Get("id") != "c5" || r.Get("type") != "error" {
		t.Errorf("component got %s, want a service-unavailable error", r)
	}
}

func TestSessionEnd(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	alice.Send(t, `<presence to="`+bob.JID+`"/>`)
	alice.Send(t, `<presence to="meeting@cb1.example.com"/>`)
	bob.Expect(t, "alice's presence", xmppdtest.IsKind("presence", ""))
	if p := h.CallBridge.Next(t, 5*time.Second); p.Name.Local != "presence" {
		t.Fatalf("component got %s, want presence", p)
	}
	aliceJID := alice.JID
	alice.Close()

	// Everyone alice sent directed presence to learns she left...
	p := bob.Expect(t, "unavailable presence", xmppdtest.IsKind("presence", ""))
	if p.Get("type") != "unavailable" || p.Get("from") != aliceJID {
		t.Errorf("bob got %s, want unavailable presence from %s", p, aliceJID)
	}
	p = h.CallBridge.Next(t, 5*time.Second)
	if p.Name.Local != "presence" || p.Get("type") != "unavailable" || p.Get("from") != aliceJID {
		t.Errorf("component got %s, want unavailable presence from %s", p, aliceJID)
	}
	// ...and so does the Call Bridge that authenticated her.
	xmppdtest.Eventually(t, 5*time.Second, "session-end at the Call Bridge", func() bool {
		return slices.Contains(h.CallBridge.SessionEnds(), aliceJID)
	})
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob") // bob never reads again
	body := strings.Repeat("x", 200<<10)
	gone := false
	for i := 0; i < 400 && !gone; i++ {
		alice.Send(t, `<message type="chat" to="`+bob.JID+`" id="flood"><body>`+body+`</body></message>`)
		if i%20 == 19 {
			// Alice is never held up: her ping is answered while bob does not read. Once bob's
			// session is gone, her messages bounce.
			alice.Send(t, `<iq type="get" id="alive" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
			for {
				e := alice.Expect(t, "ping or bounce", func(e *stream.Element) bool { return true })
				if e.Get("type") == "error" {
					gone = true
				}
				if e.Get("id") == "alive" {
					break
				}
			}
		}
	}
	if !gone {
		t.Fatal("bob never reads, yet 80 MB later his session is still there")
	}
	_ = bob
}

// TestIQSemantics: RFC 6120 §8.2.3. An iq without an id, with an unknown type, or a get or
// set with no payload or two of them is answered bad-request, and the stream goes on. Before,
// such iqs were routed (a ping with two payloads was answered as a ping; an iq of type
// 'foo' to the server went unanswered).
func TestIQSemantics(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	tests := []struct {
		name, send, id string
	}{
		{"no id", `<iq type="get" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`, ""},
		{"unknown type", `<iq type="foo" id="q2" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`, "q2"},
		{"no type", `<iq id="q3" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`, "q3"},
		{"two payloads", `<iq type="get" id="q4" to="example.com"><ping xmlns="urn:xmpp:ping"/><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, "q4"},
		{"two payloads to a user", `<iq type="set" id="q5" to="` + bob.JID + `"><a xmlns="urn:x"/><b xmlns="urn:x"/></iq>`, "q5"},
		{"no payload", `<iq type="get" id="q6" to="example.com"/>`, "q6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice.Send(t, tt.send)
			e := alice.Expect(t, "the error for "+tt.name, func(e *stream.Element) bool {
				return e.Name.Local == "iq" && e.Get("id") == tt.id
			})
			if e.Get("type") != "error" || xmppdtest.ErrorCondition(e) != "bad-request" {
				t.Fatalf("answer %s, want an iq error bad-request", e)
			}
			ping(t, alice, "after-"+tt.id)
		})
	}
	// The target of the refused iq is served as before.
	ping(t, bob, "bob-alive")
}

// TestCallBridgeGoneTellsItsMeetings: when a Call Bridge's link drops, every session that
// had sent presence into one of its meetings is told at once, by unavailable presence from
// the space, with the reason in words; sessions elsewhere are not.
func TestCallBridgeGoneTellsItsMeetings(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	cb := h.CallBridge
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	alice.Send(t, `<presence to="space1@`+cb.JID+`/p12"><join xmlns="urn:confab:meeting:1"/></presence>`)
	cb.Next(t, 5*time.Second) // the join reached the Call Bridge
	ping(t, bob, "b1")
	cb.Close()
	got := alice.Expect(t, "the meeting's end", func(e *stream.Element) bool {
		return e.Name.Local == "presence" && e.Get("type") == "unavailable"
	})
	if from := got.Get("from"); from != "space1@"+cb.JID {
		t.Errorf("unavailable presence from %q, want the space's address", from)
	}
	if !strings.Contains(string(got.Inner), "no longer connected") {
		t.Errorf("presence %s does not say why", got)
	}
	// Bob was in no meeting: the next thing he gets is the answer to his ping.
	ping(t, bob, "b2")

	// The Call Bridge comes back: alice is told at once (available presence from it), so
	// her browser rejoins without waiting for its next retry; bob, again, is not.
	back := h.ConnectCallBridge(t, xmppdtest.DefaultCallBridge)
	got = alice.Expect(t, "the Call Bridge back", func(e *stream.Element) bool {
		return e.Name.Local == "presence" && e.Get("type") == "" && e.Get("from") == back.JID
	})
	ping(t, bob, "b3")
}
