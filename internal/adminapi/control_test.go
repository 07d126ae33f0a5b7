package adminapi

import (
	"encoding/xml"
	"net/url"
	"strings"
	"testing"

	"confab.dev/confab/internal/stream"
)

// participantAttrs reads the <participant/> of a presence.
func participantAttrs(t *testing.T, e *stream.Element) map[string]string {
	t.Helper()
	var v struct {
		P *struct {
			Attrs []xml.Attr `xml:",any,attr"`
		} `xml:"urn:confab:meeting:1 participant"`
	}
	if err := e.Decode(&v); err != nil || v.P == nil {
		t.Fatalf("%s: no participant (%v)", e, err)
	}
	m := map[string]string{}
	for _, a := range v.P.Attrs {
		m[a.Name.Local] = a.Value
	}
	return m
}

func TestCallControlAPI(t *testing.T) {
	e := newEnv(t)
	e.setXMPPSettings(t)
	link := &linkRecorder{}
	space := e.createCoSpace(t, url.Values{"name": {"Demo"}, "nonMemberAccess": {"true"}})
	spaceJID := space + "@cb1.example.com"
	const alice, bob = "alice@example.com/web", "bob@example.com/web"

	// POST /calls makes the call people then join.
	call := e.post(t, "/api/v1/calls", url.Values{"coSpace": {space}, "joinAudioMuteOverride": {"true"}})
	if again := e.post(t, "/api/v1/calls", url.Values{"coSpace": {space}}); again != call {
		t.Errorf("a second POST /calls for the space = %s, want the call %s", again, call)
	}
	e.join(t, link, alice, spaceJID, "Alice")
	e.join(t, link, bob, spaceJID, "Bob")
	_, body := e.do(t, req{method: "GET", path: "/api/v1/calls/" + call + "/callLegs"})
	var legs struct {
		Total int `xml:"total,attr"`
		Legs  []struct {
			ID   string `xml:"id,attr"`
			Name string `xml:"name"`
		} `xml:"callLeg"`
	}
	decode(t, body, "callLegs", false, &legs)
	if legs.Total != 2 || legs.Legs[0].Name != "Alice" {
		t.Fatalf("GET /calls/{id}/callLegs = %s", body)
	}
	aliceLeg, bobLeg := legs.Legs[0].ID, legs.Legs[1].ID
	e.check(t, []expect{
		{"joined muted", req{method: "GET", path: "/api/v1/callLegs/" + aliceLeg}, 200, failure{}, `<rxAudioMute>true</rxAudioMute>`},
		{"the call", req{method: "GET", path: "/api/v1/calls/" + call}, 200, failure{}, `<joinAudioMuteOverride>true</joinAudioMuteOverride>`},
	})
	link.take(alice)
	link.take(bob)

	// PUT /callLegs/{id}: the participants see it at once.
	e.check(t, []expect{{"unmute alice", req{method: "PUT", path: "/api/v1/callLegs/" + aliceLeg,
		form: url.Values{"rxAudioMute": {"false"}, "chosenLayout": {"speakerOnly"}}}, 200, failure{}, ""}})
	for _, to := range []string{alice, bob} {
		got := link.take(to)
		if len(got) != 1 {
			t.Fatalf("%s got %d stanzas, want alice's presence", to, len(got))
		}
		a := participantAttrs(t, got[0])
		if a["id"] != aliceLeg || a["rxAudioMute"] != "" || a["layout"] != "speakerOnly" {
			t.Errorf("%s saw %v", to, a)
		}
	}
	// PUT /calls/{id}/participants/* (Stream Deck's layout button), and with filterIds.
	e.check(t, []expect{
		{"everyone's layout", req{method: "PUT", path: "/api/v1/calls/" + call + "/participants/*", form: url.Values{"layout": {"stacked"}}}, 200, failure{}, ""},
		{"mute all but alice", req{method: "PUT", path: "/api/v1/calls/" + call + "/participants/",
			form: url.Values{"rxVideoMute": {"true"}, "filterIds": {aliceLeg}, "mode": {"exclude"}}}, 200, failure{}, ""},
		{"bob video muted", req{method: "GET", path: "/api/v1/callLegs/" + bobLeg}, 200, failure{}, `<rxVideoMute>true</rxVideoMute>`},
		{"alice's chosen layout wins", req{method: "GET", path: "/api/v1/callLegs/" + aliceLeg}, 200, failure{}, `<layout>speakerOnly</layout>`},
		{"bob's layout", req{method: "GET", path: "/api/v1/participants/" + bobLeg + "/callLegs"}, 200, failure{}, `total="1"`},
		{"one participant", req{method: "PUT", path: "/api/v1/calls/" + call + "/participants/" + bobLeg, form: url.Values{"txAudioMute": {"true"}}}, 200, failure{}, ""},
		{"a participant of no call", req{method: "PUT", path: "/api/v1/calls/" + call + "/participants/nope", form: url.Values{"txAudioMute": {"true"}}}, 404,
			failure{Name: "participantDoesNotExist"}, ""},
		{"selected without ids", req{method: "PUT", path: "/api/v1/calls/" + call + "/participants/*", form: url.Values{"mode": {"selected"}}}, 400,
			failure{"parameterError", "filterIds", "required"}, ""},
		{"bad value", req{method: "PUT", path: "/api/v1/callLegs/" + bobLeg, form: url.Values{"rxAudioMute": {"on"}}}, 400,
			failure{"parameterError", "rxAudioMute", "invalidValue"}, ""},
		{"unknown leg", req{method: "PUT", path: "/api/v1/callLegs/nope", form: url.Values{"rxAudioMute": {"true"}}}, 404,
			failure{Name: "callLegDoesNotExist"}, ""},
		{"lock", req{method: "PUT", path: "/api/v1/calls/" + call, form: url.Values{"locked": {"true"}}}, 200, failure{}, ""},
		{"locked", req{method: "GET", path: "/api/v1/calls/" + call}, 200, failure{}, `<locked>true</locked>`},
		{"dial out", req{method: "POST", path: "/api/v1/calls/" + call + "/participants", form: url.Values{"remoteParty": {"sip:room@example.com"}}}, 400,
			failure{Name: "unknownDestination"}, ""},
		{"dial out a leg", req{method: "POST", path: "/api/v1/calls/" + call + "/callLegs", form: url.Values{"remoteParty": {"carol@example.com"}}}, 400,
			failure{Name: "unknownDestination"}, ""},
		{"dial out nobody", req{method: "POST", path: "/api/v1/calls/" + call + "/participants", form: url.Values{}}, 400,
			failure{"parameterError", "remoteParty", "required"}, ""},
		{"dial out of no call", req{method: "POST", path: "/api/v1/calls/nope/participants", form: url.Values{"remoteParty": {"x"}}}, 404,
			failure{Name: "callDoesNotExist"}, ""},
		{"an ad hoc call", req{method: "POST", path: "/api/v1/calls", form: url.Values{"name": {"adhoc"}}}, 400,
			failure{"parameterError", "coSpace", "required"}, ""},
		{"a call of no space", req{method: "POST", path: "/api/v1/calls", form: url.Values{"coSpace": {"nope"}}}, 400,
			failure{Name: "coSpaceDoesNotExist"}, ""},
		{"participants", req{method: "GET", path: "/api/v1/participants?filter=bob"}, 200, failure{}, `<participants total="1"><participant id="` + bobLeg + `">`},
		{"a participant", req{method: "GET", path: "/api/v1/participants/" + bobLeg}, 200, failure{}, `<userJid>bob@example.com</userJid>`},
		{"legs by participant", req{method: "GET", path: "/api/v1/callLegs?participantFilter=" + bobLeg}, 200, failure{}, `total="1"`},
		{"legs by layout", req{method: "GET", path: "/api/v1/callLegs?activeLayoutFilter=stacked"}, 200, failure{}, `total="1"`},
	})
	link.take(alice)
	link.take(bob)
	// DELETE /participants/{id}: bob is told he was removed.
	e.check(t, []expect{{"remove bob", req{method: "DELETE", path: "/api/v1/participants/" + bobLeg}, 200, failure{}, ""}})
	got := link.take(bob)
	if len(got) != 1 || got[0].Get("type") != "unavailable" || participantAttrs(t, got[0])["reason"] != "removed" ||
		!strings.Contains(got[0].String(), "You were removed") {
		t.Errorf("bob got %v, want his unavailable presence, reason removed", got)
	}
}
