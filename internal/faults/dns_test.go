package faults

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"confab.dev/confab/internal/discover/dnstest"
)

// TestDNSFailureAndSRVFailover runs a Call Bridge that finds its XMPP servers through DNS SRV
// (`[xmpp] dns_server`, an empty serverAddressOverride) with two servers as SRV targets,
// priority 10 and 20. While the DNS server does not answer, the Call Bridge raises
// xmppRegistrationFailure/dnsFailure and retries with backoff; when DNS answers again it
// registers with the first target and clears the alarm; when the first target dies
// (SIGKILL), the link moves to the second, and logins go through it.
func TestDNSFailureAndSRVFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills real processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newPKI(t)
	x1 := newXMPPServer(t, p, "xmpp1", "xmpp1."+domain)
	x2 := newXMPPServer(t, p, "xmpp2", "xmpp2."+domain)
	secret := x1.addCallBridge(t, "cb1")
	runConfab(t, secret+"\n", "xmpp", "callbridge", "add-secret", "cb1", "-config", x2.config)
	x1.start(t)
	x2.start(t)
	dns := dnstest.Start(t, dnstest.Zone{
		"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{
			{Priority: 10, Weight: 0, Port: x1.componentPort(), Target: x1.fqdn},
			{Priority: 20, Weight: 0, Port: x2.componentPort(), Target: x2.fqdn},
		}},
		x1.fqdn: {A: []string{"127.0.0.1"}},
		x2.fqdn: {A: []string{"127.0.0.1"}},
	})
	dns.Pause()

	cb := newCallBridge(t, p, "cb1", cbOptions{DNSServer: dns.Addr}) // the default backoff
	cb.start(t)
	cb.configure(t, "cb1", "", secret)
	const pass = "alice-password-1"
	cb.addUser(t, "alice", pass)

	// DNS does not answer: the alarm, and retries with backoff.
	first := cb.waitAlarm(t, 30*time.Second, "dnsFailure")
	t.Logf("alarm while DNS is silent: %s", first.Detail)
	var srvFailures []traceEvent
	poll(t, time.Minute, 50*time.Millisecond, "a second SRV lookup that times out", func() (bool, string) {
		evs, err := cb.trace(ctx)
		if err != nil {
			return false, errString(err)
		}
		srvFailures = srvFailures[:0]
		for _, e := range evs {
			if e.Step == "srv" && e.Outcome == "failed" {
				srvFailures = append(srvFailures, e)
			}
		}
		return len(srvFailures) >= 2, fmt.Sprintf("%d failed SRV lookups", len(srvFailures))
	}, cb.proc)
	for _, e := range srvFailures[:2] {
		if e.Cause != "timeout" {
			t.Errorf("attempt %d: SRV lookup failed with %q, want timeout", e.Attempt, e.Cause)
		}
	}
	a, b := srvFailures[0], srvFailures[1]
	gap := b.Start.Sub(a.Start.Add(time.Duration(a.DurationMs * float64(time.Millisecond))))
	t.Logf("SRV lookups of attempts %d and %d failed after %.0fms and %.0fms, %s apart", a.Attempt, b.Attempt, a.DurationMs, b.DurationMs, gap.Round(time.Millisecond))
	if b.Attempt <= a.Attempt {
		t.Errorf("the second failed lookup belongs to attempt %d, the first to %d: want a new attempt", b.Attempt, a.Attempt)
	}
	if gap < 500*time.Millisecond { // the default backoff waits at least half of its 1s minimum
		t.Errorf("the next attempt began %s after the failed lookup, want a backoff of at least 500ms", gap)
	}
	if as, err := cb.alarms(ctx); err != nil || len(as) != 1 || as[0].ID != first.ID || as[0].FailureReason != "dnsFailure" {
		t.Errorf("alarms after the retry = %+v (%v), want the same dnsFailure alarm %s", as, err, first.ID)
	}

	// DNS answers again: registered with the first target, the alarm cleared.
	dns.Resume()
	resumed := time.Now()
	x1.waitLinks(t, 30*time.Second, "cb1")
	t.Logf("registered with %s %s after DNS answered again", x1.fqdn, time.Since(resumed).Round(time.Millisecond))
	cb.waitNoAlarm(t, 10*time.Second)
	if st, err := cb.status(ctx); err != nil || st.Server != x1.componentAddr() {
		t.Errorf("link %+v (%v), want it on %s", st, err, x1.componentAddr())
	}
	if c, err := x1.login(ctx, "alice", pass, "via-xmpp1"); err != nil {
		t.Errorf("login through %s: %v", x1.name, err)
	} else {
		c.Close()
	}

	// The first target dies: the link moves to the second.
	x1.proc.Kill()
	killed := time.Now()
	x2.waitLinks(t, 30*time.Second, "cb1")
	t.Logf("registered with %s %s after %s died", x2.fqdn, time.Since(killed).Round(time.Millisecond), x1.fqdn)
	poll(t, 10*time.Second, 20*time.Millisecond, "the link on the second target", func() (bool, string) {
		st, err := cb.status(ctx)
		return err == nil && st.State == "registered" && st.Server == x2.componentAddr(), fmt.Sprintf("%+v %s", st, errString(err))
	}, cb.proc)
	cb.waitNoAlarm(t, 10*time.Second)
	if c, err := x2.login(ctx, "alice", pass, "via-xmpp2"); err != nil {
		t.Errorf("login through %s: %v", x2.name, err)
	} else {
		c.Close()
	}
	_, port, _ := net.SplitHostPort(x1.comp)
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after SIGKILL", x1.name)
	}
}
