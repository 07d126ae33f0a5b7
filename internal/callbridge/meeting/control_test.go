package meeting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// profile creates a profile of kind with fields.
func (e *env) profile(t *testing.T, kind string, fields map[string]string) string {
	t.Helper()
	o, err := e.svc.CreateProfile(context.Background(), kind, fields)
	if err != nil {
		t.Fatalf("CreateProfile(%s, %v): %v", kind, fields, err)
	}
	return o.ID
}

// guest creates a guest account with the call ID and passcode and returns its full JID.
func (e *env) guest(t *testing.T, callID, passcode, name string) string {
	t.Helper()
	g, err := e.svc.JoinAsGuest(context.Background(), callID, passcode, name, "192.0.2.7:1")
	if err != nil {
		t.Fatalf("JoinAsGuest(%s, %s): %v", callID, passcode, err)
	}
	return g.JID + "/web"
}

// selfPresence joins from to space and returns its own presence's participant.
func (e *env) joinSelf(t *testing.T, from, space, name string) participantInfo {
	t.Helper()
	e.send(t, joinXML(from, space, name))
	got := e.link.take(from)
	if len(got) == 0 {
		t.Fatalf("%s joining got nothing", from)
	}
	last := got[len(got)-1]
	if last.Get("type") != "" {
		t.Fatalf("%s joining got %s", from, last)
	}
	return participantOf(t, last)
}

func statusOf(t *testing.T, el *stream.Element) string {
	t.Helper()
	var v struct {
		Status string `xml:"status"`
	}
	if err := el.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Status
}

