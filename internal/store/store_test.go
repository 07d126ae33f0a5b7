package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/testenv"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{DSN: path})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenFreshAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "confab.db")
	s := open(t, path)
	ms, err := migrations(migrationFiles, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(ms) {
		t.Fatalf("fresh SchemaVersion = %d, %v; want %d", v, err, len(ms))
	}
	if err := s.AddAPIUser(ctx, "admin", "$argon2id$x"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Re-opening applies nothing twice and keeps the data.
	for i := 0; i < 2; i++ {
		s = open(t, path)
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
			t.Errorf("reopen %d: %d rows in schema_migrations (%v), want %d", i, n, err, len(ms))
		}
		if h, err := s.APIUserHash(ctx, "admin"); err != nil || h != "$argon2id$x" {
			t.Errorf("reopen %d: APIUserHash = %q, %v", i, h, err)
		}
		s.Close()
	}
}

func TestPragmas(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	// Several connections, so that the pragmas are seen to apply to each, not just the first.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := s.db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000"}
	for i, c := range conns {
		for p, w := range want {
			var got string
			if err := c.QueryRowContext(context.Background(), "PRAGMA "+p).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("connection %d: PRAGMA %s = %q, want %q", i, p, got, w)
			}
		}
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "confab.db")
	s := open(t, path)
	if err := s.AddAPIUser(context.Background(), "a", "h"); err != nil { // makes the WAL exist
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{filepath.Dir(dir), 0o700 | os.ModeDir},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
	} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if got := fi.Mode(); got != tt.want {
			t.Errorf("mode of %s = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, o := range []Options{
		{},
		{Driver: "mysql", DSN: "x"},
		{Driver: "postgres", DSN: "postgres://localhost/confab"}, // no pgx driver in this binary
		{DSN: ":memory:"},
		{DSN: filepath.Join(t.TempDir(), "x.db") + "?_time_format=bogus"},
	} {
		if s, err := Open(context.Background(), o); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want an error", o)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', '')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(context.Background(), Options{DSN: path}); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open of a database at schema 999 = %v, want an error saying it is newer", err)
	}
}

func TestMigrationSelection(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		dialect string
		want    []string // file names in order
		wantErr bool
	}{
		{"portable in order", fstest.MapFS{
			"migrations/0002_b.sql": file("b"), "migrations/0001_a.sql": file("a"), "migrations/README": file(""),
		}, "sqlite", []string{"0001_a.sql", "0002_b.sql"}, false},
		{"dialect twin wins", fstest.MapFS{
			"migrations/0001_a.sql": file("a"), "migrations/0001_a.postgres.sql": file("pa"),
		}, "postgres", []string{"0001_a.postgres.sql"}, false},
		{"twin first in listing", fstest.MapFS{
			"migrations/0001_a.postgres.sql": file("pa"), "migrations/0001_a.sql": file("a"),
		}, "postgres", []string{"0001_a.postgres.sql"}, false},
		{"other dialect's twin ignored", fstest.MapFS{
			"migrations/0001_a.sql": file("a"), "migrations/0001_a.postgres.sql": file("pa"),
		}, "sqlite", []string{"0001_a.sql"}, false},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("a"), "migrations/0003_c.sql": file("c")}, "sqlite", nil, true},
		{"duplicate number", fstest.MapFS{"migrations/0001_a.sql": file("a"), "migrations/0001_b.sql": file("b")}, "sqlite", nil, true},
		{"bad name", fstest.MapFS{"migrations/first.sql": file("a")}, "sqlite", nil, true},
		{"unknown dialect", fstest.MapFS{"migrations/0001_a.sql": file("a"), "migrations/0001_a.mysql.sql": file("m")}, "sqlite", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := migrations(tt.fs, tt.dialect)
			if (err != nil) != tt.wantErr {
				t.Fatalf("migrations() error = %v, wantErr %v", err, tt.wantErr)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.name)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("migrations() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	pg := dialect{dollar: true}
	for _, tt := range []struct{ in, want string }{
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"SELECT '?' FROM t WHERE b = ?", "SELECT '?' FROM t WHERE b = $1"},
		{"SELECT 1", "SELECT 1"},
	} {
		if got := pg.rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := (dialect{}).rebind(tt.in); got != tt.in {
			t.Errorf("sqlite rebind(%q) = %q, want it unchanged", tt.in, got)
		}
	}
}

func TestXMPPSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	got, err := s.XMPPSettings(ctx)
	if err != nil || got != (XMPPSettings{}) {
		t.Fatalf("XMPPSettings of a new store = %+v, %v; want the zero value", got, err)
	}
	want := XMPPSettings{UniqueName: "cb1", Domain: "example.com", ServerAddressOverride: "[::1]:5223", SharedSecret: secret.New("s3cret")}
	if err := s.SetXMPPSettings(ctx, want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	if got, err := s.XMPPSettings(ctx); err != nil || got != want {
		t.Errorf("XMPPSettings after reopen = %+v (secret %q), %v; want %+v", got, got.SharedSecret.Reveal(), err, want)
	}

	// An update that fails writes nothing.
	boom := errors.New("boom")
	if _, err := s.UpdateXMPPSettings(ctx, func(c *XMPPSettings) error { c.Domain = "other.example"; return boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateXMPPSettings error = %v, want %v", err, boom)
	}
	if got, _ := s.XMPPSettings(ctx); got != want {
		t.Errorf("after a failed update XMPPSettings = %+v, want %+v", got, want)
	}
	// Unsetting a field.
	out, err := s.UpdateXMPPSettings(ctx, func(c *XMPPSettings) error { c.ServerAddressOverride = ""; return nil })
	want.ServerAddressOverride = ""
	if err != nil || out != want {
		t.Errorf("UpdateXMPPSettings = %+v, %v; want %+v", out, err, want)
	}
	if got, _ := s.XMPPSettings(ctx); got != want {
		t.Errorf("XMPPSettings = %+v, want %+v", got, want)
	}
}

// Concurrent partial updates of the XMPP settings must not lose each other's changes.
func TestUpdateXMPPSettingsConcurrent(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.UpdateXMPPSettings(ctx, func(c *XMPPSettings) error { c.Domain += "d"; return nil })
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.UpdateXMPPSettings(ctx, func(c *XMPPSettings) error { c.UniqueName += "u"; return nil })
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.XMPPSettings(ctx)
	if got.Domain != strings.Repeat("d", n) || got.UniqueName != strings.Repeat("u", n) {
		t.Errorf("after %d concurrent updates of each field: %+v; a write was lost", n, got)
	}
}

func TestAPIUsers(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	if names, err := s.ListAPIUsers(ctx); err != nil || len(names) != 0 {
		t.Errorf("ListAPIUsers of a new store = %v, %v; want none", names, err)
	}
	for _, n := range []string{"ops", "admin"} {
		if err := s.AddAPIUser(ctx, n, "hash-"+n); err != nil {
			t.Fatalf("AddAPIUser(%q): %v", n, err)
		}
	}
	if err := s.AddAPIUser(ctx, "admin", "other"); !errors.Is(err, ErrExists) {
		t.Errorf("AddAPIUser of a duplicate = %v, want ErrExists", err)
	}
	if h, _ := s.APIUserHash(ctx, "admin"); h != "hash-admin" {
		t.Errorf("a duplicate add changed the hash to %q", h)
	}
	if err := s.AddAPIUser(ctx, "", "h"); err == nil {
		t.Errorf("AddAPIUser with an empty name succeeded")
	}
	if names, _ := s.ListAPIUsers(ctx); !reflect.DeepEqual(names, []string{"admin", "ops"}) {
		t.Errorf("ListAPIUsers = %v, want [admin ops]", names)
	}
	if err := s.SetAPIUserHash(ctx, "ops", "new"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.APIUserHash(ctx, "ops"); h != "new" {
		t.Errorf("APIUserHash after SetAPIUserHash = %q, want new", h)
	}
	if err := s.SetAPIUserHash(ctx, "nobody", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetAPIUserHash(nobody) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteAPIUser(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APIUserHash(ctx, "ops"); !errors.Is(err, ErrNotFound) {
		t.Errorf("APIUserHash of a deleted user = %v, want ErrNotFound", err)
	}
	if err := s.DeleteAPIUser(ctx, "ops"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteAPIUser = %v, want ErrNotFound", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	// A second Store on the same file stands for a second process.
	other := open(t, path)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if w%2 == 1 {
				st = other
			}
			for i := 0; i < each; i++ {
				errs <- st.AddAPIUser(ctx, fmt.Sprintf("w%d-%02d", w, i), "h")
				if _, err := st.ListAPIUsers(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent write: %v", err)
		}
	}
	names, err := s.ListAPIUsers(ctx)
	if err != nil || len(names) != writers*each {
		t.Errorf("ListAPIUsers after concurrent writes: %d names, %v; want %d", len(names), err, writers*each)
	}
}

// TestKillNine checks that every write Store acknowledged is there after the writing
// process is killed with SIGKILL. The writer is this test binary, re-executed.
func TestKillNine(t *testing.T) {
	if path := os.Getenv("CONFAB_STORE_KILL_CHILD"); path != "" {
		killChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "c.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNine$")
	cmd.Env = append(os.Environ(), "CONFAB_STORE_KILL_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() && acked < 50 {
		if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack ")); err == nil {
			acked = n + 1
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if acked < 50 {
		t.Fatalf("the writer acknowledged %d writes before it ended, want 50", acked)
	}
	s := open(t, path)
	for i := 0; i < acked; i++ {
		if _, err := s.APIUserHash(context.Background(), fmt.Sprintf("u%05d", i)); err != nil {
			t.Errorf("acknowledged write %d lost after kill -9: %v", i, err)
		}
	}
}

func killChild(path string) {
	s, err := Open(context.Background(), Options{DSN: path})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	deadline := time.Now().Add(time.Minute) // the parent kills us long before
	for i := 0; time.Now().Before(deadline); i++ {
		if err := s.AddAPIUser(context.Background(), fmt.Sprintf("u%05d", i), "h"); err != nil {
			fmt.Println("write:", err)
			os.Exit(1)
		}
		fmt.Printf("ack %d\n", i)
	}
	os.Exit(1)
}

// TestReadableBySQLiteCLI checks that the file is an ordinary SQLite database that the
// reference tool can read (for operators inspecting or backing it up).
func TestReadableBySQLiteCLI(t *testing.T) {
	bin := testenv.LookPath(t, "sqlite3")
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	if err := s.SetXMPPSettings(context.Background(), XMPPSettings{UniqueName: "cb1", Domain: "example.com"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, path, "SELECT unique_name, domain FROM xmpp_config; PRAGMA journal_mode;").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	if got, want := string(out), "cb1|example.com\nwal\n"; got != want {
		t.Errorf("sqlite3 says %q, want %q", got, want)
	}
}
