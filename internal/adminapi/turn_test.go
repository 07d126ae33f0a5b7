package adminapi

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
)

// TestTURNServerExtensions: Confab's settings of a TURN server — the turns: port, the
// shared secret (write-only), no UDP — are kept; an address that is not host[:port] is
// refused; an external server's allocations are not known.
func TestTURNServerExtensions(t *testing.T) {
	e := newEnv(t)
	id := e.post(t, "/api/v1/turnServers", url.Values{"serverAddress": {"turn.example.com:3479"}, "type": {"standard"},
		"tcpPortNumberOverride": {"443"}, "tlsPortNumber": {"5349"}, "sharedSecret": {"shh-do-not-show"}, "udpDisabled": {"true"}})
	e.check(t, []expect{
		{"detail", req{method: "GET", path: "/api/v1/turnServers/" + id}, 200, failure{},
			`<tcpPortNumberOverride>443</tcpPortNumberOverride><tlsPortNumber>5349</tlsPortNumber><udpDisabled>true</udpDisabled>`},
		{"detail JSON", req{method: "GET", path: "/api/v1/turnServers/" + id, accept: "application/json"}, 200, failure{}, `"tlsPortNumber":5349`},
		{"bad port", req{method: "PUT", path: "/api/v1/turnServers/" + id, form: url.Values{"serverAddress": {"turn.example.com:99999"}}}, 400,
			failure{"parameterError", "serverAddress", "invalidValue"}, ""},
		{"a URL is not an address", req{method: "POST", path: "/api/v1/turnServers", form: url.Values{"serverAddress": {"turns:turn.example.com"}}}, 400,
			failure{"parameterError", "serverAddress", "invalidValue"}, ""},
		{"IPv6 with a port", req{method: "PUT", path: "/api/v1/turnServers/" + id, form: url.Values{"clientAddress": {"[2001:db8::7]:3478"}}}, 200, failure{}, ""},
		{"bad TLS port", req{method: "PUT", path: "/api/v1/turnServers/" + id, form: url.Values{"tlsPortNumber": {"0"}}}, 400,
			failure{"parameterError", "tlsPortNumber", "invalidValue"}, ""},
		{"external allocations", req{method: "GET", path: "/api/v1/turnServers/" + id + "/allocations"}, 400, failure{Name: "allocationsNotAvailable"}, ""},
		{"unknown allocations", req{method: "GET", path: "/api/v1/turnServers/nope/allocations"}, 404, failure{Name: "turnServerDoesNotExist"}, ""},
	})
	for _, path := range []string{"/api/v1/turnServers", "/api/v1/turnServers/" + id} {
		if _, body := e.do(t, req{method: "GET", path: path}); strings.Contains(body, "shh-do-not-show") || strings.Contains(body, "sharedSecret") {
			t.Errorf("GET %s shows the shared secret: %s", path, body)
		}
	}
	o, err := e.store.Object(context.Background(), store.KindTURNServer, id)
	if err != nil || o.Fields["sharedSecret"] != "shh-do-not-show" || o.Fields["clientAddress"] != "[2001:db8::7]:3478" {
		t.Errorf("stored %+v, %v", o.Fields, err)
	}
}

