package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"confab.dev/confab/internal/secret"
)

// Errors of the coSpace methods that callers branch on. ErrCoSpaceURITaken and ErrCallIDTaken
// also match ErrExists.
var (
	ErrCoSpaceURITaken = fmt.Errorf("coSpace URI already in use: %w", ErrExists)
	ErrCallIDTaken     = fmt.Errorf("call ID already in use: %w", ErrExists)
	// ErrCallIDPasscodeTaken and ErrURIPasscodeTaken: within one space, the space and its
	// access methods may share a call ID or a URI only with different passcodes.
	ErrCallIDPasscodeTaken = fmt.Errorf("call ID and passcode already in use in this coSpace: %w", ErrExists)
	ErrURIPasscodeTaken    = fmt.Errorf("URI and passcode already in use in this coSpace: %w", ErrExists)
	// ErrNoCoSpaceMember is returned for a member that does not exist (in a space that does;
	// a missing space is ErrNotFound).
	ErrNoCoSpaceMember = errors.New("store: no such coSpace member")
)

// CoSpace is a space (CMS coSpace): a meeting room that persists between meetings. An empty
// field is unset. The store checks uniqueness only (ErrCoSpaceURITaken, ErrCallIDTaken);
// validating the values is the caller's job (package meeting).
type CoSpace struct {
	ID              string // a GUID, chosen by the caller
	Name            string
	URI             string // the URI user part people dial or type, e.g. "demo"
	SecondaryURI    string
	CallID          string // numeric, what guests type to join
	Passcode        secret.Secret
	Secret          secret.Secret // the CMS secret that goes into join links
	OwnerJID        string        // bare JID, lower case
	NonMemberAccess bool          // users who are neither owner nor member may join
	DefaultLayout   string
	CDRTag          string // written to the callStart CDR of the space's calls
	CallLegProfile  string // a callLegProfile's id, or ""
	CallProfile     string // a callProfile's id, or ""
	Created         time.Time
	Updated         time.Time
}

// CoSpaceFilter selects and pages coSpaces.
type CoSpaceFilter struct {
	// Text, if set, keeps the spaces whose name, URI, secondary URI or call ID contains it,
	// ignoring case.
	Text string
	// CallLegProfile, if set, keeps the spaces that use this call leg profile (CMS's
	// callLegProfileFilter).
	CallLegProfile string
	// Offset skips that many spaces; Limit returns at most that many (0: all).
	Offset, Limit int
}

// CoSpaceMember is a user's membership of a space (CMS coSpaceUser).
type CoSpaceMember struct {
	ID        string // a GUID, chosen by the caller
	CoSpaceID string
	UserJID   string // bare JID, lower case
	Role      string // "member" or "owner"
	Created   time.Time
}

const coSpaceColumns = `id, name, uri, secondary_uri, call_id, passcode, secret, owner_jid,
	non_member_access, default_layout, cdr_tag, call_leg_profile, call_profile, created_at, updated_at`

