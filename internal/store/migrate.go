package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema step.
type migration struct {
	version int
	name    string // file name, recorded in schema_migrations
	sql     string
}

// migrations returns the steps for dialect name, in order: for each number, the file
// NNNN_x.<name>.sql if there is one, else the portable NNNN_x.sql.
func migrations(fsys fs.FS, name string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	byVersion := map[int]migration{}
	specific := map[int]bool{}
	for _, e := range entries {
		file := e.Name()
		base, ok := strings.CutSuffix(file, ".sql")
		if !ok {
			continue
		}
		num, rest, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || rest == "" {
			return nil, fmt.Errorf("store: migration file %q: want NNNN_name.sql", file)
		}
		isSpecific := false
		if i := strings.LastIndexByte(rest, '.'); i >= 0 {
			if d := rest[i+1:]; d != "sqlite" && d != "postgres" {
				return nil, fmt.Errorf("store: migration file %q: unknown dialect %q", file, d)
			}
			if rest[i+1:] != name {
				continue // another dialect's twin
			}
			isSpecific = true
		}
		if prev, dup := byVersion[v]; dup && specific[v] == isSpecific {
			return nil, fmt.Errorf("store: migrations %q and %q share number %d", prev.name, file, v)
		}
		if specific[v] && !isSpecific {
			continue
		}
		b, err := fs.ReadFile(fsys, "migrations/"+file)
		if err != nil {
			return nil, fmt.Errorf("store: migration %q: %w", file, err)
		}
		byVersion[v] = migration{version: v, name: file, sql: string(b)}
		specific[v] = isSpecific
	}
	out := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migration %d is missing (next is %q)", i+1, m.name)
		}
	}
	return out, nil
}

// migrate applies the migrations the database lacks, each in its own transaction with its
// schema_migrations row.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations(migrationFiles, s.d.name)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, s.db, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	var newest sql.NullInt64
	if err := s.queryRow(ctx, s.db, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if newest.Valid && int(newest.Int64) > len(ms) {
		return fmt.Errorf("store: the database schema is at version %d, newer than this binary's %d: upgrade Confab", newest.Int64, len(ms))
	}
	for _, m := range ms {
		if newest.Valid && m.version <= int(newest.Int64) {
			continue
		}
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if s.d.lockMigrations != "" {
				if _, err := tx.ExecContext(ctx, s.d.lockMigrations); err != nil {
					return err
				}
			}
			// Another process may have applied it since we looked.
			var n int
			if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := s.exec(ctx, tx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, s.stamp())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion returns the number of the newest migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.queryRow(ctx, s.db, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return int(v.Int64), nil
}
