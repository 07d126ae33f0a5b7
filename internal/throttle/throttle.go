// Package throttle slows down guessing — of passwords, shared secrets, passcodes — by
// counting failures per key (an account name, a source address) and refusing a key that
// failed too often for a while: after MaxFailures failures within Window the key is blocked
// for Block, each further block of the same key lasts twice as long up to MaxBlock, and a key
// that stays quiet for MaxBlock (or succeeds, see Reset) starts afresh.
//
// A Throttle decides only from the key and the clock, never from whether an account exists,
// so a caller that asks before it looks anything up answers a blocked key in the same way
// and the same time whatever the key names.
package throttle

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures a Throttle. Zero fields take the defaults of the caller (see Defaults).
type Config struct {
	// MaxFailures failures within Window block the key.
	MaxFailures int
	// Window is how far back failures count.
	Window time.Duration
	// Block is the first block; each further one doubles, up to MaxBlock.
	Block, MaxBlock time.Duration
	// Off turns the throttle off: nothing is counted or blocked.
	Off bool
}

// WithDefaults returns c with its zero fields taken from d.
func (c Config) WithDefaults(d Config) Config {
	if c.MaxFailures <= 0 {
		c.MaxFailures = d.MaxFailures
	}
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.Block <= 0 {
		c.Block = d.Block
	}
	if c.MaxBlock <= 0 {
		c.MaxBlock = d.MaxBlock
	}
	c.MaxBlock = max(c.MaxBlock, c.Block)
	return c
}

// defaults fills the fields that are zero both in a Config and in the defaults passed to New:
// 5 failures within 5 minutes, a first block of 10 seconds, at most 10 minutes.
func defaults() Config {
	return Config{MaxFailures: 5, Window: 5 * time.Minute, Block: 10 * time.Second, MaxBlock: 10 * time.Minute}
}

// DefaultMaxKeys bounds the keys a Throttle remembers, so that a flood of distinct keys costs
// bounded memory; past it, keys that are not blocked are forgotten first.
const DefaultMaxKeys = 100000

// Throttle counts failures and blocks keys. It is safe for concurrent use; a nil *Throttle
// (or one whose Config is Off) never blocks.
type Throttle struct {
	cfg     Config
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	fails   []time.Time   // within the window, oldest first
	strikes int           // blocks so far
	until   time.Time     // blocked until
	last    time.Time     // last failure
	pending int           // attempts counted by Attempt and not yet settled
	settled chan struct{} // closed when one settles, for Attempts waiting on the budget
}

// New returns a Throttle for cfg, whose zero fields take the values of def (and then the
// package's defaults). now is the clock (time.Now if nil).
func New(cfg, def Config, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{
		cfg:     cfg.WithDefaults(def.WithDefaults(defaults())),
		now:     now,
		maxKeys: DefaultMaxKeys,
		entries: map[string]*entry{},
	}
}

// Config returns the configuration in force, defaults applied.
func (t *Throttle) Config() Config {
	if t == nil {
		return Config{Off: true}
	}
	return t.cfg
}

func (t *Throttle) off() bool { return t == nil || t.cfg.Off }

// Blocked returns how long key must still wait, or 0 if it may try now.
func (t *Throttle) Blocked(key string) time.Duration {
	if t.off() {
		return 0
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// Fail records a failure of key and returns how long key is now blocked: 0 unless this
// failure started a block.
func (t *Throttle) Fail(key string) time.Duration {
	if t.off() {
		return 0
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e != nil && now.Sub(e.last) > t.cfg.MaxBlock && !now.Before(e.until) {
		e.fails, e.strikes = e.fails[:0], 0 // quiet long enough: forgiven
	}
	if e == nil {
		if len(t.entries) >= t.maxKeys {
			t.sweep(now)
		}
		if len(t.entries) >= t.maxKeys {
			t.evictOne()
		}
		e = &entry{}
		t.entries[key] = e
	}
	e.last = now
	keep := e.fails[:0]
	for _, f := range e.fails {
		if now.Sub(f) < t.cfg.Window {
			keep = append(keep, f)
		}
	}
	e.fails = append(keep, now)
	if len(e.fails) < t.cfg.MaxFailures {
		return 0
	}
	e.fails = e.fails[:0]
	d := t.cfg.Block
	for i := 0; i < e.strikes && d < t.cfg.MaxBlock; i++ {
		d *= 2
	}
	d = min(d, t.cfg.MaxBlock)
	e.strikes++
	e.until = now.Add(d)
	return d
}

// Reset forgets key's failures (after a success).
func (t *Throttle) Reset(key string) {
	if t.off() {
		return
	}
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

// Len returns the number of keys remembered.
func (t *Throttle) Len() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// sweep drops the entries that no longer matter. The caller holds mu.
func (t *Throttle) sweep(now time.Time) {
	for k, e := range t.entries {
		if e.pending == 0 && !now.Before(e.until) && now.Sub(e.last) > t.cfg.MaxBlock {
			delete(t.entries, k)
		}
	}
}

// evictOne drops one entry that is not blocked, or any if all are. The caller holds mu.
func (t *Throttle) evictOne() {
	var victim string
	for k, e := range t.entries {
		victim = k
		if e.until.IsZero() {
			break
		}
	}
	delete(t.entries, victim)
}

// SourceKey is the key of a remote address (host:port or host): the IP address, or for IPv6
// its /64, which is what one subscriber usually holds. Anything else is keyed as it is.
func SourceKey(remoteAddr string) string {
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

// Block is a key blocked now, and until when.
type Block struct {
	Key   string    `json:"key"`
	Until time.Time `json:"until"`
}

// Blocks returns the keys blocked now, ordered by key.
func (t *Throttle) Blocks() []Block {
	if t.off() {
		return nil
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Block
	for k, e := range t.entries {
		if now.Before(e.until) {
			out = append(out, Block{Key: k, Until: e.until})
		}
	}
	slices.SortFunc(out, func(a, b Block) int { return strings.Compare(a.Key, b.Key) })
	return out
}
