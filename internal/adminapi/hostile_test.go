package adminapi

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"confab.dev/confab/internal/passhash"
)

// The hostile-input catalogue of the REST API: each case runs here (against an API of its
// own, after which a well-behaved client from another address must still be served) or names
// the test that covers it. docs/reliability.md lists the same cases; TestHostileCatalogue
// keeps the two in step.

type apiCase struct {
	name string
	want string // "<status> <failureDetails element>"
	see  string // the test that covers it, when run is nil
	run  func(t *testing.T, e *env) string
}

// hit serves one request from addr and returns "<status> <failure name>".
func hit(e *env, method, target, contentType, body, auth, addr string) string {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = addr
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, r)
	out := rec.Body.String()
	name := ""
	if i := strings.Index(out, "<failureDetails><"); i >= 0 {
		rest := out[i+len("<failureDetails><"):]
		name = rest[:strings.IndexAny(rest, " />")]
	}
	return strings.TrimSpace(strconv.Itoa(rec.Code) + " " + name)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

const (
	form     = "application/x-www-form-urlencoded"
	attacker = "198.51.100.66:40000"
	xmppPath = "/api/v1/system/configuration/xmpp"
)

func apiCases() []apiCase {
	good := basic(testUser, testPassword)
	send := func(method, target, ct, body, auth string) func(*testing.T, *env) string {
		return func(t *testing.T, e *env) string { return hit(e, method, target, ct, body, auth, attacker) }
	}
	return []apiCase{
		{name: "no credentials", want: "401 authenticationFailure", see: "TestAuth/no_credentials"},
		{name: "wrong password", want: "401 authenticationFailure", see: "TestAuth/wrong_password"},
		{name: "unknown account", want: "401 authenticationFailure", see: "TestAuth/unknown_user"},
		{name: "empty password", want: "401 authenticationFailure", see: "TestAuth/empty_password"},
		{name: "Authorization header that is not Basic", want: "401 authenticationFailure",
			run: send("GET", "/api/v1/system/status", "", "", "Bearer abc")},
		{name: "Basic credentials that are not base64", want: "401 authenticationFailure",
			run: send("GET", "/api/v1/system/status", "", "", "Basic !!!not-base64")},
		{name: "64 KiB account name", want: "401 authenticationFailure",
			run: send("GET", "/api/v1/system/status", "", "", basic(strings.Repeat("a", 64<<10), "x"))},
		{name: "repeated wrong passwords for one account (existing or not)", want: "429 tooManyAuthenticationFailures", run: guessAccount},
		{name: "repeated wrong passwords from one address", want: "429 tooManyAuthenticationFailures", run: guessFromAddress},
		{name: "body over 1 MiB", want: "413 requestTooLarge", see: "TestBodyTooLarge"},
		{name: "JSON or XML body", want: "400 parameterError", see: "TestBodyNotAForm"},
		{name: "invalid field values", want: "400 parameterError", see: "TestValidationErrors"},
		{name: "parameter given twice", want: "400 parameterError",
			run: send("PUT", xmppPath, form, "domain=a.example.com&domain=b.example.com", good)},
		{name: "malformed percent-encoding", want: "400 malformedRequest",
			run: send("PUT", xmppPath, form, "domain=%zz", good)},
		{name: "invalid UTF-8 in a field", want: "400 parameterError",
			run: send("PUT", xmppPath, form, "domain=%ff%fe.example.com", good)},
		{name: "NUL in a field", want: "400 parameterError",
			run: send("PUT", xmppPath, form, "sharedSecret=a%00b", good)},
		{name: "20000 parameters", want: "400 malformedRequest",
			run: send("PUT", xmppPath, form, strings.Repeat("x=1&", 20000), good)},
		{name: "negative offset", want: "400 parameterError",
			run: send("GET", "/api/v1/coSpaces?offset=-1", "", "", good)},
		{name: "malformed object id in the path", want: "404 coSpaceDoesNotExist",
			run: send("GET", "/api/v1/coSpaces/..%2f..%2fetc", "", "", good)},
		{name: "unknown path", want: "404 pathDoesNotExist", see: "TestNotFoundAndMethodNotAllowed"},
		{name: "wrong method", want: "405 methodNotAllowed", see: "TestNotFoundAndMethodNotAllowed"},
		{name: "reading back a secret", want: "never shown", see: "TestSecretNeverShown"},
	}
}

