package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/clocktest"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// fakeLink stands in for the XMPP link: it reports what the test sets and records Apply.
type fakeLink struct {
	mu      sync.Mutex
	status  linkstate.Status
	alarms  []linkstate.Alarm
	trace   linkstate.Trace
	applied []store.XMPPSettings
}

func (l *fakeLink) Status() linkstate.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

func (l *fakeLink) Alarms() []linkstate.Alarm {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alarms
}

func (l *fakeLink) Trace(after uint64) []linkstate.Event { return l.trace.Events(after) }

func (l *fakeLink) Apply(c store.XMPPSettings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied = append(l.applied, c)
}

func (l *fakeLink) appliedConfigs() []store.XMPPSettings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]store.XMPPSettings(nil), l.applied...)
}

// lockedBuffer collects log output written from server goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// clock is a settable time source.
type env struct {
	ts    *httptest.Server
	srv   *server
	store *store.Store
	link  *fakeLink
	logs  *lockedBuffer
	clock *clocktest.Clock
}

const (
	testUser     = "admin"
	testPassword = "correct horse"
)

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := passhash.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddAPIUser(context.Background(), testUser, h); err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, link: &fakeLink{}, logs: &lockedBuffer{}, clock: clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	handler := New(Options{
		Store: st, Link: e.link, Version: "1.2.3", Now: e.clock.Now,
		Logger:           slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AuthFailureDelay: time.Millisecond,
	})
	e.srv = handler.s
	e.ts = httptest.NewServer(handler)
	t.Cleanup(e.ts.Close)
	return e
}

type req struct {
	method, path string
	form         url.Values // sent form-encoded when non-nil
	accept       string
	user, pass   string // testUser/testPassword when both empty; "-" for no credentials
}

func (e *env) do(t *testing.T, q req) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if q.form != nil {
		body = strings.NewReader(q.form.Encode())
	}
	r, err := http.NewRequest(q.method, e.ts.URL+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if q.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if q.accept != "" {
		r.Header.Set("Accept", q.accept)
	}
	switch {
	case q.user == "-":
	case q.user == "" && q.pass == "":
		r.SetBasicAuth(testUser, testPassword)
	default:
		r.SetBasicAuth(q.user, q.pass)
	}
	resp, err := e.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// failure is failureDetails decoded back, from XML or JSON.
type failure struct {
	Name, Parameter, Problem string
}

func decodeFailure(t *testing.T, body string, isJSON bool) failure {
	t.Helper()
	if isJSON {
		var m map[string]map[string]map[string]string
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("decode JSON failure %q: %v", body, err)
		}
		fd, ok := m["failureDetails"]
		if !ok || len(fd) != 1 {
			t.Fatalf("JSON failure %q: want one failureDetails member", body)
		}
		for name, attrs := range fd {
			return failure{name, attrs["parameter"], attrs["error"]}
		}
	}
	if !strings.HasPrefix(body, `<?xml version="1.0"?><failureDetails>`) {
		t.Fatalf("failure body %q: want the XML declaration then failureDetails", body)
	}
	var fd struct {
		XMLName xml.Name `xml:"failureDetails"`
		Inner   []struct {
			XMLName   xml.Name
			Parameter string `xml:"parameter,attr"`
			Error     string `xml:"error,attr"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal([]byte(body), &fd); err != nil {
		t.Fatalf("decode XML failure %q: %v", body, err)
	}
	if len(fd.Inner) != 1 {
		t.Fatalf("failure %q: want one element in failureDetails", body)
	}
	return failure{fd.Inner[0].XMLName.Local, fd.Inner[0].Parameter, fd.Inner[0].Error}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		user, pass string
		want       int
	}{
		{"no credentials", "-", "", http.StatusUnauthorized},
		{"wrong password", testUser, "wrong", http.StatusUnauthorized},
		{"empty password", testUser, "", http.StatusUnauthorized},
		{"unknown user", "mallory", testPassword, http.StatusUnauthorized},
		{"right password", testUser, testPassword, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, req{method: "GET", path: "/api/v1/system/status", user: tt.user, pass: tt.pass})
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tt.want, body)
			}
			if tt.want == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="Confab"` {
					t.Errorf("WWW-Authenticate = %q, want Basic realm=\"Confab\"", got)
				}
				if f := decodeFailure(t, body, false); f.Name != "authenticationFailure" {
					t.Errorf("failure = %+v, want authenticationFailure", f)
				}
			}
		})
	}
}

