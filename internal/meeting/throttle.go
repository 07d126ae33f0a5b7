package meeting

import (
	"net"
	"net/netip"
	"time"
)

// maxThrottleEntries bounds the memory the throttle uses however many sources try.
const maxThrottleEntries = 50000

// throttle slows down guessing of call IDs and passcodes: after max failures from one
// source within window, the source is blocked for block, and each further block doubles
// (up to maxBlock) until a success or a quiet period of maxBlock forgives it. The caller
// holds Service.mu.
type throttle struct {
	max             int
	window          time.Duration
	block, maxBlock time.Duration
	entries         map[string]*throttleEntry
}

type throttleEntry struct {
	fails   []time.Time // within the window, oldest first
	strikes int         // blocks so far
	until   time.Time   // blocked until
	last    time.Time   // last failure
}

func newThrottle(maxFailures int, window, block, maxBlock time.Duration) *throttle {
	t := &throttle{max: maxFailures, window: window, block: block, maxBlock: maxBlock, entries: map[string]*throttleEntry{}}
	if t.max <= 0 {
		t.max = DefaultMaxFailures
	}
	if t.window <= 0 {
		t.window = DefaultFailureWindow
	}
	if t.block <= 0 {
		t.block = DefaultBlock
	}
	if t.maxBlock <= 0 {
		t.maxBlock = DefaultMaxBlock
	}
	t.maxBlock = max(t.maxBlock, t.block)
	return t
}

// blocked returns how long key must still wait, or 0.
func (t *throttle) blocked(key string, now time.Time) time.Duration {
	e := t.entries[key]
	if e == nil || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// fail records a failure of key and returns how long key is now blocked (0 if it is not).
func (t *throttle) fail(key string, now time.Time) time.Duration {
	e := t.entries[key]
	if e != nil && now.Sub(e.last) > t.maxBlock && !now.Before(e.until) {
		e = nil // quiet long enough: forgiven
	}
	if e == nil {
		if len(t.entries) >= maxThrottleEntries {
			t.sweep(now)
		}
		if len(t.entries) >= maxThrottleEntries {
			t.evictOne()
		}
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.last = now
	keep := e.fails[:0]
	for _, f := range e.fails {
		if now.Sub(f) < t.window {
			keep = append(keep, f)
		}
	}
	e.fails = append(keep, now)
	if len(e.fails) < t.max {
		return 0
	}
	e.fails = e.fails[:0]
	d := t.block
	for i := 0; i < e.strikes && d < t.maxBlock; i++ {
		d *= 2
	}
	d = min(d, t.maxBlock)
	e.strikes++
	e.until = now.Add(d)
	return d
}

// reset forgets key's failures (after a success).
func (t *throttle) reset(key string) { delete(t.entries, key) }

// sweep drops the entries that no longer matter.
func (t *throttle) sweep(now time.Time) {
	for k, e := range t.entries {
		if !now.Before(e.until) && now.Sub(e.last) > t.maxBlock {
			delete(t.entries, k)
		}
	}
}

// evictOne drops one entry that is not blocked, or any if all are.
func (t *throttle) evictOne() {
	var victim string
	for k, e := range t.entries {
		victim = k
		if e.until.IsZero() {
			break
		}
	}
	delete(t.entries, victim)
}

// sourceKey is the throttle key of a remote address (host:port or host): the IP address,
// or for IPv6 its /64, which is what one subscriber usually holds.
func sourceKey(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}
