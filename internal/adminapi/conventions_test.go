package adminapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/store"
)

// raw sends a request built by the test as is, with the test account's credentials unless it
// carries an Authorization header already, and returns the status and body.
func (e *env) raw(t *testing.T, r *http.Request) (*http.Response, string) {
	t.Helper()
	if r.Header.Get("Authorization") == "" && r.Header.Get("X-No-Auth") == "" {
		r.SetBasicAuth(testUser, testPassword)
	}
	r.Header.Del("X-No-Auth")
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

// TestPathSpellings: the spellings of a path that CMS takes all name the same resource, and
// none is answered with a redirect.
func TestPathSpellings(t *testing.T) {
	e := newEnv(t)
	id := e.createCoSpace(t, url.Values{"name": {"Demo"}})
	for _, path := range []string{
		"/api/v1/coSpaces/" + id,
		"/api/v1/coSpaces/" + id + "/",
		"//api/v1/coSpaces/" + id,
		"/api/v1//coSpaces//" + id + "//",
		"/api/v1/cospaces/" + id,
		"/API/V1/COSPACES/" + id + "/",
	} {
		t.Run(path, func(t *testing.T) {
			r, _ := http.NewRequest("GET", e.ts.URL+path, nil)
			resp, body := e.raw(t, r)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<coSpace id="`+id+`">`) {
				t.Errorf("GET %s = %d %s, want the space", path, resp.StatusCode, body)
			}
		})
	}
	for _, path := range []string{"/api/v1/coSpaces/", "/api/v1/calls/", "/api/v1/callLegs/", "//api/v1/coSpaces", "/api/v1/cospaces?limit=1"} {
		r, _ := http.NewRequest("GET", e.ts.URL+path, nil)
		if resp, body := e.raw(t, r); resp.StatusCode != http.StatusOK || !strings.Contains(body, `total="`) {
			t.Errorf("GET %s = %d %s, want a list", path, resp.StatusCode, body)
		}
	}
	// A PUT to a spelling with a trailing slash changes the space (no redirect loses the body).
	r, _ := http.NewRequest("PUT", e.ts.URL+"/api/v1/coSpaces/"+id+"/", strings.NewReader("name=Renamed"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := e.raw(t, r); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with a trailing slash: %d %s", resp.StatusCode, body)
	}
	if got := e.getCoSpace(t, id, false); got.Name != "Renamed" {
		t.Errorf("name after PUT = %q, want Renamed", got.Name)
	}
	// Object ids keep their spelling: another id is another (missing) object.
	r, _ = http.NewRequest("GET", e.ts.URL+"/api/v1/coSpaces/"+strings.ToUpper(id), nil)
	if resp, _ := e.raw(t, r); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of the id in upper case: %d, want 404", resp.StatusCode)
	}
}

// TestFormBodies: a form is read as a form whatever the Content-Type says.
func TestFormBodies(t *testing.T) {
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("name", "Multipart")
	mw.Close()
	tests := []struct {
		contentType, body, want string
	}{
		{"application/x-www-form-urlencoded", "name=Standard", "Standard"},
		{"application/x-www-form-urlencoded; charset=UTF-8", "name=With+charset", "With charset"},
		{"x-www-form-urlencoded", "name=No%20application", "No application"},
		{"", "name=No+type", "No type"},
		{"application/json", "name=JSON+label", "JSON label"},
		{"text/plain;charset=UTF-8", "name=Text", "Text"},
		{"not a media type", "name=Garbage+type", "Garbage type"},
		{mw.FormDataContentType(), mp.String(), "Multipart"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			r, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/coSpaces", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			resp, body := e.raw(t, r)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			id := coSpaceLocation.FindStringSubmatch(resp.Header.Get("Location"))
			if id == nil {
				t.Fatalf("Location %q", resp.Header.Get("Location"))
			}
			if got := e.getCoSpace(t, id[1], false); got.Name != tt.want {
				t.Errorf("name = %q, want %q", got.Name, tt.want)
			}
		})
	}
}

// TestBasicWithoutSpace: "Authorization: Basic<base64>", as some CMS tools send it, is
// accepted, and so is base64 without padding; other schemes are not.
func TestBasicWithoutSpace(t *testing.T) {
	e := newEnv(t)
	enc := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	for _, tt := range []struct {
		header string
		want   int
	}{
		{"Basic " + enc, 200},
		{"Basic" + enc, 200},
		{"basic  " + enc, 200},
		{"BASIC" + strings.TrimRight(enc, "="), 200},
		{"Bearer " + enc, 401},
		{"Basic" + enc + "!", 401},
	} {
		r, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/system/status", nil)
		r.Header.Set("Authorization", tt.header)
		if resp, body := e.raw(t, r); resp.StatusCode != tt.want {
			t.Errorf("Authorization: %q: %d %s, want %d", tt.header, resp.StatusCode, body, tt.want)
		}
	}
}

// TestChallengeAtOnce: a request without credentials (what PowerShell's Invoke-RestMethod and
// .NET send before they are challenged) gets its 401 at once; wrong credentials wait.
func TestChallengeAtOnce(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, _ := passhash.Hash(testPassword)
	st.AddAPIUser(context.Background(), testUser, h)
	const delay = 6 * time.Second // far above any load's latency: the challenge is judged at delay/2
	ts := httptest.NewServer(New(Options{Store: st, AuthFailureDelay: delay}))
	t.Cleanup(ts.Close)
	get := func(auth string) (int, string, time.Duration) {
		// The deadline is far below the delay: a challenge that waited fails here.
		ctx, cancel := context.WithTimeout(context.Background(), delay/2)
		defer cancel()
		r, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/coSpaces", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		start := time.Now()
		resp, err := ts.Client().Do(r)
		if err != nil {
			return 0, "", time.Since(start)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), time.Since(start)
	}
	code, challenge, _ := get("")
	if code != http.StatusUnauthorized || challenge != `Basic realm="Confab"` {
		t.Fatalf("no credentials: %d %q, want 401 with the challenge before %s", code, challenge, delay/2)
	}
	if code, _, _ := get(basic(testUser, testPassword)); code != http.StatusOK {
		t.Fatalf("the credentials after the challenge: %d, want 200", code)
	}
	if code, _, took := get(basic(testUser, "wrong")); code != 0 {
		t.Errorf("wrong credentials answered %d after %s, want them held for %s", code, took, delay)
	}
}

// TestAcceptHeaders: JSON only for a client that asks for JSON alone.
func TestAcceptHeaders(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		accept string
		json   bool
	}{
		{"", false},
		{"*/*", false},
		{"application/json, text/plain, */*", false}, // axios
		{"text/xml", false},
		{"application/json", true},
	} {
		r, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/coSpaces", nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		resp, body := e.raw(t, r)
		gotJSON := strings.HasPrefix(body, "{")
		if resp.StatusCode != 200 || gotJSON != tt.json {
			t.Errorf("Accept %q: %d %.40s…, want JSON %v", tt.accept, resp.StatusCode, body, tt.json)
		}
	}
}

