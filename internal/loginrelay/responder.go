package loginrelay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/throttle"
)

// Directory is where a Responder checks users.
type Directory interface {
	// SCRAMCredentials returns the stored SCRAM keys of username for mech (SCRAM-SHA-1 or
	// SCRAM-SHA-256). It returns ErrUnknownUser, ErrNoSCRAM (the user must use PLAIN),
	// ErrAccountDisabled, or another error for a temporary failure.
	SCRAMCredentials(ctx context.Context, mech, username string) (scram.StoredCredentials, error)
	// CheckPlain checks a password. It returns nil, ErrUnknownUser, ErrBadPassword,
	// ErrAccountDisabled, or another error for a temporary failure (directory unreachable).
	CheckPlain(ctx context.Context, username, password string) error
	// JID returns the bare JID of an authenticated username.
	JID(username string) string
}

// DefaultSessionTTL is how long a Responder keeps an unfinished exchange.
const DefaultSessionTTL = 60 * time.Second

// Responder is the Call Bridge's side of the login relay: the SASL server. Set its exported
// fields before the first call; it is then safe for concurrent use. Do not copy it.
type Responder struct {
	// Domain is the XMPP domain. Requests are accepted only from it (the XMPP server itself),
	// never from a client whose IQ was routed to the component.
	Domain string
	// Dir checks users.
	Dir Directory
	// Logger receives login outcomes and protocol problems; nil discards.
	Logger *slog.Logger
	// OnLogin, if set, is called after every completed exchange: the JID tried (or "" if the
	// request named nobody), whether it succeeded, and the SASL condition if not.
	OnLogin func(jid string, ok bool, reason string)
	// OnLoginSource, if set, is told the address (its throttle key: the IPv4 address or the
	// IPv6 /64) that a successful login came from, so that what the account does next can
	// be limited per address too.
	OnLoginSource func(jid, source string)
	// OnSessionEnd, if set, is called when the XMPP server reports that an authenticated
	// session ended: the full JID and the reason ("closed", "timeout", "error").
	OnSessionEnd func(jid, reason string)
	// SessionTTL bounds how long an unfinished exchange is kept (DefaultSessionTTL if zero).
	SessionTTL time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// AccountThrottle and SourceThrottle slow down password guessing. Failed logins
	// (not-authorized: a wrong password and an unknown user alike) are counted per username
	// and per client address (as the XMPP server relays it: the IPv4 address, or the IPv6
	// /64). A name or an address that failed too often is answered temporary-auth-failure,
	// saying when to retry, before any password is checked, until its block ends; each block
	// is logged. A success clears the name's count. Zero fields take the defaults: per name,
	// 5 failures within 5 minutes block it for 5s, each further block twice as long up to 1
	// minute; per address, 20 failures within 5 minutes block it for 30s, up to 15 minutes.
	AccountThrottle, SourceThrottle throttle.Config
	// LockoutThrottle bounds the failed checks of one name that reach the Directory within
	// a long window, for every name alike (so that it tells nobody which names exist), so
	// that guessing through Confab never reaches a directory's own lockout threshold
	// (Active Directory's). Zero fields: 8 failures within 30 minutes, then the name waits
	// out the 30 minutes. A login is counted before its check runs, so simultaneous guesses
	// count one each.
	LockoutThrottle throttle.Config
	// FailureFloor is the least time a login that fails as not-authorized takes to be
	// answered (DefaultFailureFloor when 0; none when negative), so that a wrong password of
	// a local user (an Argon2 check), of a directory user (an LDAP bind) and of nobody take
	// the same time. HandleIQ sleeps until then; HandleIQTimed returns when to send instead.
	FailureFloor time.Duration

	once      sync.Once
	fakeKey   []byte // derives decoy SCRAM salts for unknown users
	guard     guard
	mu        sync.Mutex
	sessions  map[string]*session
	lastSweep time.Time
}

// session is one exchange in progress.
type session struct {
	mech    string
	source  string // throttle key of the client's address ("" if unknown)
	expires time.Time
	// SCRAM: the conversation and what the credential lookup ran into.
	conv      *scram.ServerConversation
	username  string
	lookupErr error
	wait      time.Duration // the login is throttled for this long
	started   bool          // the client-first message has been processed
	// settle ends the throttles' count of this login's check (see guard.attempt); nil
	// until the check is counted. failedCheck records that it failed as not-authorized.
	settle      func(failed bool)
	failedCheck bool
}

// done settles a check that ended otherwise than by a wrong password (success, a malformed
// message, a disabled account, an outage, an abort, an expiry): it was no failure.
func (s *session) done() {
	if s != nil && s.settle != nil {
		s.settle(false)
	}
}

