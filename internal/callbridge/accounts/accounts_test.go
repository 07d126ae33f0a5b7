package accounts

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/clocktest"
	"confab.dev/confab/internal/store"
)

func newChecker(t *testing.T, o Options) (*Checker, *store.Store, *clocktest.Clock) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	o.Store, o.Now = st, clock.Now
	c := New(o)
	if err := c.Add(ctx, "admin", "correct horse"); err != nil {
		t.Fatal(err)
	}
	return c, st, clock
}

func TestCheck(t *testing.T) {
	c, st, _ := newChecker(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name, user, password string
		want                 error
	}{
		{"right", "admin", "correct horse", nil},
		{"wrong password", "admin", "battery", ErrUnauthorized},
		{"empty password", "admin", "", ErrUnauthorized},
		{"unknown name", "nobody", "correct horse", ErrUnauthorized},
		{"no name", "", "x", ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Check(ctx, tt.user, tt.password, "192.0.2.1:1000"); !errors.Is(err, tt.want) {
				t.Errorf("Check(%q, %q) = %v, want %v", tt.user, tt.password, err, tt.want)
			}
		})
	}
	// A remembered success costs no hash; a deleted account is refused at once all the same.
	before, _ := c.Verifications()
	if err := c.Check(ctx, "admin", "correct horse", "192.0.2.1:1000"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Verifications(); n != before {
		t.Errorf("a remembered success ran %d hashes", n-before)
	}
	if err := st.DeleteAPIUser(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, "admin", "correct horse", "192.0.2.1:1000"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("deleted account: Check = %v, want ErrUnauthorized", err)
	}
}

// TestConcurrentGuessesCountEach: 100 simultaneous wrong passwords for one account run at
// most the account's budget of hashes, at most MaxConcurrent at a time; the rest are
// refused without hashing.
func TestConcurrentGuessesCountEach(t *testing.T) {
	c, _, _ := newChecker(t, Options{})
	const n = 100
	errs := guessAll(c, n, func(i int) (string, string) { return "admin", fmt.Sprint("guess", i) })
	counts := tally(errs)
	total, peak := c.Verifications()
	if total > 5 {
		t.Errorf("%d hashes for %d simultaneous guesses at one account: want at most 5", total, n)
	}
	if peak > int64(runtime.GOMAXPROCS(0)) {
		t.Errorf("%d hashes ran at once: want at most GOMAXPROCS=%d", peak, runtime.GOMAXPROCS(0))
	}
	if counts["unauthorized"] != int(total) || counts["throttled"] != n-int(total) {
		t.Errorf("outcomes %v with %d hashes", counts, total)
	}
	// Then the right password is throttled too: the name is blocked.
	var te *ThrottledError
	if err := c.Check(context.Background(), "admin", "correct horse", "192.0.2.9:1"); !errors.As(err, &te) {
		t.Errorf("right password on a blocked name: %v, want *ThrottledError", err)
	}
}

// TestOneSourceManyNames: guessing across names from one address is bounded by the
// address's budget.
func TestOneSourceManyNames(t *testing.T) {
	c, _, _ := newChecker(t, Options{})
	errs := guessAll(c, 60, func(i int) (string, string) { return fmt.Sprint("user", i), "x" })
	if total, _ := c.Verifications(); total > 20 {
		t.Errorf("%d hashes for 60 names from one address: want at most 20 (%v)", total, tally(errs))
	}
}

// TestNameSpellingsShareABudget: however the name is written, one budget.
func TestNameSpellingsShareABudget(t *testing.T) {
	c, _, clock := newChecker(t, Options{})
	ctx := context.Background()
	for i, name := range []string{"admin", "Admin", "ADMIN", "ａｄｍｉｎ", " admin"} {
		err := c.Check(ctx, name, "wrong", fmt.Sprintf("198.51.100.%d:1", i))
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("guess %d (%q): %v", i, name, err)
		}
	}
	var te *ThrottledError
	if err := c.Check(ctx, "aDmIn", "wrong", "198.51.100.99:1"); !errors.As(err, &te) {
		t.Errorf("sixth guess, another spelling: %v, want *ThrottledError", err)
	}
	clock.Advance(6 * time.Second)
	if err := c.Check(ctx, "admin", "correct horse", "198.51.100.99:1"); err != nil {
		t.Errorf("after the block: %v", err)
	}
}

// TestBusy: past MaxWaiting checks waiting for a hash, a check fails at once.
func TestBusy(t *testing.T) {
	c, _, _ := newChecker(t, Options{MaxConcurrent: 1, MaxWaiting: 1})
	c.sem <- struct{}{} // the one slot is taken
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error)
	go func() { waiting <- c.Check(ctx, "u1", "x", "203.0.113.1:1") }()
	deadline := time.Now().Add(10 * time.Second)
	for c.waiting.Load() == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if err := c.Check(context.Background(), "u2", "x", "203.0.113.2:1"); !errors.Is(err, ErrBusy) {
		t.Errorf("second waiter: %v, want ErrBusy", err)
	}
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v, want context.Canceled", err)
	}
	<-c.sem
}

func guessAll(c *Checker, n int, cred func(int) (string, string)) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, p := cred(i)
			errs[i] = c.Check(context.Background(), u, p, "192.0.2.7:4000")
		}()
	}
	wg.Wait()
	return errs
}

func tally(errs []error) map[string]int {
	m := map[string]int{}
	for _, err := range errs {
		var te *ThrottledError
		switch {
		case errors.Is(err, ErrUnauthorized):
			m["unauthorized"]++
		case errors.As(err, &te):
			m["throttled"]++
		case errors.Is(err, ErrBusy):
			m["busy"]++
		default:
			m[fmt.Sprint(err)]++
		}
	}
	return m
}