func TestAuthCache(t *testing.T) {
	e := newEnv(t)
	get := func() int {
		resp, _ := e.do(t, req{method: "GET", path: "/api/v1/system/status"})
		return resp.StatusCode
	}
	for i := 0; i < 3; i++ {
		if got := get(); got != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, got)
		}
	}
	if n := verifications(e); n != 1 {
		t.Errorf("3 requests with the same credentials ran Argon2 %d times, want 1", n)
	}
	// The cache expires.
	e.clock.Advance(time.Minute + time.Second)
	if got := get(); got != http.StatusOK {
		t.Fatalf("after expiry: status %d, want 200", got)
	}
	if n := verifications(e); n != 2 {
		t.Errorf("after the cache expired Argon2 ran %d times in all, want 2", n)
	}
	// A changed password takes effect at once, cache or not.
	h, _ := passhash.Hash("new password")
	if err := e.store.SetAPIUserHash(context.Background(), testUser, h); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != http.StatusUnauthorized {
		t.Errorf("old password after a change: status %d, want 401", got)
	}
	// So does a deleted account.
	resp, _ := e.do(t, req{method: "GET", path: "/api/v1/system/status", user: testUser, pass: "new password"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("new password: status %d, want 200", resp.StatusCode)
	}
	if err := e.store.DeleteAPIUser(context.Background(), testUser); err != nil {
		t.Fatal(err)
	}
	resp, _ = e.do(t, req{method: "GET", path: "/api/v1/system/status", user: testUser, pass: "new password"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("deleted account: status %d, want 401", resp.StatusCode)
	}
}

// xmppDoc decodes GET /system/configuration/xmpp from XML and JSON alike.
type xmppDoc struct {
	XMLName               xml.Name `xml:"xmpp" json:"-"`
	UniqueName            string   `xml:"uniqueName" json:"uniqueName"`
	Domain                string   `xml:"domain" json:"domain"`
	ServerAddressOverride string   `xml:"serverAddressOverride" json:"serverAddressOverride"`
}

// decode reads body into v, as XML or as JSON under the root member.
func decode(t *testing.T, body, root string, isJSON bool, v any) {
	t.Helper()
	if !isJSON {
		if !strings.HasPrefix(body, `<?xml version="1.0"?><`+root) {
			t.Fatalf("body %q: want the XML declaration then <%s", body, root)
		}
		if err := xml.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("decode XML %q: %v", body, err)
		}
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decode JSON %q: %v", body, err)
	}
	raw, ok := m[root]
	if !ok || len(m) != 1 {
		t.Fatalf("JSON %q: want exactly one member %q", body, root)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode JSON %q: %v", body, err)
	}
}

func (e *env) getXMPP(t *testing.T, isJSON bool) xmppDoc {
	t.Helper()
	q := req{method: "GET", path: "/api/v1/system/configuration/xmpp"}
	if isJSON {
		q.accept = "application/json"
	}
	resp, body := e.do(t, q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET xmpp: status %d, body %q", resp.StatusCode, body)
	}
	wantCT := "text/xml; charset=utf-8"
	if isJSON {
		wantCT = "application/json"
	}
	if ct := resp.Header.Get("Content-Type"); ct != wantCT {
		t.Errorf("Content-Type = %q, want %q", ct, wantCT)
	}
	var d xmppDoc
	decode(t, body, "xmpp", isJSON, &d)
	return d
}

