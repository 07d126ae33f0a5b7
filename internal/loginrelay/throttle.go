package loginrelay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/text/width"

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

// lockoutThrottle is the default of Responder.LockoutThrottle: at most 8 failed checks of one
// name within 30 minutes reach the directory; then the name waits out the 30 minutes. Keep it
// under the directory's own lockout threshold (Active Directory locks an account after its
// "account lockout threshold" of bad passwords within its observation window), so that
// guessing through Confab never locks an account there.
func lockoutThrottle() throttle.Config {
	return throttle.Config{MaxFailures: 8, Window: 30 * time.Minute, Block: 30 * time.Minute, MaxBlock: 30 * time.Minute}
}

// accountKey is the throttle key of a username, as the directory resolves it: case and
// Unicode width folded, surrounding space removed, and "@domain" (with or without a trailing
// dot, in any case) removed when it names domain (any domain, when domain is ""), so that
// "Alice", "ＡＬＩＣＥ" and "alice@Example.COM." share one budget.
func accountKey(username, domain string) string {
	u := strings.ToLower(width.Fold.String(strings.TrimSpace(username)))
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		d := strings.TrimSuffix(u[i+1:], ".")
		if domain == "" || d == strings.TrimSuffix(strings.ToLower(domain), ".") {
			u = u[:i]
		}
	}
	return "user:" + u
}

// guard counts failed logins (not-authorized: a wrong password and an unknown user alike)
// per account name and per client address, and says how long a login must wait. Both ends
// of the relay keep one: the Call Bridge's (Responder) guards its directory; the XMPP
// server's (Client) sees the logins of every Call Bridge behind it, so that guessing spread
// over several Call Bridges is counted as one. Its answers depend on the counts only, never
// on whether an account exists.
type guard struct {
	accounts, sources *throttle.Throttle
	lockout           *throttle.Throttle // the Responder's only: see lockoutThrottle
	domain            string
	where             string // who refuses, in logs: "login relay" or "XMPP server"
}

func newGuard(account, source throttle.Config, now func() time.Time, where, domain string) guard {
	return guard{
		accounts: throttle.New(account, accountThrottle(), now),
		sources:  throttle.New(source, sourceThrottle(), now),
		domain:   domain,
		where:    where,
	}
}

// attempt is wait and failed for a check about to run (package throttle's Attempt): it
// counts the attempt against username and source before the check, so that N simultaneous
// guesses use N of the budgets. It returns how long the login must wait (and a nil settle),
// or 0 and settle, to be called once with the check's outcome.
func (g *guard) attempt(ctx context.Context, log *slog.Logger, source, username string) (time.Duration, func(failed bool)) {
	var settles []func(bool)
	undo := func() {
		for _, s := range settles {
			s(false)
		}
	}
	try := func(t *throttle.Throttle, key string) time.Duration {
		if t == nil || key == "" {
			return 0
		}
		wait, settle := t.Attempt(ctx, key)
		if wait > 0 {
			return wait
		}
		settles = append(settles, settle)
		return 0
	}
	akey := ""
	if username != "" {
		akey = accountKey(username, g.domain)
	}
	for _, c := range []struct {
		t   *throttle.Throttle
		key string
	}{{g.accounts, akey}, {g.lockout, akey}, {g.sources, source}} {
		if wait := try(c.t, c.key); wait > 0 {
			undo()
			return wait, nil
		}
	}
	return 0, func(failed bool) {
		for _, s := range settles {
			s(failed)
		}
		if !failed {
			return
		}
		if akey != "" && g.accounts.Blocked(akey) > 0 {
			log.Warn(g.where+": too many failed logins for this name; refusing it for a while", "user", username, "blocked_for", g.accounts.Blocked(akey))
		}
		if g.lockout != nil && akey != "" && g.lockout.Blocked(akey) > 0 {
			log.Warn(g.where+": too many failed logins for this name within the lockout window; refusing it until the window ends", "user", username, "blocked_for", g.lockout.Blocked(akey))
		}
		if source != "" && g.sources.Blocked(source) > 0 {
			log.Warn(g.where+": too many failed logins from this address; refusing it for a while", "source", source, "blocked_for", g.sources.Blocked(source))
		}
	}
}

