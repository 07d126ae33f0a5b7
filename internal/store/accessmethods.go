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

// ErrNoAccessMethod is returned for an access method that does not exist (in a space that
// does; a missing space is ErrNotFound).
var ErrNoAccessMethod = errors.New("store: no such access method")

// AccessMethod is another way into a space (CMS coSpace accessMethod): its own URI, call ID
// and passcode, and the call leg profile of those who come in this way. An empty field is
// unset.
type AccessMethod struct {
	ID             string // a GUID, chosen by the caller
	CoSpaceID      string
	Name           string
	URI            string
	CallID         string
	Passcode       secret.Secret
	Secret         secret.Secret
	CallLegProfile string // a callLegProfile's id, or ""
	Scope          string // "public", "private" or ""
	Created        time.Time
	Updated        time.Time
}

const accessMethodColumns = `id, cospace_id, name, uri, call_id, passcode, secret, call_leg_profile, scope,
	created_at, updated_at`

func scanAccessMethod(row rowScanner) (AccessMethod, error) {
	var a AccessMethod
	var passcode, sec, created, updated string
	if err := row.Scan(&a.ID, &a.CoSpaceID, &a.Name, &a.URI, &a.CallID, &passcode, &sec, &a.CallLegProfile,
		&a.Scope, &created, &updated); err != nil {
		return AccessMethod{}, err
	}
	a.Passcode, a.Secret = secret.New(passcode), secret.New(sec)
	a.Created, _ = time.Parse(time.RFC3339Nano, created)
	a.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	return a, nil
}

// checkAccessMethod checks a's call ID and URI against every space and access method (see
// checkCoSpaceUnique) and that its profile exists.
func (s *Store) checkAccessMethod(ctx context.Context, q execer, a AccessMethod) error {
	space, err := s.coSpace(ctx, q, a.CoSpaceID, "")
	if err != nil {
		return err
	}
	var n int
	if a.CallID != "" {
		if err := s.queryRow(ctx, q, `SELECT COUNT(*) FROM cospaces WHERE call_id = ? AND id <> ?`, a.CallID, a.CoSpaceID).Scan(&n); err != nil {
			return fmt.Errorf("store: check call ID: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("call ID %q: %w", a.CallID, ErrCallIDTaken)
		}
		if space.CallID == a.CallID && space.Passcode == a.Passcode {
			return fmt.Errorf("call ID %q: %w", a.CallID, ErrCallIDPasscodeTaken)
		}
		if err := s.checkAccessCallID(ctx, q, a.CoSpaceID, a.ID, a.CallID, a.Passcode.Reveal()); err != nil {
			return err
		}
	}
	if a.URI != "" {
		err := s.queryRow(ctx, q, `SELECT COUNT(*) FROM cospaces
			WHERE (lower(uri) = lower(?) OR lower(secondary_uri) = lower(?)) AND id <> ?`, a.URI, a.URI, a.CoSpaceID).Scan(&n)
		if err != nil {
			return fmt.Errorf("store: check URI: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("URI %q: %w", a.URI, ErrCoSpaceURITaken)
		}
		if (equalFold(space.URI, a.URI) || equalFold(space.SecondaryURI, a.URI)) && space.Passcode == a.Passcode {
			return fmt.Errorf("URI %q: %w", a.URI, ErrURIPasscodeTaken)
		}
		if err := s.checkAccessURI(ctx, q, a.CoSpaceID, a.ID, a.URI, a.Passcode.Reveal()); err != nil {
			return err
		}
	}
	return s.objectExists(ctx, q, KindCallLegProfile, a.CallLegProfile)
}

// CreateAccessMethod adds an access method to a space. a.ID must be set. It returns
// ErrNotFound if the space does not exist, the errors of the uniqueness checks
// (ErrCallIDTaken, ErrCallIDPasscodeTaken, ErrCoSpaceURITaken, ErrURIPasscodeTaken), a
// *RefError for a missing profile; otherwise the access method as stored.
func (s *Store) CreateAccessMethod(ctx context.Context, a AccessMethod) (AccessMethod, error) {
	if a.ID == "" || a.CoSpaceID == "" {
		return AccessMethod{}, errors.New("store: create access method: id or coSpace missing")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkAccessMethod(ctx, tx, a); err != nil {
			return err
		}
		now := s.stamp()
		if _, err := s.exec(ctx, tx, `INSERT INTO access_methods (`+accessMethodColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.CoSpaceID, a.Name, a.URI, a.CallID, a.Passcode.Reveal(), a.Secret.Reveal(), a.CallLegProfile,
			a.Scope, now, now); err != nil {
			return fmt.Errorf("store: create access method: %w", err)
		}
		var err error
		a, err = s.accessMethod(ctx, tx, a.CoSpaceID, a.ID)
		return err
	})
	if err != nil {
		return AccessMethod{}, err
	}
	return a, nil
}

// AccessMethod returns an access method of a space: ErrNotFound if the space does not exist,
// ErrNoAccessMethod if the access method does not.
func (s *Store) AccessMethod(ctx context.Context, coSpaceID, id string) (AccessMethod, error) {
	return s.accessMethod(ctx, s.db, coSpaceID, id)
}

func (s *Store) accessMethod(ctx context.Context, q execer, coSpaceID, id string) (AccessMethod, error) {
	a, err := scanAccessMethod(s.queryRow(ctx, q, `SELECT `+accessMethodColumns+` FROM access_methods
		WHERE cospace_id = ? AND id = ?`, coSpaceID, id))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.coSpace(ctx, q, coSpaceID, ""); err != nil {
			return AccessMethod{}, err
		}
		return AccessMethod{}, fmt.Errorf("access method %q of coSpace %q: %w", id, coSpaceID, ErrNoAccessMethod)
	}
	if err != nil {
		return AccessMethod{}, fmt.Errorf("store: read access method: %w", err)
	}
	return a, nil
}

