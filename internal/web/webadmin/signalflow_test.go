package webadmin

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
)

// TestSignalFlowSeveralServers: an attempt that tried two SRV targets shows each on its
// own. The ladder shows the server that got furthest (the alarm's), not a mix of its steps
// and the backup's refusal; "What went wrong" lists every failure by step, each with its
// server.
func TestSignalFlowSeveralServers(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	const a, b = "xmpp1.example.com:5223", "xmpp2.example.com:5224"
	ev := func(step linkstate.Step, server string, o linkstate.Outcome, cause string) linkstate.Event {
		return linkstate.Event{Attempt: 7, Step: step, Server: server, Target: server, Outcome: o, Cause: cause, Start: now,
			Detail: step.String() + " on " + server, Remedy: map[bool]string{true: "fix " + cause}[cause != ""]}
	}
	events := []linkstate.Event{
		{Attempt: 6, Step: linkstate.StepConnect, Outcome: linkstate.OK, Server: a}, // an older attempt: ignored
		ev(linkstate.StepConfig, "", linkstate.OK, ""),
		ev(linkstate.StepOverride, "", linkstate.Skipped, ""),
		ev(linkstate.StepSRV, "", linkstate.OK, ""),
		ev(linkstate.StepResolve, a, linkstate.OK, ""),
		ev(linkstate.StepConnect, a, linkstate.OK, ""),
		ev(linkstate.StepTLS, a, linkstate.OK, ""),
		ev(linkstate.StepSAN, a, linkstate.Failed, "missing-san"),
		ev(linkstate.StepResolve, b, linkstate.OK, ""),
		ev(linkstate.StepConnect, b, linkstate.Failed, "connection-refused"),
	}
	f := buildFlow(linkstate.Status{State: linkstate.Backoff, Since: now}, events, nil, now)
	var classes strings.Builder
	for _, s := range f.Steps {
		classes.WriteString(s.Class[:1])
	}
	if got, want := classes.String(), "fosoooofnnnn"; got != want {
		t.Errorf("ladder %s, want %s (steps 5 to 8 of %s only)", got, want, a)
	}
	if f.Steps[5].Server != a || f.Steps[5].Cause != "" {
		t.Errorf("step 6 = %+v, want %s's connect, which worked", f.Steps[5], a)
	}
	if f.Shown != a {
		t.Errorf("shown %q, want %q", f.Shown, a)
	}
	if len(f.Servers) != 2 || f.Servers[0].Server != a || f.Servers[1].Server != b || !f.Servers[0].Shown {
		t.Fatalf("servers %+v, want %s (shown) then %s", f.Servers, a, b)
	}
	if got := f.Servers[1].Result; got != "failed at step 6 (connection-refused)" {
		t.Errorf("second server's result %q", got)
	}
	var list []string
	for _, x := range f.Failures {
		list = append(list, strings.TrimSpace(strings.Join([]string{strconv.Itoa(x.N), x.Server, x.Cause}, " ")))
	}
	want := []string{"1  no-active-link", "6 " + b + " connection-refused", "8 " + a + " missing-san"}
	if strings.Join(list, "|") != strings.Join(want, "|") {
		t.Errorf("what went wrong:\n got %q\nwant %q", list, want)
	}

	// One server (an override): no server list, the ladder as before.
	one := buildFlow(linkstate.Status{State: linkstate.Backoff, Since: now}, events[:8], nil, now)
	if len(one.Servers) != 0 || len(one.Failures) != 2 || one.Failures[1].N != 8 {
		t.Errorf("one server: servers %+v failures %+v, want no list and steps 1 and 8", one.Servers, one.Failures)
	}
}
