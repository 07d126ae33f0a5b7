package store

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// dialect is everything that differs between the databases the store runs on. Queries are
// written once, with "?" placeholders and the SQL both databases share.
type dialect struct {
	name   string // as in migration file names: "sqlite", "postgres"
	driver string // the database/sql driver name

	// numbered placeholders ($1, $2 …) instead of "?"
	dollar bool
	// forUpdate is appended to a SELECT that reads rows a transaction is about to change.
	// SQLite needs none: its transactions take the database's write lock when they begin.
	forUpdate string
	// lockMigrations, if set, runs at the start of each migration transaction so that two
	// processes starting together do not both apply a migration.
	lockMigrations string
	// prepare turns Options.DSN into the driver's DSN, creating what must exist first.
	prepare func(dsn string) (string, error)
}

func dialectFor(driver string) (dialect, error) {
	switch driver {
	case "", "sqlite":
		return dialect{name: "sqlite", driver: "sqlite", prepare: prepareSQLite}, nil
	case "postgres", "pgx":
		d := dialect{
			name: "postgres", driver: "pgx", dollar: true, forUpdate: " FOR UPDATE",
			lockMigrations: "LOCK TABLE schema_migrations IN EXCLUSIVE MODE",
			prepare:        func(dsn string) (string, error) { return dsn, nil },
		}
		if !slices.Contains(sql.Drivers(), d.driver) {
			return dialect{}, fmt.Errorf("store: the %s driver %q is not built into this binary", d.name, d.driver)
		}
		return d, nil
	}
	return dialect{}, fmt.Errorf("store: unknown driver %q (want sqlite or postgres)", driver)
}

// rebind rewrites "?" placeholders for the dialect. Queries in this package put no "?" in
// string literals, but rebind skips quoted text all the same.
func (d dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	var b strings.Builder
	n, quoted := 0, false
	for _, r := range q {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sqlitePragmas run on every new connection. synchronous=FULL makes each commit wait for the
// WAL to reach the disk; busy_timeout lets concurrent writers wait their turn; _txlock makes
// every transaction BEGIN IMMEDIATE.
var sqlitePragmas = url.Values{
	"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"},
	"_txlock": {"immediate"},
}

// prepareSQLite creates the data file owner-only before SQLite opens it (SQLite then gives
// its -wal and -shm files the same mode) and appends the pragmas. The DSN is a path,
// optionally followed by ?driver parameters of the caller's; these come after the store's
// own, which therefore win (a DSN cannot turn durability off).
func prepareSQLite(dsn string) (string, error) {
	path, extra, _ := strings.Cut(dsn, "?")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return "", fmt.Errorf("store: sqlite DSN %q: want the path of a file", dsn)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("store: create data directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("store: create data file: %w", err)
	}
	f.Close()
	q := sqlitePragmas.Encode()
	if extra != "" {
		q += "&" + extra
	}
	return path + "?" + q, nil
}
