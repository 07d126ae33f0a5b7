package webapp

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sync"
	"time"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/sameorigin"
	"confab.dev/confab/internal/throttle"
)

// The connection test ("Test your connection", and `confab diagnose media`): before
// joining, the page connects to the media server over each path in turn — direct UDP,
// ICE-TCP, each TURN URL — and is told by the server's ladder what worked. Nobody signs in
// for it, so it is bounded: each test's TURN credentials last ConnTestLifetime, a source
// address may start ConnTestPerWindow tests and probes in 5 minutes, and the media service
// runs at most a few probes at once.
//
//	POST /api/webapp/connection-test                     → {"test", "iceServers", "expires"}
//	POST /api/webapp/connection-test/{test}/probes       {"offer", "url"} → {"probe", "answer"}
//	POST /api/webapp/connection-test/probes/{probe}/report  a ladder.Report → a ladder.Ladder

// Bounds of the connection test.
const (
	ConnTestLifetime  = 10 * time.Minute
	ConnTestPerWindow = 40
	maxConnTests      = 1024
	maxOfferBody      = 96 << 10
	maxReportBody     = 32 << 10
)

// ICEServer is a STUN or TURN server as RTCPeerConnection takes it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ConnectionTester runs connection tests: the Call Bridge's media service.
type ConnectionTester interface {
	// TestServers returns the ICE servers of a test, with credentials for userID that
	// expire after ttl.
	TestServers(ctx context.Context, userID string, ttl time.Duration) []ICEServer
	// StartProbe connects a probe with the client's offer and returns its id and the media
	// server's answer; servers are the test's, for the probe's ladder. It returns
	// ErrTooManyProbes, ErrBadOffer or another error.
	StartProbe(offer string, servers []ICEServer) (id, answer string, err error)
	// ProbeReport keeps a probe's report and returns its ladder, or ErrUnknownProbe.
	ProbeReport(id string, r *ladder.Report) (ladder.Ladder, error)
}

// Errors of a ConnectionTester.
var (
	ErrTooManyProbes = errors.New("too many connection tests at once")
	ErrBadOffer      = errors.New("the offer cannot be used")
	ErrUnknownProbe  = errors.New("no such connection test")
)

// connTests remembers the tests started, for their probes.
type connTests struct {
	mu    sync.Mutex
	tests map[string]connTest
	limit *throttle.Throttle
}

type connTest struct {
	servers []ICEServer
	expires time.Time
}

func newConnTests() *connTests {
	return &connTests{tests: map[string]connTest{},
		limit: throttle.New(throttle.Config{MaxFailures: ConnTestPerWindow, Window: 5 * time.Minute, Block: time.Minute, MaxBlock: 10 * time.Minute}, throttle.Config{}, nil)}
}

// allow counts one request of remoteAddr's and says whether it may go on; when not it
// answers 429.
func (c *connTests) allow(w http.ResponseWriter, remoteAddr string) bool {
	key := throttle.SourceKey(remoteAddr)
	if wait := c.limit.Blocked(key); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, "Too many connection tests from your network; try again in a few minutes")
		return false
	}
	c.limit.Fail(key)
	return true
}

type connTestJSON struct {
	Test       string      `json:"test"`
	ICEServers []ICEServer `json:"iceServers"`
	Expires    string      `json:"expires"`
}

// connTestRefused answers a request a test cannot take: not from this origin, or no tester.
func (a *app) connTestRefused(w http.ResponseWriter, r *http.Request) bool {
	if err := sameorigin.Check(r); err != nil {
		a.log.Info("connection test refused: not same-origin", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusForbidden, "This request must come from the meeting page")
		return true
	}
	if a.o.Tester == nil {
		writeError(w, http.StatusServiceUnavailable, "Audio and video are not available on this server")
		return true
	}
	return false
}

