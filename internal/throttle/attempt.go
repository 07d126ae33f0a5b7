package throttle

import (
	"context"
	"sync"
	"time"
)

// pendingWait is what Attempt answers when ctx ends while it waits for checks still running.
const pendingWait = time.Second

// Attempt is Blocked and Fail for a check that is slow (a password hash, an LDAP bind): it
// counts the attempt before the check runs, so that N simultaneous guesses count N and not 1.
// When key is blocked it returns how long it must wait, and a nil settle. When the attempts
// still running would use up what is left of key's budget, it waits for them to settle (or
// for ctx to end: it then returns pendingWait), so that a burst of right answers all pass
// while a burst of wrong ones gets only the budget's worth of checks. Otherwise it returns 0
// and settle, which the caller must call once with the check's outcome: failed records a
// failure as Fail does, !failed forgets the attempt (the caller calls Reset too if a success
// clears the key).
func (t *Throttle) Attempt(ctx context.Context, key string) (wait time.Duration, settle func(failed bool)) {
	if t.off() {
		return 0, func(bool) {}
	}
	for {
		now := t.now()
		t.mu.Lock()
		e := t.entries[key]
		if e != nil && now.Before(e.until) {
			t.mu.Unlock()
			return e.until.Sub(now), nil
		}
		if e != nil && e.pending > 0 && e.pending+e.recent(now, t.cfg.Window) >= t.cfg.MaxFailures {
			if e.settled == nil {
				e.settled = make(chan struct{})
			}
			ch := e.settled
			t.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return pendingWait, nil
			}
		}
		if e == nil {
			if len(t.entries) >= t.maxKeys {
				t.sweep(now)
			}
			if len(t.entries) >= t.maxKeys {
				t.evictOne()
			}
			e = &entry{last: now}
			t.entries[key] = e
		}
		e.pending++
		t.mu.Unlock()
		return 0, t.settler(key, e)
	}
}

func (t *Throttle) settler(key string, e *entry) func(bool) {
	var once sync.Once
	return func(failed bool) {
		once.Do(func() {
			if failed {
				t.Fail(key)
			}
			t.mu.Lock()
			if e.pending > 0 {
				e.pending--
			}
			if e.settled != nil {
				close(e.settled)
				e.settled = nil
			}
			t.mu.Unlock()
		})
	}
}

// recent counts the failures within window before now.
func (e *entry) recent(now time.Time, window time.Duration) int {
	n := 0
	for _, f := range e.fails {
		if now.Sub(f) < window {
			n++
		}
	}
	return n
}
