package webapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/web/webapp"
)

// fakeGuests is a GuestJoiner that answers what the test tells it and records the calls.
type fakeGuests struct {
	mu    sync.Mutex
	calls []guestCall
	grant webapp.GuestGrant
	err   error
}

type guestCall struct{ callID, passcode, name, remote string }

// RejoinGuest records the credential in a call's callID field.
func (f *fakeGuests) RejoinGuest(_ context.Context, credential, remoteAddr string) (webapp.GuestGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, guestCall{callID: credential, remote: remoteAddr})
	if f.err != nil {
		return webapp.GuestGrant{}, f.err
	}
	return f.grant, nil
}

func (f *fakeGuests) JoinAsGuest(_ context.Context, callID, passcode, name, remoteAddr string) (webapp.GuestGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, guestCall{callID, passcode, name, remoteAddr})
	if f.err != nil {
		return webapp.GuestGrant{}, f.err
	}
	g := f.grant
	g.Name = name
	return g, nil
}

func (f *fakeGuests) Calls() []guestCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]guestCall(nil), f.calls...)
}

var testConfig = webapp.Config{Domain: "example.com", WebSocketURL: "wss://meet.example.com:8443/xmpp-websocket", CallBridgeJID: "cb1.example.com"}

func newApp(t *testing.T, g webapp.GuestJoiner, ws http.Handler) http.Handler {
	t.Helper()
	return webapp.New(webapp.Options{Config: func() webapp.Config { return testConfig }, Guests: g, WebSocket: ws})
}

func TestConfigEndpoint(t *testing.T) {
	tests := []struct {
		name   string
		config webapp.Config
		tls    bool
		wantWS string
	}{
		{"configured URL", testConfig, true, testConfig.WebSocketURL},
		{"same host over TLS", webapp.Config{Domain: "example.com", CallBridgeJID: "cb1.example.com"}, true, "wss://meet.test:8443/xmpp-websocket"},
		{"same host without TLS", webapp.Config{Domain: "example.com", CallBridgeJID: "cb1.example.com"}, false, "ws://meet.test:8443/xmpp-websocket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := webapp.New(webapp.Options{Config: func() webapp.Config { return tt.config }})
			r := httptest.NewRequest("GET", "http://meet.test:8443/api/webapp/config", nil)
			if tt.tls {
				r = httptest.NewRequest("GET", "https://meet.test:8443/api/webapp/config", nil)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var got map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %q: %v", w.Body, err)
			}
			want := map[string]string{"domain": "example.com", "websocketURL": tt.wantWS, "callBridgeJid": "cb1.example.com"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("got fields %v, want exactly %v", got, want)
			}
		})
	}
}

type guestResult struct {
	code  int
	body  map[string]string
	retry string
}

func postGuest(t *testing.T, h http.Handler, form url.Values, mutate func(*http.Request)) guestResult {
	t.Helper()
	return postForm(t, h, "/api/webapp/guest", form, mutate)
}

