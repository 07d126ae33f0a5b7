package adminapi

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// linkRecorder stands in for the component link: it keeps the stanzas the meetings send.
type linkRecorder struct {
	mu  sync.Mutex
	got []*stream.Element
}

func (l *linkRecorder) Write(b []byte) error {
	doc := `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams">` + string(b)
	r := stream.NewReader(strings.NewReader(doc), stream.Limits{})
	if _, err := r.ReadOpen(""); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, stream.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		l.got = append(l.got, e)
	}
}

// take removes and returns the stanzas sent to the address to.
func (l *linkRecorder) take(to string) []*stream.Element {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out, keep []*stream.Element
	for _, e := range l.got {
		if e.Get("to") == to {
			out = append(out, e)
		} else {
			keep = append(keep, e)
		}
	}
	l.got = keep
	return out
}

// join feeds a join presence into the API's meetings, as the component link would.
func (e *env) join(t *testing.T, link *linkRecorder, from, spaceJID, name string) {
	t.Helper()
	el, err := stream.Parse([]byte(`<presence xmlns="jabber:component:accept" from="`+from+`" to="`+spaceJID+`/x"><join xmlns="urn:confab:meeting:1" name="`+name+`"/></presence>`), stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !e.srv.meetings.Handle(context.Background(), link, el) {
		t.Fatalf("join from %s not handled", from)
	}
}

func (e *env) leave(t *testing.T, link *linkRecorder, from, spaceJID string) {
	t.Helper()
	el, err := stream.Parse([]byte(`<presence xmlns="jabber:component:accept" type="unavailable" from="`+from+`" to="`+spaceJID+`/x"/>`), stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.meetings.Handle(context.Background(), link, el)
}

type callsGot struct {
	XMLName xml.Name `xml:"calls" json:"-"`
	Total   int      `xml:"total,attr" json:"total"`
	Calls   []struct {
		ID             string `xml:"id,attr" json:"id"`
		Name           string `xml:"name" json:"name"`
		CoSpace        string `xml:"coSpace" json:"coSpace"`
		CallCorrelator string `xml:"callCorrelator" json:"callCorrelator"`
	} `xml:"call" json:"call"`
}

func (e *env) calls(t *testing.T, query string, isJSON bool) callsGot {
	t.Helper()
	q := req{method: "GET", path: "/api/v1/calls" + query}
	if isJSON {
		q.accept = "application/json"
	}
	resp, body := e.do(t, q)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /calls: %d %q", resp.StatusCode, body)
	}
	var got callsGot
	decode(t, body, "calls", isJSON, &got)
	return got
}

func TestCalls(t *testing.T) {
	e := newEnv(t)
	e.setXMPPSettings(t)
	link := &linkRecorder{}
	demo := e.createCoSpace(t, url.Values{"name": {"Demo"}, "ownerJid": {"alice@example.com"}, "nonMemberAccess": {"true"}})
	other := e.createCoSpace(t, url.Values{"name": {"Other"}, "nonMemberAccess": {"true"}})
	demoJID, otherJID := demo+"@cb1.example.com", other+"@cb1.example.com"
	const alice, bob, carol = "alice@example.com/web", "bob@example.com/web", "carol@example.com/web"

	if got := e.calls(t, "", false); got.Total != 0 || len(got.Calls) != 0 {
		t.Fatalf("calls before anyone joined: %+v", got)
	}
	e.join(t, link, alice, demoJID, "Alice")
	e.clock.Advance(90 * time.Second)
	e.join(t, link, bob, demoJID, "Bob")
	e.join(t, link, carol, otherJID, "Carol")

	for _, isJSON := range []bool{false, true} {
		got := e.calls(t, "", isJSON)
		if got.Total != 2 || len(got.Calls) != 2 || got.Calls[0].CoSpace != demo || got.Calls[0].Name != "Demo" || got.Calls[0].CallCorrelator == "" || got.Calls[1].CoSpace != other {
			t.Fatalf("GET /calls (json %v) = %+v, want Demo then Other", isJSON, got)
		}
	}
	if got := e.calls(t, "?coSpaceFilter="+other, false); got.Total != 1 || got.Calls[0].CoSpace != other {
		t.Errorf("coSpaceFilter: %+v", got)
	}
	if got := e.calls(t, "?offset=1&limit=1", false); got.Total != 2 || len(got.Calls) != 1 || got.Calls[0].CoSpace != other {
		t.Errorf("paged calls: %+v", got)
	}
	callID := e.calls(t, "", false).Calls[0].ID

	_, body := e.do(t, req{method: "GET", path: "/api/v1/calls/" + callID})
	var call struct {
		XMLName         xml.Name `xml:"call"`
		ID              string   `xml:"id,attr"`
		CoSpace         string   `xml:"coSpace"`
		Name            string   `xml:"name"`
		DurationSeconds int      `xml:"durationSeconds"`
		NumCallLegs     int      `xml:"numCallLegs"`
		JID             string   `xml:"jid"`
	}
	decode(t, body, "call", false, &call)
	if call.ID != callID || call.CoSpace != demo || call.NumCallLegs != 2 || call.DurationSeconds != 90 || call.JID != demoJID {
		t.Errorf("GET /calls/{id} = %+v (%s)", call, body)
	}

	_, body = e.do(t, req{method: "GET", path: "/api/v1/calls/" + callID + "/participants", accept: "application/json"})
	var parts struct {
		Total        int `json:"total"`
		Participants []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			Call string `json:"call"`
			JID  string `json:"jid"`
			Role string `json:"role"`
		} `json:"participant"`
	}
	decode(t, body, "participants", true, &parts)
	if parts.Total != 2 || parts.Participants[0].Name != "Alice" || parts.Participants[0].Role != "owner" || parts.Participants[1].JID != "bob@example.com" || parts.Participants[1].Call != callID {
		t.Errorf("participants = %+v", parts)
	}

	_, body = e.do(t, req{method: "GET", path: "/api/v1/callLegs"})
	var legs struct {
		XMLName xml.Name `xml:"callLegs"`
		Total   int      `xml:"total,attr"`
		Legs    []struct {
			ID          string `xml:"id,attr"`
			Name        string `xml:"name"`
			RemoteParty string `xml:"remoteParty"`
			Call        string `xml:"call"`
		} `xml:"callLeg"`
	}
	decode(t, body, "callLegs", false, &legs)
	if legs.Total != 3 || legs.Legs[0].RemoteParty != "alice@example.com" || legs.Legs[2].Name != "Carol" {
		t.Errorf("callLegs = %+v", legs)
	}
	if _, body := e.do(t, req{method: "GET", path: "/api/v1/callLegs?filter=BOB"}); !strings.Contains(body, `total="1"`) || !strings.Contains(body, "bob@example.com") {
		t.Errorf("callLegs?filter=BOB = %q", body)
	}
	_, body = e.do(t, req{method: "GET", path: "/api/v1/callLegs/" + legs.Legs[1].ID})
	var leg struct {
		XMLName     xml.Name `xml:"callLeg"`
		Name        string   `xml:"name"`
		RemoteParty string   `xml:"remoteParty"`
		Call        string   `xml:"call"`
		Type        string   `xml:"type"`
		Kind        string   `xml:"kind"`
		State       string   `xml:"status>state"`
	}
	decode(t, body, "callLeg", false, &leg)
	if leg.Name != "Bob" || leg.RemoteParty != "bob@example.com" || leg.Call != callID || leg.Type != "acano" || leg.Kind != "user" || leg.State != "connected" {
		t.Errorf("GET /callLegs/{id} = %+v", leg)
	}

	// DELETE /calls/{id}: the participants are told and the call is gone.
	link.take(alice)
	link.take(bob)
	if resp, body := e.do(t, req{method: "DELETE", path: "/api/v1/calls/" + callID}); resp.StatusCode != 200 {
		t.Fatalf("DELETE call: %d %q", resp.StatusCode, body)
	}
	for _, to := range []string{alice, bob} {
		var self bool
		for _, p := range link.take(to) {
			if p.Get("type") != "unavailable" {
				t.Errorf("%s got %s, want unavailable presence", to, p)
			}
			self = self || strings.Contains(p.String(), `self="true"`)
		}
		if !self {
			t.Errorf("%s was not told it was removed", to)
		}
	}
	if got := e.calls(t, "", false); got.Total != 1 || got.Calls[0].CoSpace != other {
		t.Errorf("calls after DELETE: %+v, want Other only", got)
	}
	for _, path := range []string{"/api/v1/calls/" + callID, "/api/v1/calls/" + callID + "/participants"} {
		resp, body := e.do(t, req{method: "GET", path: path})
		if f := decodeFailure(t, body, false); resp.StatusCode != 404 || f.Name != "callDoesNotExist" {
			t.Errorf("GET %s after the call ended: %d %+v", path, resp.StatusCode, f)
		}
	}

	// The last one out ends the call.
	e.leave(t, link, carol, otherJID)
	if got := e.calls(t, "", true); got.Total != 0 {
		t.Errorf("calls after the last one left: %+v", got)
	}
	resp, body := e.do(t, req{method: "GET", path: "/api/v1/callLegs/" + legs.Legs[2].ID})
	if f := decodeFailure(t, body, false); resp.StatusCode != 404 || f.Name != "callLegDoesNotExist" {
		t.Errorf("GET callLeg of someone who left: %d %+v", resp.StatusCode, f)
	}
	resp, body = e.do(t, req{method: "DELETE", path: "/api/v1/calls/" + callID})
	if f := decodeFailure(t, body, false); resp.StatusCode != 404 || f.Name != "callDoesNotExist" {
		t.Errorf("DELETE of an ended call: %d %+v", resp.StatusCode, f)
	}

	// DELETE /callLegs/{id} takes one participant out.
	e.join(t, link, alice, demoJID, "Alice")
	e.join(t, link, bob, demoJID, "Bob")
	_, body = e.do(t, req{method: "GET", path: "/api/v1/callLegs"})
	legs.Legs = nil
	decode(t, body, "callLegs", false, &legs)
	if resp, _ := e.do(t, req{method: "DELETE", path: "/api/v1/callLegs/" + legs.Legs[0].ID}); resp.StatusCode != 200 {
		t.Fatalf("DELETE callLeg: %d", resp.StatusCode)
	}
	if _, body := e.do(t, req{method: "GET", path: "/api/v1/callLegs"}); !strings.Contains(body, `total="1"`) || !strings.Contains(body, "bob@example.com") {
		t.Errorf("callLegs after removing alice: %q", body)
	}
	// Deleting the space ends its call.
	e.do(t, req{method: "DELETE", path: "/api/v1/coSpaces/" + demo})
	if got := e.calls(t, "", false); got.Total != 0 {
		t.Errorf("calls after the space was deleted: %+v", got)
	}
}

