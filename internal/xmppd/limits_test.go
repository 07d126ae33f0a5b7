package xmppd_test

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// flood sends n messages with a body of size bytes from c to to, in writes of 100, as fast
// as the connection takes them, while a goroutine reads what comes back; it returns the
// stanza error conditions c received, by condition, once the server has answered the last
// message or 10 s have passed.
func flood(t *testing.T, c *xmppdtest.Client, to string, n, size int) (conds map[string]int, took time.Duration) {
	t.Helper()
	body := strings.Repeat("x", size)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		last = make(chan struct{})
	)
	go func() {
		defer close(last)
		for {
			e, err := c.Next()
			if err != nil {
				return
			}
			if e.Get("type") == "error" {
				mu.Lock()
				seen[xmppdtest.ErrorCondition(e)]++
				mu.Unlock()
			}
			if e.Get("id") == "last" {
				return
			}
		}
	}()
	start := time.Now()
	var b strings.Builder
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("f%d", i)
		fmt.Fprintf(&b, `<message to="%s" id="%s"><body>%s</body></message>`, to, id, body)
		if (i+1)%100 == 0 || i == n-1 {
			if err := c.SendRaw(b.String()); err != nil {
				t.Fatalf("flood: send: %v", err)
			}
			b.Reset()
		}
	}
	took = time.Since(start)
	// A ping of the server's marks the end: it is answered after every message before it.
	if err := c.SendRaw(`<iq type="get" id="last" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-last:
	case <-time.After(10 * time.Second):
		t.Error("the flooder's last ping was not answered in 10 s")
	}
	mu.Lock()
	defer mu.Unlock()
	return seen, took
}

// TestFloodToCallBridge: a logged-in user (or guest) floods the Call Bridge's JID with 10 000
// messages of 1 KiB while the Call Bridge is busy (it does not read for a moment). Before,
// the server's queue towards the Call Bridge overflowed and the server closed the whole link
// (policy-violation): every meeting and every login through that Call Bridge went with it.
// Now the flooder is limited (its stanzas per second, its share of the queue) and gets its
// stanzas back with policy-violation or resource-constraint; the link stays up, and other
// users log in.
func TestFloodToCallBridge(t *testing.T) {
	const rate, burst = 100, 100
	logs := &logBuffer{}
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.SenderRate, c.SenderBurst = rate, burst },
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	cb := h.CallBridge
	alice := h.Login(t, "alice")
	cb.Pause()
	paused := true
	defer func() {
		if paused {
			cb.Resume()
		}
	}()
	start := time.Now()
	conds, took := flood(t, alice, cb.JID, 10000, 1024)
	cb.Resume()
	paused = false
	elapsed := time.Since(start)
	select {
	case <-cb.Done():
		t.Fatalf("the Call Bridge's link was closed by the flood: %v", cb.Err())
	default:
	}
	// Other users log in through the same Call Bridge.
	for i := range 20 {
		c := h.Login(t, "bob")
		ping(t, c, fmt.Sprintf("bob-%d", i))
		c.Close()
	}
	var got int
	xmppdtest.Eventually(t, 5*time.Second, "the accepted messages at the Call Bridge", func() bool {
		got = cb.ReceivedFrom("alice@example.com")
		return got+conds["policy-violation"]+conds["resource-constraint"] >= 10000
	})
	max := burst + int(rate*elapsed.Seconds()) + 1
	t.Logf("flood of 10 000 in %s (%.0f/s): %d reached the Call Bridge in %s (%.0f/s), %d refused policy-violation, %d resource-constraint; 20 other logins ok",
		took.Round(time.Millisecond), 10000/took.Seconds(), got, elapsed.Round(time.Millisecond), float64(got)/elapsed.Seconds(),
		conds["policy-violation"], conds["resource-constraint"])
	if got > max {
		t.Errorf("%d messages reached the Call Bridge in %s, want at most %d (burst %d + %d/s)", got, elapsed, max, burst, rate)
	}
	if conds["policy-violation"] == 0 {
		t.Errorf("the flooder got no policy-violation: %v", conds)
	}
	if v := metricValue(t, h, `confab_xmpp_stanzas_refused_total{reason="sender-rate"}`); v != float64(conds["policy-violation"]) {
		t.Errorf("refusals counted: %v, want %d", v, conds["policy-violation"])
	}
	// The flood is logged once per 10 s, not once per refused stanza.
	if n := strings.Count(logs.String(), "client over its stanza rate"); n < 1 || n > 1+int(elapsed/(10*time.Second)) {
		t.Errorf("the flood was logged %d times in %s, want once per 10 s", n, elapsed)
	}
}

// TestSessionEndsAllDelivered: 10 000 sessions end at once while the Call Bridge is not
// reading. Before, their session-end notices overflowed the queue towards the Call Bridge,
// the server closed the link, and the notices still queued were lost (291 of 10 000 in the
// issue). Now the server's own notices are never refused: the link stays up and the Call
// Bridge gets all of them once it reads again.
func TestSessionEndsAllDelivered(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	cb := h.CallBridge
	const n = 10000
	cb.Pause()
	if !xmppd.EndSessions(h.Server, cb.JID, "guest1234567890@example.com/r", n) {
		cb.Resume()
		t.Fatal("no component " + cb.JID)
	}
	cb.Resume()
	xmppdtest.Eventually(t, 20*time.Second, "every session-end notice at the Call Bridge", func() bool {
		return len(cb.SessionEnds()) >= n
	})
	if got := len(cb.SessionEnds()); got != n {
		t.Errorf("the Call Bridge got %d session ends, want %d", got, n)
	}
	select {
	case <-cb.Done():
		t.Fatalf("the link was closed: %v", cb.Err())
	default:
	}
	stillWorks(t, h)
}

// TestFloodBetweenUsers: one user floods another with 5 000 messages of 2 KiB, and the
// receiver reads slowly. Before, the receiver's queue filled and the server disconnected the
// receiver, the victim; now the sender is limited to its rate first (policy-violation), and
// the receiver stays connected.
func TestFloodBetweenUsers(t *testing.T) {
	const rate, burst = 100, 100
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.SenderRate, c.SenderBurst = rate, burst }})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	bob.Send(t, `<presence/>`)
	conds, _ := flood(t, alice, bob.JID, 5000, 2048)
	if conds["policy-violation"] == 0 {
		t.Errorf("the flooder got no policy-violation: %v", conds)
	}
	// Bob is still connected: he reads what reached him and answers a ping.
	n := 0
	for {
		e, err := bob.Next()
		if err != nil {
			t.Fatalf("bob's stream after %d messages: %v", n, err)
		}
		if e.Name.Local == "message" {
			n++
		}
		if n >= 5000-conds["policy-violation"] {
			break
		}
	}
	ping(t, bob, "bob-alive")
	t.Logf("%d of 5 000 messages reached bob; %d refused", n, conds["policy-violation"])
}

// TestGuestAddressesOnlyItsMeeting: a guest (the Call Bridge's login relay says so in its
// <success guest='true'/>) may address its Call Bridge and the spaces at it, the server and
// its own account, not any user by bare or full JID. Before, a guest could message and
// flood any user of the domain.
func TestGuestAddressesOnlyItsMeeting(t *testing.T) {
	users := map[string]string{"alice": "alice-secret-1", "bob": "bob-secret-2", "guest4829130571": "one-time-9f3", "guestbook": "gb-secret-3"}
	h := xmppdtest.Start(t, xmppdtest.Options{Users: users})
	cb := h.CallBridge
	guest := h.Login(t, "guest4829130571")
	bob := h.Login(t, "bob")
	bob.Send(t, `<presence/>`)
	space := "4f1c0a5e-1f0a-4d6e-9a51-3c6e2b7d8e90@" + cb.JID
	tests := []struct {
		name, to string
		allowed  bool
	}{
		{"a user's full JID", bob.JID, false},
		{"a user's bare JID", "bob@example.com", false},
		{"another component", "irc.example.com", false},
		{"its Call Bridge", cb.JID, true},
		{"a space at its Call Bridge", space, true},
		{"a participant at its Call Bridge", space + "/9b2e", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("g%d", i)
			guest.Send(t, `<message type="groupchat" id="`+id+`" to="`+tt.to+`"><body>hi</body></message>`)
			if !tt.allowed {
				e := guest.Expect(t, "the refusal", xmppdtest.IsKind("message", id))
				if e.Get("type") != "error" || xmppdtest.ErrorCondition(e) != "forbidden" {
					t.Fatalf("answer %s, want forbidden", e)
				}
				return
			}
			e := cb.Next(t, 5*time.Second)
			if e.Get("id") != id || !strings.HasPrefix(e.Get("from"), "guest4829130571@example.com/") {
				t.Fatalf("the Call Bridge got %s, want message %s from the guest", e, id)
			}
		})
	}
	ping(t, guest, "guest-ping")
	// Users are not guests: alice, and a user whose name only starts with 'guest'.
	for _, u := range []string{"alice", "guestbook"} {
		c := h.Login(t, u)
		c.Send(t, `<message id="u-`+u+`" to="`+bob.JID+`"><body>hello</body></message>`)
		bob.Expect(t, "the message from "+u, xmppdtest.IsKind("message", "u-"+u))
	}
}

// TestHalfOpenFromOneAddress: 10 000 connections from one address that never send a byte
// (half-open, or a slow flood) leave logins from another address working. Before, they took
// every place in MaxSessions until their OpenTimeout, and everyone else got
// resource-constraint; now an address may hold 100 connections that have not authenticated
// (200 not yet bound), and the rest are refused at once with policy-violation.
func TestHalfOpenFromOneAddress(t *testing.T) {
	const n = 10000
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) {
		c.MaxSessions = 1000
		// The admitted half-open connections keep their places for the whole test, however
		// slowly a loaded machine opens the others.
		c.OpenTimeout, c.AuthTimeout = 5*time.Minute, 5*time.Minute
	}})
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := time.Now()
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second}
			for i := w; i < n; i += workers {
				nc, err := d.Dial("tcp", h.C2SAddr)
				if err != nil {
					failed.Add(1)
					continue
				}
				conns[i] = nc
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	opened := time.Since(start)
	xmppdtest.Eventually(t, 60*time.Second, "the connections over the per-address limit refused", func() bool {
		return metricValue(t, h, `confab_xmpp_stanzas_refused_total{reason="per-address"}`) >= float64(n-int(failed.Load())-xmppd.DefaultMaxUnauthenticatedPerAddress)
	})
	// Another address logs in (Linux routes all of 127.0.0.0/8 to loopback).
	for i := range 5 {
		c, err := h.DialFrom(net.ParseIP("127.0.0.2"))
		if err != nil {
			t.Fatalf("dial from 127.0.0.2: %v", err)
		}
		if err := c.StartTLS(); err != nil {
			t.Fatalf("starttls from 127.0.0.2: %v", err)
		}
		if err := c.Login("bob"); err != nil {
			t.Fatalf("login %d from 127.0.0.2 beside %d half-open connections from 127.0.0.1: %v", i, n, err)
		}
		ping(t, c, fmt.Sprintf("p%d", i))
		c.Close()
	}
	t.Logf("%d connections opened from 127.0.0.1 in %s (%d failed to dial); %v refused per address; 5 of 5 logins from 127.0.0.2 ok",
		n, opened.Round(time.Millisecond), failed.Load(), metricValue(t, h, `confab_xmpp_stanzas_refused_total{reason="per-address"}`))
}

// TestDetachedPerAccount: one account may keep at most MaxDetachedPerAccount sessions
// waiting for resumption; a further lost connection ends its session at once.
func TestDetachedPerAccount(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.MaxDetachedPerAccount = 2 }})
	for i := range 3 {
		c := h.Login(t, "alice")
		enableResume(t, c, "")
		c.Drop()
		want := min(i+1, 2)
		waitDetached(t, h, want)
	}
	xmppdtest.Eventually(t, 5*time.Second, "the third session ended", func() bool {
		return len(h.CallBridge.SessionEnds()) == 1
	})
	if got := xmppd.DetachedSessions(h.Server); got != 2 {
		t.Errorf("detached sessions = %d, want 2", got)
	}
}
