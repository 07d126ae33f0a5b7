package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/bench"
)

// backWithin is how soon after the XMPP server is back its Call Bridges must be registered
// again (issue 6).
const backWithin = time.Second

// TestXMPPServerRestart restarts the XMPP server — stopped cleanly (SIGTERM) or crashed
// (SIGKILL) — under two registered Call Bridges (with the default backoff) and connected
// clients: the clients' streams end, each Call Bridge raises xmppRegistrationFailure with
// connectFailure in the API while the server is away, registers again within a second of
// the server being back even after an outage of several seconds, clears the alarm, and
// clients log in again.
func TestXMPPServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts real processes")
	}
	for _, tc := range []struct {
		name string
		stop func(*proc)
		// ends are the error kinds a connected client may see when the server goes.
		ends []string
	}{
		{"SIGTERM", (*proc).Stop, []string{"stream-error:system-shutdown"}},
		{"SIGKILL", (*proc).Kill, []string{bench.ErrClosed}},
	} {
		t.Run(tc.name, func(t *testing.T) { testXMPPServerRestart(t, tc.stop, tc.ends) })
	}
}

func testXMPPServerRestart(t *testing.T, stop func(*proc), ends []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newPKI(t)
	x := newXMPPServer(t, p, "xmpp1", "localhost")
	names := []string{"cb1", "cb2"}
	secrets := map[string]string{}
	for _, n := range names {
		secrets[n] = x.addCallBridge(t, n)
	}
	x.start(t)
	const pass = "alice-password-1"
	var cbs []*callBridge
	for _, n := range names {
		cb := newCallBridge(t, p, n, cbOptions{}) // the default backoff, as deployed
		cb.start(t)
		cb.configure(t, n, x.componentAddr(), secrets[n])
		cb.addUser(t, "alice", pass)
		cbs = append(cbs, cb)
	}
	x.waitLinks(t, 30*time.Second, names...)
	for _, cb := range cbs {
		cb.waitNoAlarm(t, 10*time.Second)
	}

	var held []*bench.Conn
	for i := range 4 {
		c, err := x.login(ctx, "alice", pass, fmt.Sprintf("held%d", i))
		if err != nil {
			t.Fatalf("login before the restart: %v", err)
		}
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})

	stop(x.proc)
	for i, c := range held {
		var err error
		for err == nil { // the server may send other stanzas first; the stream must end
			_, err = c.NextBefore(time.Now().Add(10 * time.Second))
		}
		if k := bench.Kind(err); !slices.Contains(ends, k) {
			t.Errorf("held session %d after the server stopped: %v (kind %s), want one of %v", i, err, k, ends)
		}
	}

	// While the server is away: the alarm is raised, and the outage lasts five seconds and at
	// least three more attempts of each Call Bridge, long enough for an exponential backoff to
	// have grown past a second.
	for _, cb := range cbs {
		a := cb.waitAlarm(t, 20*time.Second, "connectFailure")
		t.Logf("%s: alarm %s while the server is down: %s", cb.name, a.FailureReason, a.Detail)
	}
	down := time.Now()
	first := map[string]int{}
	for _, cb := range cbs {
		st, err := cb.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first[cb.name] = st.Attempt
	}
	const outage = 5 * time.Second
	poll(t, time.Minute, 50*time.Millisecond, "the outage to last 5s and three more attempts of each Call Bridge", func() (bool, string) {
		var states []string
		done := time.Since(down) >= outage
		for _, cb := range cbs {
			st, err := cb.status(ctx)
			done = done && err == nil && st.Attempt >= first[cb.name]+3
			states = append(states, fmt.Sprintf("%s: attempt %d (first %d) %s", cb.name, st.Attempt, first[cb.name], errString(err)))
		}
		return done, strings.Join(states, "; ")
	}, cbs[0].proc, cbs[1].proc)
	t.Logf("server down for %s", time.Since(down).Round(time.Millisecond))

	x.start(t)
	ready := startedAt(t, x.proc)
	links := x.waitLinks(t, 90*time.Second, names...)
	for _, n := range names {
		back := links[n].ConnectedSince.Sub(ready)
		t.Logf("%s registered again %s after the XMPP server was back", n, back.Round(time.Millisecond))
		if back > backWithin {
			t.Errorf("%s registered again %s after the XMPP server was back, want within %s", n, back.Round(time.Millisecond), backWithin)
		}
	}
	for _, cb := range cbs {
		cb.waitNoAlarm(t, 10*time.Second)
		if st, err := cb.status(ctx); err != nil || st.State != "registered" {
			t.Errorf("%s: link %+v (%v), want registered", cb.name, st, err)
		}
	}

	for i := range 6 {
		c, err := x.login(ctx, "alice", pass, fmt.Sprintf("after%d", i))
		if err != nil {
			t.Errorf("login %d after the restart: %v", i, err)
			continue
		}
		c.Close()
	}
}

// startedAt returns when the XMPP server process said it had started (its log's timestamp
// of "XMPP server started", written once every listener is bound and served).
func startedAt(t testing.TB, p *proc) time.Time {
	t.Helper()
	for _, line := range strings.Split(p.out.String(), "\n") {
		if !strings.Contains(line, `msg="XMPP server started"`) {
			continue
		}
		f, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, f)
		if err != nil {
			t.Fatalf("%s: start line %q: %v", p.name, line, err)
		}
		return at
	}
	t.Fatalf("%s: no start line in its log", p.name)
	return time.Time{}
}
