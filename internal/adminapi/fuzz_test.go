package adminapi

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/store"
)

// fuzzEndpoints are the requests FuzzRequestBody sends arbitrary bodies to; {space} is a space
// that exists.
var fuzzEndpoints = []struct{ method, path string }{
	{"PUT", "/api/v1/system/configuration/xmpp"},
	{"POST", "/api/v1/system/configuration/xmpp"},
	{"POST", "/api/v1/coSpaces"},
	{"PUT", "/api/v1/coSpaces/{space}"},
	{"POST", "/api/v1/coSpaces/{space}/coSpaceUsers"},
	{"POST", "/api/v1/users"},
	{"POST", "/api/v1/ldapServers"},
	{"POST", "/api/v1/ldapMappings"},
	{"POST", "/api/v1/ldapSources"},
	{"GET", "/api/v1/coSpaces"},
	{"DELETE", "/api/v1/coSpaces/{space}/coSpaceUsers/x"},
	{"POST", "/api/v1/coSpaces/{space}/accessMethods"},
	{"POST", "/api/v1/callLegProfiles"},
	{"POST", "/api/v1/callProfiles"},
	{"PUT", "/api/v1/system/profiles"},
	{"POST", "/api/v1/system/cdrReceivers"},
	{"PUT", "/api/v1/system/configuration/cdr"},
	{"POST", "/api/v1/turnServers"},
	{"POST", "/api/v1/calls"},
	{"PUT", "/api/v1/calls/x/participants/*"},
}

// secretParams are write-only: no answer may show their values.
var secretParams = []string{"sharedSecret", "passcode", "secret", "password", "bindPassword"}

func fuzzAPI(tb testing.TB) (http.Handler, string) {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(tb.TempDir(), "confab.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	h, err := passhash.Hash(testPassword)
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.AddAPIUser(ctx, testUser, h); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.UpdateXMPPSettings(ctx, func(c *store.XMPPSettings) error { c.Domain = "example.com"; return nil }); err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	svc := users.New(users.Options{Store: st, Logger: logger})
	tb.Cleanup(func() { svc.Close() })
	api := New(Options{Store: st, Logger: logger, AuthFailureDelay: -1, Users: svc,
		Now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }})
	rec := serve(api, "POST", "/api/v1/coSpaces", "application/x-www-form-urlencoded", "name=fuzz&uri=fuzz", false)
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusOK || loc == "" {
		tb.Fatalf("create a space: %d %s", rec.Code, rec.Body)
	}
	return api, loc[strings.LastIndexByte(loc, '/')+1:]
}

func serve(h http.Handler, method, path, contentType, body string, wantJSON bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if method == "GET" {
		r.URL.RawQuery, r.Body = body, http.NoBody // a GET's parameters are its query
	}
	r.SetBasicAuth(testUser, testPassword)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if wantJSON {
		r.Header.Set("Accept", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// wellFormed reports whether b is one XML document (or JSON value) and nothing else.
func wellFormed(b []byte, isJSON bool) bool {
	if isJSON {
		return json.Valid(b)
	}
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		if _, err := d.Token(); err != nil {
			return err == io.EOF
		}
	}
}

// FuzzRequestBody sends arbitrary form bodies (and content types) to the API's writing
// endpoints and checks that each is answered with success or a failureDetails document, never
// a server error, that answers are well-formed, and that no answer shows a secret.
func FuzzRequestBody(f *testing.F) {
	for _, s := range []struct {
		ep       uint8
		ct, body string
	}{
		{0, "application/x-www-form-urlencoded", "uniqueName=cb1&domain=example.com&sharedSecret=0123456789abcdefghij"},
		{0, "", "serverAddressOverride=[::1]:5223"},
		{1, "application/x-www-form-urlencoded; charset=utf-8", "domain=&uniqueName="},
		{2, "application/x-www-form-urlencoded", "name=a&uri=b&callId=123456&passcode=98765432109876"},
		{2, "application/x-www-form-urlencoded", "name=%zz"},
		{3, "application/x-www-form-urlencoded", "name=x&name=y"},
		{4, "application/x-www-form-urlencoded", "userJid=alice@example.com&canDestroy=maybe"},
		{5, "application/x-www-form-urlencoded", "username=bob&password=averylongsecretpassword&name=Bob"},
		{6, "application/x-www-form-urlencoded", "address=ldap.example.com&portNumber=99999&username=cn=x&password=ldapsecretvalue123"},
		{7, "application/x-www-form-urlencoded", "jidMapping=$sAMAccountName$@example.com&nameMapping=$cn"},
		{8, "application/x-www-form-urlencoded", "server=x&mapping=y&baseDn=dc=example,dc=com&filter=(objectClass=person"},
		{9, "", ""},
		{2, "application/json", `{"name":"a"}`},
		{2, "text/xml", `<coSpace><name>a</name></coSpace>`},
		{2, "multipart/form-data; boundary=x", "--x\r\n"},
		{11, "", "name=h&callId=1&passcode=123456789012345&secret=am-secret-value-1"},
		{12, "x-www-form-urlencoded", "rxAudioMute=true&defaultLayout=stacked&participantLimit=3"},
		{15, "", "uri=http://cdr.example.com/x?token=0123456789abcdef"},
		{17, "", "serverAddress=turn.example.com&password=turn-password-long"},
		{0, "application/x-www-form-urlencoded", strings.Repeat("a=1&", 200)},
	} {
		f.Add(s.ep, s.ct, s.body, false)
	}
	api, space := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, ep uint8, contentType, body string, wantJSON bool) {
		e := fuzzEndpoints[int(ep)%len(fuzzEndpoints)]
		path := strings.ReplaceAll(e.path, "{space}", space)
		rec := serve(api, e.method, path, contentType, body, wantJSON)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", e.method, path, body, rec.Code, rec.Body)
		}
		out := rec.Body.Bytes()
		isJSON := strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json")
		if len(out) > 0 && !wellFormed(out, isJSON) {
			t.Fatalf("%s %s: answer is not well-formed: %s", e.method, path, out)
		}
		if rec.Code != http.StatusOK && !strings.Contains(string(out), "failureDetails") {
			t.Fatalf("%s %s: status %d without failureDetails: %s", e.method, path, rec.Code, out)
		}
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		// A write that succeeded is read back: the secrets it set are not shown.
		var back *httptest.ResponseRecorder
		switch {
		case rec.Code != http.StatusOK:
		case strings.HasSuffix(path, "/configuration/xmpp"):
			back = serve(api, "GET", path, "", "", wantJSON)
		case rec.Header().Get("Location") != "":
			back = serve(api, "GET", rec.Header().Get("Location"), "", "", wantJSON)
		}
		for _, p := range secretParams {
			v := form.Get(p)
			if len(v) < 12 || strings.ContainsAny(v, `<>&"'\`) {
				continue // too short to tell from other text
			}
			if strings.Contains(string(out), v) || back != nil && strings.Contains(back.Body.String(), v) {
				t.Fatalf("%s %s: the value of %s is shown", e.method, path, p)
			}
		}
	})
}
