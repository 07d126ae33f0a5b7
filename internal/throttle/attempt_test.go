package throttle

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestAttemptCountsConcurrentGuesses: N guesses in flight at once use N of the budget, so a
// burst of simultaneous wrong passwords gets MaxFailures checks, not N.
func TestAttemptCountsConcurrentGuesses(t *testing.T) {
	th, _ := newTest(Config{MaxFailures: 5, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute})
	const n = 100
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		checked, refused int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait, settle := th.Attempt(context.Background(), "user:alice")
			mu.Lock()
			if wait > 0 {
				refused++
			} else {
				checked++
			}
			mu.Unlock()
			if settle != nil {
				settle(true) // every guess is wrong
			}
		}()
	}
	wg.Wait()
	if checked != 5 || refused != n-5 {
		t.Fatalf("%d checked, %d refused: want 5 and %d", checked, refused, n-5)
	}
	if got := th.Blocked("user:alice"); got != 10*time.Second {
		t.Errorf("after 5 failed checks Blocked = %v, want 10s", got)
	}
}

// TestAttemptBurstOfRightAnswers: simultaneous checks that succeed all pass; those beyond
// the budget wait for the first to settle rather than being refused.
func TestAttemptBurstOfRightAnswers(t *testing.T) {
	th, _ := newTest(Config{MaxFailures: 2, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute})
	var wg sync.WaitGroup
	refused := make(chan time.Duration, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait, settle := th.Attempt(context.Background(), "k")
			if wait > 0 {
				refused <- wait
				return
			}
			settle(false)
		}()
	}
	wg.Wait()
	close(refused)
	for w := range refused {
		t.Errorf("a right answer was refused for %v", w)
	}
}

// TestAttemptSettle: a failure counts, a success gives the budget back, a second settle is
// ignored, and a waiter gives up when its context ends.
func TestAttemptSettle(t *testing.T) {
	th, _ := newTest(Config{MaxFailures: 2, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute})
	ctx := context.Background()
	_, s1 := th.Attempt(ctx, "k")
	_, s2 := th.Attempt(ctx, "k")
	short, cancel := context.WithCancel(ctx)
	cancel()
	if wait, settle := th.Attempt(short, "k"); wait != pendingWait || settle != nil {
		t.Errorf("third attempt while two run (budget 2), context ended: wait %v, want %v", wait, pendingWait)
	}
	s1(true)
	s1(true) // a second settle is ignored
	if got := th.Blocked("k"); got != 0 {
		t.Errorf("one failure of 2: Blocked = %v", got)
	}
	s2(true)
	if got := th.Blocked("k"); got != 10*time.Second {
		t.Errorf("two failures: Blocked = %v, want 10s", got)
	}
	if w, s := th.Attempt(ctx, "k"); w == 0 || s != nil {
		t.Errorf("Attempt on a blocked key = %v, settle %v", w, s != nil)
	}
	var off *Throttle
	if w, s := off.Attempt(ctx, "k"); w != 0 || s == nil {
		t.Errorf("nil Throttle: Attempt = %v, settle %v", w, s != nil)
	}
}