// TestPaging: without limit a page holds at most PageSize objects, a larger limit is capped,
// total counts every match, and a client stepping offset by what it asked for, or by what it
// got, sees each object once.
func TestPaging(t *testing.T) {
	e := newEnv(t)
	const n = 47
	for i := 0; i < n; i++ {
		e.createCoSpace(t, url.Values{"name": {fmt.Sprintf("space %02d", i)}})
	}
	page := func(query string) (int, []string) {
		_, body := e.do(t, req{method: "GET", path: "/api/v1/coSpaces" + query})
		var got coSpacesGot
		decode(t, body, "coSpaces", false, &got)
		var names []string
		for _, c := range got.CoSpaces {
			names = append(names, c.Name)
		}
		return got.Total, names
	}
	for _, tt := range []struct {
		query string
		want  int
	}{{"", PageSize}, {"?limit=500", PageSize}, {"?limit=0", PageSize}, {"?limit=5", 5}, {"?offset=40", n - 40}} {
		if total, names := page(tt.query); total != n || len(names) != tt.want {
			t.Errorf("GET /coSpaces%s: total %d, %d items; want %d, %d", tt.query, total, len(names), n, tt.want)
		}
	}
	for _, step := range []int{7, 10, PageSize, 50} {
		seen := map[string]int{}
		for offset, rounds := 0, 0; rounds < 100; rounds++ {
			total, names := page(fmt.Sprintf("?offset=%d&limit=%d", offset, step))
			for _, nm := range names {
				seen[nm]++
			}
			offset += len(names) // what the Python scripts do
			if offset >= total || len(names) == 0 {
				break
			}
		}
		if len(seen) != n {
			t.Errorf("step %d: saw %d spaces, want %d", step, len(seen), n)
		}
		for nm, c := range seen {
			if c != 1 {
				t.Errorf("step %d: %s seen %d times", step, nm, c)
			}
		}
	}
}

// TestFailureDetailsShape: failures are written as CMS writes them.
func TestFailureDetailsShape(t *testing.T) {
	e := newEnv(t)
	e.createCoSpace(t, url.Values{"uri": {"taken"}})
	for _, tt := range []struct {
		q    req
		want string
	}{
		{req{method: "POST", path: "/api/v1/coSpaces", form: url.Values{"uri": {"taken"}}},
			`<?xml version="1.0"?><failureDetails><duplicateCoSpaceUri /></failureDetails>`},
		{req{method: "GET", path: "/api/v1/coSpaces/nope"},
			`<?xml version="1.0"?><failureDetails><coSpaceDoesNotExist /></failureDetails>`},
		{req{method: "GET", path: "/api/v1/coSpaces?offset=x"},
			`<?xml version="1.0"?><failureDetails><parameterError parameter="offset" error="invalidValue" /></failureDetails>`},
	} {
		if _, body := e.do(t, tt.q); body != tt.want {
			t.Errorf("%s %s = %s, want %s", tt.q.method, tt.q.path, body, tt.want)
		}
		// And they parse as any XML parser reads CMS's.
		var fd struct {
			XMLName xml.Name `xml:"failureDetails"`
		}
		if err := xml.Unmarshal([]byte(tt.want), &fd); err != nil {
			t.Error(err)
		}
	}
}
