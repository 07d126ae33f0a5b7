package meeting

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// Staying in a meeting across failures: the self-ping a participant's client sends to learn
// whether the Call Bridge still has it in the meeting, and the guests' rejoin credentials,
// with which a guest whose one-time password is spent gets back into its space after its
// session or the Call Bridge itself was lost (docs/protocol.md, "Staying in a meeting").

// DefaultRejoinTTL is how long a guest's rejoin credential is good for.
const DefaultRejoinTTL = 2 * time.Hour

// rejoinKeyName is the store's name of the key that signs rejoin credentials: kept in the
// store, it survives restarts and is shared by the Call Bridges of one database.
const rejoinKeyName = "guest-rejoin"

// Refusals of RejoinGuest, each told to the guest in its own words.
var (
	// ErrRejoinExpired: the credential is older than the rejoin TTL.
	ErrRejoinExpired = errors.New("meeting: the rejoin credential has expired")
	// ErrRejoinChanged: the space's (or access method's) passcode changed since the credential
	// was issued, or the space or access method is gone.
	ErrRejoinChanged = errors.New("meeting: the meeting's passcode changed since the rejoin credential was issued")
	// ErrRejoinInvalid: not a credential this Call Bridge's key signed.
	ErrRejoinInvalid = errors.New("meeting: not a valid rejoin credential")
)

// rejoinClaims is what a rejoin credential says. The credential is the claims' JSON, base64url,
// a dot, and the HMAC-SHA256 of that text under the store's key: the guest can read it but not
// change it. Pass is a keyed digest of the passcode the guest gave, so that a changed passcode
// ends the credential without the passcode being in it.
type rejoinClaims struct {
	V      int    `json:"v"`
	User   string `json:"u"`           // the guest account's username
	Space  string `json:"s"`           // the space id
	Access string `json:"a,omitempty"` // the access method the guest came in by
	Name   string `json:"n"`           // the display name
	Exp    int64  `json:"e"`           // Unix seconds
	Pass   string `json:"p"`
}

// rejoinKey returns the key that signs rejoin credentials, made in the store on first use.
func (s *Service) rejoinKey(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	k, err := s.st.Secret(ctx, rejoinKeyName, 32)
	if err != nil {
		return nil, fmt.Errorf("meeting: rejoin key: %w", err)
	}
	s.key = k
	return k, nil
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

// passcodeDigest is the keyed digest of a way into a space and its passcode.
func passcodeDigest(key []byte, spaceID, accessMethod, passcode string) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, "confab guest rejoin passcode", spaceID, accessMethod, passcode)[:16])
}

// rejoinCredential signs claims c for the passcode the guest gave, good until exp.
func (s *Service) rejoinCredential(ctx context.Context, c rejoinClaims, passcode string, exp time.Time) (secret.Secret, time.Time, error) {
	key, err := s.rejoinKey(ctx)
	if err != nil {
		return secret.Secret{}, time.Time{}, err
	}
	c.V, c.Exp, c.Pass = 1, exp.Unix(), passcodeDigest(key, c.Space, c.Access, passcode)
	return s.rejoinCredentialFor(ctx, c)
}

// errRejoinStore marks a failure to read the store while checking a credential: not the
// guest's fault, so not counted against it.
var errRejoinStore = errors.New("meeting: rejoin: store")

