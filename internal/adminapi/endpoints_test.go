package adminapi

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var lastSegment = regexp.MustCompile(`/([0-9a-f-]{36})$`)

// post POSTs form to path and returns the new object's id from Location.
func (e *env) post(t *testing.T, path string, form url.Values) string {
	t.Helper()
	resp, body := e.do(t, req{method: "POST", path: path, form: form})
	m := lastSegment.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("POST %s %v: %d %q Location %q", path, form, resp.StatusCode, body, resp.Header.Get("Location"))
	}
	return m[1]
}

// expect checks an answer's status and, for a failure, its failureDetails.
type expect struct {
	name   string
	q      req
	status int
	want   failure // zero: no failure document expected
	body   string  // a substring of a successful answer
}

func (e *env) check(t *testing.T, tests []expect) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, tt.q)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: %d %s, want %d", tt.q.method, tt.q.path, resp.StatusCode, body, tt.status)
			}
			if tt.want != (failure{}) {
				if got := decodeFailure(t, body, false); got != tt.want {
					t.Errorf("failure %+v, want %+v", got, tt.want)
				}
			}
			if tt.body != "" && !strings.Contains(body, tt.body) {
				t.Errorf("body %s, want it to contain %s", body, tt.body)
			}
		})
	}
}

func TestAccessMethodsAPI(t *testing.T) {
	e := newEnv(t)
	space := e.createCoSpace(t, url.Values{"name": {"Board"}, "callId": {"700"}})
	other := e.createCoSpace(t, url.Values{"name": {"Other"}, "callId": {"800"}, "uri": {"other"}})
	profile := e.post(t, "/api/v1/callLegProfiles", url.Values{"muteOthersAllowed": {"true"}})
	base := "/api/v1/coSpaces/" + space + "/accessMethods"
	// Python CMS scripts spell the collection in lower case with a trailing slash, and the
	// call ID callID.
	am := e.post(t, "/api/v1/cospaces/"+space+"/accessmethods/", url.Values{"name": {"hosts"}, "callID": {"700"},
		"passcode": {"98765"}, "callLegProfile": {profile}, "scope": {"private"}, "secret": {"am-s3cret-value"}})
	e.post(t, base, url.Values{"uri": {"board.guests"}})
	e.check(t, []expect{
		{"list", req{method: "GET", path: base}, 200, failure{}, `<accessMethods total="2">`},
		{"one", req{method: "GET", path: base + "/" + am}, 200, failure{},
			`<accessMethod id="` + am + `"><name>hosts</name><callId>700</callId><callLegProfile>` + profile + `</callLegProfile><scope>private</scope></accessMethod>`},
		{"filter by profile", req{method: "GET", path: base + "?callLegProfileFilter=" + profile}, 200, failure{}, `total="1"`},
		{"filter by text", req{method: "GET", path: base + "?filter=GUESTS"}, 200, failure{}, `<uri>board.guests</uri>`},
		{"the space counts them", req{method: "GET", path: "/api/v1/coSpaces/" + space}, 200, failure{}, `<numAccessMethods>2</numAccessMethods>`},
		{"the space's call ID and passcode", req{method: "POST", path: base, form: url.Values{"callId": {"700"}}}, 400,
			failure{Name: "duplicateCoSpaceIdPasscode"}, ""},
		{"another space's call ID", req{method: "POST", path: base, form: url.Values{"callId": {"800"}}}, 400,
			failure{Name: "duplicateCoSpaceId"}, ""},
		{"another space's URI", req{method: "POST", path: base, form: url.Values{"uri": {"OTHER"}}}, 400,
			failure{Name: "duplicateCoSpaceUri"}, ""},
		{"a missing profile", req{method: "POST", path: base, form: url.Values{"callLegProfile": {"nope"}}}, 400,
			failure{Name: "callLegProfileDoesNotExist"}, ""},
		{"a bad scope", req{method: "POST", path: base, form: url.Values{"scope": {"all"}}}, 400,
			failure{"parameterError", "scope", "invalidValue"}, ""},
		{"a missing space", req{method: "GET", path: "/api/v1/coSpaces/nope/accessMethods"}, 404, failure{Name: "coSpaceDoesNotExist"}, ""},
		{"a missing access method", req{method: "PUT", path: base + "/nope", form: url.Values{"name": {"x"}}}, 404,
			failure{Name: "accessMethodDoesNotExist"}, ""},
		{"an access method of another space", req{method: "GET", path: "/api/v1/coSpaces/" + other + "/accessMethods/" + am}, 404,
			failure{Name: "accessMethodDoesNotExist"}, ""},
		{"change", req{method: "PUT", path: base + "/" + am, form: url.Values{"name": {""}, "passcode": {"111"}, "regenerateSecret": {"true"}}}, 200, failure{}, ""},
		{"changed", req{method: "GET", path: base + "/" + am}, 200, failure{}, `<accessMethod id="` + am + `"><callId>700</callId>`},
	})
	for _, q := range []string{base, base + "/" + am} {
		if _, body := e.do(t, req{method: "GET", path: q, accept: "application/json"}); strings.Contains(body, "98765") || strings.Contains(body, "s3cret") || strings.Contains(body, "passcode") {
			t.Errorf("GET %s shows a secret: %s", q, body)
		}
	}
	if resp, _ := e.do(t, req{method: "DELETE", path: base + "/" + am}); resp.StatusCode != 200 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	e.check(t, []expect{{"gone", req{method: "GET", path: base + "/" + am}, 404, failure{Name: "accessMethodDoesNotExist"}, ""}})
}

