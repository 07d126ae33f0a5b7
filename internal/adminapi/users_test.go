package adminapi

import (
	"context"
	"encoding/xml"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/clocktest"
	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/store"
)

// usersEnv is an env whose API serves users and LDAP through a users.Service; the store's XMPP
// domain is example.com.
type usersEnv struct {
	*env
	users *users.Service
}

func newUsersEnv(t *testing.T, o users.Options) *usersEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := passhash.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddAPIUser(ctx, testUser, h); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateXMPPSettings(ctx, func(c *store.XMPPSettings) error { c.Domain = "example.com"; return nil }); err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, link: &fakeLink{}, logs: &lockedBuffer{}, clock: clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Store, o.Logger = st, logger
	svc := users.New(o)
	t.Cleanup(func() { svc.Close() })
	handler := New(Options{
		Store: st, Link: e.link, Version: "1.2.3", Now: e.clock.Now, Logger: logger,
		AuthFailureDelay: time.Millisecond, Users: svc,
	})
	e.srv = handler.s
	e.ts = httptest.NewServer(handler)
	t.Cleanup(e.ts.Close)
	return &usersEnv{env: e, users: svc}
}

var guidPath = regexp.MustCompile(`^/api/v1/([A-Za-z]+)/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// create POSTs form to collection and returns the new object's ID from Location.
func (e *usersEnv) create(t *testing.T, collection string, form url.Values) string {
	t.Helper()
	resp, body := e.do(t, req{method: "POST", path: "/api/v1/" + collection, form: form})
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("POST /%s: status %d body %q, want 200 and no body", collection, resp.StatusCode, body)
	}
	m := guidPath.FindStringSubmatch(resp.Header.Get("Location"))
	if m == nil || m[1] != collection {
		t.Fatalf("Location = %q, want /api/v1/%s/<GUID>", resp.Header.Get("Location"), collection)
	}
	return m[2]
}

// get GETs path into v (XML or JSON) and fails the test unless the status is 200.
func (e *usersEnv) get(t *testing.T, path, root string, isJSON bool, v any) string {
	t.Helper()
	q := req{method: "GET", path: path}
	if isJSON {
		q.accept = "application/json"
	}
	resp, body := e.do(t, q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d body %q", path, resp.StatusCode, body)
	}
	decode(t, body, root, isJSON, v)
	return body
}

// expectFailure sends q and checks the status and failureDetails.
func (e *usersEnv) expectFailure(t *testing.T, q req, status int, want failure) {
	t.Helper()
	resp, body := e.do(t, q)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d body %q, want %d", q.method, q.path, resp.StatusCode, body, status)
	}
	if got := decodeFailure(t, body, q.accept == "application/json"); got != want {
		t.Errorf("%s %s: failure %+v, want %+v", q.method, q.path, got, want)
	}
}

type userGot struct {
	XMLName    xml.Name `xml:"user" json:"-"`
	ID         string   `xml:"id,attr" json:"id"`
	UserJID    string   `xml:"userJid" json:"userJid"`
	Name       string   `xml:"name" json:"name"`
	Email      string   `xml:"email" json:"email"`
	CDRTag     string   `xml:"cdrTag" json:"cdrTag"`
	Kind       string   `xml:"kind" json:"kind"`
	LDAPSource string   `xml:"ldapSource" json:"ldapSource"`
	LDAPDN     string   `xml:"ldapDn" json:"ldapDn"`
}

type usersGot struct {
	XMLName xml.Name `xml:"users" json:"-"`
	Total   int      `xml:"total,attr" json:"total"`
	Users   []struct {
		ID      string `xml:"id,attr" json:"id"`
		UserJID string `xml:"userJid" json:"userJid"`
		Name    string `xml:"name" json:"name"`
		Email   string `xml:"email" json:"email"`
		Kind    string `xml:"kind" json:"kind"`
	} `xml:"user" json:"user"`
}

func (g usersGot) jids() string {
	var out []string
	for _, u := range g.Users {
		out = append(out, u.UserJID)
	}
	return strings.Join(out, " ")
}

func TestUsersEndpoints(t *testing.T) {
	for _, isJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "XML", true: "JSON"}[isJSON], func(t *testing.T) {
			e := newUsersEnv(t, users.Options{})
			const pw = "Tr0ub4dor&3-password"
			id := e.create(t, "users", url.Values{"username": {"alice"}, "password": {pw}, "name": {"Alice"}, "email": {"alice@example.com"}})
			e.create(t, "users", url.Values{"username": {"bob@example.com"}, "password": {"bob-pw"}})
			e.create(t, "users", url.Values{"username": {"Carol"}, "password": {"carol-pw"}, "email": {"carol@corp.example"}})

			var u userGot
			body := e.get(t, "/api/v1/users/"+id, "user", isJSON, &u)
			u.XMLName = xml.Name{}
			if want := (userGot{ID: id, UserJID: "alice@example.com", Name: "Alice", Email: "alice@example.com", Kind: "local"}); u != want {
				t.Errorf("GET /users/{id} = %+v, want %+v", u, want)
			}
			if strings.Contains(body, pw) || strings.Contains(body, "argon2") || strings.Contains(body, "password") {
				t.Errorf("GET /users/{id} body %q shows a credential", body)
			}

			tests := []struct {
				query string
				jids  string
				total int
			}{
				{"", "alice@example.com bob@example.com carol@example.com", 3},
				{"?limit=2", "alice@example.com bob@example.com", 3},
				{"?offset=1&limit=1", "bob@example.com", 3},
				{"?filter=CORP", "carol@example.com", 1},
				{"?filter=nobody", "", 0},
			}
			for _, tt := range tests {
				var l usersGot
				e.get(t, "/api/v1/users"+tt.query, "users", isJSON, &l)
				if l.jids() != tt.jids || l.Total != tt.total {
					t.Errorf("GET /users%s = %q total %d, want %q total %d", tt.query, l.jids(), l.Total, tt.jids, tt.total)
				}
			}

			// PUT: an absent field is unchanged, an empty one unset; the password changes.
			resp, body := e.do(t, req{method: "PUT", path: "/api/v1/users/" + id, form: url.Values{"email": {""}, "password": {"new-password"}}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT: %d %q", resp.StatusCode, body)
			}
			u = userGot{}
			e.get(t, "/api/v1/users/"+id, "user", isJSON, &u)
			if u.Name != "Alice" || u.Email != "" {
				t.Errorf("after PUT email= : %+v, want the name kept and the email unset", u)
			}
			dir := e.users.Directory("example.com", nil)
			if err := dir.CheckPlain(context.Background(), "alice", "new-password"); err != nil {
				t.Errorf("the new password does not work: %v", err)
			}
			if err := dir.CheckPlain(context.Background(), "alice", pw); err == nil {
				t.Error("the old password still works")
			}

			resp, _ = e.do(t, req{method: "DELETE", path: "/api/v1/users/" + id})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("DELETE: %d", resp.StatusCode)
			}
			q := req{method: "GET", path: "/api/v1/users/" + id}
			if isJSON {
				q.accept = "application/json"
			}
			e.expectFailure(t, q, http.StatusNotFound, failure{Name: "userDoesNotExist"})

			if logs := e.logs.String(); strings.Contains(logs, pw) || strings.Contains(logs, "new-password") {
				t.Errorf("a password reached the log:\n%s", logs)
			}
		})
	}
}

func TestUsersErrors(t *testing.T) {
	e := newUsersEnv(t, users.Options{})
	ctx := context.Background()
	e.create(t, "users", url.Values{"username": {"alice"}, "password": {"pw"}})
	// An LDAP user, made as a sync would make it.
	srv, _ := e.store.AddLDAPServer(ctx, store.LDAPServer{Address: "ldap.example.com", PortNumber: 389})
	m, _ := e.store.AddLDAPMapping(ctx, store.LDAPMapping{JIDMapping: "$uid$@example.com"})
	src, err := e.store.AddLDAPSource(ctx, store.LDAPSource{Server: srv.ID, Mapping: m.ID, BaseDN: "dc=example,dc=com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApplyLDAPSync(ctx, src.ID, []store.LDAPEntry{{DN: "uid=dir,dc=example,dc=com", JID: "dir@example.com"}}); err != nil {
		t.Fatal(err)
	}
	dirUser, err := e.users.GetByJID(ctx, "dir@example.com")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		q      req
		status int
		want   failure
	}{
		{"no username", req{method: "POST", path: "/api/v1/users", form: url.Values{"password": {"pw"}}},
			400, failure{"parameterError", "username", "required"}},
		{"no password", req{method: "POST", path: "/api/v1/users", form: url.Values{"username": {"x"}}},
			400, failure{"parameterError", "password", "required"}},
		{"bad username", req{method: "POST", path: "/api/v1/users", form: url.Values{"username": {"a b"}, "password": {"pw"}}},
			400, failure{"parameterError", "username", "invalidValue"}},
		{"other domain", req{method: "POST", path: "/api/v1/users", form: url.Values{"username": {"a@example.org"}, "password": {"pw"}}},
			400, failure{"parameterError", "username", "invalidValue"}},
		{"bad email", req{method: "POST", path: "/api/v1/users", form: url.Values{"username": {"x"}, "password": {"pw"}, "email": {"x"}}},
			400, failure{"parameterError", "email", "invalidValue"}},
		{"duplicate", req{method: "POST", path: "/api/v1/users", form: url.Values{"username": {"ALICE"}, "password": {"pw"}}, accept: "application/json"},
			400, failure{Name: "duplicateUserJid"}},
		{"empty new password", req{method: "PUT", path: "/api/v1/users/" + dirUser.ID, form: url.Values{"password": {""}}},
			400, failure{"parameterError", "password", "invalidValue"}},
		{"modify an LDAP user", req{method: "PUT", path: "/api/v1/users/" + dirUser.ID, form: url.Values{"name": {"x"}}},
			400, failure{Name: "invalidOperation"}},
		{"delete an LDAP user", req{method: "DELETE", path: "/api/v1/users/" + dirUser.ID},
			400, failure{Name: "invalidOperation"}},
		{"modify nobody", req{method: "PUT", path: "/api/v1/users/0a2b3c4d-0000-0000-0000-000000000000", form: url.Values{"name": {"x"}}},
			404, failure{Name: "userDoesNotExist"}},
		{"delete nobody", req{method: "DELETE", path: "/api/v1/users/nobody", accept: "application/json"},
			404, failure{Name: "userDoesNotExist"}},
		{"bad offset", req{method: "GET", path: "/api/v1/users?offset=-1"},
			400, failure{"parameterError", "offset", "invalidValue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.expectFailure(t, tt.q, tt.status, tt.want)
		})
	}

	var u userGot
	e.get(t, "/api/v1/users/"+dirUser.ID, "user", false, &u)
	if u.Kind != "ldap" || u.LDAPSource != src.ID || u.LDAPDN != "uid=dir,dc=example,dc=com" || u.Name != "" {
		t.Errorf("the LDAP user = %+v, want it unchanged with its source and DN", u)
	}
}

func TestUsersNotServedWithoutService(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/api/v1/users", "/api/v1/ldapServers", "/api/v1/ldapSyncs"} {
		resp, body := e.do(t, req{method: "GET", path: path})
		if resp.StatusCode != http.StatusNotFound || decodeFailure(t, body, false).Name != "pathDoesNotExist" {
			t.Errorf("GET %s without a users.Service: %d %q, want 404 pathDoesNotExist", path, resp.StatusCode, body)
		}
	}
}

// A refused password does not reach the log through the reason of the failure.
func TestUserPasswordNotLoggedOnFailure(t *testing.T) {
	e := newUsersEnv(t, users.Options{})
	long := strings.Repeat("p", 300) + "-marker"
	e.expectFailure(t, req{method: "POST", path: "/api/v1/users", form: url.Values{"username": {"z"}, "password": {long}}},
		400, failure{"parameterError", "password", "invalidValue"})
	if strings.Contains(e.logs.String(), "-marker") {
		t.Errorf("a refused password reached the log:\n%s", e.logs)
	}
}
