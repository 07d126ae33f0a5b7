// Package store is the Call Bridge's persistence, behind database/sql.
//
// The default database is an embedded SQLite file (modernc.org/sqlite, no cgo), opened in
// WAL mode with synchronous=FULL so that a write the caller saw succeed survives the process
// being killed, foreign keys on, and a busy timeout so that concurrent writers queue instead
// of failing. The data file is created owner-only (0600, in a 0700 directory when the
// directory is new): it holds the XMPP shared secret.
//
// The SQL is written so that PostgreSQL can serve too (several Call Bridges sharing one
// database, a later issue): queries use "?" placeholders, portable types (TEXT, INTEGER,
// BIGINT) and the INSERT ... ON CONFLICT form both databases share. What still differs —
// driver name, placeholder style, row locking, how the database is prepared — lives in one
// place, the dialect type in dialect.go.
//
// # Adding a migration
//
// The schema is a sequence of numbered files in migrations/, applied in order at Open, each
// in its own transaction together with its row in the schema_migrations table, so a
// migration is applied completely or not at all, and exactly once. To change the schema, add
// the next file, e.g. migrations/0002_users.sql, and never edit a file that has shipped.
// When a statement cannot be written portably, add a dialect-specific twin beside it, e.g.
// 0002_users.postgres.sql, which replaces the portable file for that dialect. A database
// whose schema is newer than the binary is refused rather than written to.
//
// Users, coSpaces and LDAP configuration come in the next migrations, each with its own file
// of methods in this package (as xmpp.go and apiusers.go are).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors that callers branch on.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
)

// Options says which database to open. The zero Driver is SQLite.
type Options struct {
	// Driver is "sqlite" (the default) or "postgres"; the latter needs a PostgreSQL driver
	// registered as "pgx" in the binary.
	Driver string
	// DSN is, for SQLite, the path of the data file (created if missing); for PostgreSQL, a
	// connection string.
	DSN string
	// Now is the clock for the timestamps the store records; time.Now when nil.
	Now func() time.Time
}

// Store is an open database. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	d   dialect
	now func() time.Time

	// stmts holds the prepared form of the reads made outside a transaction, keyed by their
	// query text: a login looks its user up by JID, and parsing the same SELECT again for
	// each one cost more than running it. Bounded by maxStmts; a query over the bound runs
	// unprepared.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

// maxStmts bounds the prepared statements kept: the store's reads are a fixed set of query
// texts, a few dozen, so the bound is only a guard against a caller building texts.
const maxStmts = 128

// Open opens (creating if needed) the database and brings its schema up to date.
func Open(ctx context.Context, o Options) (*Store, error) {
	d, err := dialectFor(o.Driver)
	if err != nil {
		return nil, err
	}
	if o.DSN == "" {
		return nil, errors.New("store: no DSN given")
	}
	dsn, err := d.prepare(o.DSN)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", d.name, err)
	}
	s := &Store{db: db, d: d, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s database: %w", d.name, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		_ = st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return s.db.Close()
}

// prepared returns the prepared statement for query (already rebound) when q is the
// database itself, or nil: inside a transaction, or when the statement could not be
// prepared or kept, the query runs as plain text.
func (s *Store) prepared(ctx context.Context, q execer, query string) *sql.Stmt {
	if q != execer(s.db) {
		return nil
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st
	}
	if len(s.stmts) >= maxStmts {
		return nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the plain query reports the error
	}
	if s.stmts == nil {
		s.stmts = make(map[string]*sql.Stmt)
	}
	s.stmts[query] = st
	return st
}

// stamp is the portable form of a timestamp: RFC 3339 in UTC, which sorts as text.
func (s *Store) stamp() string { return s.now().UTC().Format(time.RFC3339Nano) }

// exec, query and queryRow take queries written with "?" placeholders.
func (s *Store) exec(ctx context.Context, q execer, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.d.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, q execer, query string, args ...any) *sql.Row {
	query = s.d.rebind(query)
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, query, args...)
}

func (s *Store) query(ctx context.Context, q execer, query string, args ...any) (*sql.Rows, error) {
	query = s.d.rebind(query)
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, query, args...)
}

// execer is what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction, committing when it returns nil. On SQLite the transaction
// takes the write lock when it begins (BEGIN IMMEDIATE), so read-modify-write sequences
// never deadlock on a lock upgrade; on PostgreSQL fn locks the rows it means to change.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// oneRow turns the result of a statement that should touch exactly the named row into nil,
// ErrNotFound or the error.
func oneRow(res sql.Result, err error, what, name string) error {
	if err != nil {
		return fmt.Errorf("store: %s %q: %w", what, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s %q: %w", what, name, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", what, name, ErrNotFound)
	}
	return nil
}