func TestXMPPConfigSetAndGet(t *testing.T) {
	for _, method := range []string{"PUT", "POST"} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t)
			// Never set: an empty document.
			resp, body := e.do(t, req{method: "GET", path: "/api/v1/system/configuration/xmpp"})
			if want := `<?xml version="1.0"?><xmpp></xmpp>`; resp.StatusCode != 200 || body != want {
				t.Errorf("GET of unset settings = %d %q, want 200 %q", resp.StatusCode, body, want)
			}
			form := url.Values{
				"uniqueName": {"cb1"}, "domain": {"example.com"},
				"serverAddressOverride": {"xmpp.example.com:5223"}, "sharedSecret": {"s3cret-value"},
			}
			resp, body = e.do(t, req{method: method, path: "/api/v1/system/configuration/xmpp", form: form})
			if resp.StatusCode != http.StatusOK || body != "" {
				t.Fatalf("%s: status %d body %q, want 200 and no body", method, resp.StatusCode, body)
			}
			resp, body = e.do(t, req{method: "GET", path: "/api/v1/system/configuration/xmpp"})
			want := `<?xml version="1.0"?><xmpp><uniqueName>cb1</uniqueName><domain>example.com</domain>` +
				`<serverAddressOverride>xmpp.example.com:5223</serverAddressOverride></xmpp>`
			if body != want {
				t.Errorf("GET body = %q, want %q", body, want)
			}
			wantDoc := xmppDoc{UniqueName: "cb1", Domain: "example.com", ServerAddressOverride: "xmpp.example.com:5223"}
			for _, isJSON := range []bool{false, true} {
				got := e.getXMPP(t, isJSON)
				got.XMLName = xml.Name{}
				if got != wantDoc {
					t.Errorf("GET (json=%v) = %+v, want %+v", isJSON, got, wantDoc)
				}
			}
			stored, _ := e.store.XMPPSettings(context.Background())
			if stored.SharedSecret.Reveal() != "s3cret-value" {
				t.Errorf("stored secret = %q, want s3cret-value", stored.SharedSecret.Reveal())
			}
			applied := e.link.appliedConfigs()
			if len(applied) != 1 || applied[0] != stored {
				t.Errorf("Apply calls = %+v, want one with the stored settings %+v", applied, stored)
			}
		})
	}
}

