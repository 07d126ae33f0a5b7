package meeting

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

const (
	aliceFull = "alice@example.com/web-1"
	bobFull   = "bob@example.com/web-2"
)

func joinXML(from, space, name string) string {
	return fmt.Sprintf(`<presence from="%s" to="%s/%s"><join xmlns="urn:confab:meeting:1" name="%s"/></presence>`,
		from, space, strings.ReplaceAll(from, "/", "-"), name)
}

func leaveXML(from, space string) string {
	return fmt.Sprintf(`<presence type="unavailable" from="%s" to="%s/x"/>`, from, space)
}

// expectOne checks that to received exactly one stanza and returns it.
func expectOne(t *testing.T, r *recorder, to, what string) *stream.Element {
	t.Helper()
	got := r.take(to)
	if len(got) != 1 {
		t.Fatalf("%s: %s received %d stanzas, want 1: %v", what, to, len(got), got)
	}
	return got[0]
}

func TestMeeting(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sp := e.space(t, store.CoSpace{Name: "Demo", CallID: "4242", Passcode: secret.New("1234"), OwnerJID: "alice@example.com"})
	space := sp.ID + "@" + cbJID
	grant, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "Ada", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	guestFull := grant.JID + "/browser"

	// Alice, the owner, joins first: she is alone, and a call starts.
	if !e.send(t, joinXML(aliceFull, space, "Alice A.")) {
		t.Fatal("Handle did not claim a join")
	}
	self := expectOne(t, e.link, aliceFull, "alice joins")
	alice := participantOf(t, self)
	if self.Name.Local != "presence" || self.Get("type") != "" || self.Get("from") != space+"/"+alice.ID {
		t.Errorf("alice's own presence = %s, want available presence from %s/<her id>", self, space)
	}
	if alice.Self != "true" || alice.Role != RoleOwner || alice.Name != "Alice A." || alice.JID != "alice@example.com" {
		t.Errorf("alice's participant = %+v, want self owner Alice A. alice@example.com", alice)
	}
	calls := e.svc.Calls()
	if len(calls) != 1 || calls[0].CoSpaceID != sp.ID || calls[0].Name != "Demo" || calls[0].Legs != 1 {
		t.Fatalf("Calls() = %+v, want one call in Demo with one leg", calls)
	}
	call := calls[0]

	// The guest joins: it gets alice, then itself; alice gets the guest.
	e.send(t, joinXML(guestFull, space, ""))
	got := e.link.take(guestFull)
	if len(got) != 2 {
		t.Fatalf("the guest received %d stanzas, want 2 (alice, then itself): %v", len(got), got)
	}
	if p := participantOf(t, got[0]); p.ID != alice.ID || p.Self != "" || got[0].Get("from") != space+"/"+alice.ID {
		t.Errorf("the guest's first presence = %s, want alice's", got[0])
	}
	guest := participantOf(t, got[1])
	if guest.Self != "true" || guest.Role != RoleGuest || guest.Name != "Ada" || guest.JID != grant.JID {
		t.Errorf("the guest's own participant = %+v, want self guest Ada %s", guest, grant.JID)
	}
	if p := participantOf(t, expectOne(t, e.link, aliceFull, "guest joins")); p.ID != guest.ID || p.Role != RoleGuest || p.Self != "" {
		t.Errorf("alice was told %+v, want the guest", p)
	}
	if _, ok := e.svc.GuestPassword(strings.TrimSuffix(grant.JID, "@"+domain)); ok {
		t.Error("the guest's password still works after it joined")
	}

	legs, ok := e.svc.Participants(call.ID)
	if !ok || len(legs) != 2 || legs[0].ID != alice.ID || legs[1].ID != guest.ID || legs[1].Type != "guest" || legs[0].Type != "user" || legs[0].RemoteParty != "alice@example.com" {
		t.Errorf("Participants = %+v, %v; want alice (user) then the guest", legs, ok)
	}
	if leg, ok := e.svc.CallLeg(guest.ID); !ok || leg.CallID != call.ID || leg.Name != "Ada" {
		t.Errorf("CallLeg(guest) = %+v, %v", leg, ok)
	}
	if c, _ := e.svc.Call(call.ID); c.Legs != 2 {
		t.Errorf("the call has %d legs, want 2", c.Legs)
	}

	// Chat reaches both, sender included, from the sender's address in the space.
	e.send(t, `<message type="groupchat" id="m1" from="`+guestFull+`" to="`+space+`"><body>hello &amp; welcome</body></message>`)
	for _, to := range []string{aliceFull, guestFull} {
		m := expectOne(t, e.link, to, "chat")
		var v struct {
			Body string `xml:"body"`
		}
		m.Decode(&v)
		p := participantOf(t, m)
		if m.Get("type") != "groupchat" || m.Get("from") != space+"/"+guest.ID || m.Get("id") != "m1" || v.Body != "hello & welcome" || p.ID != guest.ID || p.Name != "Ada" {
			t.Errorf("%s got %s, want the guest's groupchat message", to, m)
		}
	}

	// A repeated join changes nothing for the others and resends the roster.
	e.send(t, joinXML(aliceFull, space, "Alice A."))
	if got := e.link.take(aliceFull); len(got) != 2 {
		t.Errorf("a repeated join got %d presences, want the roster of 2", len(got))
	}
	if got := e.link.take(guestFull); len(got) != 0 {
		t.Errorf("a repeated join was announced to the others: %v", got)
	}

	// Alice leaves: the guest is told; the call goes on.
	e.send(t, leaveXML(aliceFull, space))
	if p := expectOne(t, e.link, guestFull, "alice leaves"); p.Get("type") != "unavailable" || p.Get("from") != space+"/"+alice.ID {
		t.Errorf("the guest got %s, want unavailable presence from alice", p)
	}
	if p := expectOne(t, e.link, aliceFull, "alice leaves"); p.Get("type") != "unavailable" || participantOf(t, p).Self != "true" {
		t.Errorf("alice, who left, got %s; want her own unavailable presence", p)
	}
	if c, ok := e.svc.Call(call.ID); !ok || c.Legs != 1 {
		t.Errorf("after alice left: call %+v, %v; want it with one leg", c, ok)
	}

	// The last one out ends the call, and the guest's account goes.
	e.send(t, leaveXML(guestFull, space))
	expectOne(t, e.link, guestFull, "the guest leaves")
	if calls := e.svc.Calls(); len(calls) != 0 {
		t.Errorf("Calls() = %+v after everyone left, want none", calls)
	}
	if _, ok := e.svc.CallLeg(guest.ID); ok {
		t.Error("the guest's call leg outlived it")
	}
	if n := e.svc.Guests(); n != 0 {
		t.Errorf("%d guest accounts after the guest left, want 0", n)
	}
	if got := e.link.all(); len(got) != 0 {
		t.Errorf("stray stanzas: %v", got)
	}
	// Leaving twice is harmless.
	e.send(t, leaveXML(guestFull, space))
	if got := e.link.all(); len(got) != 0 {
		t.Errorf("a second leave produced %v", got)
	}
}

