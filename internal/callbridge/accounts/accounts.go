// Package accounts checks the credentials of API accounts — the accounts of the REST API
// and of the web admin, which are the same accounts — in one place, so that both doors
// share one throttle, one dummy hash and one bound on the password hashes running at once.
//
// A check costs an Argon2id verification (about 19 MiB and tens of milliseconds), so:
//
//   - an attempt is counted against the account name and the client's address before the
//     hash runs (throttle.Attempt), so N simultaneous guesses use N of the budget, and a
//     name or address that used it up is refused without hashing;
//   - at most MaxConcurrent hashes run at once and at most MaxWaiting checks wait for one;
//     past that a check fails at once with ErrBusy (the API answers 503);
//   - an unknown name is verified against a dummy hash, so the time taken does not tell
//     which names exist;
//   - a success is remembered for a minute (keyed by an HMAC of name, password and stored
//     hash, under a key that lives only in this process), so a script making many requests
//     pays for Argon2 once; since the stored hash is read on every check, deleting an account
//     or changing its password takes effect at once.
//
// Names are compared as the store compares them; throttle keys fold case and Unicode width
// (see Key), so "Admin", "ADMIN" and "ａｄｍｉｎ" share one budget.
package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/text/width"

	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/throttle"
)

// ErrUnauthorized is a wrong or unknown name or password.
var ErrUnauthorized = errors.New("accounts: wrong name or password")

// ErrBusy refuses a check when too many are already waiting for a password hash.
var ErrBusy = errors.New("accounts: too many sign-ins at once; try again")

// ThrottledError refuses the credentials of a name or an address that failed too often; they
// were not checked.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("accounts: too many authentication failures; retry in %s", e.RetryAfter)
}

// Successes are remembered for cacheTTL, at most cacheMax of them.
const (
	cacheTTL = time.Minute
	cacheMax = 1024
)

// Options configures a Checker.
type Options struct {
	Store *store.Store     // required: the API accounts
	Now   func() time.Time // time.Now when nil
	// AccountThrottle and SourceThrottle count wrong credentials per account name (whether
	// it exists or not) and per client address (IPv4 address, IPv6 /64). Zero fields take
	// the defaults: per name, 5 failures within 5 minutes block it for 5s, each further block
	// twice as long up to 1 minute; per address, 20 failures within 5 minutes block it for
	// 30s, up to 15 minutes.
	AccountThrottle, SourceThrottle throttle.Config
	// MaxConcurrent bounds the password hashes run at once (GOMAXPROCS when 0); MaxWaiting
	// the checks waiting for one (8 × MaxConcurrent when 0).
	MaxConcurrent, MaxWaiting int
}

// Checker checks API account credentials. It is safe for concurrent use.
type Checker struct {
	store    *store.Store
	now      func() time.Time
	accounts *throttle.Throttle
	sources  *throttle.Throttle
	sem      chan struct{}
	waiting  atomic.Int64
	maxWait  int64
	dummy    func() string
	key      [32]byte
	verifies atomic.Int64
	running  atomic.Int64 // hashes running now
	peak     atomic.Int64 // most hashes seen running at once

	mu sync.Mutex
	ok map[[32]byte]time.Time // expiry of remembered successes
}

// New returns a Checker.
func New(o Options) *Checker {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = 8 * o.MaxConcurrent
	}
	c := &Checker{
		store: o.Store,
		now:   o.Now,
		accounts: throttle.New(o.AccountThrottle,
			throttle.Config{MaxFailures: 5, Window: 5 * time.Minute, Block: 5 * time.Second, MaxBlock: time.Minute}, o.Now),
		sources: throttle.New(o.SourceThrottle,
			throttle.Config{MaxFailures: 20, Window: 5 * time.Minute, Block: 30 * time.Second, MaxBlock: 15 * time.Minute}, o.Now),
		sem:     make(chan struct{}, o.MaxConcurrent),
		maxWait: int64(o.MaxWaiting),
		ok:      map[[32]byte]time.Time{},
		dummy: sync.OnceValue(func() string {
			h, err := passhash.Hash(rand.Text())
			if err != nil {
				panic(err) // Argon2id over a fixed-size input does not fail
			}
			return h
		}),
	}
	rand.Read(c.key[:])
	return c
}