// TestMeetingsOption checks that the API serves the Service it is given, so that calls the
// Call Bridge's link starts show in /calls.
func TestMeetingsOption(t *testing.T) {
	e := newEnv(t)
	e.setXMPPSettings(t)
	svc := meeting.New(meeting.Options{Store: e.store})
	h := New(Options{Store: e.store, Meetings: svc, AuthFailureDelay: time.Millisecond})
	ts := httptest.NewServer(h)
	defer ts.Close()
	sp, err := svc.CreateSpace(context.Background(), store.CoSpace{Name: "Given", NonMemberAccess: true})
	if err != nil {
		t.Fatal(err)
	}
	el, _ := stream.Parse([]byte(`<presence xmlns="jabber:component:accept" from="alice@example.com/w" to="`+sp.ID+`@cb1.example.com/x"><join xmlns="urn:confab:meeting:1"/></presence>`), stream.NSComponent, stream.Limits{})
	svc.Handle(context.Background(), &linkRecorder{}, el)

	r, _ := http.NewRequest("GET", ts.URL+"/api/v1/calls", nil)
	r.SetBasicAuth(testUser, testPassword)
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `<calls total="1">`) || !strings.Contains(string(b), sp.ID) {
		t.Errorf("GET /calls through a given Service = %q, want its call", b)
	}
}
