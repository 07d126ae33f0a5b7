package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Secret returns the key called name, making one of size random bytes the first time it is
// asked for. Every Call Bridge on the database gets the same key, before and after a
// restart: what one signs, the others (and the next run) can check.
func (s *Store) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	if name == "" || size <= 0 {
		return nil, errors.New("store: secret: no name or size")
	}
	fresh := make([]byte, size)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	// ON CONFLICT DO NOTHING: two Call Bridges making the key at once keep the first one.
	if _, err := s.exec(ctx, s.db, `INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, name, base64.StdEncoding.EncodeToString(fresh), s.stamp()); err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	var v string
	if err := s.queryRow(ctx, s.db, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("store: secret %q is damaged", name)
	}
	return key, nil
}

// AdminSession is a signed-in web admin session as kept: IDHash is the hex SHA-256 of the
// identifier in the browser's cookie (the caller hashes it), CSRF the session's
// synchronizer token.
type AdminSession struct {
	IDHash  string
	User    string
	CSRF    string
	Created time.Time
	Seen    time.Time
}

// AddAdminSession keeps a new session.
func (s *Store) AddAdminSession(ctx context.Context, a AdminSession) error {
	if a.IDHash == "" || a.User == "" || a.CSRF == "" {
		return errors.New("store: add admin session: id, user or token missing")
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO admin_sessions (id_hash, user_name, csrf, created, seen) VALUES (?, ?, ?, ?, ?)`,
		a.IDHash, a.User, a.CSRF, a.Created.Unix(), a.Seen.Unix())
	if err != nil {
		return fmt.Errorf("store: add admin session: %w", err)
	}
	return nil
}

// AdminSessionByHash returns the session, or ErrNotFound.
func (s *Store) AdminSessionByHash(ctx context.Context, idHash string) (AdminSession, error) {
	var a AdminSession
	var created, seen int64
	err := s.queryRow(ctx, s.db, `SELECT id_hash, user_name, csrf, created, seen FROM admin_sessions WHERE id_hash = ?`, idHash).
		Scan(&a.IDHash, &a.User, &a.CSRF, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return AdminSession{}, fmt.Errorf("admin session: %w", ErrNotFound)
	}
	if err != nil {
		return AdminSession{}, fmt.Errorf("store: read admin session: %w", err)
	}
	a.Created, a.Seen = time.Unix(created, 0), time.Unix(seen, 0)
	return a, nil
}

// TouchAdminSession records activity of a session (ErrNotFound if it is gone).
func (s *Store) TouchAdminSession(ctx context.Context, idHash string, seen time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE admin_sessions SET seen = ? WHERE id_hash = ?`, seen.Unix(), idHash)
	return oneRow(res, err, "touch admin session", "")
}

// DeleteAdminSession ends a session; ending one that is gone is not an error.
func (s *Store) DeleteAdminSession(ctx context.Context, idHash string) error {
	if _, err := s.exec(ctx, s.db, `DELETE FROM admin_sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("store: delete admin session: %w", err)
	}
	return nil
}

// DeleteExpiredAdminSessions removes the sessions last seen before idleBefore or created
// before createdBefore, and returns how many it removed.
func (s *Store) DeleteExpiredAdminSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM admin_sessions WHERE seen < ? OR created < ?`, idleBefore.Unix(), createdBefore.Unix())
	if err != nil {
		return 0, fmt.Errorf("store: delete expired admin sessions: %w", err)
	}
	return res.RowsAffected()
}

// CountAdminSessions returns how many sessions are kept.
func (s *Store) CountAdminSessions(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM admin_sessions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count admin sessions: %w", err)
	}
	return n, nil
}

// DeleteOldestAdminSessions removes the n sessions seen longest ago.
func (s *Store) DeleteOldestAdminSessions(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	_, err := s.exec(ctx, s.db, `DELETE FROM admin_sessions WHERE id_hash IN
		(SELECT id_hash FROM admin_sessions ORDER BY seen, id_hash LIMIT ?)`, n)
	if err != nil {
		return fmt.Errorf("store: delete oldest admin sessions: %w", err)
	}
	return nil
}
