package users

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"

	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// ErrUsernameNotRecognized is returned for a username that cannot be one of this domain's:
// not a valid JID localpart, or a JID of another domain. It wraps loginrelay.ErrUnknownUser,
// so a login with it fails like any unknown user (not-authorized); the text the client
// should show is "Username is not recognized".
var ErrUsernameNotRecognized = loginrelay.ErrUsernameNotRecognized

// Guests is the meeting service's side of temporary guest accounts (guest<digits>@domain):
// the Directory asks it first for such usernames.
type Guests interface {
	// GuestPassword returns the one-time password of the live guest account username (the
	// localpart, e.g. "guest482913"), and whether there is one.
	GuestPassword(username string) (secret.Secret, bool)
}

// Directory answers the login relay's questions (it implements loginrelay.Directory) for one
// XMPP domain.
type Directory struct {
	svc    *Service
	domain string
	guests Guests
}

var _ loginrelay.Directory = (*Directory)(nil)

// Directory returns the login directory of the XMPP domain; guests may be nil.
func (s *Service) Directory(domain string, guests Guests) *Directory {
	return &Directory{svc: s, domain: strings.ToLower(domain), guests: guests}
}

// SCRAMCredentials implements loginrelay.Directory: the stored keys of a local user, keys
// derived on the spot from a guest's one-time password, ErrNoSCRAM for an LDAP user.
func (d *Directory) SCRAMCredentials(ctx context.Context, mech, username string) (scram.StoredCredentials, error) {
	var hash scram.HashGeneratorFcn
	switch mech {
	case loginrelay.MechSCRAMSHA1:
		hash = scram.SHA1
	case loginrelay.MechSCRAMSHA256:
		hash = scram.SHA256
	default:
		return scram.StoredCredentials{}, fmt.Errorf("users: no credentials for mechanism %s", mech)
	}
	local, err := localpart(username, d.domain)
	if err != nil {
		return scram.StoredCredentials{}, ErrUsernameNotRecognized
	}
	if d.guests != nil && isGuestName(local) {
		pw, ok := d.guests.GuestPassword(local)
		if !ok {
			return scram.StoredCredentials{}, loginrelay.ErrUnknownUser
		}
		k, err := deriveSCRAM(hash, pw.Reveal(), randomSalt(), DefaultIterations)
		if err != nil {
			return scram.StoredCredentials{}, fmt.Errorf("users: guest %s: %w", local, err)
		}
		return k, nil
	}
	u, err := d.svc.store.UserByJID(ctx, local+"@"+d.domain)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if d.svc.directoryInUse(ctx) {
			// A name nobody has gets the answer a directory user gets ("use PLAIN"), so that
			// the SCRAM first message tells nobody which names are the directory's.
			return scram.StoredCredentials{}, loginrelay.ErrNoSCRAM
		}
		return scram.StoredCredentials{}, loginrelay.ErrUnknownUser
	case err != nil:
		return scram.StoredCredentials{}, fmt.Errorf("users: look up %s: %w", local, err)
	case u.Kind != store.UserLocal:
		return scram.StoredCredentials{}, loginrelay.ErrNoSCRAM
	}
	enc := u.SCRAMSHA256
	if mech == loginrelay.MechSCRAMSHA1 {
		enc = u.SCRAMSHA1
	}
	k, err := decodeSCRAM(enc)
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("users: %s: %w", u.JID, err)
	}
	return k, nil
}

// CheckPlain implements loginrelay.Directory: a local user's password against its Argon2id
// hash, a guest's against its one-time password, an LDAP user's by a bind to its server. An
// unknown user costs an Argon2 verification all the same.
func (d *Directory) CheckPlain(ctx context.Context, username, password string) error {
	local, err := localpart(username, d.domain)
	if err != nil {
		return ErrUsernameNotRecognized
	}
	prepared, perr := stringprep.SASLprep.Prepare(password)
	if perr != nil || prepared == "" || len(password) > maxPasswordBytes {
		// It cannot be anyone's password; spend the time a real check would.
		d.svc.verifyHash(ctx, d.svc.dummyHash(), password)
		return loginrelay.ErrBadPassword
	}
	if d.guests != nil && isGuestName(local) {
		want, ok := d.guests.GuestPassword(local)
		if !ok {
			d.svc.verifyHash(ctx, d.svc.dummyHash(), prepared)
			return loginrelay.ErrUnknownUser
		}
		// Compare digests, so that the time taken does not depend on the lengths either.
		a, b := sha256.Sum256([]byte(prepared)), sha256.Sum256([]byte(want.Reveal()))
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return loginrelay.ErrBadPassword
		}
		return nil
	}
	u, err := d.svc.store.UserByJID(ctx, local+"@"+d.domain)
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.svc.verifyHash(ctx, d.svc.dummyHash(), prepared)
		return loginrelay.ErrUnknownUser
	case err != nil:
		return fmt.Errorf("users: look up %s: %w", local, err)
	case u.Kind == store.UserLDAP:
		return d.svc.ldapCheck(ctx, u, password)
	}
	ok, err := d.svc.verifyHash(ctx, u.PasswordHash, prepared)
	switch {
	case err != nil:
		return fmt.Errorf("users: check password of %s: %w", u.JID, err)
	case !ok:
		return loginrelay.ErrBadPassword
	}
	return nil
}

// JID implements loginrelay.Directory.
func (d *Directory) JID(username string) string {
	local, err := localpart(username, d.domain)
	if err != nil {
		return strings.ToLower(username)
	}
	return local + "@" + d.domain
}

// directoryInUse reports whether users come from an LDAP directory (an LDAP server is
// configured), remembered for a few seconds.
func (s *Service) directoryInUse(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Before(s.ldapCheckedUntil) {
		return s.ldapInUse
	}
	_, n, err := s.store.ListLDAPServers(ctx, 0, 1)
	if err != nil {
		return s.ldapInUse // keep the last answer through a passing store failure
	}
	s.ldapInUse, s.ldapCheckedUntil = n > 0, time.Now().Add(5*time.Second)
	return s.ldapInUse
}

// verifyHash runs passhash.Verify, at most a few at a time: each takes 19 MiB.
func (s *Service) verifyHash(ctx context.Context, hash, password string) (bool, error) {
	select {
	case s.argon <- struct{}{}:
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
	defer func() { <-s.argon }()
	return passhash.Verify(hash, password)
}

// LoginLogger returns a function for loginrelay.Responder.OnLogin that logs every login as
// CMS does, in lines an administrator can grep:
//
//	successful login request from alice@example.com
//	unsuccessful login request from alice@example.com: not-authorized
//
// with the JID and the reason (the SASL condition) also as attributes.
func LoginLogger(l *slog.Logger) func(jid string, ok bool, reason string) {
	return func(jid string, ok bool, reason string) {
		who := jid
		if who == "" {
			who = "(no username)"
		}
		if ok {
			l.Info("successful login request from "+who, "jid", jid)
			return
		}
		l.Warn("unsuccessful login request from "+who+": "+reason, "jid", jid, "reason", reason)
	}
}