// UpdateAccessMethod lets fn change an access method (not its ID or space), checks the result
// and writes it, in one transaction. It returns the access method as written, or the errors of
// AccessMethod and CreateAccessMethod, or fn's.
func (s *Store) UpdateAccessMethod(ctx context.Context, coSpaceID, id string, fn func(*AccessMethod) error) (AccessMethod, error) {
	var out AccessMethod
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		a, err := s.accessMethod(ctx, tx, coSpaceID, id)
		if err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return err
		}
		a.ID, a.CoSpaceID = id, coSpaceID
		if err := s.checkAccessMethod(ctx, tx, a); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE access_methods SET name = ?, uri = ?, call_id = ?, passcode = ?,
			secret = ?, call_leg_profile = ?, scope = ?, updated_at = ? WHERE cospace_id = ? AND id = ?`,
			a.Name, a.URI, a.CallID, a.Passcode.Reveal(), a.Secret.Reveal(), a.CallLegProfile, a.Scope, s.stamp(),
			coSpaceID, id); err != nil {
			return fmt.Errorf("store: update access method: %w", err)
		}
		out, err = s.accessMethod(ctx, tx, coSpaceID, id)
		return err
	})
	if err != nil {
		return AccessMethod{}, err
	}
	return out, nil
}

// DeleteAccessMethod removes an access method, with the errors of AccessMethod.
func (s *Store) DeleteAccessMethod(ctx context.Context, coSpaceID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.accessMethod(ctx, tx, coSpaceID, id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM access_methods WHERE cospace_id = ? AND id = ?`, coSpaceID, id); err != nil {
			return fmt.Errorf("store: delete access method: %w", err)
		}
		return nil
	})
}

// AccessMethodFilter selects and pages a space's access methods.
type AccessMethodFilter struct {
	// Text, if set, keeps those whose name, URI or call ID contains it, ignoring case.
	Text string
	// CallLegProfile, if set, keeps those that use this call leg profile.
	CallLegProfile string
	Offset, Limit  int // Limit 0: all
}

// ListAccessMethods returns a space's access methods in the order they were made, paged, and
// how many match; ErrNotFound if the space does not exist.
func (s *Store) ListAccessMethods(ctx context.Context, coSpaceID string, f AccessMethodFilter) ([]AccessMethod, int, error) {
	if _, err := s.CoSpace(ctx, coSpaceID); err != nil {
		return nil, 0, err
	}
	where, args := `FROM access_methods WHERE cospace_id = ?`, []any{coSpaceID}
	if f.Text != "" {
		p := likePattern(f.Text)
		where += ` AND (lower(name) LIKE ? ESCAPE '\' OR lower(uri) LIKE ? ESCAPE '\' OR call_id LIKE ? ESCAPE '\')`
		args = append(args, p, p, p)
	}
	if f.CallLegProfile != "" {
		where += ` AND call_leg_profile = ?`
		args = append(args, f.CallLegProfile)
	}
	return listPage(ctx, s, "access methods", accessMethodColumns, where, "created_at, id", args, f.Offset, f.Limit, scanAccessMethod)
}

// CountAccessMethods returns how many access methods a space has.
func (s *Store) CountAccessMethods(ctx context.Context, coSpaceID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM access_methods WHERE cospace_id = ?`, coSpaceID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count access methods: %w", err)
	}
	return n, nil
}

// SpaceByCallID returns the space a call ID leads into, whether it is the space's own call ID
// or an access method's, with the space's access methods that have that call ID (possibly
// none), in the order they were made. A call ID leads into at most one space. It returns
// ErrNotFound when no space or access method has it.
func (s *Store) SpaceByCallID(ctx context.Context, callID string) (CoSpace, []AccessMethod, error) {
	if callID == "" {
		return CoSpace{}, nil, fmt.Errorf("coSpace with no call ID: %w", ErrNotFound)
	}
	sp, err := s.CoSpaceByCallID(ctx, callID)
	if errors.Is(err, ErrNotFound) {
		var spaceID string
		err = s.queryRow(ctx, s.db, `SELECT cospace_id FROM access_methods WHERE call_id = ? ORDER BY created_at, id LIMIT 1`, callID).Scan(&spaceID)
		if errors.Is(err, sql.ErrNoRows) {
			return CoSpace{}, nil, fmt.Errorf("coSpace with call ID %q: %w", callID, ErrNotFound)
		}
		if err != nil {
			return CoSpace{}, nil, fmt.Errorf("store: read access method by call ID: %w", err)
		}
		sp, err = s.CoSpace(ctx, spaceID)
	}
	if err != nil {
		return CoSpace{}, nil, err
	}
	rows, err := s.query(ctx, s.db, `SELECT `+accessMethodColumns+` FROM access_methods
		WHERE cospace_id = ? AND call_id = ? ORDER BY created_at, id`, sp.ID, callID)
	ams, err := collect(rows, err, "access methods by call ID", scanAccessMethod)
	if err != nil {
		return CoSpace{}, nil, err
	}
	return sp, ams, nil
}

// equalFold reports whether a is set and equal to b, ignoring case.
func equalFold(a, b string) bool { return a != "" && strings.EqualFold(a, b) }