func (r *Responder) init() {
	r.once.Do(func() {
		r.fakeKey = make([]byte, 32)
		_, _ = rand.Read(r.fakeKey)
		r.sessions = make(map[string]*session)
		r.guard = newGuard(r.AccountThrottle, r.SourceThrottle, r.now, "login relay", r.Domain)
		r.guard.lockout = throttle.New(r.LockoutThrottle, lockoutThrottle(), r.now)
	})
}

func (r *Responder) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Responder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Responder) ttl() time.Duration {
	if r.SessionTTL > 0 {
		return r.SessionTTL
	}
	return DefaultSessionTTL
}

// take removes and returns a live session.
func (r *Responder) take(id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[id]
	delete(r.sessions, id)
	if s != nil && r.now().After(s.expires) {
		s.done()
		return nil
	}
	return s
}

// keep stores a session that awaits the client's next response.
func (r *Responder) keep(id string, s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.expires = r.now().Add(r.ttl())
	r.sessions[id] = s
}

// sweep drops expired sessions, at most a few times per TTL.
func (r *Responder) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.lastSweep) < r.ttl()/4 {
		return
	}
	r.lastSweep = now
	for id, s := range r.sessions {
		if now.After(s.expires) {
			delete(r.sessions, id)
			s.done()
		}
	}
}

