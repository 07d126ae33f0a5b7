package meeting

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/throttle"
)

// Errors of JoinAsGuest.
var (
	// ErrInvalidCallID is the one answer to a call ID that does not exist and to a wrong
	// passcode, so that the answer does not tell which call IDs exist.
	ErrInvalidCallID = errors.New("meeting: invalid call ID or passcode")
	// ErrNoCallBridge means the Call Bridge cannot take guests now: its link to the XMPP
	// server is down, or its XMPP settings are incomplete.
	ErrNoCallBridge = errors.New("meeting: no Call Bridge is available")
)

// ThrottledError refuses a guest join (or a lookup) from a source that failed too often.
type ThrottledError struct {
	RetryAfter time.Duration // how long the source must wait
}

func (e *ThrottledError) Error() string { return "meeting: " + e.Text() }

// Text says what happened in words for the participant.
func (e *ThrottledError) Text() string {
	return fmt.Sprintf("too many failed attempts; try again in %d seconds", e.Seconds())
}

// Seconds is RetryAfter in whole seconds, rounded up (at least 1).
func (e *ThrottledError) Seconds() int {
	return max(int((e.RetryAfter+time.Second-1)/time.Second), 1)
}

// Grant is what a guest needs to log in to XMPP and join its space.
type Grant struct {
	JID       string        // guest<digits>@<domain>
	Password  secret.Secret // one-time
	SpaceJID  string        // <coSpaceId>@<callBridgeJid>
	SpaceName string
	Name      string // the display name, as cleaned up
	// Rejoin is the guest's rejoin credential (see RejoinGuest), good until RejoinExpires:
	// with it the guest gets back into the space without the call ID and passcode after its
	// session or the Call Bridge was lost.
	Rejoin        secret.Secret
	RejoinExpires time.Time
}

// guest is a temporary account.
type guest struct {
	username string // guest<digits>
	jid      string // bare
	password secret.Secret
	spaceID  string
	// accessMethod is the access method whose call ID and passcode the guest gave ("": the
	// space's own).
	accessMethod string
	name         string
	addr         string
	source       string // the throttle key of addr
	created      time.Time
	loggedIn     bool
	// issued is when the current one-time password was made: at the account's creation, or
	// when a rejoin credential asked for a new one so that the guest's session could be
	// resumed (RejoinGuest).
	issued time.Time
}

// guestDigits is how many random digits follow "guest" in a guest's username.
const guestDigits = 10

// maxPendingGuests bounds the guest accounts one source may hold that have not been used
// yet, so that someone who knows a passcode cannot fill the memory with accounts.
const maxPendingGuests = 20

// MaxNameLength bounds a display name, in characters.
const MaxNameLength = 64

// IsGuestUsername reports whether username has the form of a guest account, "guest"
// followed by eight or more digits. Such names are reserved: a user directory should refuse
// them, and a JID of this form that is not a live guest account may not join a meeting.
func IsGuestUsername(username string) bool {
	digits, ok := strings.CutPrefix(strings.ToLower(username), "guest")
	if !ok || len(digits) < 8 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CleanName makes a display name presentable: control and format characters removed,
// whitespace collapsed, at most MaxNameLength characters. It returns "" if nothing is left.
func CleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError, unicode.Is(unicode.Cf, r):
			return -1
		case unicode.IsSpace(r), unicode.IsControl(r):
			return ' '
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if utf8.RuneCountInString(name) > MaxNameLength {
		name = strings.TrimSpace(string([]rune(name)[:MaxNameLength]))
	}
	return name
}

// decoyPasscode is compared against when a call ID is unknown, so that an unknown call ID
// costs the same as a wrong passcode.
const decoyPasscode = "confab-no-such-call-id"