func TestProfilesAPI(t *testing.T) {
	e := newEnv(t)
	clp := e.post(t, "/api/v1/callLegProfiles", url.Values{"name": {"Guests"}, "rxAudioMute": {"true"}, "defaultLayout": {"speakerOnly"},
		"joinToneParticipantThreshold": {"5"}, "notACmsSetting": {"ignored"}})
	cp := e.post(t, "/api/v1/callProfiles", url.Values{"participantLimit": {"10"}, "messageBoardEnabled": {"false"}})
	space := e.createCoSpace(t, url.Values{"name": {"S"}, "callLegProfile": {clp}, "callProfile": {cp}})
	e.check(t, []expect{
		{"profile", req{method: "GET", path: "/api/v1/callLegProfiles/" + clp}, 200, failure{},
			`<callLegProfile id="` + clp + `"><name>Guests</name><defaultLayout>speakerOnly</defaultLayout><joinToneParticipantThreshold>5</joinToneParticipantThreshold><rxAudioMute>true</rxAudioMute></callLegProfile>`},
		{"list", req{method: "GET", path: "/api/v1/callProfiles"}, 200, failure{}, `<callProfiles total="1"><callProfile id="` + cp + `"><participantLimit>10</participantLimit><messageBoardEnabled>false</messageBoardEnabled></callProfile></callProfiles>`},
		{"referenced", req{method: "GET", path: "/api/v1/callLegProfiles?usageFilter=referenced"}, 200, failure{}, `total="1"`},
		{"unreferenced", req{method: "GET", path: "/api/v1/callLegProfiles?usageFilter=unreferenced"}, 200, failure{}, `total="0"`},
		{"bad usage filter", req{method: "GET", path: "/api/v1/callLegProfiles?usageFilter=some"}, 400, failure{"parameterError", "usageFilter", "invalidValue"}, ""},
		{"bad value", req{method: "POST", path: "/api/v1/callLegProfiles", form: url.Values{"muteSelfAllowed": {"yes"}}}, 400,
			failure{"parameterError", "muteSelfAllowed", "invalidValue"}, ""},
		{"bad limit", req{method: "PUT", path: "/api/v1/callProfiles/" + cp, form: url.Values{"participantLimit": {"0"}}}, 400,
			failure{"parameterError", "participantLimit", "invalidValue"}, ""},
		{"unset", req{method: "PUT", path: "/api/v1/callLegProfiles/" + clp, form: url.Values{"rxAudioMute": {""}}}, 200, failure{}, ""},
		{"unset shown", req{method: "GET", path: "/api/v1/callLegProfiles/" + clp, accept: "application/json"}, 200, failure{},
			`{"callLegProfile":{"defaultLayout":"speakerOnly","id":"` + clp + `","joinToneParticipantThreshold":5,"name":"Guests"}}`},
		{"missing", req{method: "GET", path: "/api/v1/callProfiles/" + clp}, 404, failure{Name: "callProfileDoesNotExist"}, ""},
		{"the space names them", req{method: "GET", path: "/api/v1/coSpaces/" + space}, 200, failure{}, `<callLegProfile>` + clp + `</callLegProfile><callProfile>` + cp + `</callProfile>`},
		{"a space naming a missing one", req{method: "PUT", path: "/api/v1/coSpaces/" + space, form: url.Values{"callProfile": {clp}}}, 400,
			failure{Name: "callProfileDoesNotExist"}, ""},
		{"spaces by profile", req{method: "GET", path: "/api/v1/coSpaces?callLegProfileFilter=" + clp}, 200, failure{}, `total="1"`},
		{"system profiles", req{method: "PUT", path: "/api/v1/system/profiles", form: url.Values{"callLegProfile": {clp}, "dtmfProfile": {"ignored"}}}, 200, failure{}, ""},
		{"system profiles shown", req{method: "GET", path: "/api/v1/system/profiles"}, 200, failure{}, `<profiles><callLegProfile>` + clp + `</callLegProfile></profiles>`},
		{"system profile missing", req{method: "PUT", path: "/api/v1/system/profiles", form: url.Values{"callProfile": {"nope"}}}, 400,
			failure{Name: "callProfileDoesNotExist"}, ""},
		{"delete", req{method: "DELETE", path: "/api/v1/callLegProfiles/" + clp}, 200, failure{}, ""},
		{"unset everywhere", req{method: "GET", path: "/api/v1/coSpaces/" + space}, 200, failure{}, `<callProfile>`},
		{"system unset", req{method: "GET", path: "/api/v1/system/profiles"}, 200, failure{}, `<profiles></profiles>`},
	})
	if _, body := e.do(t, req{method: "GET", path: "/api/v1/coSpaces/" + space}); strings.Contains(body, "callLegProfile") {
		t.Errorf("the space still names the deleted profile: %s", body)
	}
}

