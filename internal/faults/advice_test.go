package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/discover/dnstest"
)

// TestAdviceFitsTheFault breaks a real `confab xmpp` and `confab callbridge` the ways a new
// administrator does — a mistyped domain with and without serverAddressOverride, a DNS
// server that is not running, a user's wrong password — and checks what each place that
// explains a failure says: the API's alarm and trace, the web admin's signal flow (as the
// Status page fetches it), `confab diagnose`, and the XMPP server's log and metrics.
func TestAdviceFitsTheFault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newPKI(t)
	x := newXMPPServer(t, p, "xmpp", "xmpp."+domain)
	secret := x.addCallBridge(t, "cb1")
	x.start(t)
	dns := dnstest.Start(t, dnstest.Zone{
		"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{{Priority: 10, Port: x.componentPort(), Target: x.fqdn}}},
		x.fqdn:                           {A: []string{"127.0.0.1"}},
	})
	cb := newCallBridge(t, p, "cb1", cbOptions{DNSServer: dns.Addr, BackoffMin: 200 * time.Millisecond, BackoffMax: time.Second})
	cb.start(t)
	admin := cb.webAdmin(t)

	// failedStep waits for the latest attempt to fail at step, and returns its event (with
	// the remedy) from the API's trace.
	failedStep := func(step, cause string) adviceEvent {
		t.Helper()
		var got adviceEvent
		poll(t, 30*time.Second, 50*time.Millisecond, "step "+step+" failed with "+cause, func() (bool, string) {
			evs, err := cb.adviceTrace(ctx)
			if err != nil || len(evs) == 0 {
				return false, errString(err)
			}
			got = evs[len(evs)-1]
			for i := len(evs) - 1; i >= 0 && evs[i].Attempt == got.Attempt; i-- {
				if evs[i].Outcome == "failed" && evs[i].Step == step {
					got = evs[i]
					return evs[i].Cause == cause, fmt.Sprintf("%+v", evs[i])
				}
			}
			return false, fmt.Sprintf("latest %+v", got)
		}, cb.proc)
		return got
	}
	contains := func(what, s string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(s, w) {
				t.Errorf("%s %q: want %q", what, s, w)
			}
		}
	}

	t.Run("mistyped domain, no override", func(t *testing.T) {
		cb.configureDomain(t, "exmaple.com", "", secret)
		e := failedStep("srv", "nxdomain")
		contains("remedy", e.Remedy, "first check that the Domain field (exmaple.com)", "exmaple.com itself does not exist in DNS", "if it is right, create the SRV record")
		cb.waitAlarm(t, 10*time.Second, "dnsFailure")
		f := admin.flow(t)
		contains("ladder row 4", f.Steps[3].Class+" "+f.Steps[3].Remedy, "failed", "first check that the Domain field")
		out := cb.diagnose(t)
		contains("diagnose", out, "cause:  nxdomain", "remedy: first check that the Domain field (exmaple.com)", "RESULT: FAIL at step 4 (srv): dnsFailure")
	})

	t.Run("mistyped domain, override", func(t *testing.T) {
		cb.configureDomain(t, "example.org", x.comp, secret)
		e := failedStep("san", "domain-mismatch")
		contains("remedy", e.Remedy, "the XMPP server presents example.com: is the Domain field (example.org) right?")
		if strings.HasPrefix(e.Remedy, "reissue") {
			t.Errorf("remedy %q asks to reissue the certificate first", e.Remedy)
		}
		a := cb.waitAlarm(t, 10*time.Second, "connectFailure")
		contains("alarm detail", a.Detail, "step 8 (san)", "presents the domain example.com, not example.org")
		f := admin.flow(t)
		contains("ladder row 8", f.Steps[7].Class+" "+f.Steps[7].Cause+" "+f.Steps[7].Remedy, "failed domain-mismatch the XMPP server presents example.com")
		out := cb.diagnose(t)
		contains("diagnose", out, "cause:  domain-mismatch", "RESULT: FAIL at step 8 (san): connectFailure, cause domain-mismatch, TLS cause missing-san")
		// The XMPP server saw a peer hang up after TLS (the link's attempts and diagnose
		// -no-register): no stream error was sent, so none is counted or logged.
		poll(t, 10*time.Second, 50*time.Millisecond, "the XMPP server's count of closed connections", func() (bool, string) {
			v := x.metric(t, `confab_xmpp_component_handshakes_total{outcome="closed-before-handshake"}`)
			return v >= 2, fmt.Sprint(v)
		}, x.proc)
		if v := x.metric(t, `confab_xmpp_stream_errors_total{condition="not-well-formed"}`); v > 0 {
			t.Errorf("the XMPP server counted %v not-well-formed stream errors it never sent", v)
		}
		logs := x.proc.out.String()
		contains("XMPP server log", logs, `msg="component connection closed by the peer before the handshake"`, "outcome=closed-before-handshake")
		if strings.Contains(logs, "not-well-formed") {
			t.Errorf("the XMPP server's log says not-well-formed")
		}
	})

	t.Run("a wrong password leaves the link green", func(t *testing.T) {
		cb.configureDomain(t, domain, x.comp, secret)
		x.waitLinks(t, 30*time.Second, "cb1")
		cb.waitNoAlarm(t, 10*time.Second)
		cb.addUser(t, "alice", "alice-password-1")
		if c, err := x.login(ctx, "alice", "not-her-password", "web"); err == nil {
			c.Close()
			t.Fatal("a wrong password logged in")
		}
		var row12 adviceStep
		poll(t, 10*time.Second, 50*time.Millisecond, "row 12 after the wrong password", func() (bool, string) {
			f := admin.flow(t)
			row12 = f.Steps[11]
			return row12.Class != "none", fmt.Sprintf("%+v", row12)
		}, cb.proc)
		if row12.Class != "ok" || !strings.Contains(row12.Detail, "refused (not-authorized") {
			t.Errorf("row 12 after a wrong password = %+v, want green with the refusal in its detail", row12)
		}
		if f := admin.flow(t); len(f.Failures) != 0 {
			t.Errorf("what went wrong after a wrong password: %+v, want nothing", f.Failures)
		}
		if n := strings.Count(cb.proc.out.String(), "unsuccessful login request from alice@example.com"); n != 1 {
			t.Errorf("the Call Bridge logged the refusal %d times, want once", n)
		}
		if strings.Contains(cb.proc.out.String(), `msg="login failed"`) {
			t.Errorf("the Call Bridge logged the refusal twice (login failed)")
		}
	})

	t.Run("DNS server not running", func(t *testing.T) {
		dns.Close()
		cb.configureDomain(t, domain, "", secret)
		e := failedStep("srv", "connection-refused")
		contains("remedy", e.Remedy, "nothing listens at "+dns.Addr, "dns_server")
		if strings.Contains(e.Remedy, "zone") || strings.Contains(e.Remedy, "DNSSEC") {
			t.Errorf("remedy %q speaks of the zone", e.Remedy)
		}
		cb.waitAlarm(t, 10*time.Second, "dnsFailure")
		out := cb.diagnose(t)
		contains("diagnose", out, "cause:  connection-refused", "nothing listens at "+dns.Addr)
	})
}

