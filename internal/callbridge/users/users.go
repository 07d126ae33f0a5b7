// Package users is the Call Bridge's user directory: local users, whose credentials it
// stores, and users imported from LDAP directories the way Cisco Meeting Server imports them
// (LDAP servers, mappings and sources, and syncs that apply them), whose passwords it checks
// with a live bind and never stores.
//
// A local user's password is kept only as SCRAM-SHA-1 and SCRAM-SHA-256 salted keys
// [RFC 5802, RFC 7677] for the SCRAM mechanisms, and as an Argon2id hash (internal/passhash)
// for PLAIN. Directory answers the login relay's questions (loginrelay.Directory) for one
// XMPP domain: SCRAM keys for local users, ErrNoSCRAM for LDAP users (their client falls back
// to PLAIN), and PLAIN checks through the hash or a bind. Temporary guest accounts belong to
// the meeting service and are reached through the Guests hook.
//
// An LDAP sync reads the entries of a source (base DN and filter, paged), turns each into a
// user with the source's mapping (templates such as $uid$@example.com, see ParseTemplate),
// and makes the source's users exactly those: new entries are created, changed ones
// updated, vanished ones deleted, all in one transaction per source.
package users

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// Errors callers branch on. Store errors come wrapped: errors.Is(err, ErrNotFound) holds for
// a missing user, errors.As(err, new(*store.RefError)) for a missing LDAP object.
var (
	ErrNotFound = store.ErrNotFound
	// ErrExists: a user with that JID exists.
	ErrExists = store.ErrExists
	// ErrNotLocal: the operation applies to local users only (an LDAP user's details come
	// from the directory, and its password lives there).
	ErrNotLocal = errors.New("users: not a local user")
	// ErrInUse: an LDAP server or mapping is used by a source; a running sync cannot be
	// cancelled.
	ErrInUse = store.ErrInUse
	// ErrTooManySyncs: too many syncs are already waiting.
	ErrTooManySyncs = errors.New("users: too many ldap syncs waiting")
)

// FieldError reports an invalid value of a named field (named as in the REST API).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// ErrRequired is the Err of a FieldError for a required field that is missing.
var ErrRequired = errors.New("required")