// Key is the throttle key of an account name: case and Unicode width folded, surrounding
// space removed.
func Key(name string) string {
	return "user:" + strings.ToLower(width.Fold.String(strings.TrimSpace(name)))
}

// Check returns nil if name and password are an API account's. It returns ErrUnauthorized
// for a wrong or unknown name or password, a *ThrottledError when the name or remoteAddr
// (host:port or host) failed too often, ErrBusy when too many checks are waiting, the
// context's cause when ctx ends while waiting, or another error when the store fails.
func (c *Checker) Check(ctx context.Context, name, password, remoteAddr string) error {
	if name == "" {
		return ErrUnauthorized
	}
	hash, err := c.store.APIUserHash(ctx, name)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("check credentials: %w", err)
	}
	var ck [32]byte
	if known && password != "" {
		ck = c.cacheKey(name, password, hash)
		if c.remembered(ck) {
			return nil
		}
	}

	akey, skey := Key(name), throttle.SourceKey(remoteAddr)
	wait, settleAccount := c.accounts.Attempt(ctx, akey)
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	wait, settleSource := c.sources.Attempt(ctx, skey)
	if wait > 0 {
		settleAccount(false)
		return &ThrottledError{RetryAfter: wait}
	}
	if known && password != "" && c.remembered(ck) {
		// Another request with the same credentials succeeded while this one waited.
		settleAccount(false)
		settleSource(false)
		return nil
	}
	good, err := c.verifyBounded(ctx, hash, known, password)
	if err != nil {
		settleAccount(false)
		settleSource(false)
		return err
	}
	settleAccount(!good)
	settleSource(!good)
	if !good {
		return ErrUnauthorized
	}
	c.accounts.Reset(akey)
	c.remember(ck)
	return nil
}

// verifyBounded runs the hash (against the dummy when the account is unknown) when a slot is
// free, waiting for one while fewer than maxWait checks wait.
func (c *Checker) verifyBounded(ctx context.Context, hash string, known bool, password string) (bool, error) {
	if !known {
		hash = c.dummy()
	}
	select {
	case c.sem <- struct{}{}:
	default:
		if c.waiting.Add(1) > c.maxWait {
			c.waiting.Add(-1)
			return false, ErrBusy
		}
		select {
		case c.sem <- struct{}{}:
			c.waiting.Add(-1)
		case <-ctx.Done():
			c.waiting.Add(-1)
			return false, context.Cause(ctx)
		}
	}
	defer func() { c.running.Add(-1); <-c.sem }()
	c.verifies.Add(1)
	if n := c.running.Add(1); n > c.peak.Load() {
		c.peak.Store(n) // racy max, good enough for a statistic
	}
	ok, err := passhash.Verify(hash, password)
	if err != nil {
		return false, fmt.Errorf("verify api password: %w", err)
	}
	return ok && known && password != "", nil
}

// Verifications returns how many password hashes Check has run, and the most that ran at
// once.
func (c *Checker) Verifications() (total, peak int64) { return c.verifies.Load(), c.peak.Load() }

// Add creates an API account with password.
func (c *Checker) Add(ctx context.Context, name, password string) error {
	return Add(ctx, c.store, name, password)
}

// Add creates an API account with password in st, hashed as Check verifies it (for
// `confab callbridge api-user add`, which runs without a Checker). An existing name is
// store.ErrExists.
func Add(ctx context.Context, st *store.Store, name, password string) error {
	h, err := passhash.Hash(password)
	if err != nil {
		return err
	}
	return st.AddAPIUser(ctx, name, h)
}

func (c *Checker) cacheKey(name, password, hash string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	for _, s := range []string{name, password, hash} {
		// Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		m.Write([]byte(s))
	}
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func (c *Checker) remembered(k [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, hit := c.ok[k]
	return hit && c.now().Before(exp)
}

func (c *Checker) remember(k [32]byte) {
	if k == ([32]byte{}) {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ok) >= cacheMax {
		for k, exp := range c.ok {
			if !now.Before(exp) {
				delete(c.ok, k)
			}
		}
		if len(c.ok) >= cacheMax {
			clear(c.ok)
		}
	}
	c.ok[k] = now.Add(cacheTTL)
}