// JoinAsGuest checks a call ID and passcode and, if they are right, creates a temporary
// guest account for the space: a JID guest<digits>@<domain> with a random one-time password
// held only in memory. The account may join only that space; it is removed when the guest
// leaves the meeting or its XMPP session ends, or if it does not log in within GuestTTL.
//
// remoteAddr (host:port or host) is the source the throttle counts failures by. The errors
// are ErrInvalidCallID (unknown call ID and wrong passcode alike), *ThrottledError,
// ErrNoCallBridge, or another error for a store failure. Every refusal is logged.
func (s *Service) JoinAsGuest(ctx context.Context, callID, passcode, name, remoteAddr string) (Grant, error) {
	log := s.log.With("callId", callID, "remote", remoteAddr)
	domain, cb, key, now, err := s.guestGate(ctx, log, "guest join", remoteAddr)
	if err != nil {
		return Grant{}, err
	}

	callID = strings.Join(strings.Fields(callID), "")
	passcode = strings.TrimSpace(passcode)
	sp, am, found, ok, err := s.matchCallID(ctx, callID, passcode)
	if err != nil {
		return Grant{}, fmt.Errorf("meeting: guest join: %w", err)
	}
	if !ok {
		s.mu.Lock()
		blocked := s.throttle.Fail(key)
		s.mu.Unlock()
		reason := "wrong passcode"
		if !found {
			reason = "unknown call ID"
		}
		log.Warn("guest join refused: "+reason, "blockedSeconds", int(blocked/time.Second))
		return Grant{}, ErrInvalidCallID
	}

	if name = CleanName(name); name == "" {
		name = "Guest"
	}
	s.mu.Lock()
	s.throttle.Reset(key)
	g, err := s.addGuestLocked(domain, sp.ID, am, name, remoteAddr, key, now)
	var username, jidStr string
	var password secret.Secret
	if g != nil {
		username, jidStr, password = g.username, g.jid, g.password
	}
	s.mu.Unlock()
	if err != nil {
		var te *ThrottledError
		if errors.As(err, &te) {
			log.Warn("guest join refused: too many unused guest accounts from this source", "retryAfterSeconds", te.Seconds())
		}
		return Grant{}, err
	}
	log.Info("guest account created", "jid", jidStr, "space", sp.ID, "accessMethod", am, "name", name)
	token, expires, err := s.rejoinCredential(ctx, rejoinClaims{User: username, Space: sp.ID, Access: am, Name: name}, passcode, now.Add(s.rejoinTTL))
	if err != nil {
		// The guest can still join; it only could not come back by itself after a restart.
		log.Error("guest rejoin credential not made", "jid", jidStr, "err", err)
	}
	return Grant{JID: jidStr, Password: password, SpaceJID: sp.ID + "@" + cb, SpaceName: sp.Name, Name: name,
		Rejoin: token, RejoinExpires: expires}, nil
}

// addGuestLocked makes a guest account for a space, unless the source (a throttle key)
// already holds maxPendingGuests accounts nobody has logged in with (a *ThrottledError).
// The caller holds mu.
func (s *Service) addGuestLocked(domain, spaceID, accessMethod, name, addr, source string, now time.Time) (*guest, error) {
	pending, oldest := 0, now
	for _, o := range s.guests {
		if o.source == source && !o.loggedIn && now.Sub(o.created) < s.guestTTL {
			pending++
			if o.created.Before(oldest) {
				oldest = o.created
			}
		}
	}
	if pending >= maxPendingGuests {
		return nil, &ThrottledError{RetryAfter: max(oldest.Add(s.guestTTL).Sub(now), time.Second)}
	}
	for {
		u, err := guestUsername()
		if err != nil {
			return nil, err
		}
		if _, taken := s.guests[u]; !taken {
			g := &guest{username: u, jid: u + "@" + domain, password: secret.New(rand.Text()), spaceID: spaceID,
				accessMethod: accessMethod, name: name, addr: addr, source: source, created: now, issued: now}
			s.guests[u] = g
			return g, nil
		}
	}
}

// matchCallID finds the way into a space that a call ID and passcode name: the space's own
// call ID and passcode, or one of its access methods' (accessMethod is then its id). found
// says whether the call ID exists, ok whether the passcode is right for it. Every candidate is
// compared, in constant time, and an unknown call ID is compared against a decoy, so that the
// time taken does not tell which call IDs exist nor which way in matched.
func (s *Service) matchCallID(ctx context.Context, callID, passcode string) (sp store.CoSpace, accessMethod string, found, ok bool, err error) {
	sp, ams, err := s.st.SpaceByCallID(ctx, callID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.CoSpace{}, "", false, false, err
	}
	found = err == nil
	if !found {
		passcodeMatches(passcode, decoyPasscode)
		return store.CoSpace{}, "", false, false, nil
	}
	if sp.CallID == callID && passcodeMatches(passcode, sp.Passcode.Reveal()) {
		ok = true
	}
	for _, am := range ams {
		if passcodeMatches(passcode, am.Passcode.Reveal()) && !ok {
			ok, accessMethod = true, am.ID
		}
	}
	return sp, accessMethod, true, ok, nil
}

// passcodeMatches compares in constant time, through digests so that the length does not
// show either.
func passcodeMatches(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// guestUsername draws a fresh guest username.
func guestUsername() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1e10))
	if err != nil {
		return "", fmt.Errorf("meeting: guest username: %w", err)
	}
	return fmt.Sprintf("guest%0*d", guestDigits, n), nil
}

