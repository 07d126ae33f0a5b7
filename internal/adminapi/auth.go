package adminapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"confab.dev/confab/internal/callbridge/accounts"
)

var errUnauthorized = accounts.ErrUnauthorized

// authenticator reads HTTP Basic credentials and checks them with the Call Bridge's one
// account checker (package accounts), which the web admin's sign-in uses too.
type authenticator struct {
	accounts  *accounts.Checker
	failDelay time.Duration
}

// check returns the user named in the request's credentials and nil if they are right,
// errUnauthorized if they are absent or wrong, a *accounts.ThrottledError if their name or
// the client's address failed too often (the credentials are not checked then),
// accounts.ErrBusy when too many checks wait, or another error if they could not be checked.
func (a *authenticator) check(r *http.Request) (string, error) {
	name, password, ok := r.BasicAuth()
	if !ok {
		return "", errUnauthorized
	}
	return name, a.accounts.Check(r.Context(), name, password, r.RemoteAddr)
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

// throttled reports the wait of a throttled check.
func throttled(err error) (time.Duration, bool) {
	var te *accounts.ThrottledError
	if errors.As(err, &te) {
		return te.RetryAfter, true
	}
	return 0, false
}