// startConnTest is POST /api/webapp/connection-test.
func (a *app) startConnTest(w http.ResponseWriter, r *http.Request) {
	if a.connTestRefused(w, r) || !a.ct.allow(w, r.RemoteAddr) {
		return
	}
	id := "test-" + rand.Text()[:16]
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	servers := a.o.Tester.TestServers(ctx, id, ConnTestLifetime)
	if servers == nil {
		servers = []ICEServer{}
	}
	now := time.Now()
	a.ct.mu.Lock()
	for k, t := range a.ct.tests {
		if now.After(t.expires) || len(a.ct.tests) >= maxConnTests {
			delete(a.ct.tests, k)
		}
	}
	a.ct.tests[id] = connTest{servers: servers, expires: now.Add(ConnTestLifetime)}
	a.ct.mu.Unlock()
	a.log.Info("connection test started", "remote", r.RemoteAddr, "test", id, "turn_servers", len(servers))
	writeJSON(w, http.StatusOK, connTestJSON{Test: id, ICEServers: servers, Expires: now.Add(ConnTestLifetime).UTC().Format(time.RFC3339)})
}

// readJSON reads a JSON body of at most limit bytes into v, answering the error itself.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "Send JSON (application/json)")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "The request is too large")
			return false
		}
		writeError(w, http.StatusBadRequest, "The request could not be read")
		return false
	}
	return true
}

type probeJSON struct {
	Probe  string `json:"probe"`
	Answer string `json:"answer"`
}

// startProbe is POST /api/webapp/connection-test/{test}/probes.
func (a *app) startProbe(w http.ResponseWriter, r *http.Request) {
	if a.connTestRefused(w, r) {
		return
	}
	a.ct.mu.Lock()
	t, ok := a.ct.tests[r.PathValue("test")]
	a.ct.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		writeError(w, http.StatusNotFound, "This connection test has ended; start it again")
		return
	}
	if !a.ct.allow(w, r.RemoteAddr) {
		return
	}
	var in struct {
		Offer string `json:"offer"`
		// URL is the TURN URL the probe relays through ("" for a direct one): its ladder
		// is about that one.
		URL string `json:"url"`
	}
	if !readJSON(w, r, maxOfferBody, &in) {
		return
	}
	var servers []ICEServer
	for _, s := range t.servers {
		for _, u := range s.URLs {
			if u == in.URL {
				servers = append(servers, ICEServer{URLs: []string{u}, Username: s.Username, Credential: s.Credential})
			}
		}
	}
	if in.URL != "" && servers == nil {
		writeError(w, http.StatusBadRequest, "This test offers no such relay server")
		return
	}
	id, answer, err := a.o.Tester.StartProbe(in.Offer, servers)
	switch {
	case err == nil:
	case errors.Is(err, ErrTooManyProbes):
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "Too many connection tests are running; try again in a minute")
		return
	case errors.Is(err, ErrBadOffer):
		writeError(w, http.StatusBadRequest, "The browser's offer cannot be used: "+err.Error())
		return
	default:
		a.log.Warn("connection test probe failed", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusServiceUnavailable, "The media server cannot run the test now")
		return
	}
	writeJSON(w, http.StatusOK, probeJSON{Probe: id, Answer: answer})
}

// probeReport is POST /api/webapp/connection-test/probes/{probe}/report.
func (a *app) probeReport(w http.ResponseWriter, r *http.Request) {
	if a.connTestRefused(w, r) {
		return
	}
	var rep ladder.Report
	if !readJSON(w, r, maxReportBody, &rep) {
		return
	}
	if len(rep.Candidates) > 64 || len(rep.Errors) > 32 {
		writeError(w, http.StatusBadRequest, "The report is too large")
		return
	}
	l, err := a.o.Tester.ProbeReport(r.PathValue("probe"), &rep)
	if errors.Is(err, ErrUnknownProbe) {
		writeError(w, http.StatusNotFound, "This connection test has ended; start it again")
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "The media server cannot run the test now")
		return
	}
	writeJSON(w, http.StatusOK, l)
}
