package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kinds of configuration objects (Object.Kind): the API's singular names.
const (
	KindCallLegProfile = "callLegProfile"
	KindCallProfile    = "callProfile"
	KindTURNServer     = "turnServer"
)

// Object is a configuration object made of named settings (a CMS call leg profile, call
// profile, TURN server): Fields holds the settings that are set, by their API names; a setting
// that is absent is unset. What the settings mean and which values they take is the caller's
// business (package meeting for profiles); the store keeps them as given.
type Object struct {
	ID      string // a GUID, chosen by the caller
	Kind    string
	Fields  map[string]string
	Created time.Time
	Updated time.Time
}

// objectRefs are the columns that refer to objects of a kind: deleting an object unsets them,
// and they decide whether an object is in use.
var objectRefs = map[string][]struct{ table, column string }{
	KindCallLegProfile: {{"cospaces", "call_leg_profile"}, {"access_methods", "call_leg_profile"}, {"system_profiles", "call_leg_profile"}},
	KindCallProfile:    {{"cospaces", "call_profile"}, {"system_profiles", "call_profile"}},
}

const objectColumns = `id, kind, fields, created_at, updated_at`

func scanObject(row rowScanner) (Object, error) {
	var o Object
	var fields, created, updated string
	if err := row.Scan(&o.ID, &o.Kind, &fields, &created, &updated); err != nil {
		return Object{}, err
	}
	if err := json.Unmarshal([]byte(fields), &o.Fields); err != nil {
		return Object{}, fmt.Errorf("fields of %s %q: %w", o.Kind, o.ID, err)
	}
	if o.Fields == nil {
		o.Fields = map[string]string{}
	}
	o.Created, _ = time.Parse(time.RFC3339Nano, created)
	o.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	return o, nil
}

func encodeFields(f map[string]string) (string, error) {
	if f == nil {
		f = map[string]string{}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("store: encode fields: %w", err)
	}
	return string(b), nil
}

// objectExists returns nil if id is empty or names an object of kind, else a *RefError.
func (s *Store) objectExists(ctx context.Context, q execer, kind, id string) error {
	if id == "" {
		return nil
	}
	var n int
	if err := s.queryRow(ctx, q, `SELECT COUNT(*) FROM config_objects WHERE kind = ? AND id = ?`, kind, id).Scan(&n); err != nil {
		return fmt.Errorf("store: look up %s %q: %w", kind, id, err)
	}
	if n == 0 {
		return &RefError{Kind: kind, ID: id}
	}
	return nil
}

// CreateObject adds an object (o.ID and o.Kind set) and returns it as stored.
func (s *Store) CreateObject(ctx context.Context, o Object) (Object, error) {
	if o.ID == "" || o.Kind == "" {
		return Object{}, errors.New("store: create object: id or kind missing")
	}
	fields, err := encodeFields(o.Fields)
	if err != nil {
		return Object{}, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.stamp()
		if _, err := s.exec(ctx, tx, `INSERT INTO config_objects (`+objectColumns+`) VALUES (?, ?, ?, ?, ?)`,
			o.ID, o.Kind, fields, now, now); err != nil {
			return fmt.Errorf("store: create %s: %w", o.Kind, err)
		}
		o, err = s.object(ctx, tx, o.Kind, o.ID)
		return err
	})
	if err != nil {
		return Object{}, err
	}
	return o, nil
}

// Object returns the object of kind with id, or a *RefError (which matches ErrNotFound).
func (s *Store) Object(ctx context.Context, kind, id string) (Object, error) {
	return s.object(ctx, s.db, kind, id)
}