// adviceEvent is a trace event with its remedy.
type adviceEvent struct {
	Attempt uint64 `json:"attempt"`
	Step    string `json:"step"`
	Server  string `json:"server"`
	Outcome string `json:"outcome"`
	Cause   string `json:"cause"`
	Detail  string `json:"detail"`
	Remedy  string `json:"remedy"`
}

func (cb *callBridge) adviceTrace(ctx context.Context) ([]adviceEvent, error) {
	var doc struct {
		Trace struct {
			Event []adviceEvent `json:"event"`
		} `json:"xmppTrace"`
	}
	err := cb.api.getJSON(ctx, "/api/v1/system/xmppTrace", &doc)
	return doc.Trace.Event, err
}

// configureDomain sets the XMPP settings with a domain of the test's choosing.
func (cb *callBridge) configureDomain(t testing.TB, dom, override, secret string) {
	t.Helper()
	form := url.Values{"uniqueName": {"cb1"}, "domain": {dom}, "serverAddressOverride": {override}, "sharedSecret": {secret}}
	if _, err := cb.api.do(context.Background(), http.MethodPut, "/api/v1/system/configuration/xmpp", form); err != nil {
		t.Fatalf("%s: configure: %v", cb.name, err)
	}
}

// diagnose runs `confab diagnose -store -no-register` on the Call Bridge's file, as the
// first step of reading a failure, and returns its report (it exits 1 on a failure).
func (cb *callBridge) diagnose(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary.get(t), "diagnose", "-config", cb.config, "-store", "-no-register", "-timeout", "3s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Errorf("diagnose passed:\n%s", out.String())
	}
	return out.String()
}

func (x *xmppServer) metric(t testing.TB, series string) float64 {
	t.Helper()
	resp, err := x.hc.Get("http://" + x.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// adminSession is a signed-in web admin, reading the Status page's data.
type adminSession struct {
	base string
	hc   *http.Client
}

type adviceStep struct {
	N      int    `json:"n"`
	Class  string `json:"class"`
	Cause  string `json:"cause"`
	Detail string `json:"detail"`
	Remedy string `json:"remedy"`
	Server string `json:"server"`
}

type adviceFlow struct {
	Steps    []adviceStep `json:"steps"`
	Failures []adviceStep `json:"failures"`
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// webAdmin signs in to the web admin as the API account admin.
func (cb *callBridge) webAdmin(t testing.TB) *adminSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := cb.api.hc.Transport
	s := &adminSession{base: cb.api.base, hc: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}}
	resp, err := s.hc.Get(s.base + "/admin/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", page)
	}
	form := url.Values{"csrf": {string(m[1])}, "username": {cb.api.user}, "password": {cb.api.pass}, "next": {"/admin/status"}}
	req, err := http.NewRequest(http.MethodPost, s.base+"/admin/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.base) // as a browser sends it
	resp, err = s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	return s
}

// flow is what the Status page shows: GET /admin/api/signal-flow.
func (s *adminSession) flow(t testing.TB) adviceFlow {
	t.Helper()
	resp, err := s.hc.Get(s.base + "/admin/api/signal-flow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f adviceFlow
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || len(f.Steps) != 12 {
		t.Fatalf("signal flow: %v (%d steps)", err, len(f.Steps))
	}
	return f
}
