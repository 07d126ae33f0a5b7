package loginrelay

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"confab.dev/confab/internal/throttle"
)

// The defaults of Responder.AccountThrottle and SourceThrottle. A name's blocks are short,
// because anyone who knows a name can get it blocked; an address's are long, because an
// address that failed twenty times in five minutes is guessing.
func accountThrottle() throttle.Config {
	return throttle.Config{MaxFailures: 5, Window: 5 * time.Minute, Block: 5 * time.Second, MaxBlock: time.Minute}
}

func sourceThrottle() throttle.Config {
	return throttle.Config{MaxFailures: 20, Window: 5 * time.Minute, Block: 30 * time.Second, MaxBlock: 15 * time.Minute}
}

// errThrottled is what the SCRAM credential lookup returns for a blocked login.
var errThrottled = errors.New("too many failed logins")

// sourceOf is the throttle key of the client address the XMPP server relayed, or "" if it
// sent none.
func sourceOf(addr string) string {
	if addr == "" {
		return ""
	}
	return throttle.SourceKey(addr)
}

// accountKey is the throttle key of a username: names differing only in case are one.
func accountKey(username string) string { return "user:" + strings.ToLower(username) }

// blocked returns how long a login of username from source must still wait. It consults the
// throttles only, never the Directory, so the answer and its timing are the same whether the
// account exists or not.
func (r *Responder) blocked(source, username string) time.Duration {
	wait := r.accounts.Blocked(accountKey(username))
	if source != "" {
		wait = max(wait, r.sources.Blocked(source))
	}
	return wait
}

// throttled answers a blocked login: temporary-auth-failure, saying when to try again.
func (r *Responder) throttled(id, source, username string, wait time.Duration) failurePayload {
	secs := int((wait + time.Second - 1) / time.Second)
	r.logger().Info("login relay: login refused, too many failed attempts", "user", username, "source", source, "retry_in", wait.Round(time.Millisecond))
	return r.fail(id, username, CondTemporaryAuthFail, fmt.Sprintf("Too many failed login attempts; try again in %d seconds", secs))
}

// wrong counts a failed login (a wrong password and an unknown user alike) against username
// and source and answers not-authorized with text.
func (r *Responder) wrong(id, source, username, text string) failurePayload {
	if d := r.accounts.Fail(accountKey(username)); d > 0 {
		r.logger().Warn("login relay: too many failed logins for this name; refusing it for a while", "user", username, "blocked_for", d)
	}
	if source != "" {
		if d := r.sources.Fail(source); d > 0 {
			r.logger().Warn("login relay: too many failed logins from this address; refusing it for a while", "source", source, "blocked_for", d)
		}
	}
	return r.fail(id, username, CondNotAuthorized, text)
}