func (s *Store) object(ctx context.Context, q execer, kind, id string) (Object, error) {
	o, err := scanObject(s.queryRow(ctx, q, `SELECT `+objectColumns+` FROM config_objects WHERE kind = ? AND id = ?`, kind, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Object{}, &RefError{Kind: kind, ID: id}
	}
	if err != nil {
		return Object{}, fmt.Errorf("store: read %s %q: %w", kind, id, err)
	}
	return o, nil
}

// UpdateObject lets fn change an object's fields and writes them, in one transaction. It
// returns the object as written, a *RefError, or fn's error.
func (s *Store) UpdateObject(ctx context.Context, kind, id string, fn func(*Object) error) (Object, error) {
	var out Object
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		o, err := s.object(ctx, tx, kind, id)
		if err != nil {
			return err
		}
		if err := fn(&o); err != nil {
			return err
		}
		fields, err := encodeFields(o.Fields)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE config_objects SET fields = ?, updated_at = ? WHERE kind = ? AND id = ?`,
			fields, s.stamp(), kind, id); err != nil {
			return fmt.Errorf("store: update %s %q: %w", kind, id, err)
		}
		out, err = s.object(ctx, tx, kind, id)
		return err
	})
	if err != nil {
		return Object{}, err
	}
	return out, nil
}

// DeleteObject removes an object, or returns a *RefError. Whatever referred to it (a space's
// or an access method's profile, the system profiles) refers to nothing afterwards, as if
// unset.
func (s *Store) DeleteObject(ctx context.Context, kind, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.object(ctx, tx, kind, id); err != nil {
			return err
		}
		for _, r := range objectRefs[kind] {
			if _, err := s.exec(ctx, tx, `UPDATE `+r.table+` SET `+r.column+` = '' WHERE `+r.column+` = ?`, id); err != nil {
				return fmt.Errorf("store: unset %s.%s: %w", r.table, r.column, err)
			}
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM config_objects WHERE kind = ? AND id = ?`, kind, id); err != nil {
			return fmt.Errorf("store: delete %s %q: %w", kind, id, err)
		}
		return nil
	})
}

// Usage filters of ListObjects (CMS's usageFilter).
const (
	UsageAny          = ""
	UsageReferenced   = "referenced"
	UsageUnreferenced = "unreferenced"
)

// ListObjects returns the objects of a kind in the order they were made, paged (limit 0:
// all), and how many match. usage keeps those referred to from somewhere (UsageReferenced)
// or from nowhere (UsageUnreferenced).
func (s *Store) ListObjects(ctx context.Context, kind, usage string, offset, limit int) ([]Object, int, error) {
	where, args := `FROM config_objects WHERE kind = ?`, []any{kind}
	if usage != UsageAny {
		used := "1 = 0"
		for _, r := range objectRefs[kind] {
			used += ` OR id IN (SELECT ` + r.column + ` FROM ` + r.table + `)`
		}
		if usage == UsageUnreferenced {
			used = "NOT (" + used + ")"
		}
		where += ` AND (` + used + `)`
	}
	return listPage(ctx, s, kind+"s", objectColumns, where, "created_at, id", args, offset, limit, scanObject)
}

// SystemProfiles are the profiles in force where nothing more specific names one (CMS
// /system/profiles): ids, or "".
type SystemProfiles struct {
	CallLegProfile string
	CallProfile    string
}

// SystemProfiles returns the system profiles.
func (s *Store) SystemProfiles(ctx context.Context) (SystemProfiles, error) {
	return s.systemProfiles(ctx, s.db, "")
}

func (s *Store) systemProfiles(ctx context.Context, q execer, suffix string) (SystemProfiles, error) {
	var p SystemProfiles
	if err := s.queryRow(ctx, q, `SELECT call_leg_profile, call_profile FROM system_profiles WHERE id = 1`+suffix).
		Scan(&p.CallLegProfile, &p.CallProfile); err != nil {
		return SystemProfiles{}, fmt.Errorf("store: read system profiles: %w", err)
	}
	return p, nil
}

// UpdateSystemProfiles lets fn change the system profiles, checks that the profiles they name
// exist (*RefError) and writes them, in one transaction.
func (s *Store) UpdateSystemProfiles(ctx context.Context, fn func(*SystemProfiles) error) (SystemProfiles, error) {
	var out SystemProfiles
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := s.systemProfiles(ctx, tx, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(&p); err != nil {
			return err
		}
		if err := s.objectExists(ctx, tx, KindCallLegProfile, p.CallLegProfile); err != nil {
			return err
		}
		if err := s.objectExists(ctx, tx, KindCallProfile, p.CallProfile); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE system_profiles SET call_leg_profile = ?, call_profile = ?, updated_at = ? WHERE id = 1`,
			p.CallLegProfile, p.CallProfile, s.stamp()); err != nil {
			return fmt.Errorf("store: update system profiles: %w", err)
		}
		out = p
		return nil
	})
	if err != nil {
		return SystemProfiles{}, err
	}
	return out, nil
}
