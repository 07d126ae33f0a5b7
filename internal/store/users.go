package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Kinds of user.
const (
	UserLocal = "local" // created through the API or CLI, with stored credentials
	UserLDAP  = "ldap"  // imported from an LDAP source; its password is checked by a bind
)

// User is a Call Bridge user (CMS /users).
type User struct {
	ID   string // a GUID, chosen by AddUser
	JID  string // the bare JID, normalised (lower-case localpart and domain)
	Kind string // UserLocal or UserLDAP

	Name, Email, CDRTag string

	// Credentials of a local user, as encoded by internal/callbridge/users; empty for LDAP users and in
	// the results of ListUsers.
	SCRAMSHA1, SCRAMSHA256, PasswordHash string

	// An LDAP user's source (an LDAPSource ID) and the DN of its directory entry.
	LDAPSource, LDAPDN string

	Created, Updated time.Time
}

const userColumns = `id, jid, kind, name, email, cdr_tag, scram_sha1, scram_sha256, password_hash,
	COALESCE(ldap_source_id, ''), ldap_dn, created_at, updated_at`

// AddUser creates a user with a new ID and returns it. It returns ErrExists if the JID is
// taken, and a *RefError if an LDAP user's source does not exist.
func (s *Store) AddUser(ctx context.Context, u User) (User, error) {
	if u.JID == "" || (u.Kind != UserLocal && u.Kind != UserLDAP) || (u.Kind == UserLDAP) != (u.LDAPSource != "") {
		return User{}, fmt.Errorf("store: add user %q: incomplete record", u.JID)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if u.Kind == UserLDAP {
			if err := s.ldapRowExists(ctx, tx, "ldap_sources", "ldapSource", u.LDAPSource); err != nil {
				return err
			}
		}
		var err error
		u, err = s.insertUser(ctx, tx, u)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// insertUser adds u under a new ID.
func (s *Store) insertUser(ctx context.Context, q execer, u User) (User, error) {
	u.ID = uuid.NewString()
	now := s.stamp()
	var src any
	if u.LDAPSource != "" {
		src = u.LDAPSource
	}
	res, err := s.exec(ctx, q, `INSERT INTO users (id, jid, kind, name, email, cdr_tag, scram_sha1, scram_sha256,
		password_hash, ldap_source_id, ldap_dn, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (jid) DO NOTHING`,
		u.ID, u.JID, u.Kind, u.Name, u.Email, u.CDRTag, u.SCRAMSHA1, u.SCRAMSHA256, u.PasswordHash,
		src, u.LDAPDN, now, now)
	if err != nil {
		return User{}, fmt.Errorf("store: add user %q: %w", u.JID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return User{}, fmt.Errorf("store: add user %q: %w", u.JID, err)
	} else if n == 0 {
		return User{}, fmt.Errorf("user %q: %w", u.JID, ErrExists)
	}
	u.Created, u.Updated = parseUserStamp(now), parseUserStamp(now)
	return u, nil
}

// User returns the user with the given ID, or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	return s.userWhere(ctx, s.db, "id", id, "")
}

// UserByJID returns the user with the given (normalised) bare JID, or ErrNotFound.
func (s *Store) UserByJID(ctx context.Context, jid string) (User, error) {
	return s.userWhere(ctx, s.db, "jid", jid, "")
}

func (s *Store) userWhere(ctx context.Context, q execer, column, value, suffix string) (User, error) {
	row := s.queryRow(ctx, q, `SELECT `+userColumns+` FROM users WHERE `+column+` = ?`+suffix, value)
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %q: %w", value, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: read user %q: %w", value, err)
	}
	return u, nil
}

// rowScanner is what *sql.Row and *sql.Rows share.
type rowScanner interface{ Scan(dest ...any) error }

func scanUser(r rowScanner) (User, error) {
	var u User
	var created, updated string
	err := r.Scan(&u.ID, &u.JID, &u.Kind, &u.Name, &u.Email, &u.CDRTag, &u.SCRAMSHA1, &u.SCRAMSHA256,
		&u.PasswordHash, &u.LDAPSource, &u.LDAPDN, &created, &updated)
	u.Created, u.Updated = parseUserStamp(created), parseUserStamp(updated)
	return u, err
}

func parseUserStamp(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// ListUsers returns a page of users ordered by JID, without their credentials, and the number
// of users that match filter in all. A non-empty filter matches, case-insensitively, a part of
// the JID, the name or the e-mail address.
func (s *Store) ListUsers(ctx context.Context, filter string, offset, limit int) ([]User, int, error) {
	where, args := "", []any{}
	if filter != "" {
		p := likePattern(filter)
		where = ` WHERE LOWER(jid) LIKE ? ESCAPE '\' OR LOWER(name) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\'`
		args = append(args, p, p, p)
	}
	return listPage(ctx, s, "users", `id, jid, kind, name, email, cdr_tag, '', '', '',
		COALESCE(ldap_source_id, ''), ldap_dn, created_at, updated_at`, `FROM users`+where, "jid, id", args, offset, limit, scanUser)
}

// UpdateUser reads a user, lets fn change it, and writes the result in one transaction. The
// ID, JID, kind and LDAP source cannot be changed this way. If fn returns an error nothing is
// written and that error is returned.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error) {
	var out User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		u, err := s.userWhere(ctx, tx, "id", id, s.d.forUpdate)
		if err != nil {
			return err
		}
		c := u
		if err := fn(&c); err != nil {
			return err
		}
		c.ID, c.JID, c.Kind, c.LDAPSource, c.Created = u.ID, u.JID, u.Kind, u.LDAPSource, u.Created
		now := s.stamp()
		_, err = s.exec(ctx, tx, `UPDATE users SET name = ?, email = ?, cdr_tag = ?, scram_sha1 = ?,
			scram_sha256 = ?, password_hash = ?, ldap_dn = ?, updated_at = ? WHERE id = ?`,
			c.Name, c.Email, c.CDRTag, c.SCRAMSHA1, c.SCRAMSHA256, c.PasswordHash, c.LDAPDN, now, id)
		if err != nil {
			return fmt.Errorf("store: update user %q: %w", id, err)
		}
		c.Updated = parseUserStamp(now)
		out = c
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// DeleteUser removes a user, or returns ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM users WHERE id = ?`, id)
	return oneRow(res, err, "delete user", id)
}