func scanCoSpace(row rowScanner) (CoSpace, error) {
	var c CoSpace
	var passcode, sec, created, updated string
	var nma int64
	err := row.Scan(&c.ID, &c.Name, &c.URI, &c.SecondaryURI, &c.CallID, &passcode, &sec, &c.OwnerJID,
		&nma, &c.DefaultLayout, &c.CDRTag, &c.CallLegProfile, &c.CallProfile, &created, &updated)
	if err != nil {
		return CoSpace{}, err
	}
	c.Passcode, c.Secret, c.NonMemberAccess = secret.New(passcode), secret.New(sec), nma != 0
	c.Created, _ = time.Parse(time.RFC3339Nano, created)
	c.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	return c, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkCoSpaceUnique returns ErrCallIDTaken or ErrCoSpaceURITaken if another space (not id),
// or an access method of another space, already uses c's call ID, or one of c's URIs as its
// URI or secondary URI; ErrCallIDPasscodeTaken or ErrURIPasscodeTaken if one of c's own access
// methods has its call ID or a URI with the same passcode. It also checks that the profiles
// c names exist (*RefError).
func (s *Store) checkCoSpaceUnique(ctx context.Context, q execer, c CoSpace) error {
	var n int
	if c.CallID != "" {
		if err := s.queryRow(ctx, q, `SELECT COUNT(*) FROM cospaces WHERE call_id = ? AND id <> ?`, c.CallID, c.ID).Scan(&n); err != nil {
			return fmt.Errorf("store: check call ID: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("call ID %q: %w", c.CallID, ErrCallIDTaken)
		}
		if err := s.checkAccessCallID(ctx, q, c.ID, "", c.CallID, c.Passcode.Reveal()); err != nil {
			return err
		}
	}
	if c.URI != "" && strings.EqualFold(c.URI, c.SecondaryURI) {
		return fmt.Errorf("URI %q is also the secondary URI: %w", c.URI, ErrCoSpaceURITaken)
	}
	for _, u := range []string{c.URI, c.SecondaryURI} {
		if u == "" {
			continue
		}
		err := s.queryRow(ctx, q, `SELECT COUNT(*) FROM cospaces
			WHERE (lower(uri) = lower(?) OR lower(secondary_uri) = lower(?)) AND id <> ?`, u, u, c.ID).Scan(&n)
		if err != nil {
			return fmt.Errorf("store: check coSpace URI: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("URI %q: %w", u, ErrCoSpaceURITaken)
		}
		if err := s.checkAccessURI(ctx, q, c.ID, "", u, c.Passcode.Reveal()); err != nil {
			return err
		}
	}
	if err := s.objectExists(ctx, q, KindCallLegProfile, c.CallLegProfile); err != nil {
		return err
	}
	return s.objectExists(ctx, q, KindCallProfile, c.CallProfile)
}

// checkAccessCallID checks a call ID for a space (spaceID) or one of its access methods
// (accessID, "" for the space itself) against the access methods: another space's may not
// have it at all, another of this space's not with the same passcode.
func (s *Store) checkAccessCallID(ctx context.Context, q execer, spaceID, accessID, callID, passcode string) error {
	var other, same int
	err := s.queryRow(ctx, q, `SELECT
		COALESCE(SUM(CASE WHEN cospace_id <> ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN cospace_id = ? AND passcode = ? AND id <> ? THEN 1 ELSE 0 END), 0)
		FROM access_methods WHERE call_id = ?`, spaceID, spaceID, passcode, accessID, callID).Scan(&other, &same)
	if err != nil {
		return fmt.Errorf("store: check call ID: %w", err)
	}
	if other > 0 {
		return fmt.Errorf("call ID %q: %w", callID, ErrCallIDTaken)
	}
	if same > 0 {
		return fmt.Errorf("call ID %q: %w", callID, ErrCallIDPasscodeTaken)
	}
	return nil
}

// checkAccessURI is checkAccessCallID for a URI, compared ignoring case.
func (s *Store) checkAccessURI(ctx context.Context, q execer, spaceID, accessID, uri, passcode string) error {
	var other, same int
	err := s.queryRow(ctx, q, `SELECT
		COALESCE(SUM(CASE WHEN cospace_id <> ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN cospace_id = ? AND passcode = ? AND id <> ? THEN 1 ELSE 0 END), 0)
		FROM access_methods WHERE lower(uri) = lower(?)`, spaceID, spaceID, passcode, accessID, uri).Scan(&other, &same)
	if err != nil {
		return fmt.Errorf("store: check URI: %w", err)
	}
	if other > 0 {
		return fmt.Errorf("URI %q: %w", uri, ErrCoSpaceURITaken)
	}
	if same > 0 {
		return fmt.Errorf("URI %q: %w", uri, ErrURIPasscodeTaken)
	}
	return nil
}

// CreateCoSpace adds a space. c.ID must be set (and new: ErrExists otherwise); Created and
// Updated are set by the store. It returns the space as stored.
func (s *Store) CreateCoSpace(ctx context.Context, c CoSpace) (CoSpace, error) {
	if c.ID == "" {
		return CoSpace{}, errors.New("store: create coSpace: no id")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkCoSpaceUnique(ctx, tx, c); err != nil {
			return err
		}
		now := s.stamp()
		res, err := s.exec(ctx, tx, `INSERT INTO cospaces (`+coSpaceColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			c.ID, c.Name, c.URI, c.SecondaryURI, c.CallID, c.Passcode.Reveal(), c.Secret.Reveal(), c.OwnerJID,
			boolInt(c.NonMemberAccess), c.DefaultLayout, c.CDRTag, c.CallLegProfile, c.CallProfile, now, now)
		if err != nil {
			return fmt.Errorf("store: create coSpace: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: create coSpace: %w", err)
		} else if n == 0 {
			return fmt.Errorf("coSpace %q: %w", c.ID, ErrExists)
		}
		c, err = s.coSpace(ctx, tx, c.ID, "")
		return err
	})
	if err != nil {
		return CoSpace{}, err
	}
	return c, nil
}

// CoSpace returns the space with that id, or ErrNotFound.
func (s *Store) CoSpace(ctx context.Context, id string) (CoSpace, error) {
	return s.coSpace(ctx, s.db, id, "")
}

func (s *Store) coSpace(ctx context.Context, q execer, id, suffix string) (CoSpace, error) {
	c, err := scanCoSpace(s.queryRow(ctx, q, `SELECT `+coSpaceColumns+` FROM cospaces WHERE id = ?`+suffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return CoSpace{}, fmt.Errorf("coSpace %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return CoSpace{}, fmt.Errorf("store: read coSpace %q: %w", id, err)
	}
	return c, nil
}

// CoSpaceByCallID returns the space with that call ID, or ErrNotFound.
func (s *Store) CoSpaceByCallID(ctx context.Context, callID string) (CoSpace, error) {
	if callID == "" {
		return CoSpace{}, fmt.Errorf("coSpace with no call ID: %w", ErrNotFound)
	}
	c, err := scanCoSpace(s.queryRow(ctx, s.db, `SELECT `+coSpaceColumns+` FROM cospaces WHERE call_id = ?`, callID))
	if errors.Is(err, sql.ErrNoRows) {
		return CoSpace{}, fmt.Errorf("coSpace with call ID %q: %w", callID, ErrNotFound)
	}
	if err != nil {
		return CoSpace{}, fmt.Errorf("store: read coSpace by call ID: %w", err)
	}
	return c, nil
}

// UpdateCoSpace reads the space, lets fn change it, checks uniqueness and writes the result,
// in one transaction, so that concurrent partial updates all take effect. fn must not change
// the ID. If fn returns an error nothing is written and that error is returned. It returns
// the space as written, or ErrNotFound.
func (s *Store) UpdateCoSpace(ctx context.Context, id string, fn func(*CoSpace) error) (CoSpace, error) {
	var out CoSpace
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := s.coSpace(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = id
		if err := s.checkCoSpaceUnique(ctx, tx, c); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `UPDATE cospaces SET name = ?, uri = ?, secondary_uri = ?, call_id = ?,
			passcode = ?, secret = ?, owner_jid = ?, non_member_access = ?, default_layout = ?, cdr_tag = ?,
			call_leg_profile = ?, call_profile = ?, updated_at = ?
			WHERE id = ?`,
			c.Name, c.URI, c.SecondaryURI, c.CallID, c.Passcode.Reveal(), c.Secret.Reveal(), c.OwnerJID,
			boolInt(c.NonMemberAccess), c.DefaultLayout, c.CDRTag, c.CallLegProfile, c.CallProfile, s.stamp(), id)
		if err != nil {
			return fmt.Errorf("store: update coSpace %q: %w", id, err)
		}
		out, err = s.coSpace(ctx, tx, id, "")
		return err
	})
	if err != nil {
		return CoSpace{}, err
	}
	return out, nil
}

// DeleteCoSpace removes a space and its memberships, or returns ErrNotFound.
func (s *Store) DeleteCoSpace(ctx context.Context, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM cospaces WHERE id = ?`, id)
	return oneRow(res, err, "delete coSpace", id)
}

// ListCoSpaces returns the spaces f selects, ordered by name (case-folded) then id, and the
// number of spaces the filter matches before paging.
func (s *Store) ListCoSpaces(ctx context.Context, f CoSpaceFilter) ([]CoSpace, int, error) {
	where, args := " WHERE 1 = 1", []any{}
	if f.Text != "" {
		p := likePattern(f.Text)
		where += ` AND (lower(name) LIKE ? ESCAPE '\' OR lower(uri) LIKE ? ESCAPE '\'
			OR lower(secondary_uri) LIKE ? ESCAPE '\' OR call_id LIKE ? ESCAPE '\')`
		args = append(args, p, p, p, p)
	}
	if f.CallLegProfile != "" {
		where += ` AND call_leg_profile = ?`
		args = append(args, f.CallLegProfile)
	}
	return listPage(ctx, s, "coSpaces", coSpaceColumns, `FROM cospaces`+where, "lower(name), id", args, f.Offset, f.Limit, scanCoSpace)
}

// CoSpacesFor returns the spaces a user (bare JID, lower case) may enter: those it owns or
// is a member of, and those open to non-members, ordered as ListCoSpaces.
func (s *Store) CoSpacesFor(ctx context.Context, userJID string) ([]CoSpace, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+coSpaceColumns+` FROM cospaces
		WHERE owner_jid = ? OR non_member_access <> 0
			OR id IN (SELECT cospace_id FROM cospace_members WHERE user_jid = ?)
		ORDER BY lower(name), id`, userJID, userJID)
	return collect(rows, err, "coSpaces of "+userJID, scanCoSpace)
}

const coSpaceMemberColumns = `id, cospace_id, user_jid, role, created_at`

func scanCoSpaceMember(row rowScanner) (CoSpaceMember, error) {
	var m CoSpaceMember
	var created string
	if err := row.Scan(&m.ID, &m.CoSpaceID, &m.UserJID, &m.Role, &created); err != nil {
		return CoSpaceMember{}, err
	}
	m.Created, _ = time.Parse(time.RFC3339Nano, created)
	return m, nil
}

// AddCoSpaceMember adds a member to a space. m.ID must be set. It returns ErrNotFound if the
// space does not exist, ErrExists if the JID is already a member; otherwise the member as
// stored.
func (s *Store) AddCoSpaceMember(ctx context.Context, m CoSpaceMember) (CoSpaceMember, error) {
	if m.ID == "" || m.CoSpaceID == "" || m.UserJID == "" {
		return CoSpaceMember{}, errors.New("store: add coSpace member: id, coSpace or JID missing")
	}
	if m.Role == "" {
		m.Role = "member"
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.coSpace(ctx, tx, m.CoSpaceID, s.d.forUpdate); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, `INSERT INTO cospace_members (`+coSpaceMemberColumns+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, m.ID, m.CoSpaceID, m.UserJID, m.Role, s.stamp())
		if err != nil {
			return fmt.Errorf("store: add coSpace member: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: add coSpace member: %w", err)
		} else if n == 0 {
			return fmt.Errorf("member %q of coSpace %q: %w", m.UserJID, m.CoSpaceID, ErrExists)
		}
		m, err = s.coSpaceMember(ctx, tx, m.CoSpaceID, "id", m.ID)
		return err
	})
	if err != nil {
		return CoSpaceMember{}, err
	}
	return m, nil
}

