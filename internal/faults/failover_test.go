package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCallBridgeKilled kills (SIGKILL) one of two Call Bridges registered with one XMPP
// server — each with its own store, the same users created through each one's API — while
// logins keep arriving: the server drops the dead link, and every login that starts after
// the kill succeeds through the other Call Bridge.
func TestCallBridgeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills real processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newPKI(t)
	x := newXMPPServer(t, p, "xmpp1", "localhost")
	users := map[string]string{"alice": "alice-password-1", "bob": "bob-password-2"}
	names := []string{"cb1", "cb2"}
	secrets := map[string]string{}
	for _, n := range names {
		secrets[n] = x.addCallBridge(t, n)
	}
	x.start(t)
	cbs := map[string]*callBridge{}
	for _, n := range names {
		cb := newCallBridge(t, p, n, cbOptions{})
		cb.start(t)
		cb.configure(t, n, x.componentAddr(), secrets[n])
		for u, pw := range users {
			cb.addUser(t, u, pw)
		}
		cbs[n] = cb
	}
	x.waitLinks(t, 30*time.Second, names...)

	// Logins are spread over both links (round robin): each Call Bridge answers some.
	for i := range 8 {
		u := []string{"alice", "bob"}[i%2]
		c, err := x.login(ctx, u, users[u], fmt.Sprintf("before%d", i))
		if err != nil {
			t.Fatalf("login %d before the kill: %v", i, err)
		}
		c.Close()
	}
	for _, n := range names {
		if got := successfulLogins(t, cbs[n]); got == 0 {
			t.Errorf("%s answered no login of 8 before the kill: logins are not spread over the links", n)
		}
	}

	// Four clients log in over and over while cb1 is killed. A login in flight on cb1's link
	// at that moment may fail (the exchange is pinned to its link); every login that starts
	// after cb1 is dead must succeed.
	var (
		mu     sync.Mutex
		killed time.Time // zero until cb1 is dead
		after  []error   // outcomes of logins started after the kill
		lost   []string  // logins started before the kill that failed, and why
		wg     sync.WaitGroup
	)
	loadCtx, stopLoad := context.WithCancel(ctx)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				mu.Lock()
				started, dead := time.Now(), !killed.IsZero()
				mu.Unlock()
				u := []string{"alice", "bob"}[(w+i)%2]
				c, err := x.login(ctx, u, users[u], fmt.Sprintf("w%d-%d", w, i))
				if err == nil {
					c.Close()
				}
				if !dead && err != nil {
					mu.Lock()
					lost = append(lost, err.Error())
					mu.Unlock()
				}
				if dead {
					mu.Lock()
					if err != nil {
						err = fmt.Errorf("login %s started %s after the kill: %w", u, started.Sub(killed).Round(time.Millisecond), err)
					}
					after = append(after, err)
					mu.Unlock()
				}
			}
		}()
	}
	poll(t, 30*time.Second, 10*time.Millisecond, "logins under way", func() (bool, string) {
		n := successfulLogins(t, cbs["cb1"])
		return n >= 8, fmt.Sprintf("cb1 answered %d", n)
	})
	cbs["cb1"].proc.Kill()
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	x.waitLinks(t, 10*time.Second, "cb2")
	poll(t, time.Minute, 20*time.Millisecond, "20 logins after the kill", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(after) >= 20, fmt.Sprintf("%d logins", len(after))
	})
	stopLoad()
	wg.Wait()

	failed := 0
	for _, err := range after {
		if err != nil {
			failed++
			t.Error(err)
		}
	}
	t.Logf("%d logins in flight at the kill failed %q; %d logins started after it, %d failed; cb2 answered %d logins in all",
		len(lost), lost, len(after), failed, successfulLogins(t, cbs["cb2"]))
	if st, err := cbs["cb2"].status(ctx); err != nil || st.State != "registered" {
		t.Errorf("cb2: link %+v (%v), want registered", st, err)
	}
}

// successfulLogins counts the logins a Call Bridge decided in favour of, from its log.
func successfulLogins(t testing.TB, cb *callBridge) int {
	t.Helper()
	return strings.Count(cb.proc.out.String(), `msg="successful login request from`)
}