// TestAccessMethodProfiles: a host PIN and a guest PIN into one space, each with its
// profile: the guest joins muted and may not mute others; the host may.
func TestAccessMethodProfiles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	guestProfile := e.profile(t, store.KindCallLegProfile, map[string]string{"rxAudioMute": "true", "muteSelfAllowed": "false", "name": "guests"})
	// Settings the host's profile leaves unset come from the space's (CMS's inheritance).
	hostProfile := e.profile(t, store.KindCallLegProfile, map[string]string{"muteOthersAllowed": "true", "defaultLayout": "speakerOnly", "rxAudioMute": "false"})
	sp := e.space(t, store.CoSpace{Name: "Board", CallID: "700", CallLegProfile: guestProfile, DefaultLayout: "allEqual"})
	space := sp.ID + "@" + cbJID
	am, err := e.svc.CreateAccessMethod(ctx, store.AccessMethod{CoSpaceID: sp.ID, Name: "hosts", CallID: "700",
		Passcode: secret.New("9999"), CallLegProfile: hostProfile})
	if err != nil {
		t.Fatal(err)
	}
	if am.Secret.IsZero() {
		t.Error("an access method with a call ID got no secret")
	}
	if _, err := e.svc.CreateAccessMethod(ctx, store.AccessMethod{CoSpaceID: sp.ID, CallID: "700"}); !errors.Is(err, store.ErrCallIDPasscodeTaken) {
		t.Errorf("an access method with the space's call ID and passcode: %v", err)
	}
	if _, err := e.svc.CreateAccessMethod(ctx, store.AccessMethod{CoSpaceID: sp.ID, Scope: "everyone"}); err == nil {
		t.Error("a bad scope was accepted")
	}

	host := e.joinSelf(t, e.guest(t, "700", "9999", "Host"), space, "")
	guestFull := e.guest(t, "700", "", "Visitor")
	guest := e.joinSelf(t, guestFull, space, "")
	if host.RxAudioMute != "" || host.Layout != "speakerOnly" {
		t.Errorf("the host = %+v, want unmuted, speakerOnly (its access method's profile)", host)
	}
	if guest.RxAudioMute != "true" || guest.Layout != "allEqual" {
		t.Errorf("the guest = %+v, want muted on join, allEqual (the space's)", guest)
	}
	legs := e.svc.CallLegs()
	if len(legs) != 2 || legs[0].AccessMethod != am.ID || legs[1].AccessMethod != "" || !legs[1].Muted("rxAudioMute") {
		t.Fatalf("legs = %+v", legs)
	}
	e.link.all()

	hostFull := legs[0].FullJID
	control := func(from, target, attrs string) *stream.Element {
		t.Helper()
		e.send(t, fmt.Sprintf(`<iq type="set" id="c1" from="%s" to="%s/%s"><control xmlns="urn:confab:meeting:1" %s/></iq>`, from, space, target, attrs))
		e.link.mu.Lock()
		defer e.link.mu.Unlock()
		for i, el := range e.link.got {
			if el.Name.Local == "iq" && el.Get("to") == from {
				e.link.got = append(e.link.got[:i:i], e.link.got[i+1:]...)
				return el
			}
		}
		t.Fatalf("%s got no answer to its control", from)
		return nil
	}
	// The guest may not unmute itself (muteSelfAllowed false) nor mute the host.
	if r := control(guestFull, guest.ID, `rxAudioMute="false"`); errorCondition(r) != "forbidden" {
		t.Errorf("the guest unmuting itself: %s, want forbidden", r)
	}
	if r := control(guestFull, host.ID, `rxAudioMute="true"`); errorCondition(r) != "forbidden" {
		t.Errorf("the guest muting the host: %s, want forbidden", r)
	}
	// The host may unmute the guest: both see it at once.
	if r := control(hostFull, guest.ID, `rxAudioMute="false"`); r.Get("type") != "result" {
		t.Fatalf("the host unmuting the guest: %s", r)
	}
	for _, to := range []string{hostFull, guestFull} {
		p := expectOne(t, e.link, to, "the guest unmuted")
		if pi := participantOf(t, p); pi.ID != guest.ID || pi.RxAudioMute != "" || p.Get("type") != "" {
			t.Errorf("%s got %s, want the guest's presence, unmuted", to, p)
		}
	}
	// Bad values and unknown participants.
	if r := control(hostFull, guest.ID, `rxAudioMute="yes"`); errorCondition(r) != "bad-request" {
		t.Errorf("a bad value: %s", r)
	}
	if r := control(hostFull, "nobody", `rxAudioMute="true"`); errorCondition(r) != "item-not-found" {
		t.Errorf("an unknown participant: %s", r)
	}
	if r := control("carol@example.com/x", guest.ID, `rxAudioMute="true"`); errorCondition(r) != "not-acceptable" {
		t.Errorf("someone not in the meeting: %s", r)
	}
	// Choosing one's own layout is allowed by default, another's never.
	if r := control(guestFull, guest.ID, `chosenLayout="stacked"`); r.Get("type") != "result" {
		t.Errorf("the guest choosing its layout: %s", r)
	}
	if r := control(hostFull, guest.ID, `chosenLayout="allEqual"`); errorCondition(r) != "forbidden" {
		t.Errorf("the host choosing the guest's layout: %s", r)
	}
	if l, _ := e.svc.CallLeg(guest.ID); l.Layout != "stacked" {
		t.Errorf("the guest's layout = %q, want stacked", l.Layout)
	}

	// A lookup by the host PIN finds the space too.
	e.send(t, `<iq type="get" id="l1" from="`+aliceFull+`" to="`+cbJID+`"><lookup xmlns="urn:confab:meeting:1" callId="700" passcode="9999"/></iq>`)
	if r := expectOne(t, e.link, aliceFull, "lookup"); r.Get("type") != "result" || !strings.Contains(r.String(), space) {
		t.Errorf("lookup by the access method's passcode: %s", r)
	}
}