// coSpaceMember reads one member of a space by id or user_jid (by names the column).
func (s *Store) coSpaceMember(ctx context.Context, q execer, coSpaceID, by, value string) (CoSpaceMember, error) {
	m, err := scanCoSpaceMember(s.queryRow(ctx, q, `SELECT `+coSpaceMemberColumns+` FROM cospace_members
		WHERE cospace_id = ? AND `+by+` = ?`, coSpaceID, value))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.coSpace(ctx, q, coSpaceID, ""); err != nil {
			return CoSpaceMember{}, err
		}
		return CoSpaceMember{}, fmt.Errorf("member %q of coSpace %q: %w", value, coSpaceID, ErrNoCoSpaceMember)
	}
	if err != nil {
		return CoSpaceMember{}, fmt.Errorf("store: read coSpace member: %w", err)
	}
	return m, nil
}

// CoSpaceMember returns a member of a space by its id: ErrNotFound if the space does not
// exist, ErrNoCoSpaceMember if the member does not.
func (s *Store) CoSpaceMember(ctx context.Context, coSpaceID, id string) (CoSpaceMember, error) {
	return s.coSpaceMember(ctx, s.db, coSpaceID, "id", id)
}

// CoSpaceMemberByJID returns the membership of userJID (bare, lower case) in a space, with
// the errors of CoSpaceMember.
func (s *Store) CoSpaceMemberByJID(ctx context.Context, coSpaceID, userJID string) (CoSpaceMember, error) {
	return s.coSpaceMember(ctx, s.db, coSpaceID, "user_jid", userJID)
}