// LDAPEntry is a directory entry mapped to the user it stands for.
type LDAPEntry struct {
	DN                       string
	JID, Name, Email, CDRTag string
}

// LDAPSyncCounts says what ApplyLDAPSync changed.
type LDAPSyncCounts struct {
	Created, Updated, Unchanged, Deleted int
}

// ClashError is returned by ApplyLDAPSync when two entries map to the same JID, or an entry
// maps to the JID of a user that is not the source's (a local user, or another source's).
type ClashError struct {
	JID string
}

func (e *ClashError) Error() string { return fmt.Sprintf("store: user JID %q clashes", e.JID) }

// ApplyLDAPSync makes the users of an LDAP source be exactly entries, in one transaction:
// users whose JID (or, failing that, DN) is among the entries are updated, the other entries
// become new users, and the source's users that are not among them are deleted. On a
// *ClashError nothing is changed. A missing source is a *RefError.
func (s *Store) ApplyLDAPSync(ctx context.Context, sourceID string, entries []LDAPEntry) (LDAPSyncCounts, error) {
	var c LDAPSyncCounts
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c = LDAPSyncCounts{}
		if err := s.ldapRowExists(ctx, tx, "ldap_sources", "ldapSource", sourceID); err != nil {
			return err
		}
		rows, err := s.query(ctx, tx, `SELECT `+userColumns+` FROM users WHERE ldap_source_id = ?`+s.d.forUpdate, sourceID)
		if err != nil {
			return fmt.Errorf("store: read users of ldap source %q: %w", sourceID, err)
		}
		byJID, byDN := map[string]*User{}, map[string]*User{}
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("store: read users of ldap source %q: %w", sourceID, err)
			}
			byJID[u.JID] = &u
			byDN[strings.ToLower(u.LDAPDN)] = &u
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read users of ldap source %q: %w", sourceID, err)
		}
		seenJID := map[string]bool{}
		for _, e := range entries {
			if seenJID[e.JID] {
				return &ClashError{JID: e.JID}
			}
			seenJID[e.JID] = true
		}
		kept := map[string]bool{} // user IDs still in the directory
		for _, e := range entries {
			u := byJID[e.JID]
			if u == nil {
				// The same entry under a new JID (the mapping or an attribute changed)?
				if v := byDN[strings.ToLower(e.DN)]; v != nil && !kept[v.ID] && !seenJID[v.JID] {
					u = v
				}
			}
			if u == nil || u.JID != e.JID {
				var owner sql.NullString
				err := s.queryRow(ctx, tx, `SELECT ldap_source_id FROM users WHERE jid = ?`, e.JID).Scan(&owner)
				switch {
				case err == nil:
					return &ClashError{JID: e.JID}
				case !errors.Is(err, sql.ErrNoRows):
					return fmt.Errorf("store: look up user %q: %w", e.JID, err)
				}
			}
			if u == nil {
				if _, err := s.insertUser(ctx, tx, User{JID: e.JID, Kind: UserLDAP, Name: e.Name, Email: e.Email,
					CDRTag: e.CDRTag, LDAPSource: sourceID, LDAPDN: e.DN}); err != nil {
					if errors.Is(err, ErrExists) {
						return &ClashError{JID: e.JID}
					}
					return err
				}
				c.Created++
				continue
			}
			kept[u.ID] = true
			if u.JID == e.JID && u.Name == e.Name && u.Email == e.Email && u.CDRTag == e.CDRTag && u.LDAPDN == e.DN {
				c.Unchanged++
				continue
			}
			_, err := s.exec(ctx, tx, `UPDATE users SET jid = ?, name = ?, email = ?, cdr_tag = ?, ldap_dn = ?,
				updated_at = ? WHERE id = ?`, e.JID, e.Name, e.Email, e.CDRTag, e.DN, s.stamp(), u.ID)
			if err != nil {
				return fmt.Errorf("store: update user %q: %w", e.JID, err)
			}
			c.Updated++
		}
		for _, u := range byJID {
			if kept[u.ID] {
				continue
			}
			if _, err := s.exec(ctx, tx, `DELETE FROM users WHERE id = ?`, u.ID); err != nil {
				return fmt.Errorf("store: delete user %q: %w", u.JID, err)
			}
			c.Deleted++
		}
		return nil
	})
	if err != nil {
		return LDAPSyncCounts{}, err
	}
	return c, nil
}
