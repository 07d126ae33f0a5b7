package webadmin_test

import (
	"path/filepath"

	"confab.dev/confab/internal/callbridge/accounts"
	"confab.dev/confab/internal/store"

	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"confab.dev/confab/internal/clocktest"

	"confab.dev/confab/internal/adminapi"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/web/webadmin"
)

// fakeBackend is an in-memory Backend for testing the web admin alone.
type fakeBackend struct {
	mu       sync.Mutex
	accounts map[string]string
	checker  *accounts.Checker // the real checker over a real store, when set
	settings webadmin.XMPPSettings
	secret   string
	sets     []setCall
	setErr   error
	status   linkstate.Status
	trace    linkstate.Trace
	alarms   []linkstate.Alarm
	users    []webadmin.UserView
	spaces   []webadmin.SpaceView
	calls    []webadmin.CallView
	turn     webadmin.TURNView
	onSet    func(b *fakeBackend) // runs (unlocked) after a successful SetXMPPSettings
	m        fakeManage
	api      *adminapi.Handler // the real REST API over a real store, when set (withAPI)
}

// API answers with the real REST API when withAPI gave the backend one.
func (b *fakeBackend) API(ctx context.Context, user, method, path string, form url.Values) webadmin.APIResponse {
	if b.api == nil {
		return webadmin.APIResponse{Status: http.StatusNotFound, Body: []byte(`<?xml version="1.0"?><failureDetails><pathDoesNotExist /></failureDetails>`)}
	}
	r := b.api.Do(ctx, user, method, path, form)
	return webadmin.APIResponse{Status: r.Status, Location: r.Location, Body: r.Body}
}

// withAPI gives b the real REST API over a new store, and returns the store.
func withAPI(t testing.TB, b *fakeBackend) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "api.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetXMPPSettings(context.Background(), store.XMPPSettings{UniqueName: "cb1", Domain: "example.com"}); err != nil {
		t.Fatal(err)
	}
	b.api = adminapi.New(adminapi.Options{Store: st, AuthFailureDelay: -1})
	return st
}

type setCall struct {
	uniqueName, domain, override string
	secret                       *string
}

const testSecret = "s3cr3t-Do-Not-Show"

func newFakeBackend() *fakeBackend {
	b := &fakeBackend{
		accounts: map[string]string{"admin": "correct horse"},
		settings: webadmin.XMPPSettings{UniqueName: "cb1", Domain: "example.com", ServerAddressOverride: "xmpp.example.com:5223", SecretSet: true},
		secret:   testSecret,
		users: []webadmin.UserView{
			{ID: "u-bob", JID: "bob@example.com", Name: "Bob Builder", Email: "bob@example.com", Source: "ldap"},
			{ID: "u-alice", JID: "alice@example.com", Name: "Alice Liddell", Email: "alice@example.com", Source: "local"},
		},
		spaces: []webadmin.SpaceView{
			{ID: "4f0c7e1a", Name: "Design review", URI: "design", CallID: "100", OwnerJID: "alice@example.com", Members: 3, PasscodeSet: true},
			{ID: "9b2d5c30", Name: "All hands", URI: "all", CallID: "200", OwnerJID: "bob@example.com", Members: 40, NonMemberAccess: true},
		},
	}
	start := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	b.calls = []webadmin.CallView{{
		ID: "c-1", SpaceID: "4f0c7e1a", SpaceName: "Design review", Started: start,
		Participants: []webadmin.ParticipantView{
			{ID: "p1", Name: "Alice Liddell", JID: "alice@example.com", Role: "owner", Joined: start, Ladder: relayedLadder(start)},
			{ID: "p2", Name: "Ada (guest)", JID: "guest482913@example.com", Role: "guest", Joined: start.Add(2 * time.Minute),
				Ladder: blockedLadder(start.Add(2 * time.Minute))},
		},
	}}
	b.turn = webadmin.TURNView{Embedded: true,
		Servers: []webadmin.TURNServerView{{ID: "t-emb", ServerAddress: "203.0.113.10:3478", Type: "standard", Embedded: true,
			URLs:        []string{"turn:203.0.113.10:3478?transport=udp", "turn:203.0.113.10:3478?transport=tcp", "turns:203.0.113.10:443?transport=tcp"},
			Credentials: "issued for each participant from the shared secret"}},
		Allocations: []webadmin.AllocationView{{Who: "Alice Liddell (alice@example.com)", Leg: "p1", UserID: "p1", Transport: "tls",
			Client: "198.51.100.7:40312", Relayed: "203.0.113.10:50122", Since: start.Add(time.Second),
			BytesToPeer: 3 << 20, BytesFromPeer: 5 << 20, PacketsToPeer: 4100, PacketsFromPeer: 6800}}}
	return b
}