// UpdateCoSpaceMember lets fn change a member's role (other fields are kept) and writes it,
// in one transaction. It returns the member as written, or the errors of CoSpaceMember.
func (s *Store) UpdateCoSpaceMember(ctx context.Context, coSpaceID, id string, fn func(*CoSpaceMember) error) (CoSpaceMember, error) {
	var out CoSpaceMember
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		m, err := s.coSpaceMember(ctx, tx, coSpaceID, "id", id)
		if err != nil {
			return err
		}
		if err := fn(&m); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE cospace_members SET role = ? WHERE cospace_id = ? AND id = ?`,
			m.Role, coSpaceID, id); err != nil {
			return fmt.Errorf("store: update coSpace member: %w", err)
		}
		out, err = s.coSpaceMember(ctx, tx, coSpaceID, "id", id)
		return err
	})
	if err != nil {
		return CoSpaceMember{}, err
	}
	return out, nil
}

// DeleteCoSpaceMember removes a member, with the errors of CoSpaceMember.
func (s *Store) DeleteCoSpaceMember(ctx context.Context, coSpaceID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.coSpaceMember(ctx, tx, coSpaceID, "id", id); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `DELETE FROM cospace_members WHERE cospace_id = ? AND id = ?`, coSpaceID, id)
		if err != nil {
			return fmt.Errorf("store: delete coSpace member: %w", err)
		}
		return nil
	})
}

// ListCoSpaceMembers returns a space's members ordered by JID, paged as ListCoSpaces, and
// their number; ErrNotFound if the space does not exist.
func (s *Store) ListCoSpaceMembers(ctx context.Context, coSpaceID string, offset, limit int) ([]CoSpaceMember, int, error) {
	if _, err := s.CoSpace(ctx, coSpaceID); err != nil {
		return nil, 0, err
	}
	return listPage(ctx, s, "coSpace members", coSpaceMemberColumns, `FROM cospace_members WHERE cospace_id = ?`,
		"user_jid, id", []any{coSpaceID}, offset, limit, scanCoSpaceMember)
}