func TestOmittedAndEmptyFields(t *testing.T) {
	e := newEnv(t)
	full := store.XMPPSettings{UniqueName: "cb1", Domain: "example.com", ServerAddressOverride: "10.0.0.5", SharedSecret: secret.New("s")}
	if err := e.store.SetXMPPSettings(context.Background(), full); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		form url.Values
		want store.XMPPSettings
	}{
		{"one field changes, the others stay", url.Values{"domain": {"example.org"}},
			store.XMPPSettings{UniqueName: "cb1", Domain: "example.org", ServerAddressOverride: "10.0.0.5", SharedSecret: secret.New("s")}},
		{"empty unsets", url.Values{"serverAddressOverride": {""}},
			store.XMPPSettings{UniqueName: "cb1", Domain: "example.org", SharedSecret: secret.New("s")}},
		{"empty secret unsets", url.Values{"sharedSecret": {""}, "uniqueName": {"cb2"}},
			store.XMPPSettings{UniqueName: "cb2", Domain: "example.org"}},
		{"nothing given changes nothing", url.Values{},
			store.XMPPSettings{UniqueName: "cb2", Domain: "example.org"}},
		{"query parameters are not the form", nil,
			store.XMPPSettings{UniqueName: "cb2", Domain: "example.org"}},
	}
	for i, s := range steps {
		path := "/api/v1/system/configuration/xmpp"
		if s.form == nil {
			path += "?domain=query.example"
		}
		resp, body := e.do(t, req{method: "PUT", path: path, form: s.form})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d %q", s.name, resp.StatusCode, body)
		}
		got, _ := e.store.XMPPSettings(context.Background())
		if got != s.want {
			t.Errorf("%s: stored %+v (secret %q), want %+v", s.name, got, got.SharedSecret.Reveal(), s.want)
		}
		if applied := e.link.appliedConfigs(); len(applied) != i+1 || applied[i] != s.want {
			t.Errorf("%s: Apply got %+v, want %+v", s.name, applied[len(applied)-1], s.want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	e := newEnv(t)
	start := store.XMPPSettings{UniqueName: "cb1", Domain: "example.com"}
	if err := e.store.SetXMPPSettings(context.Background(), start); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		form      url.Values
		parameter string
	}{
		{url.Values{"domain": {"exa mple.com"}}, "domain"},
		{url.Values{"domain": {"-bad.example.com"}}, "domain"},
		{url.Values{"domain": {"10.0.0.1"}}, "domain"},
		{url.Values{"uniqueName": {"cb.1"}}, "uniqueName"},
		{url.Values{"uniqueName": {"cb@x"}}, "uniqueName"},
		{url.Values{"serverAddressOverride": {"host:99999"}}, "serverAddressOverride"},
		{url.Values{"serverAddressOverride": {"::1:5223x"}}, "serverAddressOverride"},
		{url.Values{"serverAddressOverride": {"[10.0.0.1]:5223"}}, "serverAddressOverride"},
		{url.Values{"sharedSecret": {"a\nb"}}, "sharedSecret"},
		{url.Values{"domain": {"a.example", "b.example"}}, "domain"},
		// A valid field beside an invalid one is not stored either.
		{url.Values{"uniqueName": {"cb9"}, "domain": {"bad_domain.example"}}, "domain"},
	}
	for _, tt := range tests {
		for _, isJSON := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s json=%v", tt.form.Encode(), isJSON), func(t *testing.T) {
				q := req{method: "PUT", path: "/api/v1/system/configuration/xmpp", form: tt.form}
				if isJSON {
					q.accept = "application/json"
				}
				resp, body := e.do(t, q)
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400 (body %q)", resp.StatusCode, body)
				}
				want := failure{"parameterError", tt.parameter, "invalidValue"}
				if got := decodeFailure(t, body, isJSON); got != want {
					t.Errorf("failure = %+v, want %+v", got, want)
				}
				if got, _ := e.store.XMPPSettings(context.Background()); got != start {
					t.Errorf("a refused request changed the settings to %+v", got)
				}
			})
		}
	}
	if n := len(e.link.appliedConfigs()); n != 0 {
		t.Errorf("refused requests called Apply %d times", n)
	}
	// The exact XML of a parameter error.
	_, body := e.do(t, req{method: "PUT", path: "/api/v1/system/configuration/xmpp", form: url.Values{"domain": {"a..b"}}})
	if want := `<?xml version="1.0"?><failureDetails><parameterError parameter="domain" error="invalidValue" /></failureDetails>`; body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}

