package adminapi

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var coSpaceLocation = regexp.MustCompile(`^/api/v1/coSpaces/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// coSpaceGot decodes GET /coSpaces/{id} from XML and JSON alike.
type coSpaceGot struct {
	XMLName         xml.Name `xml:"coSpace" json:"-"`
	ID              string   `xml:"id,attr" json:"id"`
	Name            string   `xml:"name" json:"name"`
	URI             string   `xml:"uri" json:"uri"`
	SecondaryURI    string   `xml:"secondaryUri" json:"secondaryUri"`
	CallID          string   `xml:"callId" json:"callId"`
	OwnerJID        string   `xml:"ownerJid" json:"ownerJid"`
	NonMemberAccess bool     `xml:"nonMemberAccess" json:"nonMemberAccess"`
	DefaultLayout   string   `xml:"defaultLayout" json:"defaultLayout"`
	JID             string   `xml:"jid" json:"jid"`
}

type coSpacesGot struct {
	XMLName  xml.Name `xml:"coSpaces" json:"-"`
	Total    int      `xml:"total,attr" json:"total"`
	CoSpaces []struct {
		ID     string `xml:"id,attr" json:"id"`
		Name   string `xml:"name" json:"name"`
		URI    string `xml:"uri" json:"uri"`
		CallID string `xml:"callId" json:"callId"`
	} `xml:"coSpace" json:"coSpace"`
}

// createCoSpace POSTs form and returns the new id from Location.
func (e *env) createCoSpace(t *testing.T, form url.Values) string {
	t.Helper()
	resp, body := e.do(t, req{method: "POST", path: "/api/v1/coSpaces", form: form})
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("POST /coSpaces %v: status %d body %q, want 200 and no body", form, resp.StatusCode, body)
	}
	m := coSpaceLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if m == nil {
		t.Fatalf("Location = %q, want /api/v1/coSpaces/<GUID>", resp.Header.Get("Location"))
	}
	return m[1]
}

func (e *env) getCoSpace(t *testing.T, id string, isJSON bool) coSpaceGot {
	t.Helper()
	q := req{method: "GET", path: "/api/v1/coSpaces/" + id}
	if isJSON {
		q.accept = "application/json"
	}
	resp, body := e.do(t, q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET coSpace: %d %q", resp.StatusCode, body)
	}
	for _, leak := range []string{"passcode", "secret", "98765", "s3cret-link"} {
		if strings.Contains(body, leak) {
			t.Errorf("GET coSpace body %q contains %q: passcode and secret are write-only", body, leak)
		}
	}
	var got coSpaceGot
	decode(t, body, "coSpace", isJSON, &got)
	got.XMLName = xml.Name{}
	return got
}

func TestCoSpaceCRUD(t *testing.T) {
	for _, isJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "XML", true: "JSON"}[isJSON], func(t *testing.T) {
			e := newEnv(t)
			id := e.createCoSpace(t, url.Values{
				"name": {"Demo space"}, "uri": {"demo"}, "secondaryUri": {"demo.alt"}, "callId": {"4242"},
				"passcode": {"98765"}, "secret": {"s3cret-link"}, "ownerJid": {"Alice@Example.com"},
				"nonMemberAccess": {"true"}, "defaultLayout": {"speakerOnly"}, "unknownParameter": {"ignored"},
			})
			want := coSpaceGot{ID: id, Name: "Demo space", URI: "demo", SecondaryURI: "demo.alt", CallID: "4242",
				OwnerJID: "alice@example.com", NonMemberAccess: true, DefaultLayout: "speakerOnly"}
			if got := e.getCoSpace(t, id, isJSON); got != want {
				t.Errorf("GET = %+v, want %+v", got, want)
			}
			// The passcode was stored although it is never shown.
			if c, err := e.store.CoSpace(t.Context(), id); err != nil || c.Passcode.Reveal() != "98765" || c.Secret.Reveal() != "s3cret-link" {
				t.Errorf("stored passcode/secret wrong: %v", err)
			}

			// PUT: absent unchanged, empty unsets.
			resp, body := e.do(t, req{method: "PUT", path: "/api/v1/coSpaces/" + id, form: url.Values{"name": {"Renamed"}, "secondaryUri": {""}, "nonMemberAccess": {"false"}}})
			if resp.StatusCode != http.StatusOK || body != "" {
				t.Fatalf("PUT: %d %q", resp.StatusCode, body)
			}
			want.Name, want.SecondaryURI, want.NonMemberAccess = "Renamed", "", false
			if got := e.getCoSpace(t, id, isJSON); got != want {
				t.Errorf("after PUT: %+v, want %+v", got, want)
			}

			// The space's XMPP address appears once the XMPP settings are complete.
			e.setXMPPSettings(t)
			want.JID = id + "@cb1.example.com"
			if got := e.getCoSpace(t, id, isJSON); got != want {
				t.Errorf("with XMPP settings: %+v, want %+v", got, want)
			}

			resp, _ = e.do(t, req{method: "DELETE", path: "/api/v1/coSpaces/" + id})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("DELETE: %d", resp.StatusCode)
			}
			for _, method := range []string{"GET", "DELETE", "PUT"} {
				q := req{method: method, path: "/api/v1/coSpaces/" + id}
				if method == "PUT" {
					q.form = url.Values{"name": {"x"}}
				}
				if isJSON {
					q.accept = "application/json"
				}
				resp, body := e.do(t, q)
				if f := decodeFailure(t, body, isJSON); resp.StatusCode != http.StatusNotFound || f.Name != "coSpaceDoesNotExist" {
					t.Errorf("%s after delete: %d %+v, want 404 coSpaceDoesNotExist", method, resp.StatusCode, f)
				}
			}
		})
	}
}

func (e *env) setXMPPSettings(t *testing.T) {
	t.Helper()
	resp, body := e.do(t, req{method: "PUT", path: "/api/v1/system/configuration/xmpp",
		form: url.Values{"uniqueName": {"cb1"}, "domain": {"example.com"}}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT xmpp: %d %q", resp.StatusCode, body)
	}
}

func TestCoSpaceGeneratedCallID(t *testing.T) {
	e := newEnv(t)
	id := e.createCoSpace(t, url.Values{"name": {"No call ID given"}})
	if got := e.getCoSpace(t, id, false); !regexp.MustCompile(`^[1-9][0-9]{8}$`).MatchString(got.CallID) {
		t.Errorf("generated callId %q, want nine digits", got.CallID)
	}
	// And it can be unset afterwards.
	e.do(t, req{method: "PUT", path: "/api/v1/coSpaces/" + id, form: url.Values{"callId": {""}}})
	if got := e.getCoSpace(t, id, false); got.CallID != "" {
		t.Errorf("callId %q after unsetting it", got.CallID)
	}
}

func TestCoSpaceErrors(t *testing.T) {
	e := newEnv(t)
	id := e.createCoSpace(t, url.Values{"name": {"First"}, "uri": {"first"}, "secondaryUri": {"first2"}, "callId": {"100"}})
	tests := []struct {
		name       string
		method     string
		path       string
		form       url.Values
		wantStatus int
		want       failure
	}{
		{"duplicate uri", "POST", "/api/v1/coSpaces", url.Values{"uri": {"FIRST"}}, 400, failure{Name: "duplicateCoSpaceUri"}},
		{"uri equal to a secondary uri", "POST", "/api/v1/coSpaces", url.Values{"uri": {"first2"}}, 400, failure{Name: "duplicateCoSpaceUri"}},
		{"duplicate call ID", "POST", "/api/v1/coSpaces", url.Values{"callId": {"100"}}, 400, failure{Name: "duplicateCoSpaceId"}},
		{"call ID not digits", "POST", "/api/v1/coSpaces", url.Values{"callId": {"12ab"}}, 400, failure{"parameterError", "callId", "invalidValue"}},
		{"passcode not digits", "POST", "/api/v1/coSpaces", url.Values{"passcode": {"pw"}}, 400, failure{"parameterError", "passcode", "invalidValue"}},
		{"bad boolean", "POST", "/api/v1/coSpaces", url.Values{"nonMemberAccess": {"yes"}}, 400, failure{"parameterError", "nonMemberAccess", "invalidValue"}},
		{"bad owner", "POST", "/api/v1/coSpaces", url.Values{"ownerJid": {"alice@example.com/phone"}}, 400, failure{"parameterError", "ownerJid", "invalidValue"}},
		{"bad layout", "POST", "/api/v1/coSpaces", url.Values{"defaultLayout": {"mosaic"}}, 400, failure{"parameterError", "defaultLayout", "invalidValue"}},
		{"bad uri", "POST", "/api/v1/coSpaces", url.Values{"uri": {"a b"}}, 400, failure{"parameterError", "uri", "invalidValue"}},
		{"name twice", "POST", "/api/v1/coSpaces", url.Values{"name": {"a", "b"}}, 400, failure{"parameterError", "name", "invalidValue"}},
		{"PUT with a bad value", "PUT", "/api/v1/coSpaces/" + id, url.Values{"name": {"changed"}, "callId": {"x"}}, 400, failure{"parameterError", "callId", "invalidValue"}},
		{"PUT of an unknown space", "PUT", "/api/v1/coSpaces/nope", url.Values{"name": {"x"}}, 404, failure{Name: "coSpaceDoesNotExist"}},
		{"bad offset", "GET", "/api/v1/coSpaces?offset=-1", nil, 400, failure{"parameterError", "offset", "invalidValue"}},
		{"bad limit", "GET", "/api/v1/coSpaces?limit=x", nil, 400, failure{"parameterError", "limit", "invalidValue"}},
		{"method", "PATCH", "/api/v1/coSpaces/" + id, nil, 405, failure{Name: "methodNotAllowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, req{method: tt.method, path: tt.path, form: tt.form})
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if got := decodeFailure(t, body, false); got != tt.want {
				t.Errorf("failure %+v, want %+v", got, tt.want)
			}
		})
	}
	// Refused requests changed nothing.
	if got := e.getCoSpace(t, id, false); got.Name != "First" || got.CallID != "100" {
		t.Errorf("after refused requests: %+v", got)
	}
	resp, body := e.do(t, req{method: "GET", path: "/api/v1/coSpaces"})
	var list coSpacesGot
	decode(t, body, "coSpaces", false, &list)
	if resp.StatusCode != 200 || list.Total != 1 {
		t.Errorf("%d spaces after refused creations, want 1", list.Total)
	}
}

func TestCoSpaceList(t *testing.T) {
	e := newEnv(t)
	names := []string{"Echo", "alpha", "Delta", "charlie", "Bravo"}
	for i, n := range names {
		e.createCoSpace(t, url.Values{"name": {n}, "uri": {strings.ToLower(n) + ".room"}, "callId": {"10" + string(rune('0'+i))}})
	}
	tests := []struct {
		query     string
		want      []string
		wantTotal int
	}{
		{"", []string{"alpha", "Bravo", "charlie", "Delta", "Echo"}, 5},
		{"?limit=2", []string{"alpha", "Bravo"}, 5},
		{"?offset=2&limit=2", []string{"charlie", "Delta"}, 5},
		{"?offset=4", []string{"Echo"}, 5},
		{"?offset=9", nil, 5},
		{"?filter=ELTA", []string{"Delta"}, 1},
		{"?filter=.room&limit=1", []string{"alpha"}, 5},
		{"?filter=102", []string{"Delta"}, 1},
		{"?filter=zzz", nil, 0},
	}
	for _, tt := range tests {
		for _, isJSON := range []bool{false, true} {
			q := req{method: "GET", path: "/api/v1/coSpaces" + tt.query}
			if isJSON {
				q.accept = "application/json"
			}
			resp, body := e.do(t, q)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d %q", tt.query, resp.StatusCode, body)
			}
			var got coSpacesGot
			decode(t, body, "coSpaces", isJSON, &got)
			var gotNames []string
			for _, c := range got.CoSpaces {
				gotNames = append(gotNames, c.Name)
			}
			if strings.Join(gotNames, ",") != strings.Join(tt.want, ",") || got.Total != tt.wantTotal {
				t.Errorf("GET %s (json %v) = %v total %d, want %v total %d", tt.query, isJSON, gotNames, got.Total, tt.want, tt.wantTotal)
			}
			if isJSON && len(tt.want) == 0 && !strings.Contains(body, `"coSpace":[]`) {
				t.Errorf("JSON of an empty list %q: want \"coSpace\":[]", body)
			}
		}
	}
	_, body := e.do(t, req{method: "GET", path: "/api/v1/coSpaces?limit=1"})
	if !regexp.MustCompile(`^<\?xml version="1.0"\?><coSpaces total="5"><coSpace id="[0-9a-f-]{36}"><name>alpha</name><uri>alpha.room</uri><callId>101</callId></coSpace></coSpaces>$`).MatchString(body) {
		t.Errorf("list body %q is not in the CMS shape", body)
	}
}

func TestCoSpaceUsers(t *testing.T) {
	e := newEnv(t)
	id := e.createCoSpace(t, url.Values{"name": {"Team"}})
	base := "/api/v1/coSpaces/" + id + "/coSpaceUsers"
	resp, body := e.do(t, req{method: "POST", path: base, form: url.Values{"userJid": {"Bob@Example.com"}}})
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("POST coSpaceUsers: %d %q", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(base) + `/[0-9a-f-]{36}$`).MatchString(loc) {
		t.Fatalf("Location = %q", loc)
	}
	memberPath := loc
	e.do(t, req{method: "POST", path: base, form: url.Values{"userJid": {"carol@example.com"}, "role": {"owner"}}})

	type userGot struct {
		XMLName xml.Name `xml:"coSpaceUser" json:"-"`
		ID      string   `xml:"id,attr" json:"id"`
		UserJID string   `xml:"userJid" json:"userJid"`
		Role    string   `xml:"role" json:"role"`
	}
	for _, isJSON := range []bool{false, true} {
		q := req{method: "GET", path: base}
		if isJSON {
			q.accept = "application/json"
		}
		_, body := e.do(t, q)
		var list struct {
			XMLName xml.Name  `xml:"coSpaceUsers" json:"-"`
			Total   int       `xml:"total,attr" json:"total"`
			Users   []userGot `xml:"coSpaceUser" json:"coSpaceUser"`
		}
		decode(t, body, "coSpaceUsers", isJSON, &list)
		if list.Total != 2 || len(list.Users) != 2 || list.Users[0].UserJID != "bob@example.com" || list.Users[0].Role != "member" || list.Users[1].Role != "owner" {
			t.Errorf("coSpaceUsers (json %v) = %+v", isJSON, list)
		}
	}
	if _, body := e.do(t, req{method: "GET", path: base + "?offset=1&limit=1"}); !strings.Contains(body, `total="2"`) || strings.Count(body, "<coSpaceUser ") != 1 || !strings.Contains(body, "carol@example.com") {
		t.Errorf("paged coSpaceUsers = %q, want carol only, total 2", body)
	}

	resp, body = e.do(t, req{method: "PUT", path: memberPath, form: url.Values{"role": {"owner"}}})
	if resp.StatusCode != 200 {
		t.Fatalf("PUT member: %d %q", resp.StatusCode, body)
	}
	_, body = e.do(t, req{method: "GET", path: memberPath})
	var one userGot
	decode(t, body, "coSpaceUser", false, &one)
	if one.UserJID != "bob@example.com" || one.Role != "owner" {
		t.Errorf("member after PUT = %+v", one)
	}

	tests := []struct {
		name       string
		method     string
		path       string
		form       url.Values
		wantStatus int
		want       failure
	}{
		{"duplicate", "POST", base, url.Values{"userJid": {"bob@example.com"}}, 400, failure{Name: "duplicateCoSpaceUser"}},
		{"no userJid", "POST", base, url.Values{"role": {"member"}}, 400, failure{"parameterError", "userJid", "required"}},
		{"bad userJid", "POST", base, url.Values{"userJid": {"@@"}}, 400, failure{"parameterError", "userJid", "invalidValue"}},
		{"bad role", "POST", base, url.Values{"userJid": {"dave@example.com"}, "role": {"admin"}}, 400, failure{"parameterError", "role", "invalidValue"}},
		{"unknown space", "POST", "/api/v1/coSpaces/nope/coSpaceUsers", url.Values{"userJid": {"dave@example.com"}}, 404, failure{Name: "coSpaceDoesNotExist"}},
		{"list of unknown space", "GET", "/api/v1/coSpaces/nope/coSpaceUsers", nil, 404, failure{Name: "coSpaceDoesNotExist"}},
		{"unknown member", "GET", base + "/nope", nil, 404, failure{Name: "coSpaceUserDoesNotExist"}},
		{"PUT unknown member", "PUT", base + "/nope", url.Values{"role": {"owner"}}, 404, failure{Name: "coSpaceUserDoesNotExist"}},
		{"PUT bad role", "PUT", memberPath, url.Values{"role": {"boss"}}, 400, failure{"parameterError", "role", "invalidValue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, req{method: tt.method, path: tt.path, form: tt.form})
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if got := decodeFailure(t, body, false); got != tt.want {
				t.Errorf("failure %+v, want %+v", got, tt.want)
			}
		})
	}

	if resp, _ := e.do(t, req{method: "DELETE", path: memberPath}); resp.StatusCode != 200 {
		t.Fatalf("DELETE member: %d", resp.StatusCode)
	}
	resp, body = e.do(t, req{method: "DELETE", path: memberPath})
	if f := decodeFailure(t, body, false); resp.StatusCode != 404 || f.Name != "coSpaceUserDoesNotExist" {
		t.Errorf("second DELETE: %d %+v", resp.StatusCode, f)
	}
}
