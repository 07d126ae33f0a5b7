package adminapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/accounts"
)

var errUnauthorized = accounts.ErrUnauthorized

// errNoCredentials is errUnauthorized for a request without an Authorization header.
var errNoCredentials = fmt.Errorf("no credentials: %w", errUnauthorized)

// authenticator reads HTTP Basic credentials and checks them with the Call Bridge's one
// account checker (package accounts), which the web admin's sign-in uses too.
type authenticator struct {
	accounts  *accounts.Checker
	failDelay time.Duration
}

// check returns the user named in the request's credentials and nil if they are right,
// errNoCredentials if there are none, errUnauthorized if they are wrong, a
// *accounts.ThrottledError if their name or the client's address failed too often (the
// credentials are not checked then), accounts.ErrBusy when too many checks wait, or another
// error if they could not be checked.
func (a *authenticator) check(r *http.Request) (string, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return "", errNoCredentials
	}
	name, password, ok := basicAuth(header)
	if !ok {
		return "", errUnauthorized
	}
	return name, a.accounts.Check(r.Context(), name, password, r.RemoteAddr)
}

// basicAuth reads HTTP Basic credentials as CMS does: the scheme in any case, and with or
// without the space after it ("Basic<base64>" is what some CMS tools send), the base64 with or
// without padding.
func basicAuth(header string) (name, password string, ok bool) {
	const scheme = "basic"
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", "", false
	}
	enc := strings.TrimLeft(header[len(scheme):], " \t")
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return "", "", false
		}
	}
	return strings.Cut(string(b), ":")
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