func postForm(t *testing.T, h http.Handler, path string, form url.Values, mutate func(*http.Request)) guestResult {
	t.Helper()
	r := httptest.NewRequest("POST", "https://meet.test:8443"+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://meet.test:8443")
	if mutate != nil {
		mutate(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := guestResult{code: w.Code, retry: w.Header().Get("Retry-After")}
	if err := json.Unmarshal(w.Body.Bytes(), &res.body); err != nil {
		t.Fatalf("status %d: body %q is not JSON: %v", w.Code, w.Body, err)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store (the answer may hold a password)", cc)
	}
	return res
}

func TestGuestJoin(t *testing.T) {
	grant := webapp.GuestGrant{JID: "guest482913@example.com", Password: "one-time-pw", SpaceJID: "c0ffee@cb1.example.com", SpaceName: "Demo space"}
	good := url.Values{"callId": {"100 200-300"}, "passcode": {"4321"}, "name": {" Ada "}}
	tests := []struct {
		name      string
		err       error
		form      url.Values
		mutate    func(*http.Request)
		wantCode  int
		wantError string
		wantRetry string
		wantCalls int
	}{
		{name: "granted", form: good, wantCode: 200, wantCalls: 1},
		{name: "invalid call ID", err: webapp.ErrInvalidCallID, form: good, wantCode: 403, wantError: "Invalid call ID or passcode", wantCalls: 1},
		{name: "wrapped invalid call ID", err: errors.Join(errors.New("lookup"), webapp.ErrInvalidCallID), form: good, wantCode: 403, wantError: "Invalid call ID or passcode", wantCalls: 1},
		{name: "throttled", err: &webapp.ThrottledError{RetryAfter: 29500 * time.Millisecond}, form: good, wantCode: 429, wantError: "Too many attempts; try again in 30 seconds", wantRetry: "30", wantCalls: 1},
		{name: "no call bridge", err: webapp.ErrNoCallBridge, form: good, wantCode: 503, wantError: "No Call Bridge is available", wantCalls: 1},
		{name: "internal failure", err: errors.New("database is locked"), form: good, wantCode: 500, wantError: "The meeting could not be joined; try again later", wantCalls: 1},
		{name: "no call ID", form: url.Values{"passcode": {"1"}, "name": {"Ada"}}, wantCode: 400, wantError: "Enter the call ID"},
		{name: "no name", form: url.Values{"callId": {"1"}, "name": {"  "}}, wantCode: 400, wantError: "Enter your name"},
		{name: "name too long", form: url.Values{"callId": {"1"}, "name": {strings.Repeat("é", 65)}}, wantCode: 400, wantError: "Your name can have at most 64 characters"},
		{name: "control character in name", form: url.Values{"callId": {"1"}, "name": {"Ada\x07"}}, wantCode: 400, wantError: "Your name cannot contain control characters"},
		{name: "foreign origin", form: good, mutate: func(r *http.Request) { r.Header.Set("Origin", "https://evil.test") }, wantCode: 403, wantError: "This request must come from the meeting page"},
		{name: "other port", form: good, mutate: func(r *http.Request) { r.Header.Set("Origin", "https://meet.test:9443") }, wantCode: 403, wantError: "This request must come from the meeting page"},
		{name: "plain http origin", form: good, mutate: func(r *http.Request) { r.Header.Set("Origin", "http://meet.test:8443") }, wantCode: 403, wantError: "This request must come from the meeting page"},
		{name: "null origin", form: good, mutate: func(r *http.Request) { r.Header.Set("Origin", "null") }, wantCode: 403, wantError: "This request must come from the meeting page"},
		{name: "no origin", form: good, mutate: func(r *http.Request) { r.Header.Del("Origin") }, wantCode: 403, wantError: "This request must come from the meeting page"},
		{name: "same-origin referer only", form: good, mutate: func(r *http.Request) {
			r.Header.Del("Origin")
			r.Header.Set("Referer", "https://meet.test:8443/join")
		}, wantCode: 200, wantCalls: 1},
		{name: "JSON body", form: good, mutate: func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, wantCode: 415, wantError: "Send the form as application/x-www-form-urlencoded"},
		{name: "body too large", form: url.Values{"callId": {"1"}, "name": {"Ada"}, "pad": {strings.Repeat("x", 8<<10)}}, wantCode: 413, wantError: "The form is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGuests{grant: grant, err: tt.err}
			res := postGuest(t, newApp(t, g, nil), tt.form, tt.mutate)
			if res.code != tt.wantCode {
				t.Errorf("status = %d, want %d (body %v)", res.code, tt.wantCode, res.body)
			}
			if tt.wantError != "" && res.body["error"] != tt.wantError {
				t.Errorf("error = %q, want %q", res.body["error"], tt.wantError)
			}
			if res.retry != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", res.retry, tt.wantRetry)
			}
			calls := g.Calls()
			if len(calls) != tt.wantCalls {
				t.Fatalf("JoinAsGuest called %d times, want %d", len(calls), tt.wantCalls)
			}
			if tt.wantCode != 200 {
				if _, ok := res.body["password"]; ok {
					t.Errorf("a refusal carries a password: %v", res.body)
				}
				return
			}
			if c := calls[0]; c.callID != "100200300" || c.passcode != "4321" || c.name != "Ada" || c.remote == "" {
				t.Errorf("JoinAsGuest(%q, %q, %q, %q), want (100200300, 4321, Ada, the remote address)", c.callID, c.passcode, c.name, c.remote)
			}
			want := map[string]string{"jid": grant.JID, "password": grant.Password, "spaceJid": grant.SpaceJID, "spaceName": grant.SpaceName, "name": "Ada"}
			for k, v := range want {
				if res.body[k] != v {
					t.Errorf("%s = %q, want %q", k, res.body[k], v)
				}
			}
		})
	}
}

// TestGuestRejoin: the rejoin credential is passed on, and each refusal is answered with its
// own status, reason and words.
func TestGuestRejoin(t *testing.T) {
	expires := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	grant := webapp.GuestGrant{JID: "guest482914@example.com", Password: "one-time-pw-2", SpaceJID: "c0ffee@cb1.example.com",
		SpaceName: "Demo space", Name: "Ada", Rejoin: "payload.sig2", RejoinExpires: expires}
	good := url.Values{"credential": {"payload.sig"}}
	tests := []struct {
		name       string
		err        error
		form       url.Values
		mutate     func(*http.Request)
		wantCode   int
		wantReason string
		wantError  string
		wantCalls  int
	}{
		{name: "granted", form: good, wantCode: 200, wantCalls: 1},
		{name: "expired", err: webapp.ErrRejoinExpired, form: good, wantCode: 403, wantReason: "expired",
			wantError: "Your place in this meeting has expired: join again with the call ID and passcode", wantCalls: 1},
		{name: "passcode changed", err: fmt.Errorf("space: %w", webapp.ErrRejoinChanged), form: good, wantCode: 403, wantReason: "changed",
			wantError: "The meeting's passcode has changed: join again with the new passcode", wantCalls: 1},
		{name: "forged", err: webapp.ErrRejoinInvalid, form: good, wantCode: 403, wantReason: "invalid", wantError: "Join again with the call ID and passcode", wantCalls: 1},
		{name: "empty", form: url.Values{}, wantCode: 403, wantReason: "invalid", wantError: "Join again with the call ID and passcode"},
		{name: "too long", form: url.Values{"credential": {strings.Repeat("x", 3000)}}, wantCode: 403, wantReason: "invalid", wantError: "Join again with the call ID and passcode"},
		{name: "throttled", err: &webapp.ThrottledError{RetryAfter: 5 * time.Second}, form: good, wantCode: 429, wantError: "Too many attempts; try again in 5 seconds", wantCalls: 1},
		{name: "no call bridge", err: webapp.ErrNoCallBridge, form: good, wantCode: 503, wantError: "No Call Bridge is available", wantCalls: 1},
		{name: "foreign origin", form: good, mutate: func(r *http.Request) { r.Header.Set("Origin", "https://evil.test") }, wantCode: 403, wantError: "This request must come from the meeting page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGuests{grant: grant, err: tt.err}
			res := postForm(t, newApp(t, g, nil), "/api/webapp/guest/rejoin", tt.form, tt.mutate)
			if res.code != tt.wantCode || res.body["reason"] != tt.wantReason {
				t.Errorf("status %d reason %q, want %d %q (body %v)", res.code, res.body["reason"], tt.wantCode, tt.wantReason, res.body)
			}
			if tt.wantError != "" && res.body["error"] != tt.wantError {
				t.Errorf("error = %q, want %q", res.body["error"], tt.wantError)
			}
			calls := g.Calls()
			if len(calls) != tt.wantCalls {
				t.Fatalf("RejoinGuest called %d times, want %d", len(calls), tt.wantCalls)
			}
			if tt.wantCode != 200 {
				return
			}
			if calls[0].callID != "payload.sig" || calls[0].remote == "" {
				t.Errorf("RejoinGuest(%q, %q), want the credential and the remote address", calls[0].callID, calls[0].remote)
			}
			want := map[string]string{"jid": grant.JID, "password": grant.Password, "spaceJid": grant.SpaceJID, "name": "Ada",
				"rejoin": "payload.sig2", "rejoinExpires": "2026-03-01T14:00:00Z"}
			for k, v := range want {
				if res.body[k] != v {
					t.Errorf("%s = %q, want %q", k, res.body[k], v)
				}
			}
		})
	}
}

