package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AddAPIUser creates a REST API account. passwordHash is a PHC string from passhash.Hash; the
// store never sees the password. It returns ErrExists if the name is taken.
func (s *Store) AddAPIUser(ctx context.Context, name, passwordHash string) error {
	if name == "" || passwordHash == "" {
		return errors.New("store: add api user: empty name or password hash")
	}
	// ON CONFLICT DO NOTHING, not an error code, tells a duplicate: the same on both databases.
	res, err := s.exec(ctx, s.db, `INSERT INTO api_users (name, password_hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, name, passwordHash, s.stamp())
	if err != nil {
		return fmt.Errorf("store: add api user %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: add api user %q: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("api user %q: %w", name, ErrExists)
	}
	return nil
}

// SetAPIUserHash replaces the password hash of an existing account (ErrNotFound otherwise).
func (s *Store) SetAPIUserHash(ctx context.Context, name, passwordHash string) error {
	res, err := s.exec(ctx, s.db, `UPDATE api_users SET password_hash = ? WHERE name = ?`, passwordHash, name)
	return oneRow(res, err, "set password of api user", name)
}

// APIUserHash returns the account's password hash, or ErrNotFound.
func (s *Store) APIUserHash(ctx context.Context, name string) (string, error) {
	var h string
	err := s.queryRow(ctx, s.db, `SELECT password_hash FROM api_users WHERE name = ?`, name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("api user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: read api user %q: %w", name, err)
	}
	return h, nil
}

// ListAPIUsers returns the account names in order.
func (s *Store) ListAPIUsers(ctx context.Context) ([]string, error) {
	rows, err := s.query(ctx, s.db, `SELECT name FROM api_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list api users: %w", err)
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("store: list api users: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list api users: %w", err)
	}
	return names, nil
}

// DeleteAPIUser removes an account, or returns ErrNotFound.
func (s *Store) DeleteAPIUser(ctx context.Context, name string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM api_users WHERE name = ?`, name)
	return oneRow(res, err, "delete api user", name)
}