// checkRejoin verifies a credential: signature, expiry, and that the passcode it was issued
// for still opens the space the same way.
func (s *Service) checkRejoin(ctx context.Context, token string, now time.Time) (rejoinClaims, store.CoSpace, error) {
	key, err := s.rejoinKey(ctx)
	if err != nil {
		return rejoinClaims{}, store.CoSpace{}, fmt.Errorf("%w: %w", errRejoinStore, err)
	}
	payload, sig, ok := strings.Cut(token, ".")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(got, mac(key, "confab guest rejoin", payload)) {
		return rejoinClaims{}, store.CoSpace{}, ErrRejoinInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	var c rejoinClaims
	if err != nil || json.Unmarshal(b, &c) != nil || c.V != 1 || c.User == "" || c.Space == "" {
		return rejoinClaims{}, store.CoSpace{}, ErrRejoinInvalid
	}
	if !now.Before(time.Unix(c.Exp, 0)) {
		return c, store.CoSpace{}, ErrRejoinExpired
	}
	sp, err := s.st.CoSpace(ctx, c.Space)
	if errors.Is(err, store.ErrNotFound) {
		return c, store.CoSpace{}, ErrRejoinChanged
	}
	if err != nil {
		return c, store.CoSpace{}, fmt.Errorf("%w: %w", errRejoinStore, err)
	}
	passcode := sp.Passcode.Reveal()
	if c.Access != "" {
		am, err := s.st.AccessMethod(ctx, sp.ID, c.Access)
		if errors.Is(err, store.ErrNoAccessMethod) {
			return c, sp, ErrRejoinChanged
		}
		if err != nil {
			return c, sp, fmt.Errorf("%w: %w", errRejoinStore, err)
		}
		passcode = am.Passcode.Reveal()
	}
	if subtle.ConstantTimeCompare([]byte(passcodeDigest(key, sp.ID, c.Access, passcode)), []byte(c.Pass)) != 1 {
		return c, sp, ErrRejoinChanged
	}
	return c, sp, nil
}

// RejoinGuest takes a guest's rejoin credential (Grant.Rejoin) and lets the guest back into
// its space with the name it gave: when its account is still live on this Call Bridge, with a
// new one-time password for that account (so that the guest's XMPP session can be resumed);
// otherwise, after a restart of the Call Bridge or once the account was removed, with a new
// guest account for the same space, access method and name. The credential returned is good
// until the same time as the one given: a rejoin does not extend it.
//
// It is throttled as JoinAsGuest is, by remoteAddr. The errors are ErrRejoinExpired,
// ErrRejoinChanged, ErrRejoinInvalid, *ThrottledError, ErrNoCallBridge, or another error for a
// store failure. Every refusal is logged.
func (s *Service) RejoinGuest(ctx context.Context, token, remoteAddr string) (Grant, error) {
	log := s.log.With("remote", remoteAddr)
	domain, cb, key, now, err := s.guestGate(ctx, log, "guest rejoin", remoteAddr)
	if err != nil {
		return Grant{}, err
	}
	c, sp, err := s.checkRejoin(ctx, token, now)
	if errors.Is(err, errRejoinStore) {
		return Grant{}, err
	}
	if err != nil {
		s.mu.Lock()
		blocked := s.throttle.Fail(key)
		s.mu.Unlock()
		log.Warn("guest rejoin refused", "err", err, "guest", c.User, "space", c.Space, "blockedSeconds", int(blocked/time.Second))
		return Grant{}, err
	}
	exp := time.Unix(c.Exp, 0)
	s.mu.Lock()
	s.throttle.Reset(key)
	if g := s.liveGuestLocked(c.User, now); g != nil && g.spaceID == c.Space {
		// The account is still here: the same account with a new one-time password, so that
		// the guest's session can be resumed.
		g.password, g.issued = secret.New(rand.Text()), now
		gr := Grant{JID: g.jid, Password: g.password, SpaceJID: sp.ID + "@" + cb, SpaceName: sp.Name, Name: g.name,
			Rejoin: secret.New(token), RejoinExpires: exp}
		s.mu.Unlock()
		log.Info("guest rejoin: a new one-time password for the same account", "jid", gr.JID, "space", sp.ID)
		return gr, nil
	}
	g, err := s.addGuestLocked(domain, sp.ID, c.Access, c.Name, remoteAddr, key, now)
	var gr Grant
	if g != nil {
		gr = Grant{JID: g.jid, Password: g.password, SpaceJID: sp.ID + "@" + cb, SpaceName: sp.Name, Name: g.name}
	}
	s.mu.Unlock()
	if err != nil {
		log.Warn("guest rejoin refused: too many unused guest accounts from this source", "err", err)
		return Grant{}, err
	}
	user, _, _ := strings.Cut(gr.JID, "@")
	// The credential passes to the new account, with the same end.
	c.User = user
	token2, _, err := s.rejoinCredentialFor(ctx, c)
	if err != nil {
		log.Error("guest rejoin credential not made", "jid", gr.JID, "err", err)
	}
	gr.Rejoin, gr.RejoinExpires = token2, exp
	log.Info("guest rejoin: a new guest account", "jid", gr.JID, "space", sp.ID, "accessMethod", c.Access, "previous", c.User, "name", gr.Name)
	return gr, nil
}

// rejoinCredentialFor signs claims that already carry their passcode digest and end.
func (s *Service) rejoinCredentialFor(ctx context.Context, c rejoinClaims) (secret.Secret, time.Time, error) {
	key, err := s.rejoinKey(ctx)
	if err != nil {
		return secret.Secret{}, time.Time{}, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return secret.Secret{}, time.Time{}, err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	sig := base64.RawURLEncoding.EncodeToString(mac(key, "confab guest rejoin", payload))
	return secret.New(payload + "." + sig), time.Unix(c.Exp, 0), nil
}

// selfPing answers a participant's <ping xmlns='urn:confab:meeting:1'/> to its own address in
// the meeting (as XEP-0410's self-ping to a room occupant): an empty result while the sender
// is that participant, not-acceptable when the Call Bridge does not have it in the meeting
// (it was never there, or the Call Bridge lost the meeting: a restart, a lost link). The
// client rejoins on not-acceptable, and on an error from the XMPP server saying the Call
// Bridge cannot be reached.
func (s *Service) selfPing(conn Sender, e *stream.Element, spaceID, full, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.participantLocked(spaceID, full); p != nil && p.id == id {
		s.queue(conn, iqResult(e).End("iq").B)
		return
	}
	s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: "cancel", Condition: "not-acceptable", Text: "You are not in this meeting"}))
}