func TestSecretNeverShown(t *testing.T) {
	e := newEnv(t)
	const value = "Zq9-very-distinct-shared-secret"
	form := url.Values{"uniqueName": {"cb1"}, "domain": {"example.com"}, "sharedSecret": {value}}
	if resp, body := e.do(t, req{method: "POST", path: "/api/v1/system/configuration/xmpp", form: form}); resp.StatusCode != 200 {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	// A refused request carrying the secret must not log it either.
	form.Set("domain", "bad domain")
	e.do(t, req{method: "PUT", path: "/api/v1/system/configuration/xmpp", form: form})
	e.link.mu.Lock()
	e.link.status = linkstate.Status{State: linkstate.Registered, ComponentJID: "cb1.example.com"}
	e.link.mu.Unlock()
	for _, path := range []string{"/api/v1/system/configuration/xmpp", "/api/v1/system/status", "/api/v1/system/alarms", "/api/v1/system/xmppTrace"} {
		for _, accept := range []string{"", "application/json"} {
			resp, body := e.do(t, req{method: "GET", path: path, accept: accept})
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: status %d", path, resp.StatusCode)
			}
			if strings.Contains(body, value) || strings.Contains(strings.ToLower(body), "sharedsecret") {
				t.Errorf("GET %s (Accept %q) shows the secret: %s", path, accept, body)
			}
		}
	}
	e.ts.Close() // waits for the handlers, so every log line is written
	logs := e.logs.String()
	if !strings.Contains(logs, "xmpp settings changed") {
		t.Fatalf("the change was not logged; logs:\n%s", logs)
	}
	if strings.Contains(logs, value) {
		t.Errorf("the logs contain the secret:\n%s", logs)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	big := url.Values{"domain": {"example.com"}, "pad": {strings.Repeat("x", MaxBodyBytes)}}
	for _, isJSON := range []bool{false, true} {
		q := req{method: "PUT", path: "/api/v1/system/configuration/xmpp", form: big}
		if isJSON {
			q.accept = "application/json"
		}
		resp, body := e.do(t, q)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
		if f := decodeFailure(t, body, isJSON); f.Name != "requestTooLarge" {
			t.Errorf("failure = %+v, want requestTooLarge", f)
		}
	}
	if got, _ := e.store.XMPPSettings(context.Background()); got.Domain != "" {
		t.Errorf("a refused body was stored: %+v", got)
	}
}

// TestBodyNotAForm: a body that is a document rather than a form is refused, naming the
// problem, whatever its Content-Type says (see also TestFormBodies).
func TestBodyNotAForm(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct{ contentType, body string }{
		{"application/json", `{"domain":"example.com"}`},
		{"application/x-www-form-urlencoded", ` [1]`},
		{"text/xml", `<xmpp><domain>example.com</domain></xmpp>`},
		{"", "\n<?xml version=\"1.0\"?><xmpp/>"},
	} {
		t.Run(tt.contentType, func(t *testing.T) {
			r, _ := http.NewRequest("PUT", e.ts.URL+"/api/v1/system/configuration/xmpp", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			r.SetBasicAuth(testUser, testPassword)
			resp, err := e.ts.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := `<?xml version="1.0"?><failureDetails><parameterError parameter="body" error="notFormEncoded" /></failureDetails>`
			if resp.StatusCode != http.StatusBadRequest || string(b) != want {
				t.Errorf("got %d %s, want 400 %s", resp.StatusCode, b, want)
			}
		})
	}
	if got, _ := e.store.XMPPSettings(context.Background()); got.Domain != "" {
		t.Errorf("a refused body was stored: %+v", got)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path string
		status       int
		failure      string
	}{
		{"GET", "/api/v1/system/nothing", http.StatusNotFound, "pathDoesNotExist"},
		{"GET", "/api/v1/noSuchCollection", http.StatusNotFound, "pathDoesNotExist"},
		{"GET", "/", http.StatusNotFound, "pathDoesNotExist"},
		{"DELETE", "/api/v1/system/configuration/xmpp", http.StatusMethodNotAllowed, "methodNotAllowed"},
		{"POST", "/api/v1/system/status", http.StatusMethodNotAllowed, "methodNotAllowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := e.do(t, req{method: tt.method, path: tt.path})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if f := decodeFailure(t, body, false); f.Name != tt.failure {
				t.Errorf("failure %+v, want %s", f, tt.failure)
			}
			if tt.status == http.StatusMethodNotAllowed && !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("Allow = %q, want it to list GET", resp.Header.Get("Allow"))
			}
		})
	}
	// Without credentials the answer is 401 whatever the path, so paths are not revealed.
	if resp, _ := e.do(t, req{method: "GET", path: "/api/v1/nothing", user: "-"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown path without credentials: %d, want 401", resp.StatusCode)
	}
}

