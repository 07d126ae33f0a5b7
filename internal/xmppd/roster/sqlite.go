package roster

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SQLite is a Store in an SQLite file (modernc.org/sqlite, no cgo).
type SQLite struct{ db *sql.DB }

// OpenSQLite opens (creating it owner-only if needed) the roster database at path.
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("roster: data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("roster: create %s: %w", path, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("roster: open %s: %w", path, err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS roster_items (
		owner TEXT NOT NULL,
		contact TEXT NOT NULL,
		name TEXT NOT NULL DEFAULT '',
		groups_json TEXT NOT NULL DEFAULT '[]',
		subscription TEXT NOT NULL DEFAULT 'none',
		ask INTEGER NOT NULL DEFAULT 0,
		pending_in INTEGER NOT NULL DEFAULT 0,
		listed INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (owner, contact))`); err != nil {
		db.Close()
		return nil, fmt.Errorf("roster: create table: %w", err)
	}
	return &SQLite{db: db}, nil
}

const itemColumns = `contact, name, groups_json, subscription, ask, pending_in, listed`

func scanItem(sc interface{ Scan(...any) error }) (Item, error) {
	var it Item
	var groups string
	if err := sc.Scan(&it.JID, &it.Name, &groups, &it.Subscription, &it.Ask, &it.PendingIn, &it.Listed); err != nil {
		return Item{}, err
	}
	if err := json.Unmarshal([]byte(groups), &it.Groups); err != nil {
		return Item{}, fmt.Errorf("roster: groups of %s: %w", it.JID, err)
	}
	return it, nil
}

// Items implements Store.
func (s *SQLite) Items(ctx context.Context, owner string) ([]Item, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+itemColumns+` FROM roster_items WHERE owner = ? ORDER BY contact`, owner)
	if err != nil {
		return nil, fmt.Errorf("roster: items of %s: %w", owner, err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Item implements Store.
func (s *SQLite) Item(ctx context.Context, owner, contact string) (Item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, ErrNotFound
	}
	return it, err
}

// Put implements Store.
func (s *SQLite) Put(ctx context.Context, owner string, it Item) error {
	groups, err := json.Marshal(append([]string{}, it.Groups...))
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO roster_items (owner, `+itemColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner, contact) DO UPDATE SET name = excluded.name, groups_json = excluded.groups_json,
		subscription = excluded.subscription, ask = excluded.ask, pending_in = excluded.pending_in, listed = excluded.listed`,
		owner, it.JID, it.Name, string(groups), it.Subscription, it.Ask, it.PendingIn, it.Listed)
	if err != nil {
		return fmt.Errorf("roster: put %s in %s's roster: %w", it.JID, owner, err)
	}
	return nil
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, owner, contact string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact); err != nil {
		return fmt.Errorf("roster: delete %s from %s's roster: %w", contact, owner, err)
	}
	return nil
}

// Close implements Store.
func (s *SQLite) Close() error { return s.db.Close() }
