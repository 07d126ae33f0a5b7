package link_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// linkOptions are fast options for tests against e.
func (e *env) linkOptions(t *testing.T) link.Options {
	return link.Options{
		Resolver: discover.NewResolver(e.dns.Addr, 200*time.Millisecond), RootCAs: e.pki.Pool(),
		DNSTimeout: 500 * time.Millisecond, ConnectTimeout: 2 * time.Second, TLSTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Logger: newTestLogger(t),
	}
}

// newTestLogger logs to t.Log until the test's cleanup is done.
func newTestLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter sends log lines to t.Log, and drops them once the test has ended.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

// start runs l until the test ends.
func start(t *testing.T, l *link.Link) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor waits, on Changes, until cond holds.
func waitFor(t *testing.T, l *link.Link, what string, cond func(linkstate.Status) bool) linkstate.Status {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := l.Changes()
		st := l.Status()
		if cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; status %+v\n%s", what, st, summary(l.Trace(0)))
		}
	}
}

func registered(st linkstate.Status) bool { return st.State == linkstate.Registered }

func alarmed(reason string) func(linkstate.Status) bool {
	return func(st linkstate.Status) bool { return st.Alarm != nil && st.Alarm.FailureReason == reason }
}

func hasEvent(l *link.Link, step linkstate.Step, outcome linkstate.Outcome, cause string) bool {
	for _, e := range l.Trace(0) {
		if e.Step == step && e.Outcome == outcome && (cause == "" || e.Cause == cause) {
			return true
		}
	}
	return false
}