func TestJoinAuthorization(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	closed := e.space(t, store.CoSpace{Name: "Closed", CallID: "1", OwnerJID: "alice@example.com"})
	openSp := e.space(t, store.CoSpace{Name: "Open", CallID: "2", NonMemberAccess: true})
	other := e.space(t, store.CoSpace{Name: "Other", CallID: "3"})
	if _, err := e.svc.AddMember(ctx, closed.ID, "Carol@Example.com", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddMember(ctx, closed.ID, "dave@example.com", RoleOwner); err != nil {
		t.Fatal(err)
	}
	grant, err := e.svc.JoinAsGuest(ctx, "3", "", "G", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	spaceJID := func(c store.CoSpace) string { return c.ID + "@" + cbJID }

	tests := []struct {
		name      string
		from      string
		space     string
		wantErr   string // stanza error condition, "" for admitted
		wantRole  string
		wantInLog string
	}{
		{"owner", "alice@example.com/a", spaceJID(closed), "", RoleOwner, ""},
		{"member", "carol@example.com/a", spaceJID(closed), "", RoleMember, ""},
		{"member with the owner role", "dave@example.com/a", spaceJID(closed), "", RoleOwner, ""},
		{"non-member", "bob@example.com/a", spaceJID(closed), "forbidden", "", "not a member"},
		{"non-member of an open space", "bob@example.com/a", spaceJID(openSp), "", RoleMember, ""},
		{"guest in its own space", grant.JID + "/g", spaceJID(other), "", RoleGuest, ""},
		{"guest in another space", grant.JID + "/g", spaceJID(openSp), "forbidden", "", "only its own space"},
		{"unknown guest account", "guest123456789@example.com/g", spaceJID(openSp), "forbidden", "", "no such guest account"},
		{"no such space", "alice@example.com/a", "nosuchspace@" + cbJID, "item-not-found", "", "no such space"},
		{"another domain", "mallory@example.net/a", spaceJID(openSp), "forbidden", "", "outside the domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.send(t, `<presence id="j1" from="`+tt.from+`" to="`+tt.space+`/me"><join xmlns="urn:confab:meeting:1"/></presence>`)
			got := e.link.take(tt.from)
			if len(got) == 0 {
				t.Fatal("no answer")
			}
			last := got[len(got)-1]
			if tt.wantErr != "" {
				if last.Get("type") != "error" || errorCondition(last) != tt.wantErr || last.Get("from") != tt.space {
					t.Errorf("got %s, want a presence error %s from %s", last, tt.wantErr, tt.space)
				}
				if !strings.Contains(e.logs.String(), tt.wantInLog) {
					t.Errorf("the refusal is not logged (%q)", tt.wantInLog)
				}
				return
			}
			if p := participantOf(t, last); p.Self != "true" || p.Role != tt.wantRole {
				t.Errorf("admitted as %+v, want self with role %s", p, tt.wantRole)
			}
		})
	}
	e.link.all()
	if c, ok := e.svc.CallOfSpace(closed.ID); !ok || c.Legs != 3 {
		t.Errorf("call of Closed = %+v, %v; want 3 legs", c, ok)
	}
}

func TestSpacesAndLookup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mine := e.space(t, store.CoSpace{Name: "Mine", CallID: "100", URI: "mine", Passcode: secret.New("11"), OwnerJID: "alice@example.com"})
	member := e.space(t, store.CoSpace{Name: "Member", CallID: "200"})
	openSp := e.space(t, store.CoSpace{Name: "Open", CallID: "300", NonMemberAccess: true})
	e.space(t, store.CoSpace{Name: "Closed", CallID: "400"})
	if _, err := e.svc.AddMember(ctx, member.ID, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}

	type spaceAttrs struct {
		JID    string `xml:"jid,attr"`
		Name   string `xml:"name,attr"`
		CallID string `xml:"callId,attr"`
		URI    string `xml:"uri,attr"`
	}
	list := func(from string) []spaceAttrs {
		t.Helper()
		e.send(t, `<iq type="get" id="s1" from="`+from+`" to="`+cbJID+`"><spaces xmlns="urn:confab:meeting:1"/></iq>`)
		r := expectOne(t, e.link, from, "spaces")
		var v struct {
			Spaces *struct {
				Space []spaceAttrs `xml:"space"`
			} `xml:"urn:confab:meeting:1 spaces"`
		}
		if err := r.Decode(&v); err != nil || r.Get("type") != "result" || r.Get("id") != "s1" || r.Get("from") != cbJID || v.Spaces == nil {
			t.Fatalf("spaces answer %s (%v)", r, err)
		}
		return v.Spaces.Space
	}
	got := list(aliceFull)
	want := []spaceAttrs{
		{member.ID + "@" + cbJID, "Member", "200", ""},
		{mine.ID + "@" + cbJID, "Mine", "100", "mine"},
		{openSp.ID + "@" + cbJID, "Open", "300", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alice's spaces = %+v, want %+v", got, want)
	}
	if got := list(bobFull); len(got) != 1 || got[0].Name != "Open" {
		t.Errorf("bob's spaces = %+v, want Open only", got)
	}
	grant, err := e.svc.JoinAsGuest(ctx, "200", "", "G", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := list(grant.JID + "/g"); len(got) != 1 || got[0].Name != "Member" {
		t.Errorf("the guest's spaces = %+v, want its own only", got)
	}

	lookup := func(from, callID, passcode string) *stream.Element {
		t.Helper()
		e.send(t, `<iq type="get" id="l1" from="`+from+`" to="`+cbJID+`"><lookup xmlns="urn:confab:meeting:1" callId="`+callID+`" passcode="`+passcode+`"/></iq>`)
		return expectOne(t, e.link, from, "lookup")
	}
	r := lookup(bobFull, "100", "11")
	var v struct {
		Space *spaceAttrs `xml:"urn:confab:meeting:1 lookup>space"`
	}
	if err := r.Decode(&v); err != nil || r.Get("type") != "result" || v.Space == nil || v.Space.JID != mine.ID+"@"+cbJID || v.Space.Name != "Mine" {
		t.Errorf("lookup = %s, want Mine", r)
	}
	// An unknown call ID and a wrong passcode get the same answer.
	unknown, wrong := lookup(bobFull, "999", ""), lookup(bobFull, "100", "12")
	if errorCondition(unknown) != "forbidden" || errorCondition(wrong) != "forbidden" ||
		string(unknown.Inner) != string(wrong.Inner) {
		t.Errorf("unknown call ID: %s\nwrong passcode: %s\nwant the same forbidden error", unknown, wrong)
	}
	for i := 0; i < DefaultMaxFailures-2; i++ {
		lookup(bobFull, "100", "00")
	}
	if r := lookup(bobFull, "100", "11"); errorCondition(r) != "forbidden" || !strings.Contains(r.String(), "try again") {
		t.Errorf("lookup while throttled = %s, want forbidden saying when to try again", r)
	}
	if r := lookup(aliceFull, "100", "11"); r.Get("type") != "result" {
		t.Errorf("another user's lookup while bob is throttled = %s, want a result", r)
	}
}

func TestUnknownStanzas(t *testing.T) {
	e := newEnv(t)
	sp := e.space(t, store.CoSpace{Name: "Open", CallID: "1", NonMemberAccess: true})
	space := sp.ID + "@" + cbJID
	tests := []struct {
		name    string
		xml     string
		claimed bool
		wantErr string // condition of the answer to aliceFull, "" for no answer
	}{
		{"another component", `<iq type="get" id="1" from="` + aliceFull + `" to="cb2.example.com"><spaces xmlns="urn:confab:meeting:1"/></iq>`, false, ""},
		{"iq result to the bridge", `<iq type="result" id="1" from="example.com" to="` + cbJID + `"/>`, false, ""},
		{"unknown iq", `<iq type="get" id="1" from="` + aliceFull + `" to="` + cbJID + `"><query xmlns="jabber:iq:version"/></iq>`, true, "service-unavailable"},
		{"spaces set", `<iq type="set" id="1" from="` + aliceFull + `" to="` + cbJID + `"><spaces xmlns="urn:confab:meeting:1"/></iq>`, true, "bad-request"},
		{"message to the bridge", `<message from="` + aliceFull + `" to="` + cbJID + `"><body>hi</body></message>`, true, "service-unavailable"},
		{"presence to the bridge", `<presence from="` + aliceFull + `" to="` + cbJID + `"/>`, true, ""},
		{"iq to a space", `<iq type="get" id="1" from="` + aliceFull + `" to="` + space + `"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, true, "service-unavailable"},
		{"chat before joining", `<message type="groupchat" from="` + aliceFull + `" to="` + space + `"><body>hi</body></message>`, true, "not-acceptable"},
		{"private message", `<message type="chat" from="` + aliceFull + `" to="` + space + `/someone"><body>hi</body></message>`, true, "feature-not-implemented"},
		{"presence without join", `<presence from="` + aliceFull + `" to="` + space + `/me"/>`, true, "bad-request"},
		{"error message", `<message type="error" from="` + aliceFull + `" to="` + space + `"/>`, true, ""},
		{"iq from the server domain", `<iq type="get" id="1" from="example.com" to="` + cbJID + `"><spaces xmlns="urn:confab:meeting:1"/></iq>`, true, ""},
		{"client without resource", `<iq type="get" id="1" from="alice@example.com" to="` + cbJID + `"><spaces xmlns="urn:confab:meeting:1"/></iq>`, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.send(t, tt.xml); got != tt.claimed {
				t.Errorf("Handle = %v, want %v", got, tt.claimed)
			}
			got := e.link.take(aliceFull)
			switch {
			case tt.wantErr == "" && len(got) != 0:
				t.Errorf("answered %v, want no answer to alice", got)
			case tt.wantErr != "" && (len(got) != 1 || got[0].Get("type") != "error" || errorCondition(got[0]) != tt.wantErr):
				t.Errorf("answered %v, want one %s error", got, tt.wantErr)
			}
			e.link.all()
		})
	}
}

func TestEndCallAndSessionEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sp := e.space(t, store.CoSpace{Name: "Open", CallID: "1", NonMemberAccess: true})
	space := sp.ID + "@" + cbJID
	grant, err := e.svc.JoinAsGuest(ctx, "1", "", "G", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	guestFull := grant.JID + "/g"
	e.send(t, joinXML(aliceFull, space, "Alice"))
	e.send(t, joinXML(bobFull, space, "Bob"))
	e.send(t, joinXML(guestFull, space, "G"))
	e.link.all()
	bobLeg := e.svc.Calls()[0]

	// Bob's session ends: the others see him go.
	e.svc.SessionEnded(bobFull, "timeout")
	for _, to := range []string{aliceFull, guestFull} {
		if p := expectOne(t, e.link, to, "bob's session ends"); p.Get("type") != "unavailable" || participantOf(t, p).JID != "bob@example.com" {
			t.Errorf("%s got %s, want bob's unavailable presence", to, p)
		}
	}
	if got := e.link.take(bobFull); len(got) != 0 {
		t.Errorf("bob, whose session is gone, was sent %v", got)
	}

	// Ending the call: everyone left is told, the guest account goes, the call is gone.
	if err := e.svc.EndCall(bobLeg.ID, "ended by the API"); err != nil {
		t.Fatal(err)
	}
	self := map[string]bool{}
	for _, to := range []string{aliceFull, guestFull} {
		for _, p := range e.link.take(to) {
			if p.Get("type") != "unavailable" {
				t.Errorf("%s got %s, want only unavailable presence", to, p)
			}
			if participantOf(t, p).Self == "true" {
				self[to] = true
			}
		}
	}
	if !self[aliceFull] || !self[guestFull] {
		t.Errorf("own unavailable presence received: %v; want both", self)
	}
	if len(e.svc.Calls()) != 0 || len(e.svc.CallLegs()) != 0 || e.svc.Guests() != 0 {
		t.Errorf("after EndCall: %d calls, %d legs, %d guests; want none", len(e.svc.Calls()), len(e.svc.CallLegs()), e.svc.Guests())
	}
	if err := e.svc.EndCall(bobLeg.ID, ""); err != ErrNoSuchCall {
		t.Errorf("EndCall of an ended call = %v, want ErrNoSuchCall", err)
	}

	// RemoveCallLeg and deleting the space.
	e.send(t, joinXML(aliceFull, space, "Alice"))
	e.send(t, joinXML(bobFull, space, "Bob"))
	e.link.all()
	legs := e.svc.CallLegs()
	if err := e.svc.RemoveCallLeg(legs[0].ID, "kicked"); err != nil {
		t.Fatal(err)
	}
	if p := expectOne(t, e.link, aliceFull, "alice removed"); participantOf(t, p).Self != "true" {
		t.Errorf("alice got %s, want her own unavailable presence", p)
	}
	expectOne(t, e.link, bobFull, "alice removed")
	if err := e.svc.DeleteSpace(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if p := expectOne(t, e.link, bobFull, "space deleted"); p.Get("type") != "unavailable" {
		t.Errorf("bob got %s when the space was deleted", p)
	}
	if len(e.svc.Calls()) != 0 {
		t.Error("the call outlived its space")
	}
	e.send(t, joinXML(aliceFull, space, "Alice"))
	if p := expectOne(t, e.link, aliceFull, "join a deleted space"); errorCondition(p) != "item-not-found" {
		t.Errorf("join of a deleted space = %s, want item-not-found", p)
	}
}

func TestBouncedStanzaRemovesParticipant(t *testing.T) {
	e := newEnv(t)
	sp := e.space(t, store.CoSpace{Name: "Open", CallID: "1", NonMemberAccess: true})
	space := sp.ID + "@" + cbJID
	e.send(t, joinXML(aliceFull, space, "Alice"))
	e.send(t, joinXML(bobFull, space, "Bob"))
	e.link.all()
	// Bob's client is gone: the XMPP server bounces a message to him.
	e.send(t, `<message type="error" from="`+bobFull+`" to="`+space+`/x"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	if p := expectOne(t, e.link, aliceFull, "bob unreachable"); p.Get("type") != "unavailable" {
		t.Errorf("alice got %s, want bob's unavailable presence", p)
	}
	if got := e.link.take(bobFull); len(got) != 0 {
		t.Errorf("bob got %v in answer to an error", got)
	}
}

// TestConcurrent drives joins, chats and leaves from several goroutines while others read
// the calls, for the race detector, and checks that every participant saw every join in
// the same order as the roster.
func TestConcurrent(t *testing.T) {
	e := newEnv(t)
	sp := e.space(t, store.CoSpace{Name: "Open", CallID: "1", NonMemberAccess: true})
	space := sp.ID + "@" + cbJID
	const users = 8
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, c := range e.svc.Calls() {
				e.svc.Participants(c.ID)
			}
			e.svc.CallLegs()
		}
	}()
	for i := 0; i < users; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := fmt.Sprintf("user%d@example.com/r", i)
			for round := 0; round < 5; round++ {
				e.send(t, joinXML(from, space, "U"))
				e.send(t, `<message type="groupchat" from="`+from+`" to="`+space+`"><body>x</body></message>`)
				e.send(t, leaveXML(from, space))
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if calls := e.svc.Calls(); len(calls) != 0 {
		t.Errorf("calls left after everyone left: %+v", calls)
	}
	// Each user's stream falls into its five stays, each ended by its own unavailable
	// presence. Within a stay, what it heard about each other participant must read
	// "joined" or "joined, left", never a leave first or anything twice; and it must have
	// heard about itself joining and leaving. Writes from several goroutines keep that order
	// only if the queue does.
	for i := 0; i < users; i++ {
		to := fmt.Sprintf("user%d@example.com/r", i)
		seen, stays := map[string]string{}, 0
		for _, s := range e.link.take(to) {
			if s.Name.Local != "presence" {
				continue
			}
			p := participantOf(t, s)
			ev := "+"
			if s.Get("type") == "unavailable" {
				ev = "-"
			}
			key := p.ID
			if p.Self == "true" {
				key = "self"
			}
			seen[key] += ev
			if key == "self" && ev == "-" {
				for id, evs := range seen {
					if evs != "+" && evs != "+-" {
						t.Errorf("%s heard %q about participant %s in one stay, want + or +-", to, evs, id)
					}
				}
				if seen["self"] != "+-" {
					t.Errorf("%s heard %q about itself in one stay, want +-", to, seen["self"])
				}
				seen, stays = map[string]string{}, stays+1
			}
		}
		if stays != 5 || len(seen) != 0 {
			t.Errorf("%s: %d stays and %d participants heard of after the last, want 5 and 0", to, stays, len(seen))
		}
	}
}

// TestLookupThrottledPerSourceAndCallID: guesses spread over many accounts (guest accounts
// cost nothing) are limited per address they logged in from, and per call ID.
func TestLookupThrottledPerSourceAndCallID(t *testing.T) {
	e := newEnv(t)
	e.space(t, store.CoSpace{Name: "Target", CallID: "4242", Passcode: secret.New("9876"), NonMemberAccess: true})
	lookup := func(from, callID, passcode string) *stream.Element {
		t.Helper()
		e.send(t, `<iq type="get" id="l1" from="`+from+`" to="`+cbJID+`"><lookup xmlns="urn:confab:meeting:1" callId="`+callID+`" passcode="`+passcode+`"/></iq>`)
		return expectOne(t, e.link, from, "lookup")
	}
	t.Run("per address", func(t *testing.T) {
		// Each guess from a fresh account, all from one address.
		for i := range DefaultMaxFailures {
			acct := fmt.Sprintf("guest%010d@example.com", i)
			e.svc.LoginFrom(acct, "ip:203.0.113.9")
			if r := lookup(acct+"/web", "4242", fmt.Sprint(1000+i)); errorCondition(r) != "forbidden" {
				t.Fatalf("guess %d: %s", i, r)
			}
		}
		acct := "guest9999999999@example.com"
		e.svc.LoginFrom(acct, "ip:203.0.113.9")
		if r := lookup(acct+"/web", "4242", "9876"); !strings.Contains(r.String(), "try again") {
			t.Errorf("a new account from the same address, right passcode: %s, want throttled", r)
		}
		e.svc.LoginFrom("carol@example.com", "ip:198.51.100.1")
		if r := lookup("carol@example.com/web", "4242", "9876"); r.Get("type") != "result" {
			t.Errorf("another address: %s, want a result", r)
		}
	})
	t.Run("per call ID", func(t *testing.T) {
		// Twenty wrong passcodes for one call ID, each from its own account and address.
		for i := range 20 {
			acct := fmt.Sprintf("g%02d@example.com", i)
			e.svc.LoginFrom(acct, fmt.Sprintf("ip:192.0.2.%d", i))
			lookup(acct+"/web", "4242", fmt.Sprint(2000+i))
		}
		e.svc.LoginFrom("dave@example.com", "ip:198.51.100.2")
		if r := lookup("dave@example.com/web", "4242", "9876"); !strings.Contains(r.String(), "try again") {
			t.Errorf("after 20 wrong passcodes for the call ID from everywhere: %s, want throttled", r)
		}
	})
}