func TestCDRReceiversAPI(t *testing.T) {
	e := newEnv(t)
	a := e.post(t, "/api/v1/system/cdrReceivers", url.Values{"uri": {"http://cdr.example.com:8080/cdr?token=abc"}})
	e.check(t, []expect{
		{"list", req{method: "GET", path: "/api/v1/system/cdrReceivers"}, 200, failure{},
			`<cdrReceivers total="1" maximum="4"><cdrReceiver id="` + a + `"><uri>http://cdr.example.com:8080/cdr?token=abc</uri></cdrReceiver></cdrReceivers>`},
		{"one", req{method: "GET", path: "/api/v1/system/cdrReceivers/" + a}, 200, failure{}, `<queued>0</queued>`},
		{"url spelling", req{method: "PUT", path: "/api/v1/system/cdrReceivers/" + a, form: url.Values{"url": {"https://cdr.example.com/r"}}}, 200, failure{}, ""},
		{"changed", req{method: "GET", path: "/api/v1/system/cdrReceivers/" + a}, 200, failure{}, `<uri>https://cdr.example.com/r</uri>`},
		{"not http", req{method: "POST", path: "/api/v1/system/cdrReceivers", form: url.Values{"uri": {"ftp://x/"}}}, 400,
			failure{"parameterError", "uri", "invalidValue"}, ""},
		{"no host", req{method: "PUT", path: "/api/v1/system/cdrReceivers/" + a, form: url.Values{"uri": {"http:///x"}}}, 400,
			failure{"parameterError", "uri", "invalidValue"}, ""},
		{"missing", req{method: "GET", path: "/api/v1/system/cdrReceivers/nope"}, 404, failure{Name: "cdrReceiverDoesNotExist"}, ""},
		{"legacy unset", req{method: "GET", path: "/api/v1/system/configuration/cdr"}, 200, failure{}, `<cdrReceiver></cdrReceiver>`},
		{"legacy set", req{method: "PUT", path: "/api/v1/system/configuration/cdr", form: url.Values{"uri": {"http://old.example.com/"}}}, 200, failure{}, ""},
		{"legacy shown on both nodes", req{method: "GET", path: "/api/v1/system/cdrReceiver"}, 200, failure{}, `<uri>http://old.example.com/</uri>`},
		{"legacy listed", req{method: "GET", path: "/api/v1/system/cdrReceivers"}, 200, failure{}, `total="2"`},
	})
	e.post(t, "/api/v1/system/cdrReceivers", nil)
	e.post(t, "/api/v1/system/cdrReceivers", url.Values{"uri": {"http://c.example.com/"}})
	e.check(t, []expect{
		{"a fifth", req{method: "POST", path: "/api/v1/system/cdrReceivers", form: url.Values{"uri": {"http://d.example.com/"}}}, 400,
			failure{Name: "tooManyCdrReceivers"}, ""},
		{"legacy removed", req{method: "POST", path: "/api/v1/system/cdrReceiver", form: url.Values{"uri": {""}}}, 200, failure{}, ""},
		{"three left", req{method: "GET", path: "/api/v1/system/cdrReceivers"}, 200, failure{}, `total="3"`},
		{"delete", req{method: "DELETE", path: "/api/v1/system/cdrReceivers/" + a}, 200, failure{}, ""},
		{"deleted", req{method: "DELETE", path: "/api/v1/system/cdrReceivers/" + a}, 404, failure{Name: "cdrReceiverDoesNotExist"}, ""},
	})
}