// GuestPassword returns the one-time password of a live guest account that has not logged
// in yet; username is the localpart (a bare JID is accepted too). The user directory asks it
// for names it does not know.
func (s *Service) GuestPassword(username string) (secret.Secret, bool) {
	u, _, _ := strings.Cut(strings.ToLower(username), "@")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g := s.liveGuestLocked(u, now)
	if g == nil || g.password.IsZero() {
		return secret.Secret{}, false
	}
	if g.loggedIn && now.Sub(g.issued) >= s.guestTTL {
		// A password made for a resumption that never came.
		g.password = secret.Secret{}
		return secret.Secret{}, false
	}
	return g.password, true
}

// LoginResult is told of every login (it has the signature of loginrelay.Responder's
// OnLogin): when a guest logs in, its account no longer expires and its password is
// forgotten, so that it is used once.
func (s *Service) LoginResult(jidStr string, ok bool, reason string) {
	if !ok {
		return
	}
	j, err := jid.Parse(jidStr)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.liveGuestLocked(j.Localpart(), s.now())
	if g == nil || g.jid != j.Bare().String() || g.loggedIn && g.password.IsZero() {
		return
	}
	g.loggedIn = true
	g.password = secret.Secret{}
	s.log.Info("guest logged in", "jid", g.jid, "space", g.spaceID)
}

// liveGuestLocked returns the guest account, dropping it if it expired.
func (s *Service) liveGuestLocked(username string, now time.Time) *guest {
	g := s.guests[username]
	if g == nil {
		return nil
	}
	if !g.loggedIn && now.Sub(g.created) >= s.guestTTL {
		s.dropGuestLocked(username, "not logged in within "+s.guestTTL.String())
		return nil
	}
	return g
}

// guestLocked returns the live guest account with that bare JID.
func (s *Service) guestLocked(bare string) *guest {
	g := s.liveGuestLocked(localpart(bare), s.now())
	if g == nil || g.jid != bare {
		return nil
	}
	return g
}

func (s *Service) dropGuestLocked(username, why string) {
	g, ok := s.guests[username]
	if !ok {
		return
	}
	delete(s.guests, username)
	s.log.Info("guest account removed", "jid", g.jid, "space", g.spaceID, "reason", why)
}

// sweepLocked drops expired guest accounts, at most every few
// seconds.
func (s *Service) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < 5*time.Second && !now.Before(s.lastSweep) {
		return
	}
	s.lastSweep = now
	for u := range s.guests {
		s.liveGuestLocked(u, now)
	}
}

// Guests returns the number of live guest accounts.
func (s *Service) Guests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for u := range s.guests {
		if s.liveGuestLocked(u, now) != nil {
			n++
		}
	}
	return n
}

// SessionEnded is told that an XMPP session ended (loginrelay.Responder's OnSessionEnd):
// the session leaves every meeting it was in, as if it had sent unavailable presence, and a
// guest's account is removed.
func (s *Service) SessionEnded(fullJID, reason string) {
	j, err := jid.Parse(fullJID)
	if err != nil {
		return
	}
	full, bare := j.String(), j.Bare().String()
	s.mu.Lock()
	var gone []*participant
	for _, c := range s.calls {
		for _, p := range c.parts {
			if p.full == full {
				gone = append(gone, p)
			}
		}
	}
	for _, p := range gone {
		s.removeLocked(p, false, sessionEnded(reason))
	}
	if g := s.guests[j.Localpart()]; g != nil && g.jid == bare {
		s.dropGuestLocked(g.username, "session ended ("+reason+")")
	}
	s.mu.Unlock()
	s.flush()
}

// guestGate is what a guest's join and rejoin check before their credentials: a link to the
// XMPP server, usable XMPP settings (the domain and the Call Bridge's component address),
// and the throttle of remoteAddr, whose key it returns with the time it read. Each refusal
// is logged as "<what> refused: …".
func (s *Service) guestGate(ctx context.Context, log *slog.Logger, what, remoteAddr string) (domain, cb, key string, now time.Time, err error) {
	if s.linkUp != nil && !s.linkUp() {
		log.Warn(what + " refused: no link to the XMPP server")
		return "", "", "", now, ErrNoCallBridge
	}
	if domain, cb, err = s.addresses(ctx); err != nil {
		log.Warn(what+" refused: the XMPP settings are not usable", "err", err)
		return "", "", "", now, fmt.Errorf("%w: %w", ErrNoCallBridge, err)
	}
	key, now = throttle.SourceKey(remoteAddr), s.now()
	s.mu.Lock()
	s.sweepLocked(now)
	wait := s.throttle.Blocked(key)
	s.mu.Unlock()
	if wait > 0 {
		te := &ThrottledError{RetryAfter: wait}
		log.Warn(what+" refused: too many failed attempts", "retryAfterSeconds", te.Seconds())
		return "", "", "", now, te
	}
	return domain, cb, key, now, nil
}