// guessAccount guesses one account's password from many addresses: the account is blocked
// after five failures, whether it exists or not, and a blocked request is answered without
// its credentials being checked.
func guessAccount(t *testing.T, e *env) string {
	var outcomes [2][]string
	for i, name := range []string{testUser, "mallory"} {
		for n := 0; n < 6; n++ {
			addr := "203.0.113." + strconv.Itoa(10+n) + ":1000" // a new address each time
			outcomes[i] = append(outcomes[i], hit(e, "GET", "/api/v1/system/status", "", "", basic(name, "guess"), addr))
		}
	}
	if strings.Join(outcomes[0], ",") != strings.Join(outcomes[1], ",") {
		t.Errorf("existing account: %v\nunknown account: %v\nwant the same", outcomes[0], outcomes[1])
	}
	before := verifications(e)
	got := hit(e, "GET", "/api/v1/system/status", "", "", basic(testUser, testPassword), "203.0.113.99:1000")
	if verifications(e) != before {
		t.Error("a blocked request's password was checked")
	}
	if got != outcomes[0][5] {
		t.Errorf("the right password while blocked: %q, want %q", got, outcomes[0][5])
	}
	return outcomes[0][5]
}

// guessFromAddress tries many names from one address.
func guessFromAddress(t *testing.T, e *env) string {
	var got string
	for n := 0; n < 21; n++ {
		got = hit(e, "GET", "/api/v1/system/status", "", "", basic("user"+strconv.Itoa(n+1), "guess"), attacker)
	}
	if strings.Contains(got, "429") {
		if other := hit(e, "GET", "/api/v1/system/status", "", "", basic(testUser, testPassword), "[2001:db8::1]:1"); !strings.HasPrefix(other, "200") {
			t.Errorf("another address got %q", other)
		}
	}
	return got
}

func TestHostileInput(t *testing.T) {
	for _, tc := range apiCases() {
		if tc.run == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			h, err := passhash.Hash("ops-password")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.store.AddAPIUser(context.Background(), "ops", h); err != nil {
				t.Fatal(err)
			}
			if got := tc.run(t, e); got != tc.want {
				t.Errorf("outcome %q, want %q", got, tc.want)
			}
			// A well-behaved client elsewhere, of another account, is still served.
			if got := hit(e, "GET", "/api/v1/system/status", "", "", basic("ops", "ops-password"), "192.0.2.200:5000"); got != "200" {
				t.Errorf("a good request afterwards: %q, want 200", got)
			}
		})
	}
}

// TestHostileCatalogue checks that every case names an existing test or runs here, and that
// docs/reliability.md lists every case with its outcome.
func TestHostileCatalogue(t *testing.T) {
	doc, err := os.ReadFile("../../docs/reliability.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 3 {
			rows["API: "+strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(cells[1]), "API:"))] = line
		}
	}
	src := ""
	files, _ := os.ReadDir(".")
	for _, f := range files {
		if strings.HasSuffix(f.Name(), "_test.go") {
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			src += string(b)
		}
	}
	for _, tc := range apiCases() {
		if (tc.run == nil) == (tc.see == "") {
			t.Errorf("case %q: want exactly one of run and see", tc.name)
		}
		if fn, _, _ := strings.Cut(tc.see, "/"); tc.see != "" && !strings.Contains(src, "func "+fn+"(") {
			t.Errorf("case %q: no test %s", tc.name, tc.see)
		}
		row, ok := rows["API: "+tc.name]
		if !ok {
			t.Errorf("docs/reliability.md has no row for \"API: %s\"", tc.name)
		} else if !strings.Contains(row, tc.want) {
			t.Errorf("docs/reliability.md: the row of %q does not say %q: %s", tc.name, tc.want, row)
		}
	}
}
