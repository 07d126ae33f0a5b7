package loginrelay

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/xdg-go/scram"
)

// memoryIterations is the PBKDF2 iteration count of MemoryDirectory's keys, the minimum
// RFC 7677 recommends and the one clients insist on.
const memoryIterations = 4096

// MemoryDirectory is a Directory held in memory: the user table of small test components
// and examples. It stores SCRAM keys, never passwords. It is safe for concurrent use.
type MemoryDirectory struct {
	domain string
	mu     sync.RWMutex
	users  map[string]memoryUser
	decoy  scram.StoredCredentials // checked against when the user is unknown, to even out timing
}

type memoryUser struct {
	sha1, sha256 scram.StoredCredentials
	plainOnly    bool // behaves like an LDAP user: SCRAM is refused with ErrNoSCRAM
}

// NewMemoryDirectory returns an empty directory whose users' JIDs are username@domain.
func NewMemoryDirectory(domain string) *MemoryDirectory {
	d := &MemoryDirectory{domain: domain, users: make(map[string]memoryUser)}
	d.decoy, _ = storedCredentials(scram.SHA256, randomID())
	return d
}

// Add adds (or replaces) a user, computing SCRAM-SHA-1 and SCRAM-SHA-256 keys with a fresh
// random salt and 4096 iterations. Usernames are case-insensitive.
func (d *MemoryDirectory) Add(username, password string) error {
	return d.add(username, password, false)
}

// AddPlainOnly adds a user whose password can be checked only through PLAIN, as for a
// directory user whose password only an LDAP bind can verify: SCRAM is refused with ErrNoSCRAM.
func (d *MemoryDirectory) AddPlainOnly(username, password string) error {
	return d.add(username, password, true)
}

func (d *MemoryDirectory) add(username, password string, plainOnly bool) error {
	if username == "" || strings.ContainsAny(username, "@/ ") {
		return fmt.Errorf("loginrelay: invalid username %q", username)
	}
	if password == "" {
		return errors.New("loginrelay: empty password")
	}
	s1, err := storedCredentials(scram.SHA1, password)
	if err != nil {
		return err
	}
	s256, err := storedCredentials(scram.SHA256, password)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.users[strings.ToLower(username)] = memoryUser{sha1: s1, sha256: s256, plainOnly: plainOnly}
	d.mu.Unlock()
	return nil
}

// Remove deletes a user; removing an unknown user does nothing.
func (d *MemoryDirectory) Remove(username string) {
	d.mu.Lock()
	delete(d.users, strings.ToLower(username))
	d.mu.Unlock()
}

func storedCredentials(hash scram.HashGeneratorFcn, password string) (scram.StoredCredentials, error) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	c, err := hash.NewClient("", password, "")
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("loginrelay: password: %w", err)
	}
	return c.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: memoryIterations})
}

func (d *MemoryDirectory) lookup(username string) (memoryUser, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.users[strings.ToLower(username)]
	return u, ok
}

// SCRAMCredentials implements Directory.
func (d *MemoryDirectory) SCRAMCredentials(_ context.Context, mech, username string) (scram.StoredCredentials, error) {
	u, ok := d.lookup(username)
	switch {
	case !ok:
		return scram.StoredCredentials{}, ErrUnknownUser
	case u.plainOnly:
		return scram.StoredCredentials{}, ErrNoSCRAM
	case mech == MechSCRAMSHA1:
		return u.sha1, nil
	case mech == MechSCRAMSHA256:
		return u.sha256, nil
	}
	return scram.StoredCredentials{}, fmt.Errorf("loginrelay: no credentials for mechanism %s", mech)
}

// CheckPlain implements Directory: it derives the SCRAM-SHA-256 stored key from password and
// the user's salt and compares it in constant time. An unknown user costs the same work.
func (d *MemoryDirectory) CheckPlain(_ context.Context, username, password string) error {
	u, ok := d.lookup(username)
	want := u.sha256
	if !ok {
		want = d.decoy
	}
	c, err := scram.SHA256.NewClient("", password, "")
	if err != nil { // not a valid SASLprep string: it cannot be anyone's password
		return ErrBadPassword
	}
	got, err := c.GetStoredCredentialsWithError(want.KeyFactors)
	switch {
	case err != nil:
		return fmt.Errorf("loginrelay: derive key: %w", err)
	case !ok:
		return ErrUnknownUser
	case !hmac.Equal(got.StoredKey, want.StoredKey):
		return ErrBadPassword
	}
	return nil
}

// JID implements Directory.
func (d *MemoryDirectory) JID(username string) string {
	return strings.ToLower(username) + "@" + d.domain
}