// TestCallLegControl: the API's control of legs goes out at once, and unsetting returns to
// the profiles' value.
func TestCallLegControl(t *testing.T) {
	e := newEnv(t)
	sp := e.space(t, store.CoSpace{Name: "Open", NonMemberAccess: true})
	space := sp.ID + "@" + cbJID
	alice := e.joinSelf(t, aliceFull, space, "Alice")
	bob := e.joinSelf(t, bobFull, space, "Bob")
	e.link.all()
	e.events.take()

	if _, err := e.svc.ControlCallLeg(alice.ID, map[string]string{"rxAudioMute": "true", "rxVideoMute": "true", "layout": "stacked", "nameLabelOverride": "Chair"}); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{aliceFull, bobFull} {
		p := participantOf(t, expectOne(t, e.link, to, "alice muted"))
		if p.ID != alice.ID || p.RxAudioMute != "true" || p.RxVideoMute != "true" || p.Layout != "stacked" || p.Name != "Chair" || p.Self != map[bool]string{true: "true"}[to == aliceFull] {
			t.Errorf("%s saw %+v", to, p)
		}
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0].Type != CallLegUpdate || !ev[0].RxAudioMute || ev[0].Layout != "stacked" {
		t.Errorf("events = %+v, want one callLegUpdate", ev)
	}
	// Changing nothing visible tells nobody.
	if _, err := e.svc.ControlCallLeg(alice.ID, map[string]string{"rxAudioMute": "true", "participantLabels": "true"}); err != nil {
		t.Fatal(err)
	}
	if got := e.link.all(); len(got) != 0 {
		t.Errorf("a change nobody sees sent %v", got)
	}
	// All participants at once, and only some.
	call := e.svc.Calls()[0]
	if n, err := e.svc.ControlCall(call.ID, map[string]string{"txAudioMute": "true"}, nil, false); err != nil || n != 2 {
		t.Errorf("ControlCall(all) = %d, %v", n, err)
	}
	if n, _ := e.svc.ControlCall(call.ID, map[string]string{"rxAudioMute": ""}, []string{bob.ID}, false); n != 1 {
		t.Errorf("ControlCall(all but bob) = %d, want 1", n)
	}
	if l, _ := e.svc.CallLeg(alice.ID); l.Muted("rxAudioMute") || !l.Muted("txAudioMute") || l.Overrides["rxAudioMute"] != "" {
		t.Errorf("alice after unsetting = %+v", l)
	}
	if _, err := e.svc.ControlCallLeg("nope", map[string]string{"rxAudioMute": "true"}); !errors.Is(err, ErrNoSuchCallLeg) {
		t.Errorf("an unknown leg: %v", err)
	}
	if _, err := e.svc.ControlCall("nope", nil, nil, false); !errors.Is(err, ErrNoSuchCall) {
		t.Errorf("an unknown call: %v", err)
	}
}

