package webapp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/ladder"
)

// fakeTester stands in for the media service.
type fakeTester struct {
	mu      sync.Mutex
	started []string // the offers
	servers [][]ICEServer
	reports map[string]*ladder.Report
	full    bool
}

func (f *fakeTester) TestServers(_ context.Context, userID string, ttl time.Duration) []ICEServer {
	return []ICEServer{{URLs: []string{"turns:turn.test:443?transport=tcp"}, Username: fmt.Sprintf("%d:%s", int(ttl.Seconds()), userID), Credential: "pw"}}
}

func (f *fakeTester) StartProbe(offer string, servers []ICEServer) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return "", "", ErrTooManyProbes
	}
	if offer == "bad" {
		return "", "", fmt.Errorf("%w: not SDP", ErrBadOffer)
	}
	f.started = append(f.started, offer)
	f.servers = append(f.servers, servers)
	return fmt.Sprintf("probe-%d", len(f.started)), "answer to " + offer, nil
}

func (f *fakeTester) ProbeReport(id string, r *ladder.Report) (ladder.Ladder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.HasPrefix(id, "probe-") {
		return ladder.Ladder{}, ErrUnknownProbe
	}
	if f.reports == nil {
		f.reports = map[string]*ladder.Report{}
	}
	f.reports[id] = r
	return ladder.Ladder{State: ladder.StateConnected, Path: "direct UDP"}, nil
}

func post(t *testing.T, h http.Handler, path, body, remote string, mutate func(*http.Request)) (int, string) {
	t.Helper()
	r := httptest.NewRequest("POST", "https://meet.test:8443"+path, strings.NewReader(body))
	r.Header.Set("Origin", "https://meet.test:8443")
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = remote
	if mutate != nil {
		mutate(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// TestConnectionTest: a test gives short-lived ICE servers; its probes are answered and
// their reports give the ladder; a foreign page, a wrong body, an ended test, a busy media
// server and a flood from one address are each refused with their status.
func TestConnectionTest(t *testing.T) {
	ft := &fakeTester{}
	h := New(Options{Tester: ft})
	const alice = "198.51.100.7:40000"
	code, body := post(t, h, "/api/webapp/connection-test", "", alice, nil)
	var ct struct {
		Test       string      `json:"test"`
		ICEServers []ICEServer `json:"iceServers"`
		Expires    string      `json:"expires"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &ct) != nil || ct.Test == "" || len(ct.ICEServers) != 1 ||
		!strings.HasPrefix(ct.ICEServers[0].Username, "600:"+ct.Test) {
		t.Fatalf("start: %d %s", code, body)
	}
	code, body = post(t, h, "/api/webapp/connection-test/"+ct.Test+"/probes", `{"offer":"v=0","url":"turns:turn.test:443?transport=tcp"}`, alice, nil)
	var pr probeJSON
	if code != 200 || json.Unmarshal([]byte(body), &pr) != nil || pr.Probe != "probe-1" || pr.Answer != "answer to v=0" {
		t.Fatalf("probe: %d %s", code, body)
	}
	if len(ft.servers) != 1 || len(ft.servers[0]) != 1 || ft.servers[0][0].URLs[0] != "turns:turn.test:443?transport=tcp" {
		t.Errorf("the probe was not given the test's servers: %+v", ft.servers)
	}
	code, body = post(t, h, "/api/webapp/connection-test/probes/probe-1/report",
		`{"gathering":"complete","candidates":[{"type":"relay","protocol":"udp","relayProtocol":"tls","url":"turns:turn.test:443?transport=tcp"}]}`, alice, nil)
	if code != 200 || !strings.Contains(body, `"path":"direct UDP"`) || ft.reports["probe-1"].Candidates[0].RelayProtocol != "tls" {
		t.Fatalf("report: %d %s", code, body)
	}

	tests := []struct {
		name, path, body string
		mutate           func(*http.Request)
		wantCode         int
		wantError        string
	}{
		{"foreign origin", "/api/webapp/connection-test", "", func(r *http.Request) { r.Header.Set("Origin", "https://evil.test") }, 403, "must come from the meeting page"},
		{"ended test", "/api/webapp/connection-test/test-nope/probes", `{"offer":"v=0"}`, nil, 404, "has ended"},
		{"not JSON", "/api/webapp/connection-test/" + ct.Test + "/probes", `offer=v=0`, func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, 415, "Send JSON"},
		{"oversized offer", "/api/webapp/connection-test/" + ct.Test + "/probes", `{"offer":"` + strings.Repeat("a", maxOfferBody) + `"}`, nil, 413, "too large"},
		{"bad offer", "/api/webapp/connection-test/" + ct.Test + "/probes", `{"offer":"bad"}`, nil, 400, "cannot be used"},
		{"another relay", "/api/webapp/connection-test/" + ct.Test + "/probes", `{"offer":"v=0","url":"turn:evil.test:3478"}`, nil, 400, "no such relay"},
		{"unknown probe", "/api/webapp/connection-test/probes/nope/report", `{}`, nil, 404, "has ended"},
		{"too many candidates", "/api/webapp/connection-test/probes/probe-1/report", `{"candidates":[` + strings.Repeat(`{"type":"host"},`, 64) + `{"type":"host"}]}`, nil, 400, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, h, tt.path, tt.body, "192.0.2.1:1", tt.mutate)
			if code != tt.wantCode || !strings.Contains(body, tt.wantError) {
				t.Errorf("%d %s, want %d with %q", code, body, tt.wantCode, tt.wantError)
			}
		})
	}
	ft.mu.Lock()
	ft.full = true
	ft.mu.Unlock()
	if code, body := post(t, h, "/api/webapp/connection-test/"+ct.Test+"/probes", `{"offer":"v=0"}`, alice, nil); code != 503 || !strings.Contains(body, "Too many connection tests are running") {
		t.Errorf("busy: %d %s", code, body)
	}
	// A flood from one address is refused; another address is not.
	const mallory = "203.0.113.66:5000"
	var last int
	for range ConnTestPerWindow + 1 {
		last, _ = post(t, h, "/api/webapp/connection-test", "", mallory, nil)
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("request %d from one address: %d, want 429", ConnTestPerWindow+1, last)
	}
	if code, _ := post(t, h, "/api/webapp/connection-test", "", "198.51.100.99:1", nil); code != 200 {
		t.Errorf("another address: %d", code)
	}
}

// TestConnectionTestWithoutMedia: without a media server, the test says so.
func TestConnectionTestWithoutMedia(t *testing.T) {
	if code, body := post(t, New(Options{}), "/api/webapp/connection-test", "", "192.0.2.1:1", nil); code != 503 || !strings.Contains(body, "not available") {
		t.Errorf("%d %s", code, body)
	}
}