func TestGuestJoinWithoutJoiner(t *testing.T) {
	res := postGuest(t, newApp(t, nil, nil), url.Values{"callId": {"1"}, "name": {"Ada"}}, nil)
	if res.code != 503 || res.body["error"] != "No Call Bridge is available" {
		t.Errorf("got %d %v, want 503 No Call Bridge is available", res.code, res.body)
	}
}

func TestGuestJoinMethod(t *testing.T) {
	h := newApp(t, &fakeGuests{}, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "https://meet.test:8443/api/webapp/guest", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET status = %d, want 405", w.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newApp(t, &fakeGuests{}, nil)
	for _, path := range []string{"/", "/join", "/assets/app.js", "/assets/app.css", "/api/webapp/config", "/nope"} {
		t.Run(path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "https://meet.test:8443"+path, nil))
			hd := w.Header()
			csp := hd.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self' wss://meet.example.com:8443", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP %q allows inline or eval'd code", csp)
			}
			for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
				if got := hd.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestCSPIgnoresMalformedWebSocketURL(t *testing.T) {
	for _, ws := range []string{"https://meet.example.com/x", "wss://a b;script-src *", "not a url"} {
		h := webapp.New(webapp.Options{Config: func() webapp.Config { return webapp.Config{WebSocketURL: ws} }})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "https://meet.test/", nil))
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "connect-src 'self';") {
			t.Errorf("WebSocketURL %q: CSP %q, want connect-src 'self' only", ws, csp)
		}
	}
}