// TestCallProfileLimits: the participant limit refuses the next join, chat can be disabled,
// a locked call refuses guests, joinAudioMuteOverride mutes the next joiners.
func TestCallProfileLimits(t *testing.T) {
	e := newEnv(t)
	cp := e.profile(t, store.KindCallProfile, map[string]string{"participantLimit": "2", "messageBoardEnabled": "false"})
	sp := e.space(t, store.CoSpace{Name: "Small", CallID: "55", NonMemberAccess: true, CallProfile: cp})
	space := sp.ID + "@" + cbJID
	e.joinSelf(t, aliceFull, space, "Alice")
	e.joinSelf(t, bobFull, space, "Bob")
	e.link.all()

	const carol = "carol@example.com/c"
	e.send(t, joinXML(carol, space, "Carol"))
	r := expectOne(t, e.link, carol, "a third joiner")
	if r.Get("type") != "error" || errorCondition(r) != "service-unavailable" || !strings.Contains(r.String(), "limit of 2") {
		t.Errorf("the third joiner got %s, want service-unavailable naming the limit", r)
	}
	e.send(t, `<message type="groupchat" id="m1" from="`+aliceFull+`" to="`+space+`"><body>hi</body></message>`)
	if r := expectOne(t, e.link, aliceFull, "chat"); errorCondition(r) != "not-allowed" {
		t.Errorf("chat with messageBoardEnabled=false: %s", r)
	}
	if got := e.link.take(bobFull); len(got) != 0 {
		t.Errorf("bob received refused chat: %v", got)
	}

	// The profile changes: the limit rises at the next join.
	if _, err := e.svc.UpdateProfile(context.Background(), store.KindCallProfile, cp, func(f map[string]string) error {
		f["participantLimit"] = "10"
		delete(f, "messageBoardEnabled")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	call := e.svc.Calls()[0]
	if _, err := e.svc.UpdateCall(call.ID, map[string]string{"locked": "true", "joinAudioMuteOverride": "true"}); err != nil {
		t.Fatal(err)
	}
	guest := e.guest(t, "55", "", "G")
	e.send(t, joinXML(guest, space, ""))
	if r := expectOne(t, e.link, guest, "a guest of a locked call"); errorCondition(r) != "forbidden" || !strings.Contains(r.String(), "locked") {
		t.Errorf("a guest joining a locked call: %s", r)
	}
	if p := e.joinSelf(t, carol, space, "Carol"); p.RxAudioMute != "true" {
		t.Errorf("carol joined %+v, want muted by joinAudioMuteOverride", p)
	}
	e.link.all()
	e.send(t, `<message type="groupchat" id="m2" from="`+aliceFull+`" to="`+space+`"><body>hi</body></message>`)
	if r := expectOne(t, e.link, bobFull, "chat"); r.Name.Local != "message" || r.Get("type") != "groupchat" {
		t.Errorf("chat once allowed again: bob got %s", r)
	}
	if _, err := e.svc.UpdateCall("nope", nil); !errors.Is(err, ErrNoSuchCall) {
		t.Errorf("UpdateCall of an unknown call: %v", err)
	}
}

// TestRemovalReasons: a participant taken out is told why.
func TestRemovalReasons(t *testing.T) {
	e := newEnv(t)
	sp := e.space(t, store.CoSpace{Name: "Open", NonMemberAccess: true})
	space := sp.ID + "@" + cbJID
	alice := e.joinSelf(t, aliceFull, space, "Alice")
	e.joinSelf(t, bobFull, space, "Bob")
	e.link.all()
	if err := e.svc.RemoveCallLeg(alice.ID, "by the test"); err != nil {
		t.Fatal(err)
	}
	self := expectOne(t, e.link, aliceFull, "alice removed")
	if p := participantOf(t, self); self.Get("type") != "unavailable" || p.Reason != "removed" || p.Self != "true" || statusOf(t, self) != "You were removed from the meeting" {
		t.Errorf("alice got %s, want her unavailable presence, reason removed, with a status", self)
	}
	if p := participantOf(t, expectOne(t, e.link, bobFull, "alice removed")); p.Reason != "removed" {
		t.Errorf("bob saw alice go with reason %q, want removed", p.Reason)
	}
	call := e.svc.Calls()[0]
	if err := e.svc.EndCall(call.ID, "by the test"); err != nil {
		t.Fatal(err)
	}
	self = expectOne(t, e.link, bobFull, "the call ended")
	if p := participantOf(t, self); p.Reason != "ended" || statusOf(t, self) != "The meeting was ended by the organiser" {
		t.Errorf("bob got %s, want reason ended, the organiser's status", self)
	}
	// Leaving of one's own accord has no reason.
	e.joinSelf(t, aliceFull, space, "Alice")
	e.send(t, leaveXML(aliceFull, space))
	if p := participantOf(t, expectOne(t, e.link, aliceFull, "alice leaves")); p.Reason != "" {
		t.Errorf("a leave has reason %q", p.Reason)
	}
}

// TestEventsAndAPICalls: the events of a call in order, and a call the API creates.
func TestEventsAndAPICalls(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sp := e.space(t, store.CoSpace{Name: "Open", NonMemberAccess: true, OwnerJID: "alice@example.com", CDRTag: "sales"})
	space := sp.ID + "@" + cbJID

	c, created, err := e.svc.CreateCall(ctx, sp.ID)
	if err != nil || !created || c.CoSpaceID != sp.ID || c.Legs != 0 {
		t.Fatalf("CreateCall = %+v %v %v", c, created, err)
	}
	if again, created, _ := e.svc.CreateCall(ctx, sp.ID); created || again.ID != c.ID {
		t.Errorf("a second CreateCall = %+v created %v, want the same call", again, created)
	}
	if _, _, err := e.svc.CreateCall(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateCall of a missing space: %v", err)
	}
	alice := e.joinSelf(t, aliceFull, space, "Alice")
	if calls := e.svc.Calls(); len(calls) != 1 || calls[0].ID != c.ID || calls[0].Legs != 1 {
		t.Fatalf("alice joined %+v, want the call the API made", calls)
	}
	e.clock.Advance(30 * time.Second)
	e.joinSelf(t, bobFull, space, "Bob")
	e.clock.Advance(30 * time.Second)
	e.send(t, leaveXML(aliceFull, space))
	e.send(t, leaveXML(bobFull, space))
	if len(e.svc.Calls()) != 0 {
		t.Fatal("the last one out did not end the call")
	}
	var types []string
	evs := e.events.take()
	for _, ev := range evs {
		types = append(types, string(ev.Type))
		if ev.CallID != c.ID || ev.CallCorrelator != c.Correlator {
			t.Errorf("event %+v is not of the call", ev)
		}
	}
	want := "callStart callLegStart callLegUpdate callLegStart callLegUpdate callLegEnd callLegEnd callEnd"
	if strings.Join(types, " ") != want {
		t.Fatalf("events %s\nwant   %s", strings.Join(types, " "), want)
	}
	if s := evs[0]; s.CallName != "Open" || s.CoSpaceID != sp.ID || s.OwnerName != "alice@example.com" || s.CDRTag != "sales" {
		t.Errorf("callStart = %+v", s)
	}
	if l := evs[1]; l.LegID != alice.ID || l.RemoteParty != "alice@example.com" || l.DisplayName != "Alice" || l.LocalAddress != space || l.Guest {
		t.Errorf("callLegStart = %+v", l)
	}
	if u := evs[2]; u.State != "connected" || u.Layout != "automatic" {
		t.Errorf("callLegUpdate = %+v", u)
	}
	if end := evs[5]; end.LegID != alice.ID || end.Reason != "remoteTeardown" || !end.RemoteTeardown || end.LegDuration != time.Minute {
		t.Errorf("alice's callLegEnd = %+v", end)
	}
	if end := evs[7]; end.CallLegsCompleted != 2 || end.CallLegsMaxActive != 2 || end.CallDuration != time.Minute {
		t.Errorf("callEnd = %+v", end)
	}

	// An API call nobody joins ends when ended.
	c, _, _ = e.svc.CreateCall(ctx, sp.ID)
	if err := e.svc.EndCall(c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if len(e.svc.Calls()) != 0 {
		t.Error("an empty API call outlived EndCall")
	}
	if evs := e.events.take(); len(evs) != 2 || evs[0].Type != CallStart || evs[1].Type != CallEnd {
		t.Errorf("events of an empty call = %+v", evs)
	}
	// Reset records the ends of what it forgets.
	e.joinSelf(t, aliceFull, space, "Alice")
	e.events.take()
	e.svc.Reset("test")
	if evs := e.events.take(); len(evs) != 2 || evs[0].Type != CallLegEnd || evs[0].Reason != "localTeardown" || evs[1].Type != CallEnd {
		t.Errorf("events of Reset = %+v", evs)
	}
}

// TestProfiles: validation of profiles and the system profiles.
func TestProfiles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tt := range []struct {
		kind   string
		fields map[string]string
		field  string
	}{
		{store.KindCallLegProfile, map[string]string{"rxAudioMute": "yes"}, "rxAudioMute"},
		{store.KindCallLegProfile, map[string]string{"defaultLayout": "mosaic"}, "defaultLayout"},
		{store.KindCallLegProfile, map[string]string{"joinToneParticipantThreshold": "101"}, "joinToneParticipantThreshold"},
		{store.KindCallLegProfile, map[string]string{"participantLimit": "3"}, "participantLimit"},
		{store.KindCallProfile, map[string]string{"participantLimit": "0"}, "participantLimit"},
		{store.KindCallProfile, map[string]string{"recordingMode": "sometimes"}, "recordingMode"},
	} {
		_, err := e.svc.CreateProfile(ctx, tt.kind, tt.fields)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != tt.field {
			t.Errorf("CreateProfile(%s, %v) = %v, want an InvalidError on %s", tt.kind, tt.fields, err, tt.field)
		}
	}
	id := e.profile(t, store.KindCallLegProfile, map[string]string{"muteOthersAllowed": "true", "name": ""})
	if p, _ := e.svc.Profile(ctx, store.KindCallLegProfile, id); len(p.Fields) != 1 {
		t.Errorf("an empty value was stored: %+v", p.Fields)
	}
	if _, err := e.svc.UpdateSystemProfiles(ctx, func(p *store.SystemProfiles) error { p.CallLegProfile = id; return nil }); err != nil {
		t.Fatal(err)
	}
	sp := e.space(t, store.CoSpace{Name: "Open", NonMemberAccess: true})
	e.joinSelf(t, aliceFull, sp.ID+"@"+cbJID, "Alice")
	if l := e.svc.CallLegs()[0]; l.Settings["muteOthersAllowed"] != "true" {
		t.Errorf("the system profile does not apply: %+v", l.Settings)
	}
	if _, err := e.svc.UpdateSystemProfiles(ctx, func(p *store.SystemProfiles) error { p.CallProfile = id; return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a call leg profile as the system's call profile: %v", err)
	}
}
