package bench

import (
	"context"
	"crypto/tls"
	"math"
	"os"
	"testing"
	"time"

	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 1.0/(1<<subBits) {
			t.Errorf("Quantile(%v) = %v, want %v within %.2f%%", tc.q, got, tc.want, 100.0/(1<<subBits))
		}
		if got < tc.want {
			t.Errorf("Quantile(%v) = %v, below the true %v: it must err on the slow side", tc.q, got, tc.want)
		}
	}
	if got, want := h.Count(), uint64(100000); got != want {
		t.Errorf("Count = %d, want %d", got, want)
	}
	var o Histogram
	o.Record(time.Second)
	h.Merge(&o)
	if got := h.Max(); got != time.Second {
		t.Errorf("Max after Merge = %v, want 1s", got)
	}
}

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 257, 1000, 123456789, 1 << 40, math.MaxInt64} {
		lo, hi := bounds(bucketOf(v))
		if v < lo || v > hi {
			t.Errorf("value %d in bucket [%d, %d]", v, lo, hi)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:5222", true},
		{"[::1]:5222", true},
		{"localhost:5222", true},
		{"192.0.2.1:5222", false},
		{"8.8.8.8", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckLoopback(context.Background(), tc.addr)
			if (err == nil) != tc.ok {
				t.Errorf("CheckLoopback(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}

func TestReadProc(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if s.RSSKiB <= 0 || s.HWMKiB < s.RSSKiB {
		t.Errorf("ReadProc(self): rss %d KiB, peak %d KiB; want 0 < rss <= peak", s.RSSKiB, s.HWMKiB)
	}
}

// TestScenarios runs each scenario briefly against a real Confab XMPP server with a test Call
// Bridge, and checks the counts and derived figures of the results.
func TestScenarios(t *testing.T) {
	const pw = "bench-pw-1"
	h := xmppdtest.Start(t, xmppdtest.Options{Users: map[string]string{"user0": pw, "user1": pw},
		// The roundtrip scenario sends as fast as it can: lift the per-client rate limit.
		Config: func(c *xmppd.Config) { c.SenderRate, c.SenderBurst = 1e9, 1e9 }})
	sec, err := h.Registry.Add("echo")
	if err != nil {
		t.Fatal(err)
	}
	target := func(mech string) *Target {
		return &Target{Addr: h.C2SAddr, Domain: h.Domain, TLS: h.ClientTLS(h.Domain), Mechanism: mech, Timeout: 5 * time.Second}
	}
	ws := target(MechSCRAMSHA256)
	ws.WebSocketURL = h.WebSocketURL
	ws.TLS.NextProtos = []string{"http/1.1"}
	ctx := context.Background()
	pid := os.Getpid()
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   uint64
	}{
		{"login scram", Config{Scenario: ScenarioLogin, Target: target(""), Count: 20, Duration: 20 * time.Second}, 20},
		{"login plain", Config{Scenario: ScenarioLogin, Target: target(MechPLAIN), Count: 10, Duration: 20 * time.Second}, 10},
		{"login websocket", Config{Scenario: ScenarioLogin, Target: ws, Count: 10, Duration: 20 * time.Second}, 10},
		{"login at a rate", Config{Scenario: ScenarioLogin, Target: target(""), Rate: 50, Count: 10, Duration: 20 * time.Second}, 10},
		{"idle", Config{Scenario: ScenarioIdle, Target: target(""), Sessions: 20, Hold: 100 * time.Millisecond}, 20},
		{"roundtrip", Config{Scenario: ScenarioRoundtrip, Target: target(""), Clients: 2, Window: 2, Duration: 300 * time.Millisecond,
			Component: ComponentConfig{Addr: h.ComponentAddr, JID: "echo." + h.Domain, Secret: sec.Reveal(), TLS: h.ClientTLS(h.Domain)}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Label, cfg.Users, cfg.Password, cfg.PID = "confab", 2, pw, pid
			r, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(r.Errors) != 0 {
				t.Errorf("errors = %v, want none", r.Errors)
			}
			if tc.cfg.Scenario == ScenarioRoundtrip {
				if r.OK < tc.ok || r.ServerCPUUsPerMsg <= 0 {
					t.Errorf("round trips ok = %d, cpu per message %v; want at least %d and > 0", r.OK, r.ServerCPUUsPerMsg, tc.ok)
				}
			} else if r.OK != tc.ok {
				t.Errorf("ok = %d, want %d", r.OK, tc.ok)
			}
			if r.Latency.Count != r.OK || r.Latency.P99 <= 0 {
				t.Errorf("latency %+v for %d ok", r.Latency, r.OK)
			}
			if r.Server == nil || r.Server.PID != pid {
				t.Errorf("server usage = %+v, want one for pid %d", r.Server, pid)
			}
			if tc.cfg.Scenario == ScenarioIdle && r.Sessions != 20 {
				t.Errorf("sessions held = %d, want 20", r.Sessions)
			}
		})
	}
}

func TestWrongPasswordIsCounted(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Users: map[string]string{"user0": "right-pw"}})
	r, err := Run(context.Background(), Config{
		Scenario: ScenarioLogin, Label: "confab", Users: 1, Password: "wrong-pw", Count: 3, Duration: 20 * time.Second, Concurrency: 1,
		Target: &Target{Addr: h.C2SAddr, Domain: h.Domain, TLS: h.ClientTLS(h.Domain)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Errors["sasl:not-authorized"]; got != 3 || r.OK != 0 {
		t.Errorf("errors = %v, ok = %d; want 3 sasl:not-authorized and none ok", r.Errors, r.OK)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	_, err := Run(context.Background(), Config{Scenario: ScenarioLogin, Password: "x",
		Target: &Target{Addr: "192.0.2.1:5222", Domain: "example.com", TLS: &tls.Config{}}})
	if err == nil {
		t.Fatal("Run against 192.0.2.1 succeeded; want it refused")
	}
}