func TestPagesAndAssets(t *testing.T) {
	h := newApp(t, nil, nil)
	tests := []struct {
		path     string
		wantCode int
		wantType string
		contains string
	}{
		{"/", 200, "text/html", `id="signin-form"`},
		{"/join", 200, "text/html", `id="join-form"`},
		{"/assets/app.js", 200, "text/javascript", "urn:confab:meeting:1"},
		{"/assets/app.css", 200, "text/css", "--primary"},
		{"/assets/icon.svg", 200, "image/svg+xml", "<svg"},
		{"/assets/licenses.txt", 200, "text/plain", "@xmpp/client"},
		{"/assets/index.html", 404, "", ""},
		{"/assets/missing.js", 404, "", ""},
		{"/admin/", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "https://meet.test"+tt.path, nil))
			if w.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantCode)
			}
			if tt.wantCode != 200 {
				return
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.wantType)
			}
			if !strings.Contains(w.Body.String(), tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
			etag := w.Header().Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			r := httptest.NewRequest("GET", "https://meet.test"+tt.path, nil)
			r.Header.Set("If-None-Match", etag)
			w = httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusNotModified {
				t.Errorf("revalidation status = %d, want 304", w.Code)
			}
		})
	}
}

func TestWebSocketMount(t *testing.T) {
	var got string
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path
		w.WriteHeader(http.StatusSwitchingProtocols)
	})
	w := httptest.NewRecorder()
	newApp(t, nil, ws).ServeHTTP(w, httptest.NewRequest("GET", "https://meet.test/xmpp-websocket", nil))
	if got != "/xmpp-websocket" || w.Code != http.StatusSwitchingProtocols {
		t.Errorf("WebSocket handler saw %q, status %d; want /xmpp-websocket, 101", got, w.Code)
	}
	w = httptest.NewRecorder()
	newApp(t, nil, nil).ServeHTTP(w, httptest.NewRequest("GET", "https://meet.test/xmpp-websocket", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("without a WebSocket handler: status %d, want 404", w.Code)
	}
}

func TestThrottledErrorMessage(t *testing.T) {
	err := error(&webapp.ThrottledError{RetryAfter: 5 * time.Second})
	var te *webapp.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != 5*time.Second {
		t.Fatalf("errors.As = %v", te)
	}
	if msg := err.Error(); !strings.Contains(msg, "5s") {
		t.Errorf("Error() = %q, want it to name the wait", msg)
	}
}
