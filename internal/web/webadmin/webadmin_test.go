package webadmin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/web/webadmin"
)

func TestLoginRequired(t *testing.T) {
	e := newAdminEnv(t)
	for _, path := range []string{"/admin/", "/admin/status", "/admin/configuration/general", "/admin/users", "/admin/spaces", "/admin/calls"} {
		t.Run(path, func(t *testing.T) {
			res := e.get(t, e.client, path)
			want := "/admin/login?next=" + url.QueryEscape(path)
			if res.code != http.StatusSeeOther || res.header.Get("Location") != want {
				t.Errorf("GET %s: %d to %q, want 303 to %q", path, res.code, res.header.Get("Location"), want)
			}
		})
	}
	res := e.get(t, e.client, "/admin/api/signal-flow")
	if res.code != http.StatusUnauthorized || !strings.Contains(res.body, `"error"`) {
		t.Errorf("signal-flow JSON without a session: %d %s, want 401 with an error", res.code, res.body)
	}
	res = e.get(t, e.client, "/admin")
	if res.code/100 != 3 || res.header.Get("Location") != "/admin/" {
		t.Errorf("GET /admin: %d to %q, want a redirect to /admin/", res.code, res.header.Get("Location"))
	}
}

func TestLogin(t *testing.T) {
	e := newAdminEnv(t)
	page := e.get(t, e.client, "/admin/login?next=/admin/users")
	if page.code != http.StatusOK || !strings.Contains(page.body, `id="login-form"`) {
		t.Fatalf("sign-in page: %d", page.code)
	}
	token := csrfOf(t, page.body)

	bad := e.post(t, e.client, "/admin/login", url.Values{"csrf": {token}, "username": {"admin"}, "password": {"wrong"}, "next": {"/admin/users"}}, nil)
	if !strings.Contains(bad.body, "Sign in failed") {
		t.Errorf("wrong password: page lacks %q", "Sign in failed")
	}
	unknown := e.post(t, e.client, "/admin/login", url.Values{"csrf": {token}, "username": {"nobody"}, "password": {"wrong"}}, nil)
	if !strings.Contains(unknown.body, "Sign in failed") {
		t.Errorf("unknown user: page lacks %q", "Sign in failed")
	}
	for _, r := range []response{bad, unknown} {
		for _, c := range r.cookies {
			if c.Name == "confab_admin" && c.Value != "" {
				t.Errorf("a failed sign-in set a session cookie")
			}
		}
	}

	good := e.post(t, e.client, "/admin/login", url.Values{"csrf": {token}, "username": {"admin"}, "password": {"correct horse"}, "next": {"/admin/users"}}, nil)
	if good.code != http.StatusSeeOther || good.header.Get("Location") != "/admin/users" {
		t.Fatalf("sign-in: %d to %q, want 303 to /admin/users", good.code, good.header.Get("Location"))
	}
	var sc *http.Cookie
	for _, c := range good.cookies {
		if c.Name == "confab_admin" {
			sc = c
		}
	}
	if sc == nil {
		t.Fatal("no session cookie")
	}
	if !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/admin/" || sc.MaxAge <= 0 {
		t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/admin/, an expiry", sc)
	}
	if len(sc.Value) < 43 { // 256 bits, base64
		t.Errorf("session id %q is shorter than 256 bits", sc.Value)
	}
	users := e.get(t, e.client, "/admin/users")
	if users.code != http.StatusOK || !strings.Contains(users.body, "alice@example.com") || !strings.Contains(users.body, `id="admin-user"`) {
		t.Errorf("users page after sign-in: %d", users.code)
	}
	// The sign-in page of a signed-in administrator goes straight on.
	if res := e.get(t, e.client, "/admin/login"); res.code != http.StatusSeeOther {
		t.Errorf("sign-in page when signed in: %d, want 303", res.code)
	}
}

func TestLoginNextStaysInAdmin(t *testing.T) {
	for _, next := range []string{"https://evil.test/", "//evil.test/admin/", "/elsewhere", "/admin/login", "/admin/\\evil", ""} {
		t.Run(next, func(t *testing.T) {
			e := newAdminEnv(t)
			page := e.get(t, e.client, "/admin/login")
			res := e.post(t, e.client, "/admin/login", url.Values{"csrf": {csrfOf(t, page.body)}, "username": {"admin"}, "password": {"correct horse"}, "next": {next}}, nil)
			if loc := res.header.Get("Location"); loc != "/admin/status" {
				t.Errorf("next %q: redirected to %q, want /admin/status", next, loc)
			}
		})
	}
}