// relayedLadder is the ladder of a participant that connected through TURN over TLS.
func relayedLadder(t0 time.Time) *webadmin.LadderView {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	step := func(name, title, state string, ms int, detail string) webadmin.LadderStep {
		return webadmin.LadderStep{Name: name, Title: title, State: state, At: at(ms), Since: time.Duration(ms) * time.Millisecond, Detail: detail}
	}
	return &webadmin.LadderView{State: "connected", Path: "relay: TURN over TLS (turns:203.0.113.10:443?transport=tcp)", Steps: []webadmin.LadderStep{
		step("servers", "ICE servers given to the participant", "ok", 0, "3 TURN URL(s)"),
		step("offer", "Offer taken, answer sent", "ok", 120, "udp 203.0.113.10:10000 (host)"),
		step("gather", "Candidates gathered", "ok", 300, "1 host, 0 server-reflexive, 1 relay"),
		{Name: "relay turn:203.0.113.10:3478?transport=udp", Title: "Relay allocated at turn:203.0.113.10:3478?transport=udp", State: "failed",
			At: at(310), Since: 310 * time.Millisecond, Cause: "turn-unreachable", Detail: "701: STUN allocate request timed out",
			Remedy: "Let the participant's network reach 203.0.113.10:3478 over UDP"},
		step("relay turns:203.0.113.10:443?transport=tcp", "Relay allocated at turns:203.0.113.10:443?transport=tcp", "ok", 340, "Relayed address 203.0.113.10:50122"),
		step("checks", "Connectivity checks reached the media server", "ok", 420, "6 checks received"),
		step("pair", "Candidate pair selected", "ok", 460, "relay"),
		step("dtls", "DTLS handshake", "ok", 520, "DTLS connected"),
		step("media-in", "SRTP from the participant", "ok", 600, "900 packets"),
		step("media-out", "SRTP to the participant", "ok", 640, "forwarding"),
	}}
}

// blockedLadder is the ladder of a participant whose network blocks UDP, with no TURN.
func blockedLadder(t0 time.Time) *webadmin.LadderView {
	return &webadmin.LadderView{State: "failed", Cause: "udp-blocked-no-turn",
		Text: "Your network blocks the connection the meeting needs (UDP), and this server offers no relay.",
		Steps: []webadmin.LadderStep{
			{Name: "servers", Title: "ICE servers given to the participant", State: "warning", At: t0, Cause: "no-turn", Detail: "No TURN server is configured"},
			{Name: "offer", Title: "Offer taken, answer sent", State: "ok", At: t0.Add(100 * time.Millisecond), Since: 100 * time.Millisecond},
			{Name: "gather", Title: "Candidates gathered", State: "ok", At: t0.Add(200 * time.Millisecond), Since: 200 * time.Millisecond, Detail: "1 host"},
			{Name: "checks", Title: "Connectivity checks reached the media server", State: "failed", Cause: "udp-blocked-no-turn",
				Detail: "No connectivity check from the participant reached the media server (UDP 10000 or TCP 10000)",
				Remedy: "Configure a TURN server reachable over TLS on port 443"},
			{Name: "pair", Title: "Candidate pair selected", State: "failed"},
			{Name: "dtls", Title: "DTLS handshake", State: "failed"},
			{Name: "media-in", Title: "SRTP from the participant", State: "skipped"},
			{Name: "media-out", Title: "SRTP to the participant", State: "skipped"},
		}}
}