// wait returns how long a login of username (or of nobody yet named, "") from source (""
// if unknown) must still wait.
func (g *guard) wait(source, username string) time.Duration {
	var d time.Duration
	if username != "" {
		d = g.accounts.Blocked(accountKey(username, g.domain))
	}
	if source != "" {
		d = max(d, g.sources.Blocked(source))
	}
	return d
}

// failed counts a failed login against username and source, logging a block that starts.
func (g *guard) failed(log *slog.Logger, source, username string) {
	if username != "" {
		if d := g.accounts.Fail(accountKey(username, g.domain)); d > 0 {
			log.Warn(g.where+": too many failed logins for this name; refusing it for a while", "user", username, "blocked_for", d)
		}
	}
	if source != "" {
		if d := g.sources.Fail(source); d > 0 {
			log.Warn(g.where+": too many failed logins from this address; refusing it for a while", "source", source, "blocked_for", d)
		}
	}
}

// succeeded clears the name's count.
func (g *guard) succeeded(username string) {
	if username != "" {
		g.accounts.Reset(accountKey(username, g.domain))
	}
}

// throttledText is the text of the temporary-auth-failure a blocked login gets.
func throttledText(wait time.Duration) string {
	secs := int((wait + time.Second - 1) / time.Second)
	return fmt.Sprintf("Too many failed login attempts; try again in %d seconds", secs)
}

// blocked returns how long a login of username from source must still wait. It consults the
// throttles only, never the Directory, so the answer and its timing are the same whether the
// account exists or not.
func (r *Responder) blocked(source, username string) time.Duration {
	return r.guard.wait(source, username)
}

// throttled answers a blocked login: temporary-auth-failure, saying when to try again.
func (r *Responder) throttled(id, source, username string, wait time.Duration) failurePayload {
	r.logger().Info("login relay: login refused, too many failed attempts", "user", username, "source", source, "retry_in", wait.Round(time.Millisecond))
	return r.fail(id, username, CondTemporaryAuthFail, throttledText(wait))
}

// wrong counts a failed login (a wrong password and an unknown user alike) against username
// and source and answers not-authorized with text.
func (r *Responder) wrong(id string, s *session, username, text string) failurePayload {
	if s.settle != nil {
		s.settle(true)
	} else {
		r.guard.failed(r.logger(), s.source, username)
	}
	s.failedCheck = true
	return r.fail(id, username, CondNotAuthorized, text)
}

// saslUsername returns the name a client's first SASL message authenticates as, as the
// Responder will look it up (without "@domain"), or "" when the message names nobody the
// XMPP server can read: the authcid of a PLAIN message [RFC 4616 §2], the username of a SCRAM
// client-first message [RFC 5802 §7]. It only keys the throttle; the Call Bridge checks the
// message itself.
func saslUsername(mech string, msg []byte, domain string) string {
	var name string
	switch mech {
	case MechPLAIN:
		parts := strings.Split(string(msg), "\x00")
		if len(parts) != 3 {
			return ""
		}
		name = parts[1]
	case MechSCRAMSHA1, MechSCRAMSHA256:
		// gs2-header ("n,," or "y,a=who," or "p=cb,…,") then "n=name,r=nonce…".
		parts := strings.SplitN(string(msg), ",", 4)
		if len(parts) < 3 || !strings.HasPrefix(parts[2], "n=") {
			return ""
		}
		name = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(parts[2][2:])
	default:
		return ""
	}
	if len(name) > 1023 {
		return "" // not a name any directory holds; the Call Bridge refuses it
	}
	if local, ok := strings.CutSuffix(name, "@"+domain); ok && domain != "" {
		name = local
	}
	return name
}