func TestLoginForgery(t *testing.T) {
	e := newAdminEnv(t)
	page := e.get(t, e.client, "/admin/login")
	token := csrfOf(t, page.body)
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "username": {"admin"}, "password": {"correct horse"}}
	}
	// Another browser's pre-session token does not fit this browser's cookie.
	other := e.newClient(t)
	otherToken := csrfOf(t, e.get(t, other, "/admin/login").body)
	tests := []struct {
		name   string
		client bool // use a fresh client without the pre-session cookie
		form   url.Values
		mutate func(*http.Request)
	}{
		{name: "no token", form: form("")},
		{name: "wrong token", form: form("AAAA" + token[4:])},
		{name: "another browser's token", form: form(otherToken)},
		{name: "no pre-session cookie", client: true, form: form(token)},
		{name: "foreign origin", form: form(token), mutate: func(r *http.Request) { r.Header.Set("Origin", "https://evil.test") }},
		{name: "no origin nor referer", form: form(token), mutate: func(r *http.Request) { r.Header.Del("Origin") }},
		{name: "foreign referer", form: form(token), mutate: func(r *http.Request) {
			r.Header.Del("Origin")
			r.Header.Set("Referer", "https://evil.test/admin/login")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client
			if tt.client {
				c = e.newClient(t)
			}
			res := e.post(t, c, "/admin/login", tt.form, tt.mutate)
			if res.code != http.StatusForbidden {
				t.Errorf("status %d, want 403", res.code)
			}
			for _, ck := range res.cookies {
				if ck.Name == "confab_admin" && ck.Value != "" {
					t.Error("a forged sign-in got a session")
				}
			}
		})
	}
}

func TestConfigForgery(t *testing.T) {
	e := newAdminEnv(t)
	e.b.calls = nil // no live call: saving needs no second confirmation
	token := e.login(t, e.client)
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "uniqueName": {"cb9"}, "domain": {"evil.test"}, "serverAddressOverride": {""}, "sharedSecret": {"pwned"}, "confirmSharedSecret": {"pwned"}}
	}
	other := e.newClient(t)
	otherToken := e.login(t, other)
	tests := []struct {
		name   string
		form   url.Values
		mutate func(*http.Request)
	}{
		{name: "no token", form: form("")},
		{name: "wrong token", form: form(strings.Repeat("A", len(token)))},
		{name: "another session's token", form: form(otherToken)},
		{name: "foreign origin", form: form(token), mutate: func(r *http.Request) { r.Header.Set("Origin", "https://evil.test") }},
		{name: "origin on another port", form: form(token), mutate: func(r *http.Request) { r.Header.Set("Origin", strings.Replace(e.srv.URL, ":", ":1", 2)) }},
		{name: "null origin", form: form(token), mutate: func(r *http.Request) { r.Header.Set("Origin", "null") }},
		{name: "no origin nor referer", form: form(token), mutate: func(r *http.Request) { r.Header.Del("Origin") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.post(t, e.client, "/admin/configuration/general", tt.form, tt.mutate)
			if res.code != http.StatusForbidden {
				t.Errorf("status %d, want 403", res.code)
			}
			if !strings.Contains(res.body, "Request refused") {
				t.Errorf("the refusal page does not say so")
			}
		})
	}
	if calls := e.b.setCalls(); len(calls) != 0 {
		t.Fatalf("forged requests changed the settings: %+v", calls)
	}
	// The same request with the session's token and a same-origin Referer (no Origin) goes
	// through.
	res := e.post(t, e.client, "/admin/configuration/general", form(token), func(r *http.Request) {
		r.Header.Del("Origin")
		r.Header.Set("Referer", e.srv.URL+"/admin/configuration/general")
	})
	if res.code != http.StatusSeeOther || len(e.b.setCalls()) != 1 {
		t.Errorf("genuine request: %d with %d calls, want 303 and 1 call", res.code, len(e.b.setCalls()))
	}
}