func fieldErr(field, format string, args ...any) *FieldError {
	if format == "required" && len(args) == 0 {
		return &FieldError{Field: field, Err: ErrRequired}
	}
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Kind says where a user comes from.
type Kind string

// Kinds of user.
const (
	KindLocal Kind = store.UserLocal
	KindLDAP  Kind = store.UserLDAP
)

// User is a user as the API shows it: no credentials.
type User struct {
	ID     string // GUID
	JID    string // bare JID: username@domain
	Name   string
	Email  string
	CDRTag string
	Kind   Kind
	// LDAPSource and LDAPDN say where an LDAP user was imported from.
	LDAPSource string
	LDAPDN     string
}

func fromStore(u store.User) User {
	return User{ID: u.ID, JID: u.JID, Name: u.Name, Email: u.Email, CDRTag: u.CDRTag, Kind: Kind(u.Kind),
		LDAPSource: u.LDAPSource, LDAPDN: u.LDAPDN}
}

// LocalUser describes a local user to create.
type LocalUser struct {
	// Username is the JID's localpart (alice) or the bare JID (alice@example.com), in which
	// case its domain must be the XMPP domain.
	Username string
	Name     string
	Email    string
}

// Options configures a Service.
type Options struct {
	Store *store.Store // required
	// Domain returns the XMPP domain local users are created in; when nil, the domain of the
	// store's XMPP settings.
	Domain func(ctx context.Context) (string, error)
	Logger *slog.Logger // slog.DiscardHandler when nil
	// SCRAMIterations is the PBKDF2 iteration count of new SCRAM keys; DefaultIterations
	// when below it.
	SCRAMIterations int
	// LDAPRootCAs verifies the certificates of secure LDAP servers; the system's roots when nil.
	LDAPRootCAs *x509.CertPool
	// LDAPTimeout bounds connecting to an LDAP server and each operation on it; 10s when zero.
	LDAPTimeout time.Duration
	// KeepSyncs is how many finished sync records are kept; 100 when zero.
	KeepSyncs int
}

// DefaultIterations is the minimum (and default) PBKDF2 iteration count of SCRAM keys, the
// count RFC 7677 recommends and clients insist on.
const DefaultIterations = 4096

// maxPendingSyncs bounds the sync queue (CMS: tooManyLdapSyncs).
const maxPendingSyncs = 16

// Service manages users and LDAP imports. It runs LDAP syncs in a goroutine of its own; Close
// stops it.
type Service struct {
	store       *store.Store
	domain      func(ctx context.Context) (string, error)
	log         *slog.Logger
	iters       int
	rootCAs     *x509.CertPool
	ldapTimeout time.Duration
	keepSyncs   int

	// dummyHash is verified against when a PLAIN login names nobody, so that the answer takes
	// as long as for a real user.
	dummyHash func() string
	// argon bounds concurrent Argon2 verifications (19 MiB each).
	argon chan struct{}

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // a sync was queued

	mu               sync.Mutex
	finished         chan struct{} // closed and replaced whenever a sync finishes
	ldapInUse        bool          // see directoryInUse
	ldapCheckedUntil time.Time
}

// New returns a Service and starts its sync worker.
func New(o Options) *Service {
	s := &Service{
		store:       o.Store,
		domain:      o.Domain,
		log:         o.Logger,
		iters:       max(o.SCRAMIterations, DefaultIterations),
		rootCAs:     o.LDAPRootCAs,
		ldapTimeout: o.LDAPTimeout,
		keepSyncs:   o.KeepSyncs,
		argon:       make(chan struct{}, 4),
		kick:        make(chan struct{}, 1),
		finished:    make(chan struct{}),
		dummyHash: sync.OnceValue(func() string {
			h, _ := passhash.Hash("confab: no such user")
			return h
		}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.domain == nil {
		s.domain = func(ctx context.Context) (string, error) {
			c, err := o.Store.XMPPSettings(ctx)
			return c.Domain, err
		}
	}
	if s.ldapTimeout <= 0 {
		s.ldapTimeout = 10 * time.Second
	}
	if s.keepSyncs <= 0 {
		s.keepSyncs = 100
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.syncWorker()
	return s
}

// Close stops the sync worker, abandoning a sync in progress (it is marked failed), and
// waits for it.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// CreateLocal creates a local user with the given password.
func (s *Service) CreateLocal(ctx context.Context, u LocalUser, password secret.Secret) (User, error) {
	domain, err := s.domain(ctx)
	if err != nil {
		return User{}, fmt.Errorf("users: read the xmpp domain: %w", err)
	}
	jid, err := localJID(u.Username, strings.ToLower(domain))
	if err != nil {
		return User{}, &FieldError{Field: "username", Err: err}
	}
	if err := validText("name", u.Name); err != nil {
		return User{}, err
	}
	if err := validEmail(u.Email); err != nil {
		return User{}, err
	}
	c, err := s.newCredentials(password)
	if err != nil {
		return User{}, err
	}
	su, err := s.store.AddUser(ctx, store.User{JID: jid, Kind: store.UserLocal, Name: u.Name, Email: u.Email,
		SCRAMSHA1: c.sha1, SCRAMSHA256: c.sha256, PasswordHash: c.hash})
	if err != nil {
		return User{}, err
	}
	s.log.Info("local user created", "jid", jid, "id", su.ID)
	return fromStore(su), nil
}

// Change is a modification of a local user: nil fields are left as they are.
type Change struct {
	Name, Email *string
	Password    *secret.Secret
}

// Modify changes a local user's name, e-mail address or password; ErrNotLocal for an LDAP
// user, whose details come from the directory.
func (s *Service) Modify(ctx context.Context, id string, ch Change) (User, error) {
	if ch.Name != nil {
		if err := validText("name", *ch.Name); err != nil {
			return User{}, err
		}
	}
	if ch.Email != nil {
		if err := validEmail(*ch.Email); err != nil {
			return User{}, err
		}
	}
	var c credentials
	if ch.Password != nil {
		var err error
		if c, err = s.newCredentials(*ch.Password); err != nil {
			return User{}, err
		}
	}
	su, err := s.store.UpdateUser(ctx, id, func(u *store.User) error {
		if u.Kind != store.UserLocal {
			return fmt.Errorf("user %s: %w", u.JID, ErrNotLocal)
		}
		if ch.Name != nil {
			u.Name = *ch.Name
		}
		if ch.Email != nil {
			u.Email = *ch.Email
		}
		if ch.Password != nil {
			u.SCRAMSHA1, u.SCRAMSHA256, u.PasswordHash = c.sha1, c.sha256, c.hash
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	s.log.Info("local user changed", "jid", su.JID, "id", id, "passwordChanged", ch.Password != nil)
	return fromStore(su), nil
}

// SetPassword replaces a local user's password.
func (s *Service) SetPassword(ctx context.Context, id string, password secret.Secret) error {
	_, err := s.Modify(ctx, id, Change{Password: &password})
	return err
}

// Delete removes a local user; ErrNotLocal for an LDAP user, which a sync removes when its
// entry leaves the directory.
func (s *Service) Delete(ctx context.Context, id string) error {
	u, err := s.store.User(ctx, id)
	if err != nil {
		return err
	}
	if u.Kind != store.UserLocal {
		return fmt.Errorf("user %s: %w", u.JID, ErrNotLocal)
	}
	if err := s.store.DeleteUser(ctx, id); err != nil {
		return err
	}
	s.log.Info("local user deleted", "jid", u.JID, "id", id)
	return nil
}

// Get returns a user by ID.
func (s *Service) Get(ctx context.Context, id string) (User, error) {
	u, err := s.store.User(ctx, id)
	if err != nil {
		return User{}, err
	}
	return fromStore(u), nil
}

// GetByJID returns a user by bare JID (case-insensitive).
func (s *Service) GetByJID(ctx context.Context, jid string) (User, error) {
	u, err := s.store.UserByJID(ctx, strings.ToLower(jid))
	if err != nil {
		return User{}, err
	}
	return fromStore(u), nil
}

// List returns a page of users, both kinds, ordered by JID, and how many match filter (a
// case-insensitive part of the JID, name or e-mail address; "" for all). A limit of 0 means
// no limit.
func (s *Service) List(ctx context.Context, filter string, offset, limit int) ([]User, int, error) {
	us, total, err := s.store.ListUsers(ctx, filter, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = fromStore(u)
	}
	return out, total, nil
}

// validText accepts a display value: at most 256 bytes, valid UTF-8 without control characters.
func validText(field, v string) error {
	switch {
	case len(v) > 256:
		return fieldErr(field, "longer than 256 bytes")
	case !isPrintable(v):
		return fieldErr(field, "not valid UTF-8 text, or contains control characters")
	}
	return nil
}

// validEmail accepts "" or something shaped like an address: one @ with text either side.
func validEmail(v string) error {
	if v == "" {
		return nil
	}
	if err := validText("email", v); err != nil {
		return err
	}
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(v, " \t") || strings.Contains(domain, "@") {
		return fieldErr("email", "not an e-mail address")
	}
	return nil
}