type alarmsTestDoc struct {
	XMLName xml.Name `xml:"alarms" json:"-"`
	Total   int      `xml:"total,attr" json:"total"`
	Alarm   []struct {
		ID                string `xml:"id,attr" json:"id"`
		Type              string `xml:"type" json:"type"`
		ActiveTimeSeconds int64  `xml:"activeTimeSeconds" json:"activeTimeSeconds"`
		FailureReason     string `xml:"failureReason" json:"failureReason"`
		TLSFailureCause   string `xml:"tlsFailureCause" json:"tlsFailureCause"`
		Detail            string `xml:"detail" json:"detail"`
	} `xml:"alarm" json:"alarm"`
}

func TestAlarms(t *testing.T) {
	e := newEnv(t)
	for _, isJSON := range []bool{false, true} {
		var d alarmsTestDoc
		e.getDoc(t, "/api/v1/system/alarms", "alarms", isJSON, &d)
		if d.Total != 0 || len(d.Alarm) != 0 {
			t.Errorf("no alarms (json=%v): got %+v", isJSON, d)
		}
	}
	e.link.mu.Lock()
	e.link.alarms = []linkstate.Alarm{{
		ID: "5d1a6c2e-0000-4000-8000-000000000001", Type: "xmppRegistrationFailure", FailureReason: linkstate.ReasonConnect,
		TLSCause: "unknown-authority", Detail: "certificate signed by an unknown authority", ActiveSince: e.clock.Now(),
	}}
	e.link.mu.Unlock()
	e.clock.Advance(90 * time.Second)
	for _, isJSON := range []bool{false, true} {
		var d alarmsTestDoc
		e.getDoc(t, "/api/v1/system/alarms", "alarms", isJSON, &d)
		if d.Total != 1 || len(d.Alarm) != 1 {
			t.Fatalf("json=%v: got %+v, want one alarm", isJSON, d)
		}
		a := d.Alarm[0]
		if a.ID != "5d1a6c2e-0000-4000-8000-000000000001" || a.Type != "xmppRegistrationFailure" || a.ActiveTimeSeconds != 90 ||
			a.FailureReason != "connectFailure" || a.TLSFailureCause != "unknown-authority" || a.Detail == "" {
			t.Errorf("json=%v: alarm %+v", isJSON, a)
		}
	}
	_, body := e.do(t, req{method: "GET", path: "/api/v1/system/alarms"})
	want := `<?xml version="1.0"?><alarms total="1"><alarm id="5d1a6c2e-0000-4000-8000-000000000001"><type>xmppRegistrationFailure</type>` +
		`<activeTimeSeconds>90</activeTimeSeconds><failureReason>connectFailure</failureReason>` +
		`<tlsFailureCause>unknown-authority</tlsFailureCause><detail>certificate signed by an unknown authority</detail></alarm></alarms>`
	if body != want {
		t.Errorf("body = %q\nwant %q", body, want)
	}
}