func metric(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func TestLinkRegisters(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	o := e.linkOptions(t)
	o.Metrics = reg
	l := link.New(config(""), o)
	if st := l.Status(); st.State != linkstate.Unavailable {
		t.Errorf("state before Run = %s, want unavailable", st.State)
	}
	start(t, l)
	st := waitFor(t, l, "registration", registered)
	if got, want := st.ComponentJID, "cb1.example.com"; got != want {
		t.Errorf("ComponentJID = %q, want %q", got, want)
	}
	if got, want := st.Server, fmt.Sprintf("%s:%d", host, e.srv.Port()); got != want {
		t.Errorf("Server = %q, want %q", got, want)
	}
	if got, want := st.Address, e.srv.Addr(); got != want {
		t.Errorf("Address = %q, want %q", got, want)
	}
	if l.Conn() == nil {
		t.Error("Conn() = nil while registered")
	}
	if a := l.Alarms(); len(a) != 0 {
		t.Errorf("alarms = %+v, want none", a)
	}
	if !hasEvent(l, linkstate.StepActive, linkstate.OK, "") {
		t.Errorf("no step 11 event in the trace:\n%s", summary(l.Trace(0)))
	}
	e.srv.WaitConnected(t, "cb1.example.com")
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"confab_callbridge_link_up", nil, 1},
		{"confab_callbridge_link_attempts_total", nil, 1},
		{"confab_callbridge_link_steps_total", map[string]string{"step": "verdict", "outcome": "ok"}, 1},
		{"confab_callbridge_link_steps_total", map[string]string{"step": "override", "outcome": "skipped"}, 1},
	} {
		if got := metric(t, reg, m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	// The trace is sequenced: Trace(after) returns only what came later.
	all := l.Trace(0)
	if len(all) < 2 {
		t.Fatalf("trace has %d events", len(all))
	}
	if got := l.Trace(all[len(all)-2].Seq); len(got) != 1 || got[0].Seq != all[len(all)-1].Seq {
		t.Errorf("Trace(after the next-to-last) = %d events, want the last one", len(got))
	}
}

func TestLinkStopClosesTheLink(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	o := e.linkOptions(t)
	o.Metrics = reg
	l := link.New(config(""), o)
	stop := start(t, l)
	waitFor(t, l, "registration", registered)
	if err := l.Run(context.Background()); !errors.Is(err, link.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	stop()
	if st := l.Status(); st.State != linkstate.Unavailable {
		t.Errorf("state after stop = %s, want unavailable", st.State)
	}
	if l.Conn() != nil {
		t.Error("Conn() != nil after stop")
	}
	if got := metric(t, reg, "confab_callbridge_link_up", nil); got != 0 {
		t.Errorf("link_up after stop = %v, want 0", got)
	}
	e.srv.WaitConnected(t) // the server sees the component leave
}

func TestLinkIncompleteSettings(t *testing.T) {
	e := newEnv(t)
	l := link.New(store.XMPPSettings{UniqueName: name, Domain: domain}, e.linkOptions(t))
	start(t, l)
	// The alarm is raised just before the state changes: wait for both.
	st := waitFor(t, l, "the configuration alarm and the disabled state", func(s linkstate.Status) bool {
		return alarmed(linkstate.ReasonConfiguration)(s) && s.State == linkstate.Disabled
	})
	if !strings.Contains(st.Alarm.Detail, "sharedSecret") {
		t.Errorf("alarm detail %q does not name the missing sharedSecret", st.Alarm.Detail)
	}
	if st.Alarm.Type != "xmppRegistrationFailure" || st.Alarm.ID == "" || st.Alarm.ActiveSince.IsZero() {
		t.Errorf("alarm = %+v: want type, ID and activation time", st.Alarm)
	}
	l.Apply(config(""))
	st = waitFor(t, l, "registration", registered)
	if st.Alarm != nil {
		t.Errorf("alarm %+v still raised after registration", st.Alarm)
	}
}

func TestLinkAuthenticationAlarmRaisedAndCleared(t *testing.T) {
	e := newEnv(t)
	bad := config("")
	bad.SharedSecret = secret.New("not the secret")
	l := link.New(bad, e.linkOptions(t))
	start(t, l)
	st := waitFor(t, l, "the authentication alarm", alarmed(linkstate.ReasonAuthentication))
	if !strings.Contains(st.Alarm.Detail, "not-authorized") {
		t.Errorf("alarm detail %q does not say not-authorized", st.Alarm.Detail)
	}
	first := *st.Alarm
	// It retries with backoff; the alarm stays the same alarm.
	want := st.Attempt + 2
	st = waitFor(t, l, "two retries", func(s linkstate.Status) bool { return s.Attempt >= want && s.Alarm != nil })
	if st.Alarm == nil || st.Alarm.ID != first.ID || !st.Alarm.ActiveSince.Equal(first.ActiveSince) {
		t.Errorf("alarm after a retry = %+v, want the same alarm as %+v", st.Alarm, first)
	}
	l.Apply(config(""))
	st = waitFor(t, l, "registration", registered)
	if st.Alarm != nil || len(l.Alarms()) != 0 {
		t.Errorf("alarm %+v still raised after registration", st.Alarm)
	}
}

func TestLinkApplyNewSettings(t *testing.T) {
	e := newEnv(t)
	l := link.New(config(""), e.linkOptions(t))
	start(t, l)
	st := waitFor(t, l, "registration", registered)
	before := st.Attempt

	// The same settings while registered change nothing.
	ch := l.Changes()
	l.Apply(config(""))
	select {
	case <-ch:
		t.Error("Apply of the settings in use changed the link")
	default:
	}

	cb2 := store.XMPPSettings{UniqueName: "cb2", Domain: domain, SharedSecret: secret.New("s3cret-of-cb2")}
	l.Apply(cb2)
	st = waitFor(t, l, "registration as cb2", func(s linkstate.Status) bool {
		return registered(s) && s.ComponentJID == "cb2.example.com"
	})
	if st.Attempt != before+1 {
		t.Errorf("attempt = %d, want %d: new settings apply at once, no backoff", st.Attempt, before+1)
	}
	if got := l.Conn().JID(); got != "cb2.example.com" {
		t.Errorf("Conn().JID() = %q, want cb2.example.com", got)
	}
	if !hasEvent(l, linkstate.StepActive, linkstate.Skipped, "settings-changed") {
		t.Errorf("no record of the link closed for new settings:\n%s", summary(l.Trace(0)))
	}
	e.srv.WaitConnected(t, "cb2.example.com") // exactly one link
	if got := l.Config().UniqueName; got != "cb2" {
		t.Errorf("Config().UniqueName = %q, want cb2", got)
	}
}

func TestLinkApplyDuringBackoff(t *testing.T) {
	e := newEnv(t)
	o := e.linkOptions(t)
	o.BackoffMin, o.BackoffMax = time.Hour, time.Hour // only Apply can start another attempt
	bad := config("")
	bad.SharedSecret = secret.New("wrong")
	l := link.New(bad, o)
	start(t, l)
	waitFor(t, l, "backoff", func(s linkstate.Status) bool { return s.State == linkstate.Backoff })
	if st := l.Status(); st.NextAttempt.IsZero() {
		t.Error("NextAttempt not set during backoff")
	}
	l.Apply(config(""))
	waitFor(t, l, "registration", registered)
}

func TestLinkServerRestart(t *testing.T) {
	e := newEnv(t)
	l := link.New(config(""), e.linkOptions(t))
	start(t, l)
	waitFor(t, l, "registration", registered)
	e.srv.WaitConnected(t, "cb1.example.com")
	e.srv.Stop()
	st := waitFor(t, l, "the connect alarm", alarmed(linkstate.ReasonConnect))
	if st.State == linkstate.Registered {
		t.Errorf("state = registered with the server down")
	}
	if !hasEvent(l, linkstate.StepActive, linkstate.Failed, stream.SystemShutdown) {
		t.Errorf("no record of the server's shutdown:\n%s", summary(l.Trace(0)))
	}
	if !hasEvent(l, linkstate.StepConnect, linkstate.Failed, "connection-refused") {
		t.Errorf("no refused connect while the server was down:\n%s", summary(l.Trace(0)))
	}
	e.srv.Restart(t)
	waitFor(t, l, "registration after the restart", func(s linkstate.Status) bool { return registered(s) && s.Alarm == nil })
	e.srv.WaitConnected(t, "cb1.example.com")
	if e.srv.Accepted() != 2 {
		t.Errorf("server accepted %d registrations, want 2", e.srv.Accepted())
	}
}

// TestLinkBackSoonAfterServerRestart: a link that was up and is lost is retried every
// BackoffMin/4..BackoffMin/2 while the server refuses connections, so the Link is back soon
// after the server however long the server was away; the exponential backoff would by then
// wait several seconds.
func TestLinkBackSoonAfterServerRestart(t *testing.T) {
	e := newEnv(t)
	o := e.linkOptions(t)
	o.BackoffMin, o.BackoffMax = 400*time.Millisecond, time.Minute
	l := link.New(config(""), o)
	start(t, l)
	waitFor(t, l, "registration", registered)
	e.srv.Stop()
	st := waitFor(t, l, "the connect alarm", alarmed(linkstate.ReasonConnect))
	// Six refused attempts: the exponential backoff would now wait 12.8s to 25.6s.
	waitFor(t, l, "six refused attempts", func(s linkstate.Status) bool { return s.Attempt >= st.Attempt+6 })
	e.srv.Restart(t)
	back := time.Now()
	waitFor(t, l, "registration after the restart", registered)
	// Quick retries come every 100-200ms; the bound leaves room for a loaded machine.
	if d := time.Since(back); d > 2*time.Second {
		t.Errorf("registered %s after the server was back, want within 2s", d)
	}
}

// TestLinkConflictKeepsTheBackoff: a link lost to <conflict/> (another connection under the
// same name) is not retried quickly, so two Call Bridges with one name do not take the link
// from each other several times a second.
func TestLinkConflictKeepsTheBackoff(t *testing.T) {
	e := newEnv(t)
	o := e.linkOptions(t)
	o.BackoffMin, o.BackoffMax = 200*time.Millisecond, time.Minute
	l := link.New(config(""), o)
	start(t, l)
	waitFor(t, l, "registration", registered)
	e.srv.WaitConnected(t, "cb1.example.com") // the server's side may record the link a moment later
	if err := e.srv.Send([]byte(`<stream:error><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>`)); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, l, "backoff after the conflict", func(s linkstate.Status) bool { return s.State == linkstate.Backoff })
	if wait := st.NextAttempt.Sub(st.Since); wait < o.BackoffMin/2 {
		t.Errorf("next attempt %s after a conflict, want the exponential backoff (at least %s)", wait, o.BackoffMin/2)
	}
}

// TestLinkFlappingKeepsTheBackoff: after one quick return, a link that the server drops again
// at once gets the exponential backoff, not another run of quick retries.
func TestLinkFlappingKeepsTheBackoff(t *testing.T) {
	e := newEnv(t)
	o := e.linkOptions(t)
	o.BackoffMin, o.BackoffMax = 2*time.Second, time.Minute
	l := link.New(config(""), o)
	start(t, l)
	waitFor(t, l, "registration", registered)
	e.srv.Stop()
	st := waitFor(t, l, "a refused attempt", alarmed(linkstate.ReasonConnect))
	e.srv.Restart(t)
	waitFor(t, l, "the quick return", func(s linkstate.Status) bool { return registered(s) && s.Attempt > st.Attempt })
	e.srv.Stop() // the link is lost again well within BackoffMin of coming up
	st = waitFor(t, l, "backoff after the second loss", func(s linkstate.Status) bool {
		return s.State == linkstate.Backoff && s.Attempt > st.Attempt
	})
	if wait := st.NextAttempt.Sub(st.Since); wait < o.BackoffMin/2 {
		t.Errorf("next attempt %s after the link flapped, want the exponential backoff (at least %s)", wait, o.BackoffMin/2)
	}
}

func TestLinkDNSOutageAndRecovery(t *testing.T) {
	e := newEnv(t)
	e.dns.Pause()
	l := link.New(config(""), e.linkOptions(t))
	start(t, l)
	st := waitFor(t, l, "the DNS alarm", alarmed(linkstate.ReasonDNS))
	if !strings.Contains(st.Alarm.Detail, "_xmpp-component._tcp.example.com") {
		t.Errorf("alarm detail %q does not name the SRV record", st.Alarm.Detail)
	}
	waitFor(t, l, "a retry", func(s linkstate.Status) bool { return s.Attempt >= 2 })
	if !hasEvent(l, linkstate.StepSRV, linkstate.Failed, "timeout") {
		t.Errorf("no SRV timeout in the trace:\n%s", summary(l.Trace(0)))
	}
	e.dns.Resume()
	waitFor(t, l, "registration once DNS answers", func(s linkstate.Status) bool { return registered(s) && s.Alarm == nil })
}

func TestLinkDeadPeer(t *testing.T) {
	e := newEnv(t)
	o := e.linkOptions(t)
	o.KeepAlive = 30 * time.Millisecond
	l := link.New(config(""), o)
	start(t, l)
	waitFor(t, l, "registration", registered)
	e.srv.SetSilent(true)
	waitFor(t, l, "dead-peer detection", func(linkstate.Status) bool {
		return hasEvent(l, linkstate.StepActive, linkstate.Failed, "dead-peer")
	})
	e.srv.SetSilent(false)
	waitFor(t, l, "registration again", func(s linkstate.Status) bool {
		return registered(s) && hasEvent(l, linkstate.StepActive, linkstate.Failed, "dead-peer")
	})
	e.srv.WaitConnected(t, "cb1.example.com")
	if got := e.srv.Accepted(); got < 2 {
		t.Errorf("server accepted %d registrations, want at least 2", got)
	}
}

func TestLinkKeepAliveHoldsALiveLink(t *testing.T) {
	// With pings every 50ms, a link to a server that answers stays up while many intervals
	// pass (counted by the server's ping answers). Death after 10 silent intervals leaves
	// room for a loaded CI machine with the race detector on; the dead-peer test covers
	// detection itself.
	e := newEnv(t)
	o := e.linkOptions(t)
	o.KeepAlive = 50 * time.Millisecond
	o.Missed = 10
	l := link.New(config(""), o)
	start(t, l)
	waitFor(t, l, "registration", registered)
	deadline := time.After(10 * time.Second)
	for pings := 0; pings < 15; {
		select {
		case <-deadline:
			t.Fatalf("only %d pings in 10s", pings)
		case <-e.srv.Pinged:
			pings++
		}
	}
	lost := hasEvent(l, linkstate.StepActive, linkstate.Failed, "")
	if lost {
		t.Errorf("the link was lost while the server answered pings:\n%s", summary(l.Trace(0)))
	}
}

func TestLinkHandler(t *testing.T) {
	e := newEnv(t)
	got := make(chan *stream.Element, 4)
	o := e.linkOptions(t)
	o.Handler = func(ctx context.Context, c *component.Conn, el *stream.Element) {
		if c.JID() != "cb1.example.com" {
			t.Errorf("handler conn JID = %q", c.JID())
		}
		got <- el
	}
	l := link.New(config(""), o)
	start(t, l)
	waitFor(t, l, "registration", registered)
	e.srv.WaitConnected(t, "cb1.example.com")

	if err := e.srv.Send([]byte(`<message from="example.com" to="cb1.example.com" id="m1"><body>hello</body></message>`)); err != nil {
		t.Fatal(err)
	}
	select {
	case el := <-got:
		if el.Name.Local != "message" || el.Get("id") != "m1" || !strings.Contains(string(el.Inner), "hello") {
			t.Errorf("handler got %s, want message m1", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}

	// The Link answers the server's pings itself.
	if err := e.srv.Send([]byte(`<iq type="get" id="p1" from="example.com" to="cb1.example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)); err != nil {
		t.Fatal(err)
	}
	select {
	case el := <-e.srv.Got:
		if el.Name.Local != "iq" || el.Get("type") != "result" || el.Get("id") != "p1" || el.Get("from") != "cb1.example.com" || el.Get("to") != "example.com" {
			t.Errorf("answer to the ping = %s, want iq result p1 from cb1.example.com to example.com", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ping not answered")
	}
	select {
	case el := <-got:
		t.Errorf("handler got the ping %s", el)
	default:
	}
}

func TestLinkWithoutHandlerRefusesRequests(t *testing.T) {
	e := newEnv(t)
	l := link.New(config(""), e.linkOptions(t))
	start(t, l)
	waitFor(t, l, "registration", registered)
	e.srv.WaitConnected(t, "cb1.example.com")
	if err := e.srv.Send([]byte(`<iq type="set" id="q1" from="example.com" to="cb1.example.com"><query xmlns="urn:example"/></iq>`)); err != nil {
		t.Fatal(err)
	}
	select {
	case el := <-e.srv.Got:
		if el.Get("type") != "error" || el.Get("id") != "q1" || !strings.Contains(string(el.Inner), "service-unavailable") {
			t.Errorf("answer = %s, want an iq error service-unavailable for q1", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request not answered")
	}
}

func TestLinkApplySameSettingsRetriesNow(t *testing.T) {
	e := newEnv(t)
	e.srv.Stop()
	o := e.linkOptions(t)
	o.BackoffMin, o.BackoffMax = time.Hour, time.Hour
	l := link.New(config(""), o)
	start(t, l)
	waitFor(t, l, "backoff", func(s linkstate.Status) bool { return s.State == linkstate.Backoff })
	e.srv.Restart(t)
	l.Apply(config("")) // the operator's "retry now"
	waitFor(t, l, "registration", registered)
}

func TestLinkUnusableSettingsDisable(t *testing.T) {
	e := newEnv(t)
	l := link.New(config("https://xmpp.example.com"), e.linkOptions(t))
	start(t, l)
	st := waitFor(t, l, "disabled", func(s linkstate.Status) bool { return s.State == linkstate.Disabled })
	if st.Alarm == nil || st.Alarm.FailureReason != linkstate.ReasonConfiguration || !strings.Contains(st.Alarm.Detail, "serverAddressOverride") {
		t.Errorf("alarm = %+v, want configurationIncomplete naming serverAddressOverride", st.Alarm)
	}
	if st.Attempt != 1 {
		t.Errorf("attempt = %d, want 1: unusable settings are not retried", st.Attempt)
	}
	l.Apply(config(""))
	waitFor(t, l, "registration", func(s linkstate.Status) bool { return registered(s) && s.Alarm == nil })
}
