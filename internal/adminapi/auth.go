package adminapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/throttle"
)

var errUnauthorized = errors.New("adminapi: unauthorized")

// Successful verifications are remembered for cacheTTL so that a script making many requests
// pays for Argon2 once, not on every request.
const (
	cacheTTL = time.Minute
	cacheMax = 1024
)

// authenticator checks HTTP Basic credentials against the store's API accounts.
//
// The cache is keyed by an HMAC, under a key that lives only in this process, of the user,
// the password and the stored hash. It holds no password, and since the stored hash is read
// on every request (one indexed SELECT), deleting an account or changing its password takes
// effect at once rather than when the entry expires.
type authenticator struct {
	store     *store.Store
	now       func() time.Time
	failDelay time.Duration
	key       [32]byte
	sem       chan struct{}      // bounds concurrent Argon2 runs (each takes 19 MiB)
	dummy     func() string      // a hash to verify unknown users against, so timing does not tell which names exist
	verifies  atomic.Int64       // Argon2 verifications run, for tests
	accounts  *throttle.Throttle // wrong credentials per account name
	sources   *throttle.Throttle // wrong credentials per client address

	mu sync.Mutex
	ok map[[32]byte]time.Time // expiry of remembered successes
}

func newAuthenticator(st *store.Store, now func() time.Time, failDelay time.Duration) *authenticator {
	a := &authenticator{
		store:     st,
		now:       now,
		failDelay: failDelay,
		sem:       make(chan struct{}, runtime.GOMAXPROCS(0)),
		ok:        map[[32]byte]time.Time{},
		dummy: sync.OnceValue(func() string {
			h, _ := passhash.Hash("confab-no-such-user")
			return h
		}),
	}
	rand.Read(a.key[:])
	return a
}

// throttledError refuses credentials of a name or an address that failed too often.
type throttledError struct{ wait time.Duration }

func (e *throttledError) Error() string {
	return fmt.Sprintf("adminapi: too many authentication failures; retry in %s", e.wait)
}

// The defaults of Options.AccountThrottle and SourceThrottle (as for XMPP logins).
func accountThrottle() throttle.Config {
	return throttle.Config{MaxFailures: 5, Window: 5 * time.Minute, Block: 5 * time.Second, MaxBlock: time.Minute}
}

func sourceThrottle() throttle.Config {
	return throttle.Config{MaxFailures: 20, Window: 5 * time.Minute, Block: 30 * time.Second, MaxBlock: 15 * time.Minute}
}

func accountKey(name string) string { return "user:" + strings.ToLower(name) }

// check returns the user named in the request's credentials and nil if they are right,
// errUnauthorized if they are absent or wrong, a *throttledError if their name or the
// client's address failed too often (the credentials are not checked then), or another
// error if they could not be checked. Wrong credentials are counted against the name and
// the address; right ones clear the name's count.
func (a *authenticator) check(r *http.Request) (string, error) {
	name, password, ok := r.BasicAuth()
	if !ok {
		return "", errUnauthorized
	}
	source := throttle.SourceKey(r.RemoteAddr)
	if wait := max(a.accounts.Blocked(accountKey(name)), a.sources.Blocked(source)); wait > 0 {
		return name, &throttledError{wait}
	}
	name, err := a.checkCredentials(r, name, password)
	switch {
	case errors.Is(err, errUnauthorized):
		a.accounts.Fail(accountKey(name))
		a.sources.Fail(source)
	case err == nil:
		a.accounts.Reset(accountKey(name))
	}
	return name, err
}

func (a *authenticator) checkCredentials(r *http.Request, name, password string) (string, error) {
	ctx := r.Context()
	hash, err := a.store.APIUserHash(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		a.verify(ctx, a.dummy(), password)
		return name, errUnauthorized
	}
	if err != nil {
		return name, fmt.Errorf("check credentials: %w", err)
	}
	if password == "" {
		return name, errUnauthorized
	}
	k := a.cacheKey(name, password, hash)
	now := a.now()
	a.mu.Lock()
	exp, hit := a.ok[k]
	a.mu.Unlock()
	if hit && now.Before(exp) {
		return name, nil
	}
	good, err := a.verify(ctx, hash, password)
	if err != nil {
		return name, err
	}
	if !good {
		return name, errUnauthorized
	}
	a.remember(k, now)
	return name, nil
}

func (a *authenticator) verify(ctx context.Context, hash, password string) (bool, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
	defer func() { <-a.sem }()
	a.verifies.Add(1)
	ok, err := passhash.Verify(hash, password)
	if err != nil {
		return false, fmt.Errorf("verify api password: %w", err)
	}
	return ok, nil
}

func (a *authenticator) cacheKey(name, password, hash string) [32]byte {
	m := hmac.New(sha256.New, a.key[:])
	for _, s := range []string{name, password, hash} {
		// Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		m.Write([]byte(s))
	}
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func (a *authenticator) remember(k [32]byte, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ok) >= cacheMax {
		for k, exp := range a.ok {
			if !now.Before(exp) {
				delete(a.ok, k)
			}
		}
		if len(a.ok) >= cacheMax {
			clear(a.ok)
		}
	}
	a.ok[k] = now.Add(cacheTTL)
}

// slowDown waits failDelay (or until the client goes away) before a 401 is sent.
func (a *authenticator) slowDown(ctx context.Context) {
	if a.failDelay <= 0 {
		return
	}
	t := time.NewTimer(a.failDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