func (e *env) getDoc(t *testing.T, path, root string, isJSON bool, v any) {
	t.Helper()
	q := req{method: "GET", path: path}
	if isJSON {
		q.accept = "application/json"
	}
	resp, body := e.do(t, q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
	decode(t, body, root, isJSON, v)
}

type statusTestDoc struct {
	XMLName              xml.Name `xml:"status" json:"-"`
	SoftwareVersion      string   `xml:"softwareVersion" json:"softwareVersion"`
	UptimeSeconds        int64    `xml:"uptimeSeconds" json:"uptimeSeconds"`
	Activated            bool     `xml:"activated" json:"activated"`
	ClusterEnabled       bool     `xml:"clusterEnabled" json:"clusterEnabled"`
	CallLegsActive       int      `xml:"callLegsActive" json:"callLegsActive"`
	CallLegsMaxActive    int      `xml:"callLegsMaxActive" json:"callLegsMaxActive"`
	CallLegsCompleted    int      `xml:"callLegsCompleted" json:"callLegsCompleted"`
	AudioBitRateOutgoing int      `xml:"audioBitRateOutgoing" json:"audioBitRateOutgoing"`
	VideoBitRateOutgoing int      `xml:"videoBitRateOutgoing" json:"videoBitRateOutgoing"`
	AudioBitRateIncoming int      `xml:"audioBitRateIncoming" json:"audioBitRateIncoming"`
	VideoBitRateIncoming int      `xml:"videoBitRateIncoming" json:"videoBitRateIncoming"`
	XMPPLink             struct {
		State        string `xml:"state" json:"state"`
		Server       string `xml:"server" json:"server"`
		Address      string `xml:"address" json:"address"`
		Since        string `xml:"since" json:"since"`
		ComponentJID string `xml:"componentJid" json:"componentJid"`
		Attempt      uint64 `xml:"attempt" json:"attempt"`
		NextAttempt  string `xml:"nextAttempt" json:"nextAttempt"`
		LastError    string `xml:"lastError" json:"lastError"`
	} `xml:"xmppLink" json:"xmppLink"`
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	since := e.clock.Now().Add(-time.Minute)
	e.link.mu.Lock()
	e.link.status = linkstate.Status{
		State: linkstate.Registered, ComponentJID: "cb1.example.com", Server: "xmpp.example.com:5223",
		Address: "[2001:db8::5]:5223", Since: since, Attempt: 3, LastError: "earlier: connection refused",
	}
	e.link.mu.Unlock()
	e.clock.Advance(42 * time.Second)
	for _, isJSON := range []bool{false, true} {
		var d statusTestDoc
		e.getDoc(t, "/api/v1/system/status", "status", isJSON, &d)
		l := d.XMPPLink
		if d.SoftwareVersion != "1.2.3" || d.UptimeSeconds != 42 || !d.Activated || d.ClusterEnabled || d.CallLegsActive != 0 {
			t.Errorf("json=%v: status %+v", isJSON, d)
		}
		if l.State != "registered" || l.ComponentJID != "cb1.example.com" || l.Server != "xmpp.example.com:5223" ||
			l.Address != "[2001:db8::5]:5223" || l.Since != since.Format(time.RFC3339) || l.Attempt != 3 ||
			l.NextAttempt != "" || l.LastError != "earlier: connection refused" {
			t.Errorf("json=%v: xmppLink %+v", isJSON, l)
		}
	}
}

func TestStatusWithoutLink(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, _ := passhash.Hash("pw")
	st.AddAPIUser(context.Background(), "a", h)
	ts := httptest.NewServer(New(Options{Store: st}))
	defer ts.Close()
	r, _ := http.NewRequest("GET", ts.URL+"/api/v1/system/status", nil)
	r.SetBasicAuth("a", "pw")
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "<xmppLink><state>unavailable</state></xmppLink>") {
		t.Errorf("status without a link = %s, want the link unavailable", b)
	}
}

type traceTestDoc struct {
	XMLName xml.Name `xml:"xmppTrace" json:"-"`
	Total   int      `xml:"total,attr" json:"total"`
	Event   []struct {
		Seq        uint64  `xml:"seq,attr" json:"seq"`
		Attempt    uint64  `xml:"attempt,attr" json:"attempt"`
		Step       string  `xml:"step" json:"step"`
		Target     string  `xml:"target" json:"target"`
		Start      string  `xml:"start" json:"start"`
		DurationMs float64 `xml:"durationMs" json:"durationMs"`
		Outcome    string  `xml:"outcome" json:"outcome"`
		Cause      string  `xml:"cause" json:"cause"`
		Detail     string  `xml:"detail" json:"detail"`
		Remedy     string  `xml:"remedy" json:"remedy"`
	} `xml:"event" json:"event"`
}