// Sessions returns the number of unfinished exchanges held.
func (r *Responder) Sessions() int {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// DefaultFailureFloor is Responder.FailureFloor's default.
const DefaultFailureFloor = 400 * time.Millisecond

// HandleIQ answers a login relay request. It returns the IQ to write back on the link, or nil
// if iq is not a login relay request (the caller handles it). A not-authorized failure is
// returned no sooner than FailureFloor after the call.
func (r *Responder) HandleIQ(ctx context.Context, el *stream.Element) []byte {
	reply, at := r.HandleIQTimed(ctx, el)
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return reply
}

// HandleIQTimed is HandleIQ without the wait: it returns the reply and when to send it (the
// zero time for at once), so that the caller can hold the answer to a wrong password without
// holding a goroutine.
func (r *Responder) HandleIQTimed(ctx context.Context, el *stream.Element) (reply []byte, notBefore time.Time) {
	start := time.Now()
	if el.Name.Local != "iq" || el.Get("type") != "set" || el.Payload().Space != NS {
		return nil, time.Time{}
	}
	r.init()
	r.sweep()
	req, err := decodeRequest(el)
	if err != nil {
		r.logger().Warn("login relay: unreadable request", "err", err)
		return stream.ErrorReply(el, stream.StanzaError{Type: stream.ErrModify, Condition: "bad-request"}), time.Time{}
	}
	if req.Auth == nil && req.Response == nil && req.Abort == nil {
		return nil, time.Time{}
	}
	if from := el.Get("from"); r.Domain != "" && from != r.Domain {
		// Only the XMPP server may ask; a client's IQ routed here must not reach the SASL code.
		r.logger().Warn("login relay: request from someone other than the XMPP server refused", "from", from)
		return stream.ErrorReply(el, stream.StanzaError{Type: stream.ErrCancel, Condition: "forbidden"}), time.Time{}
	}
	var p any
	switch {
	case req.Auth != nil:
		p = r.auth(ctx, req.Auth)
	case req.Response != nil:
		p = r.response(ctx, req.Response)
	default:
		r.take(req.Abort.Session).done()
		p = failurePayload{Session: req.Abort.Session, Condition: CondAborted}
	}
	reply = marshal(iq{Type: "result", ID: el.Get("id"), From: el.Get("to"), To: el.Get("from"), Payload: p})
	if f, ok := p.(failurePayload); ok && f.Condition == CondNotAuthorized {
		if floor := r.failureFloor(); floor > 0 {
			notBefore = start.Add(floor)
		}
	}
	return reply, notBefore
}

func (r *Responder) failureFloor() time.Duration {
	if r.FailureFloor == 0 {
		return DefaultFailureFloor
	}
	return max(r.FailureFloor, 0)
}

// HandleMessage handles a session-end message from the XMPP server and reports whether m was
// one.
func (r *Responder) HandleMessage(m *stream.Element) bool {
	if m.Name.Local != "message" || m.Payload().Space != NS {
		return false
	}
	v, err := decodeNotice(m)
	if err != nil || v.End == nil {
		return false
	}
	if from := m.Get("from"); r.Domain != "" && from != r.Domain {
		r.logger().Warn("login relay: session-end from someone other than the XMPP server ignored", "from", from)
		return true
	}
	if r.OnSessionEnd != nil && v.End.JID != "" {
		r.OnSessionEnd(v.End.JID, v.End.Reason)
	}
	return true
}

func (r *Responder) auth(ctx context.Context, a *authPayload) any {
	if a.Session == "" {
		return failurePayload{Condition: CondMalformedRequest, Text: "no session"}
	}
	r.take(a.Session).done() // a session id is used once; a repeated <auth/> starts over
	data, err := decode64(a.Data)
	if err != nil {
		return r.fail(a.Session, "", CondMalformedRequest, "The initial response is not valid base64")
	}
	s := &session{mech: a.Mechanism, source: sourceOf(a.Addr)}
	switch a.Mechanism {
	case MechPLAIN:
		if data == nil {
			r.keep(a.Session, s)
			return challengePayload{Session: a.Session, Data: encode64([]byte{})}
		}
		return r.plain(ctx, a.Session, s, data)
	case MechSCRAMSHA1, MechSCRAMSHA256:
		r.newSCRAM(ctx, s)
		if data == nil {
			r.keep(a.Session, s)
			return challengePayload{Session: a.Session, Data: encode64([]byte{})}
		}
		return r.scramStep(a.Session, s, data)
	default:
		return r.fail(a.Session, "", CondInvalidMechanism, "Mechanism "+a.Mechanism+" is not supported")
	}
}

func (r *Responder) response(ctx context.Context, p *responsePayload) any {
	s := r.take(p.Session)
	if s == nil {
		return failurePayload{Session: p.Session, Condition: CondTemporaryAuthFail, Text: "No such login in progress (it may have expired); please retry"}
	}
	data, err := decode64(p.Data)
	if err != nil {
		return r.fail(p.Session, s.username, CondMalformedRequest, "The response is not valid base64")
	}
	if data == nil {
		data = []byte{}
	}
	if s.mech == MechPLAIN {
		return r.plain(ctx, p.Session, s, data)
	}
	return r.scramStep(p.Session, s, data)
}

// fail ends a session with a SASL failure and reports it.
func (r *Responder) fail(id, username, cond, text string) failurePayload {
	jid := ""
	if username != "" {
		jid = r.Dir.JID(username)
	}
	if r.OnLogin != nil {
		r.OnLogin(jid, false, cond) // the Call Bridge logs it there, once, in its own words
	} else {
		r.logger().Info("login failed", "jid", jid, "condition", cond, "text", text)
	}
	return failurePayload{Session: id, Condition: cond, Text: text}
}

func (r *Responder) succeed(id string, s *session, username string, data []byte) successPayload {
	s.done()
	r.guard.succeeded(username)
	jid := r.Dir.JID(username)
	if r.OnLogin != nil {
		r.OnLogin(jid, true, "") // the Call Bridge logs it there, in its own words
	} else {
		r.logger().Info("login succeeded", "jid", jid)
	}
	if r.OnLoginSource != nil && s != nil && s.source != "" {
		r.OnLoginSource(jid, s.source)
	}
	p := successPayload{Session: id, JID: jid, Data: encode64(data)}
	if r.isGuest(username) {
		p.Guest = "true"
	}
	return p
}

// isGuest says whether username is a guest account: the Directory's answer if it knows, the
// reserved form of guest names otherwise.
func (r *Responder) isGuest(username string) bool {
	if g, ok := r.Dir.(GuestDirectory); ok {
		return g.IsGuest(username)
	}
	return IsGuestName(username)
}

// username maps the name a client authenticated as to a Directory username: a client may
// send its bare JID instead of its localpart.
func (r *Responder) username(s string) string {
	if r.Domain != "" {
		if local, ok := strings.CutSuffix(s, "@"+r.Domain); ok {
			return local
		}
	}
	return s
}

// authzOK reports whether the authorization identity a client asked for is its own: none,
// its bare JID, or its username. Confab lets nobody act as someone else.
func (r *Responder) authzOK(authzid, username string) bool {
	return authzid == "" || authzid == username || authzid == r.Dir.JID(username)
}

// plain checks a PLAIN message [RFC 4616 §2]: authzid NUL authcid NUL passwd.
func (r *Responder) plain(ctx context.Context, id string, s *session, msg []byte) any {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || !utf8.Valid(msg) {
		return r.fail(id, "", CondMalformedRequest, "Not a PLAIN message")
	}
	authzid, authcid, passwd := string(parts[0]), string(parts[1]), string(parts[2])
	if authcid == "" || len(authcid) > 255 || len(passwd) > 255 || len(authzid) > 255 {
		return r.fail(id, "", CondMalformedRequest, "Not a PLAIN message")
	}
	username := r.username(authcid)
	wait, settle := r.guard.attempt(ctx, r.logger(), s.source, username)
	if wait > 0 {
		return r.throttled(id, s.source, username, wait)
	}
	s.settle = settle
	defer s.done() // unless wrong settled it as a failure first
	if passwd == "" {
		// Never hand an empty password on: an LDAP server takes it as an anonymous bind.
		return r.wrong(id, s, username, textInvalidCredentials)
	}
	switch err := r.Dir.CheckPlain(ctx, username, passwd); {
	case err == nil:
	case errors.Is(err, ErrUsernameNotRecognized):
		return r.wrong(id, s, username, textNotRecognized)
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrBadPassword):
		return r.wrong(id, s, username, textInvalidCredentials)
	case errors.Is(err, ErrAccountDisabled):
		return r.fail(id, username, CondAccountDisabled, "This account is disabled")
	default:
		r.logger().Error("login relay: the directory could not check a password", "user", username, "err", err)
		return r.fail(id, username, CondTemporaryAuthFail, "The user directory is unavailable; please retry")
	}
	if !r.authzOK(authzid, username) {
		return r.fail(id, username, CondInvalidAuthzid, "You may only log in as yourself")
	}
	return r.succeed(id, s, username, nil)
}