func (b *fakeBackend) CheckLogin(ctx context.Context, user, password, remoteAddr string) error {
	if b.checker != nil {
		return b.checker.Check(ctx, user, password, remoteAddr)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.accounts[user]; ok && p == password {
		return nil
	}
	return errors.New("bad credentials")
}

func (b *fakeBackend) XMPPSettings(context.Context) (webadmin.XMPPSettings, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.settings, nil
}

func (b *fakeBackend) SetXMPPSettings(_ context.Context, uniqueName, domain, override string, newSecret *string) error {
	b.mu.Lock()
	var cp *string
	if newSecret != nil {
		s := *newSecret
		cp = &s
	}
	b.sets = append(b.sets, setCall{uniqueName, domain, override, cp})
	if b.setErr != nil {
		err := b.setErr
		b.mu.Unlock()
		return err
	}
	b.settings.UniqueName, b.settings.Domain, b.settings.ServerAddressOverride = uniqueName, domain, override
	if newSecret != nil {
		b.secret = *newSecret
		b.settings.SecretSet = *newSecret != ""
	}
	onSet := b.onSet
	b.mu.Unlock()
	if onSet != nil {
		onSet(b)
	}
	return nil
}

func (b *fakeBackend) setCalls() []setCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]setCall(nil), b.sets...)
}

func (b *fakeBackend) LinkStatus() linkstate.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

func (b *fakeBackend) setStatus(s linkstate.Status) {
	b.mu.Lock()
	b.status = s
	b.mu.Unlock()
}

func (b *fakeBackend) Trace(after uint64) []linkstate.Event { return b.trace.Events(after) }

func (b *fakeBackend) Alarms() []linkstate.Alarm {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]linkstate.Alarm(nil), b.alarms...)
}

func (b *fakeBackend) setAlarms(a []linkstate.Alarm) {
	b.mu.Lock()
	b.alarms = a
	b.mu.Unlock()
}

func (b *fakeBackend) Users(context.Context) ([]webadmin.UserView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]webadmin.UserView(nil), b.users...), nil
}

func (b *fakeBackend) Spaces(context.Context) ([]webadmin.SpaceView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]webadmin.SpaceView(nil), b.spaces...), nil
}

func (b *fakeBackend) TURN(context.Context) (webadmin.TURNView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.turn, nil
}

func (b *fakeBackend) Calls(context.Context) ([]webadmin.CallView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]webadmin.CallView(nil), b.calls...), nil
}

// recordAttempt adds the events of one registration attempt that got to failAt (0: it
// succeeded and the link is active), with the given first step time.
func (b *fakeBackend) recordAttempt(n uint64, at time.Time, viaSRV bool, failAt linkstate.Step) {
	type ev struct {
		step   linkstate.Step
		target string
		d      time.Duration
		detail string
	}
	events := []ev{
		{linkstate.StepConfig, "", 40 * time.Microsecond, "uniqueName cb1, domain example.com"},
	}
	if viaSRV {
		events = append(events,
			ev{linkstate.StepOverride, "", 0, "no serverAddressOverride: DNS SRV"},
			ev{linkstate.StepSRV, "_xmpp-component._tcp.example.com", 2100 * time.Microsecond, "1 target: xmpp.example.com:5223"},
		)
	} else {
		events = append(events,
			ev{linkstate.StepOverride, "xmpp.example.com:5223", 20 * time.Microsecond, "serverAddressOverride xmpp.example.com:5223"},
			ev{linkstate.StepSRV, "", 0, "not needed: serverAddressOverride is set"},
		)
	}
	events = append(events,
		ev{linkstate.StepResolve, "xmpp.example.com", 1300 * time.Microsecond, "192.0.2.10"},
		ev{linkstate.StepConnect, "192.0.2.10:5223", 800 * time.Microsecond, "connected"},
		ev{linkstate.StepTLS, "192.0.2.10:5223", 6 * time.Millisecond, "TLS 1.3, chain verified"},
		ev{linkstate.StepSAN, "192.0.2.10:5223", 30 * time.Microsecond, "SANs example.com and xmpp.example.com present"},
		ev{linkstate.StepHandshake, "cb1.example.com", 1200 * time.Microsecond, "handshake sent"},
		ev{linkstate.StepVerdict, "cb1.example.com", 900 * time.Microsecond, "<handshake/>"},
		ev{linkstate.StepActive, "xmpp.example.com:5223", 0, "link active"},
	)
	t := at
	for _, e := range events {
		out := linkstate.OK
		switch {
		case e.detail == "not needed: serverAddressOverride is set" || e.detail == "no serverAddressOverride: DNS SRV":
			out = linkstate.Skipped
		}
		le := linkstate.Event{Attempt: n, Step: e.step, Target: e.target, Start: t, Duration: e.d, Outcome: out, Detail: e.detail}
		if e.step == failAt {
			le.Outcome = linkstate.Failed
			switch failAt {
			case linkstate.StepConnect:
				le.Cause, le.Detail = "connection-refused", "dial tcp 192.0.2.10:5223: connect: connection refused"
				le.Remedy = "check that the XMPP server is running and listens for components on 192.0.2.10:5223, and that no firewall blocks the port"
			case linkstate.StepSAN:
				le.Cause, le.Detail = "missing-san", "the XMPP server's certificate does not name xmpp.example.com"
				le.Remedy = "reissue the XMPP server's certificate with both example.com and xmpp.example.com as subjectAltNames"
			case linkstate.StepVerdict:
				le.Cause, le.Detail = "not-authorized", "the XMPP server refused the name or the secret of cb1"
				le.Remedy = "set the same shared secret here and on the XMPP server (xmpp callbridge add-secret cb1)"
			}
		}
		b.trace.Add(le)
		if e.step == failAt {
			return
		}
		t = t.Add(e.d + 150*time.Microsecond)
	}
}

