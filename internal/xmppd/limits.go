package xmppd

import (
	"log/slog"
	"sync"
	"time"
)

// Defaults of the per-sender limits (Config.SenderRate, SenderBurst).
const (
	DefaultSenderRate  = 50  // stanzas per second
	DefaultSenderBurst = 200 // stanzas
)

// bucket is a token bucket: rate tokens a second up to burst. The zero value is unusable;
// set rate and burst and call take.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Duration // of the monotonic clock, when tokens was last brought up to date
	primed bool
}

// take takes a token at now (a monotonic reading); false if there is none.
func (b *bucket) take(now time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.primed {
		b.tokens, b.last, b.primed = b.burst, now, true
	}
	if now > b.last {
		b.tokens = min(b.burst, b.tokens+b.rate*(now-b.last).Seconds())
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limitLog logs a recurring event once per interval and key, with the number of times it
// happened since the last line: a flood is one line every ten seconds, not one per stanza.
type limitLog struct {
	interval time.Duration
	now      func() time.Duration // a monotonic clock

	mu   sync.Mutex
	keys map[string]*limitLogKey
}

type limitLogKey struct {
	last       time.Duration
	suppressed int
}

// maxLimitLogKeys bounds the keys remembered; past it, those quiet for an interval go.
const maxLimitLogKeys = 10000

func (ll *limitLog) warn(log *slog.Logger, key, msg string, args ...any) {
	now := ll.now()
	ll.mu.Lock()
	if ll.keys == nil {
		ll.keys = make(map[string]*limitLogKey)
	}
	k := ll.keys[key]
	if k != nil && now-k.last < ll.interval {
		k.suppressed++
		ll.mu.Unlock()
		return
	}
	suppressed := 0
	if k == nil {
		if len(ll.keys) >= maxLimitLogKeys {
			for key, v := range ll.keys {
				if now-v.last >= ll.interval {
					delete(ll.keys, key)
				}
			}
		}
		k = &limitLogKey{}
		ll.keys[key] = k
	} else {
		suppressed = k.suppressed
	}
	k.last, k.suppressed = now, 0
	ll.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "times_since_last_line", suppressed+1)
	}
	log.Warn(msg, append(args, "next_line_after", ll.interval)...)
}

// Defaults of the per-address limits on connections that have not logged in yet.
const (
	DefaultMaxUnauthenticatedPerAddress = 100
	DefaultMaxNegotiatingPerAddress     = 200
	DefaultMaxDetachedPerAccount        = 5
)

// addrCounts counts, per source address (throttle.SourceKey: an IPv4 address, an IPv6 /64),
// the client connections not yet authenticated and those not yet bound (the former are
// among the latter), so that one address cannot fill MaxSessions with connections that
// never log in. Its lock is a leaf.
type addrCounts struct {
	mu sync.Mutex
	m  map[string]*addrCount
}

type addrCount struct{ unauth, negotiating int }

// enter counts a new connection from key, unless either limit is reached.
func (a *addrCounts) enter(key string, maxUnauth, maxNegotiating int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[string]*addrCount)
	}
	c := a.m[key]
	if c == nil {
		c = &addrCount{}
		a.m[key] = c
	}
	if c.unauth >= maxUnauth || c.negotiating >= maxNegotiating {
		return false
	}
	c.unauth++
	c.negotiating++
	return true
}

// authenticated moves a connection from key out of the unauthenticated count.
func (a *addrCounts) authenticated(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.m[key]; c != nil {
		c.unauth--
	}
}

// leave ends the negotiation of a connection from key (bound, resumed or gone); unauth says
// it never authenticated.
func (a *addrCounts) leave(key string, unauth bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.m[key]
	if c == nil {
		return
	}
	if unauth {
		c.unauth--
	}
	c.negotiating--
	if c.negotiating <= 0 {
		delete(a.m, key)
	}
}