func TestLogout(t *testing.T) {
	e := newAdminEnv(t)
	token := e.login(t, e.client)
	if res := e.post(t, e.client, "/admin/logout", url.Values{"csrf": {"nope"}}, nil); res.code != http.StatusForbidden {
		t.Errorf("logout with a wrong token: %d, want 403", res.code)
	}
	if res := e.get(t, e.client, "/admin/status"); res.code != http.StatusOK {
		t.Fatalf("the refused logout ended the session: %d", res.code)
	}
	res := e.post(t, e.client, "/admin/logout", url.Values{"csrf": {token}}, nil)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/admin/login" {
		t.Errorf("logout: %d to %q, want 303 to /admin/login", res.code, res.header.Get("Location"))
	}
	if res := e.get(t, e.client, "/admin/status"); res.code != http.StatusSeeOther {
		t.Errorf("status page after logout: %d, want a redirect to sign-in", res.code)
	}
}

func TestSessionExpiry(t *testing.T) {
	tests := []struct {
		name    string
		steps   []time.Duration // time between requests
		expired bool
	}{
		{"active", []time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute}, false},
		{"idle", []time.Duration{31 * time.Minute}, true},
		{"absolute", []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAdminEnv(t)
			e.login(t, e.client)
			var last response
			for _, d := range tt.steps {
				e.clock.Advance(d)
				last = e.get(t, e.client, "/admin/status")
				if last.code != http.StatusOK {
					break
				}
			}
			if got := last.code == http.StatusSeeOther; got != tt.expired {
				t.Errorf("last status %d; expired = %v, want %v", last.code, got, tt.expired)
			}
		})
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newAdminEnv(t)
	token := csrfOf(t, e.get(t, e.client, "/admin/login").body)
	var last response
	for i := 0; i < 6; i++ {
		// The same account, spelled differently each time: one budget (5 per account).
		name := []string{"admin", "Admin", "ADMIN", "ａｄｍｉｎ", "admin", "aDmin"}[i]
		last = e.post(t, e.client, "/admin/login", url.Values{"csrf": {token}, "username": {name}, "password": {"guess"}}, nil)
	}
	if last.code != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" || !strings.Contains(last.body, "Too many failed attempts") {
		t.Fatalf("6th failure: %d (Retry-After %q), want 429 with Retry-After", last.code, last.header.Get("Retry-After"))
	}
	// Even the right password waits.
	res := e.post(t, e.client, "/admin/login", url.Values{"csrf": {token}, "username": {"admin"}, "password": {"correct horse"}}, nil)
	if res.code != http.StatusTooManyRequests {
		t.Errorf("right password while throttled: %d, want 429", res.code)
	}
	e.clock.Advance(time.Minute)
	res = e.post(t, e.client, "/admin/login", url.Values{"csrf": {token}, "username": {"admin"}, "password": {"correct horse"}}, nil)
	if res.code != http.StatusSeeOther {
		t.Errorf("right password after the block: %d, want 303", res.code)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	e := newAdminEnv(t)
	e.b.calls = nil // no live call: saving needs no second confirmation
	token := e.login(t, e.client)
	form := e.get(t, e.client, "/admin/configuration/general")
	for _, want := range []string{`value="cb1"`, `value="example.com"`, `value="xmpp.example.com:5223"`, `id="secret-state" data-set="true">set<`, `id="sharedSecret" name="sharedSecret" type="password" value=""`} {
		if !strings.Contains(form.body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	str := func(s string) *string { return &s }
	tests := []struct {
		name       string
		form       url.Values
		wantCode   int
		wantSecret *string
		wantSet    bool
	}{
		{"empty secret keeps it", url.Values{"uniqueName": {"cb2"}, "domain": {"example.org"}, "serverAddressOverride": {""}, "sharedSecret": {""}}, 303, nil, true},
		{"new secret", url.Values{"uniqueName": {"cb2"}, "domain": {"example.org"}, "serverAddressOverride": {"[2001:db8::1]:5270"}, "sharedSecret": {"n3w-secret"}, "confirmSharedSecret": {"n3w-secret"}}, 303, str("n3w-secret"), true},
		{"remove secret", url.Values{"uniqueName": {"cb2"}, "domain": {"example.org"}, "clearSecret": {"1"}}, 303, str(""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("csrf", token)
			n := len(e.b.setCalls())
			res := e.post(t, e.client, "/admin/configuration/general", tt.form, nil)
			if res.code != tt.wantCode || res.header.Get("Location") != "/admin/configuration/general?saved=1" {
				t.Fatalf("save: %d to %q, want %d to ?saved=1", res.code, res.header.Get("Location"), tt.wantCode)
			}
			calls := e.b.setCalls()
			if len(calls) != n+1 {
				t.Fatalf("SetXMPPSettings called %d times, want once", len(calls)-n)
			}
			c := calls[n]
			if c.uniqueName != tt.form.Get("uniqueName") || c.domain != tt.form.Get("domain") || c.override != tt.form.Get("serverAddressOverride") {
				t.Errorf("saved %q %q %q, want the form's", c.uniqueName, c.domain, c.override)
			}
			switch {
			case (c.secret == nil) != (tt.wantSecret == nil):
				t.Errorf("secret %v, want %v", c.secret, tt.wantSecret)
			case c.secret != nil && *c.secret != *tt.wantSecret:
				t.Errorf("secret %q, want %q", *c.secret, *tt.wantSecret)
			}
			page := e.get(t, e.client, "/admin/configuration/general?saved=1")
			if !strings.Contains(page.body, `id="saved"`) {
				t.Errorf("no saved notice")
			}
			wantState := "not set"
			if tt.wantSet {
				wantState = "set"
			}
			if !strings.Contains(page.body, `">`+wantState+`</strong>`) {
				t.Errorf("secret state: want %q", wantState)
			}
			if !strings.Contains(page.body, `value="`+tt.form.Get("uniqueName")+`"`) {
				t.Errorf("the form does not show the saved unique name")
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	e := newAdminEnv(t)
	e.b.calls = nil // no live call: saving needs no second confirmation
	token := e.login(t, e.client)
	t.Run("local check", func(t *testing.T) {
		res := e.post(t, e.client, "/admin/configuration/general", url.Values{"csrf": {token}, "uniqueName": {"c b1"}, "domain": {"example.com"}, "sharedSecret": {"typed-secret"}, "confirmSharedSecret": {"typed-secret"}}, nil)
		if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `data-field="uniqueName">The unique name cannot contain spaces`) {
			t.Errorf("status %d, want 422 with the field's error", res.code)
		}
		if strings.Contains(res.body, "typed-secret") {
			t.Error("the form echoed the typed secret")
		}
		if len(e.b.setCalls()) != 0 {
			t.Error("an invalid form was saved")
		}
	})
	t.Run("backend field error", func(t *testing.T) {
		e.b.setErr = &webadmin.FieldError{Field: "serverAddressOverride", Message: "Use host, host:port or [IPv6]:port"}
		res := e.post(t, e.client, "/admin/configuration/general", url.Values{"csrf": {token}, "uniqueName": {"cb1"}, "domain": {"example.com"}, "serverAddressOverride": {"a:b:c"}}, nil)
		if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `data-field="serverAddressOverride">Use host, host:port or [IPv6]:port`) {
			t.Errorf("status %d, want 422 with the backend's message beside the field", res.code)
		}
		if !strings.Contains(res.body, `value="a:b:c"`) {
			t.Error("the form lost what was typed")
		}
	})
}

// TestSecretNeverRendered walks every page and endpoint as a signed-in administrator and
// checks the stored secret appears in none of them.
func TestSecretNeverRendered(t *testing.T) {
	e := newAdminEnv(t)
	e.b.recordAttempt(1, e.clock.Now(), false, linkstate.StepVerdict)
	e.b.setAlarms([]linkstate.Alarm{{ID: "a1", Type: "xmppRegistrationFailure", FailureReason: linkstate.ReasonAuthentication, Detail: "not-authorized"}})
	e.login(t, e.client)
	for _, path := range []string{"/admin/status", "/admin/api/signal-flow", "/admin/configuration/general", "/admin/users", "/admin/spaces", "/admin/calls", "/admin/assets/admin.js"} {
		res := e.get(t, e.client, path)
		if res.code != http.StatusOK {
			t.Errorf("%s: %d", path, res.code)
		}
		if strings.Contains(res.body, testSecret) {
			t.Errorf("%s shows the shared secret", path)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newAdminEnv(t)
	e.login(t, e.client)
	for _, path := range []string{"/admin/login", "/admin/status", "/admin/configuration/general", "/admin/api/signal-flow", "/admin/assets/admin.css"} {
		t.Run(path, func(t *testing.T) {
			res := e.get(t, e.client, path)
			csp := res.header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q allows unsafe sources", csp)
			}
			if res.header.Get("X-Frame-Options") != "DENY" || res.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Frame-Options %q, X-Content-Type-Options %q", res.header.Get("X-Frame-Options"), res.header.Get("X-Content-Type-Options"))
			}
			if !strings.Contains(path, "/assets/") && res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", res.header.Get("Cache-Control"))
			}
		})
	}
}

type flowJSON struct {
	Status struct {
		State, StateLabel, Server string
	}
	Steps []struct {
		N                      int
		Class, Cause, Remedy   string
		Summary, Note, Tooltip string
	}
	Alarms []struct{ FailureReason, TLSCause string }
	Events []struct {
		Seq   uint64
		Class string
	}
}

func (e *adminEnv) flow(t *testing.T) flowJSON {
	t.Helper()
	res := e.get(t, e.client, "/admin/api/signal-flow")
	if res.code != http.StatusOK {
		t.Fatalf("signal-flow: %d %s", res.code, res.body)
	}
	var f flowJSON
	if err := json.Unmarshal([]byte(res.body), &f); err != nil {
		t.Fatalf("signal-flow JSON: %v", err)
	}
	if len(f.Steps) != 12 {
		t.Fatalf("%d steps, want 12", len(f.Steps))
	}
	return f
}

func classes(f flowJSON) string {
	var b strings.Builder
	for _, s := range f.Steps {
		b.WriteString(s.Class[:1])
	}
	return b.String()
}

// TestSignalFlowOutcomes checks the colour of each step: the latest attempt decides, so
// steps an earlier attempt passed and the latest did not reach are grey, not green.
func TestSignalFlowOutcomes(t *testing.T) {
	e := newAdminEnv(t)
	e.login(t, e.client)
	now := e.clock.Now()

	// No attempt yet.
	e.b.setStatus(linkstate.Status{State: linkstate.Disabled, Since: now})
	if got, want := classes(e.flow(t)), "fnnnnnnnnnnn"; got != want {
		t.Errorf("before any attempt: %s, want %s", got, want)
	}

	// Attempt 1 registers through the override; a login is relayed.
	e.b.recordAttempt(1, now, false, 0)
	e.b.trace.Add(linkstate.Event{Attempt: 1, Step: linkstate.StepLogin, Start: now.Add(time.Second), Outcome: linkstate.OK, Detail: "login of alice@example.com relayed"})
	e.b.setStatus(linkstate.Status{State: linkstate.Registered, Server: "xmpp.example.com:5223", Since: now, Attempt: 1})
	if got, want := classes(e.flow(t)), "ooosoooooooo"; got != want {
		t.Errorf("registered: %s, want %s", got, want)
	}

	// Attempt 2 (after a settings change) fails to connect.
	e.b.recordAttempt(2, now.Add(time.Minute), false, linkstate.StepConnect)
	e.b.setStatus(linkstate.Status{State: linkstate.Backoff, Since: now.Add(time.Minute), Attempt: 2, LastError: "connection refused"})
	e.b.setAlarms([]linkstate.Alarm{{ID: "a1", Type: "xmppRegistrationFailure", FailureReason: linkstate.ReasonConnect, ActiveSince: now.Add(time.Minute)}})
	f := e.flow(t)
	if got, want := classes(f), "foosofnnnnnn"; got != want {
		t.Errorf("connect failed: %s, want %s", got, want)
	}
	s6 := f.Steps[5]
	if s6.Cause != "connection-refused" || !strings.Contains(s6.Remedy, "firewall") || !strings.HasPrefix(s6.Summary, "Failed · ") || s6.Note != "connection-refused" {
		t.Errorf("step 6 = %+v, want the cause, remedy and summary of the failure", s6)
	}
	if f.Steps[0].Class != "failed" || f.Status.State != "backoff" {
		t.Errorf("step 1 %s, state %s: want failed while the link is down", f.Steps[0].Class, f.Status.State)
	}
	if len(f.Alarms) != 1 || f.Alarms[0].FailureReason != "connectFailure" {
		t.Errorf("alarms %+v, want connectFailure", f.Alarms)
	}
	if len(f.Events) == 0 || f.Events[0].Class != "failed" {
		t.Errorf("events: want the newest (the failure) first, got %+v", f.Events)
	}

	// Attempt 3 uses SRV and fails on the certificate's SANs.
	e.b.recordAttempt(3, now.Add(2*time.Minute), true, linkstate.StepSAN)
	if got, want := classes(e.flow(t)), "fosoooofnnnn"; got != want {
		t.Errorf("SAN failed: %s, want %s", got, want)
	}
}

func TestListsPages(t *testing.T) {
	e := newAdminEnv(t)
	e.login(t, e.client)
	tests := []struct {
		path  string
		wants []string
	}{
		{"/admin/users", []string{`data-jid="alice@example.com"`, `data-jid="bob@example.com"`, "LDAP", "Local"}},
		{"/admin/spaces", []string{`data-space-id="4f0c7e1a"`, "Design review", "Open to non-members", "Passcode"}},
		{"/admin/calls", []string{`data-call-id="c-1"`, `data-participant-id="p2"`, "guest482913@example.com", "2 participants"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := e.get(t, e.client, tt.path)
			if res.code != http.StatusOK {
				t.Fatalf("status %d", res.code)
			}
			for _, w := range tt.wants {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
	// Sorted: alice before bob although the backend lists bob first.
	res := e.get(t, e.client, "/admin/users")
	if strings.Index(res.body, "alice@example.com") > strings.Index(res.body, "bob@example.com") {
		t.Error("users are not sorted by JID")
	}
}

// TestMediaLadderAndTURN: the calls page shows each participant's media ladder beside it
// (chips by state, the path, what the participant was told, the remedies of the failed
// steps, every step in a table); the TURN page shows the servers as browsers get them and
// the embedded server's allocations, with who relays.
func TestMediaLadderAndTURN(t *testing.T) {
	e := newAdminEnv(t)
	e.login(t, e.client)
	tests := []struct {
		path  string
		wants []string
	}{
		{"/admin/calls", []string{
			`<tr class="ladder-row" data-ladder-for="p1">`, `data-state="connected"`, "relay: TURN over TLS (turns:203.0.113.10:443?transport=tcp)",
			`data-step="relay turns:203.0.113.10:443?transport=tcp" data-state="ok"`, "relay TLS 203.0.113.10:443",
			`data-step="relay turn:203.0.113.10:3478?transport=udp" data-state="failed"`,
			`<div class="media-ladder" data-state="failed" data-cause="udp-blocked-no-turn">`,
			"was told:</strong> “Your network blocks the connection the meeting needs (UDP), and this server offers no relay.”",
			`<p class="ladder-remedy" data-step="checks">`, "Remedy: Configure a TURN server reachable over TLS on port 443",
			`<details id="ladder-p2">`, `<tr data-step="checks" data-state="failed">`, "&#43;0.10 s",
		}},
		{"/admin/configuration/turn", []string{
			`data-subnav="turn" href="/admin/configuration/turn" aria-current="page"`,
			`<tr data-id="t-emb" data-embedded="true">`, "turns:203.0.113.10:443?transport=tcp", "issued for each participant from the shared secret",
			`<tr data-leg="p1" data-transport="tls">`, "Alice Liddell (alice@example.com)", "203.0.113.10:50122", "3.0 MiB · 4100 packets",
			`href="/admin/configuration/api?path=/turnServers/t-emb"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := e.get(t, e.client, tt.path)
			if res.code != http.StatusOK {
				t.Fatalf("status %d", res.code)
			}
			for _, w := range tt.wants {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
	e.b.mu.Lock()
	e.b.turn = webadmin.TURNView{}
	e.b.mu.Unlock()
	if res := e.get(t, e.client, "/admin/configuration/turn"); !strings.Contains(res.body, `id="no-turn"`) || !strings.Contains(res.body, "runs no TURN server of its own") {
		t.Errorf("TURN page without servers:\n%s", res.body)
	}
}