// ---- an HTTPS web admin and a browser-like client -------------------------------------

// testLogWriter sends the web admin's log lines to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

type adminEnv struct {
	b      *fakeBackend
	srv    *httptest.Server
	client *http.Client
	clock  *clocktest.Clock
	st     *store.Store
	log    *slog.Logger
	h      atomic.Value // http.Handler: the web admin now serving (start)
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	e := &adminEnv{b: newFakeBackend(), clock: clocktest.New(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))}
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	e.b.checker = accounts.New(accounts.Options{Store: st, Now: e.clock.Now})
	for name, pw := range e.b.accounts {
		if err := e.b.checker.Add(context.Background(), name, pw); err != nil {
			t.Fatal(err)
		}
	}
	e.log = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.start(nil)
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.h.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.client = e.newClient(t)
	return e
}

// start serves a new web admin, as a restarted Call Bridge would, keeping its sessions in
// sessions (nil: in memory, as without a store).
func (e *adminEnv) start(sessions webadmin.SessionStore) {
	mux := http.NewServeMux()
	mux.Handle(webadmin.Prefix, webadmin.New(webadmin.Options{Backend: e.b, Now: e.clock.Now, Logger: e.log, Sessions: sessions}))
	e.h.Store(http.Handler(mux))
}

func (e *adminEnv) newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Transport:     e.srv.Client().Transport, // trusts the test server's certificate
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type response struct {
	code    int
	body    string
	header  http.Header
	cookies []*http.Cookie
}

func (e *adminEnv) get(t *testing.T, c *http.Client, path string) response {
	t.Helper()
	r, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, r)
}

// post sends a form as a browser on the admin's own origin would, unless mutate changes it.
func (e *adminEnv) post(t *testing.T, c *http.Client, path string, form url.Values, mutate func(*http.Request)) response {
	t.Helper()
	r, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", e.srv.URL)
	if mutate != nil {
		mutate(r)
	}
	return do(t, c, r)
}

func do(t *testing.T, c *http.Client, r *http.Request) response {
	t.Helper()
	res, err := c.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.Method, r.URL.Path, err)
	}
	return response{code: res.StatusCode, body: string(b), header: res.Header, cookies: res.Cookies()}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

// login signs in as admin and returns the session's CSRF token.
func (e *adminEnv) login(t *testing.T, c *http.Client) string {
	t.Helper()
	page := e.get(t, c, "/admin/login")
	res := e.post(t, c, "/admin/login", url.Values{"csrf": {csrfOf(t, page.body)}, "username": {"admin"}, "password": {"correct horse"}, "next": {"/admin/status"}}, nil)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/admin/status" {
		t.Fatalf("sign-in: %d to %q, want 303 to /admin/status\n%s", res.code, res.header.Get("Location"), res.body)
	}
	status := e.get(t, c, "/admin/status")
	if status.code != http.StatusOK {
		t.Fatalf("status page after sign-in: %d", status.code)
	}
	return csrfOf(t, status.body)
}