// newSCRAM prepares a SCRAM server conversation whose credential lookup records what the
// Directory said, so that scramStep can tell an unknown user from a directory outage.
func (r *Responder) newSCRAM(ctx context.Context, s *session) {
	hash := scram.SHA256
	if s.mech == MechSCRAMSHA1 {
		hash = scram.SHA1
	}
	srv, err := hash.NewServer(func(name string) (scram.StoredCredentials, error) {
		s.username = r.username(name)
		wait, settle := r.guard.attempt(ctx, r.logger(), s.source, s.username)
		if s.wait = wait; wait > 0 {
			return scram.StoredCredentials{}, errThrottled // the Directory is not asked
		}
		s.settle = settle // settled at the proof, or when the exchange ends otherwise
		creds, err := r.Dir.SCRAMCredentials(ctx, s.mech, s.username)
		if errors.Is(err, ErrUnknownUser) && !errors.Is(err, ErrUsernameNotRecognized) {
			// Carry on with decoy keys, so that an unknown user fails exactly like a wrong
			// password: at the proof, after the same messages.
			return r.decoy(s.mech, s.username), nil
		}
		s.lookupErr = err
		return creds, err
	})
	if err != nil {
		panic("loginrelay: scram.NewServer: " + err.Error()) // it fails on no input
	}
	s.conv = srv.NewConversation()
}

// decoy returns credentials for a user who does not exist: a salt that stays the same for the
// same name (as a real user's would), keys nobody can match.
func (r *Responder) decoy(mech, username string) scram.StoredCredentials {
	m := hmac.New(sha256.New, r.fakeKey)
	m.Write([]byte(mech + "\x00" + username))
	sum := m.Sum(nil)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(sum[:16]), Iters: memoryIterations},
		StoredKey:  key,
		ServerKey:  key,
	}
}

func (r *Responder) scramStep(id string, s *session, msg []byte) any {
	out, err := s.conv.Step(string(msg))
	if !s.started {
		s.started = true
		kept := false
		defer func() {
			if !kept {
				s.done() // the exchange ended at its first step otherwise than by a failure
			}
		}()
		switch {
		case s.wait > 0:
			return r.throttled(id, s.source, s.username, s.wait)
		case errors.Is(s.lookupErr, ErrUsernameNotRecognized):
			return r.wrong(id, s, s.username, textNotRecognized)
		case errors.Is(s.lookupErr, ErrNoSCRAM):
			return r.fail(id, s.username, CondInvalidMechanism, "use PLAIN")
		case errors.Is(s.lookupErr, ErrAccountDisabled):
			return r.fail(id, s.username, CondAccountDisabled, "This account is disabled")
		case s.lookupErr != nil:
			r.logger().Error("login relay: the directory could not look up a user", "user", s.username, "err", s.lookupErr)
			return r.fail(id, s.username, CondTemporaryAuthFail, "The user directory is unavailable; please retry")
		case err != nil:
			return r.fail(id, s.username, CondMalformedRequest, "Not a valid SCRAM client-first message")
		}
		r.keep(id, s)
		kept = true
		return challengePayload{Session: id, Data: encode64([]byte(out))}
	}
	defer s.done() // unless wrong settled it as a failure first
	if err != nil || !s.conv.Valid() {
		return r.wrong(id, s, s.username, textInvalidCredentials)
	}
	if !r.authzOK(s.conv.AuthzID(), s.username) {
		return r.fail(id, s.username, CondInvalidAuthzid, "You may only log in as yourself")
	}
	return r.succeed(id, s, s.username, []byte(out))
}