// TestTURNAllocations: the embedded TURN server's allocations are listed under its
// turnServer, each with the call leg whose credentials made it.
func TestTURNAllocations(t *testing.T) {
	e := newEnv(t)
	e.setXMPPSettings(t)
	link := &linkRecorder{}
	space := e.createCoSpace(t, url.Values{"name": {"Demo"}, "nonMemberAccess": {"true"}})
	e.join(t, link, "alice@example.com/web", space+"@cb1.example.com", "Alice")
	legs := e.srv.meetings.CallLegs()
	if len(legs) != 1 {
		t.Fatalf("legs %+v", legs)
	}
	leg := legs[0]

	const sharedSecret = "embedded-secret"
	srv, err := turnd.New(turnd.Config{Secret: secret.New(sharedSecret), TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(pc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	emb, err := e.store.CreateObject(context.Background(), store.Object{ID: "embedded-id", Kind: store.KindTURNServer,
		Fields: map[string]string{"serverAddress": pc.LocalAddr().String(), "embedded": "true", "sharedSecret": sharedSecret}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.turn = func() *turnd.Server { return srv }
	e.srv.embeddedTURN = emb.ID

	cred, err := turnd.IssueCredentials(secret.New(sharedSecret), leg.ID, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: pc.LocalAddr().String(), Username: cred.Username,
		Password: cred.Password.Reveal(), Realm: srv.Realm(), Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer relay.Close()

	e.check(t, []expect{
		{"embedded listed", req{method: "GET", path: "/api/v1/turnServers"}, 200, failure{}, `<embedded>true</embedded>`},
	})
	_, body := e.do(t, req{method: "GET", path: "/api/v1/turnServers/" + emb.ID + "/allocations"})
	var got struct {
		XMLName     xml.Name `xml:"allocations"`
		Total       int      `xml:"total,attr"`
		Allocations []struct {
			ID        string `xml:"id,attr"`
			UserID    string `xml:"userId"`
			CallLeg   string `xml:"callLeg"`
			Name      string `xml:"name"`
			Transport string `xml:"transport"`
			Client    string `xml:"clientAddress"`
		} `xml:"allocation"`
	}
	decode(t, body, "allocations", false, &got)
	if got.Total != 1 || len(got.Allocations) != 1 {
		t.Fatalf("allocations %s", body)
	}
	a := got.Allocations[0]
	if a.UserID != leg.ID || a.CallLeg != leg.ID || a.Name != "Alice" || a.Transport != "udp" ||
		a.Client != conn.LocalAddr().String() || a.ID != relay.LocalAddr().String() {
		t.Errorf("allocation %+v, want leg %s (Alice) from %s relayed at %s", a, leg.ID, conn.LocalAddr(), relay.LocalAddr())
	}
	if _, err := netip.ParseAddrPort(a.ID); err != nil {
		t.Errorf("allocation id %q is not the relayed address: %v", a.ID, err)
	}
}

// TestCallLegLadder: GET /callLegs/{id} carries the leg's media ladder (Confab's), in XML
// and JSON, each step with its time, cause and remedy.
func TestCallLegLadder(t *testing.T) {
	e := newEnv(t)
	e.setXMPPSettings(t)
	link := &linkRecorder{}
	space := e.createCoSpace(t, url.Values{"name": {"Demo"}, "nonMemberAccess": {"true"}})
	e.join(t, link, "alice@example.com/web", space+"@cb1.example.com", "Alice")
	leg := e.srv.meetings.CallLegs()[0]
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e.srv.ladder = func(id string) (ladder.Ladder, bool) {
		if id != leg.ID {
			return ladder.Ladder{}, false
		}
		return ladder.Ladder{State: ladder.StateFailed, Cause: ladder.CauseUDPBlockedNoTURN, Text: ladder.Words(ladder.CauseUDPBlockedNoTURN),
			Steps: []ladder.Step{
				{Name: "offer", Title: "Offer taken", State: ladder.OK, At: start.Add(30 * time.Millisecond), Since: 30 * time.Millisecond},
				{Name: "checks", Title: "Connectivity checks", State: ladder.Failed, Cause: ladder.CauseUDPBlockedNoTURN,
					Detail: "No connectivity check reached UDP 10000", Remedy: "Configure a TURN server reachable over TLS on port 443"},
			}}, true
	}
	e.check(t, []expect{
		{"ladder XML", req{method: "GET", path: "/api/v1/callLegs/" + leg.ID}, 200, failure{},
			`<mediaLadder state="failed" cause="udp-blocked-no-turn"><text>Your network blocks the connection the meeting needs (UDP)`},
		{"step XML", req{method: "GET", path: "/api/v1/callLegs/" + leg.ID}, 200, failure{},
			`<step name="offer" state="ok" time="2026-03-01T12:00:00.03Z" sinceMillis="30"><title>Offer taken</title></step>`},
		{"failed step XML", req{method: "GET", path: "/api/v1/callLegs/" + leg.ID}, 200, failure{},
			`<cause>udp-blocked-no-turn</cause><remedy>Configure a TURN server reachable over TLS on port 443</remedy>`},
		{"ladder JSON", req{method: "GET", path: "/api/v1/callLegs/" + leg.ID, accept: "application/json"}, 200, failure{},
			`"mediaLadder":{"state":"failed","cause":"udp-blocked-no-turn"`},
	})
	e.srv.ladder = func(string) (ladder.Ladder, bool) { return ladder.Ladder{}, false }
	if _, body := e.do(t, req{method: "GET", path: "/api/v1/callLegs/" + leg.ID}); strings.Contains(body, "mediaLadder") {
		t.Errorf("a leg without media shows a ladder: %s", body)
	}
}