func TestXMPPTrace(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 3, 1, 11, 59, 0, 500_000_000, time.UTC)
	steps := []linkstate.Step{linkstate.StepConfig, linkstate.StepSRV, linkstate.StepResolve, linkstate.StepConnect, linkstate.StepTLS}
	for i, st := range steps {
		ev := linkstate.Event{Attempt: 1, Step: st, Start: t0.Add(time.Duration(i) * time.Second), Duration: 1500 * time.Microsecond, Outcome: linkstate.OK}
		if st == linkstate.StepTLS {
			ev.Outcome, ev.Target, ev.Cause = linkstate.Failed, "xmpp.example.com:5223", "unknown-authority"
			ev.Detail, ev.Remedy = "x509: certificate signed by unknown authority", "add the XMPP server's CA to the trust store"
		}
		e.link.trace.Add(ev)
	}
	tests := []struct {
		query     string
		wantTotal int
		wantSeqs  []uint64
	}{
		{"", 5, []uint64{1, 2, 3, 4, 5}},
		{"?after=3", 2, []uint64{4, 5}},
		{"?limit=2", 5, []uint64{1, 2}},
		{"?after=1&limit=2", 4, []uint64{2, 3}},
		{"?after=5", 0, nil},
	}
	for _, tt := range tests {
		for _, isJSON := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s json=%v", tt.query, isJSON), func(t *testing.T) {
				var d traceTestDoc
				e.getDoc(t, "/api/v1/system/xmppTrace"+tt.query, "xmppTrace", isJSON, &d)
				var seqs []uint64
				for _, ev := range d.Event {
					seqs = append(seqs, ev.Seq)
				}
				if d.Total != tt.wantTotal || !reflect.DeepEqual(seqs, tt.wantSeqs) {
					t.Errorf("total %d seqs %v, want %d %v", d.Total, seqs, tt.wantTotal, tt.wantSeqs)
				}
			})
		}
	}
	var d traceTestDoc
	e.getDoc(t, "/api/v1/system/xmppTrace?after=4", "xmppTrace", true, &d)
	ev := d.Event[0]
	if ev.Step != "tls" || ev.Attempt != 1 || ev.Target != "xmpp.example.com:5223" || ev.Outcome != "failed" ||
		ev.Cause != "unknown-authority" || ev.Remedy == "" || ev.Detail == "" || ev.DurationMs != 1.5 ||
		ev.Start != "2026-03-01T11:59:04.5Z" {
		t.Errorf("tls event = %+v", ev)
	}
	for _, q := range []string{"?after=-1", "?after=x", "?limit=1.5"} {
		resp, body := e.do(t, req{method: "GET", path: "/api/v1/system/xmppTrace" + q})
		param, _, _ := strings.Cut(strings.TrimPrefix(q, "?"), "=")
		if f := decodeFailure(t, body, false); resp.StatusCode != 400 || f.Parameter != param {
			t.Errorf("GET xmppTrace%s: %d %+v, want 400 naming %s", q, resp.StatusCode, f, param)
		}
	}
}

// Concurrent changes must leave the link with the settings that were stored last.
func TestConcurrentChangesApplyInOrder(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.do(t, req{method: "PUT", path: "/api/v1/system/configuration/xmpp", form: url.Values{"domain": {fmt.Sprintf("d%d.example", i)}}})
		}()
	}
	wg.Wait()
	applied := e.link.appliedConfigs()
	stored, _ := e.store.XMPPSettings(context.Background())
	if len(applied) != 8 || applied[len(applied)-1] != stored {
		t.Errorf("%d Apply calls, the last %+v; stored %+v", len(applied), applied[len(applied)-1], stored)
	}
}

func TestWantsJSON(t *testing.T) {
	for _, tt := range []struct {
		accept string
		want   bool
	}{
		{"", false},
		{"*/*", false},
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"text/xml, application/json", false},
		{"application/xml;q=0.5, application/json", false},
		{"application/json;q=0.9, text/xml", false},
		{"application/json;q=0", false},
		{"garbage;;;, application/json", true},
		{"application/json, text/plain, */*", false}, // axios's default: its users parse XML
		{"application/json, text/xml;q=0", true},
		{"*/*", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", tt.accept)
		if got := wantsJSON(r); got != tt.want {
			t.Errorf("wantsJSON(Accept: %q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

// verifications is how many password hashes the API's account checker ran.
func verifications(e *env) int64 {
	n, _ := e.srv.auth.accounts.Verifications()
	return n
}
