package loginrelay

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"confab.dev/confab/internal/clocktest"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/throttle"
)

// gateDir is a Directory whose password checks wait at a gate, as slow LDAP binds do, and
// are counted.
type gateDir struct {
	Directory
	gate  chan struct{}
	calls atomic.Int64
}

func (d *gateDir) CheckPlain(ctx context.Context, user, pass string) error {
	d.calls.Add(1)
	select {
	case <-d.gate:
	case <-ctx.Done():
	}
	return d.Directory.CheckPlain(ctx, user, pass)
}

// plainIQ is a login relay <auth/> of PLAIN credentials from addr.
func plainIQ(t *testing.T, session, user, pass, addr string) *stream.Element {
	t.Helper()
	data := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	x := `<iq xmlns="jabber:component:accept" type="set" id="confab-login-` + session + `" from="` + domain + `" to="cb1.` + domain + `">` +
		`<auth xmlns="urn:confab:login:1" session="` + session + `" mechanism="PLAIN" addr="` + addr + `" transport="tcp">` + data + `</auth></iq>`
	e, err := stream.NewReader(strings.NewReader(x), stream.Limits{}).Next()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func condition(reply []byte) string {
	s := string(reply)
	if strings.Contains(s, "<success") {
		return "success"
	}
	i := strings.Index(s, `condition="`)
	if i < 0 {
		return s
	}
	s = s[i+len(`condition="`):]
	return s[:strings.IndexByte(s, '"')]
}

// TestSimultaneousGuessesCountEach: 60 wrong passwords for one account at once, each from
// another address, reach the directory 5 times (the account's budget), not 60; the rest are
// answered temporary-auth-failure without a check.
func TestSimultaneousGuessesCountEach(t *testing.T) {
	dir := &gateDir{Directory: NewMemoryDirectory(domain), gate: make(chan struct{})}
	if err := dir.Directory.(*MemoryDirectory).Add("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	r := &Responder{Domain: domain, Dir: dir, FailureFloor: -1,
		SourceThrottle: throttle.Config{Off: true}}
	const n = 60
	out := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply, _ := r.HandleIQTimed(context.Background(), plainIQ(t, fmt.Sprint("s", i), "alice", "guess", fmt.Sprintf("203.0.113.%d:1", i)))
			out[i] = condition(reply)
		}()
	}
	// Let the checks that got through finish (all wrong), once they are all waiting.
	deadline := time.Now().Add(10 * time.Second)
	for dir.calls.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a counter the goroutines above raise
	}
	close(dir.gate)
	wg.Wait()
	tally := map[string]int{}
	for _, c := range out {
		tally[c]++
	}
	if got := dir.calls.Load(); got != 5 {
		t.Errorf("%d password checks for %d simultaneous guesses, want 5 (%v)", got, n, tally)
	}
	if tally[CondNotAuthorized] != 5 || tally[CondTemporaryAuthFail] != n-5 {
		t.Errorf("answers %v, want 5 not-authorized and %d temporary-auth-failure", tally, n-5)
	}
}

// TestAccountSpellingsShareABudget: however a name is written — case, Unicode width,
// with the domain, with a trailing dot on it — it is one account to the throttle.
func TestAccountSpellingsShareABudget(t *testing.T) {
	dir := &countingDir{Directory: NewMemoryDirectory(domain)}
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := &Responder{Domain: domain, Dir: dir, Now: clock.Now, FailureFloor: -1, SourceThrottle: throttle.Config{Off: true}}
	spellings := []string{"alice", "ALICE", "ａｌｉｃｅ", "alice@" + domain, "Alice@" + strings.ToUpper(domain) + "."}
	for i, name := range spellings {
		reply, _ := r.HandleIQTimed(context.Background(), plainIQ(t, fmt.Sprint("a", i), name, "wrong", "192.0.2.1:1"))
		if c := condition(reply); c != CondNotAuthorized {
			t.Fatalf("guess %d (%q): %s, want not-authorized", i, name, c)
		}
	}
	reply, _ := r.HandleIQTimed(context.Background(), plainIQ(t, "a9", "aLiCe", "wrong", "192.0.2.1:1"))
	if c := condition(reply); c != CondTemporaryAuthFail {
		t.Errorf("sixth guess under another spelling: %s, want temporary-auth-failure", c)
	}
	if got := dir.calls.Load(); got != 5 {
		t.Errorf("%d directory checks, want 5", got)
	}
}

// TestLockoutGuard: however slowly they come, at most LockoutThrottle's failures for a name
// reach the directory within its window, for a name that exists and one that does not alike.
func TestLockoutGuard(t *testing.T) {
	for _, name := range []string{"lara", "nobody"} {
		t.Run(name, func(t *testing.T) {
			mem := NewMemoryDirectory(domain)
			if err := mem.AddPlainOnly("lara", "ldap-secret"); err != nil {
				t.Fatal(err)
			}
			dir := &countingDir{Directory: mem}
			clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			r := &Responder{Domain: domain, Dir: dir, Now: clock.Now, FailureFloor: -1, SourceThrottle: throttle.Config{Off: true},
				LockoutThrottle: throttle.Config{MaxFailures: 4, Window: 30 * time.Minute, Block: 30 * time.Minute, MaxBlock: 30 * time.Minute}}
			var got []string
			for i := range 10 {
				clock.Advance(2 * time.Minute) // slower than the short account throttle cares about
				reply, _ := r.HandleIQTimed(context.Background(), plainIQ(t, fmt.Sprint("l", i), name, "wrong", "192.0.2.1:1"))
				got = append(got, condition(reply))
			}
			if n := dir.calls.Load(); n != 4 {
				t.Errorf("%d directory checks in 20 minutes, want 4 (%v)", n, got)
			}
			clock.Advance(31 * time.Minute)
			if name == "lara" {
				reply, _ := r.HandleIQTimed(context.Background(), plainIQ(t, "ok", name, "ldap-secret", "192.0.2.1:1"))
				if c := condition(reply); c != "success" {
					t.Errorf("right password after the window: %s", c)
				}
			}
		})
	}
}

// TestFailureFloor: a wrong password, an unknown name and a directory user's wrong password
// are all answered at the floor; a success is not held.
func TestFailureFloor(t *testing.T) {
	mem := NewMemoryDirectory(domain)
	if err := mem.Add("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := mem.AddPlainOnly("lara", "ldap-secret"); err != nil {
		t.Fatal(err)
	}
	r := &Responder{Domain: domain, Dir: mem, FailureFloor: 300 * time.Millisecond}
	for i, c := range []struct{ user, pass string }{{"alice", "wrong"}, {"nobody", "wrong"}, {"lara", "wrong"}, {"alice", "correct horse"}} {
		before := time.Now()
		reply, at := r.HandleIQTimed(context.Background(), plainIQ(t, fmt.Sprint("f", i), c.user, c.pass, fmt.Sprintf("198.51.100.%d:1", i)))
		if condition(reply) == "success" {
			if !at.IsZero() {
				t.Errorf("%s: a success held until %v", c.user, at)
			}
			continue
		}
		if d := at.Sub(before); d < 300*time.Millisecond || d > 300*time.Millisecond+5*time.Second {
			t.Errorf("%s/%s: answer held %v after the request, want the 300ms floor", c.user, c.pass, d)
		}
	}
}