func TestSystemCollections(t *testing.T) {
	e := newEnv(t)
	e.check(t, []expect{
		{"licensing", req{method: "GET", path: "/api/v1/system/licensing"}, 200, failure{}, `<callBridge><status>activated</status></callBridge>`},
		{"multiparty licensing", req{method: "GET", path: "/api/v1/system/multipartyLicensing"}, 200, failure{}, `<callsActive>0</callsActive>`},
		{"load", req{method: "GET", path: "/api/v1/system/load"}, 200, failure{}, `<load><mediaProcessingLoad>0</mediaProcessingLoad></load>`},
		{"call bridges", req{method: "GET", path: "/api/v1/callBridges"}, 200, failure{}, `<callBridges total="0"></callBridges>`},
		{"web bridges", req{method: "GET", path: "/api/v1/webBridges/"}, 200, failure{}, `<webBridges total="0"></webBridges>`},
		{"tenants", req{method: "GET", path: "/api/v1/tenants"}, 200, failure{}, `<tenants total="0"></tenants>`},
		{"tenants JSON", req{method: "GET", path: "/api/v1/tenants", accept: "application/json"}, 200, failure{}, `{"tenants":{"tenant":[],"total":0}}`},
		{"a tenant", req{method: "GET", path: "/api/v1/tenants/x"}, 404, failure{Name: "tenantDoesNotExist"}, ""},
		{"participants", req{method: "GET", path: "/api/v1/participants"}, 200, failure{}, `<participants total="0"></participants>`},
		{"turn servers", req{method: "GET", path: "/api/v1/turnServers"}, 200, failure{}, `<turnServers total="0"></turnServers>`},
	})
	ts := e.post(t, "/api/v1/turnServers", url.Values{"serverAddress": {"turn.example.com"}, "clientAddress": {"198.51.100.9"},
		"username": {"u"}, "password": {"turn-s3cret-pw"}, "type": {"standard"}})
	e.check(t, []expect{
		{"turn listed", req{method: "GET", path: "/api/v1/turnServers"}, 200, failure{},
			`<turnServer id="` + ts + `"><serverAddress>turn.example.com</serverAddress><clientAddress>198.51.100.9</clientAddress></turnServer>`},
		{"turn detail", req{method: "GET", path: "/api/v1/turnServers/" + ts}, 200, failure{}, `<username>u</username><type>standard</type>`},
		{"turn bad type", req{method: "PUT", path: "/api/v1/turnServers/" + ts, form: url.Values{"type": {"magic"}}}, 400,
			failure{"parameterError", "type", "invalidValue"}, ""},
		{"turn deleted", req{method: "DELETE", path: "/api/v1/turnServers/" + ts}, 200, failure{}, ""},
		{"turn gone", req{method: "GET", path: "/api/v1/turnServers/" + ts}, 404, failure{Name: "turnServerDoesNotExist"}, ""},
	})
	if _, body := e.do(t, req{method: "GET", path: "/api/v1/turnServers"}); strings.Contains(body, "turn-s3cret-pw") {
		t.Errorf("the TURN password is shown: %s", body)
	}
	// Every list of a CMS tool's start-up parses.
	for _, path := range []string{"/system/licensing", "/system/load", "/callBridges", "/webBridges", "/turnServers", "/tenants", "/participants"} {
		_, body := e.do(t, req{method: "GET", path: "/api/v1" + path})
		if err := xml.Unmarshal([]byte(body), new(struct{})); err != nil {
			t.Errorf("GET %s: %s does not parse: %v", path, body, err)
		}
	}
}
