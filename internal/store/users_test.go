package store

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"testing"

	"confab.dev/confab/internal/secret"
)

func TestUsers(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "confab.db"))

	alice, err := s.AddUser(ctx, User{JID: "alice@example.com", Kind: UserLocal, Name: "Alice", Email: "alice@example.com",
		SCRAMSHA1: "s1", SCRAMSHA256: "s256", PasswordHash: "$argon2id$h"})
	if err != nil {
		t.Fatal(err)
	}
	if alice.ID == "" || alice.Created.IsZero() {
		t.Errorf("AddUser returned %+v: want an ID and a creation time", alice)
	}
	if _, err := s.AddUser(ctx, User{JID: "alice@example.com", Kind: UserLocal}); !errors.Is(err, ErrExists) {
		t.Errorf("second alice: err = %v, want ErrExists", err)
	}
	if _, err := s.AddUser(ctx, User{JID: "x@example.com", Kind: UserLDAP, LDAPSource: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ldap user of a missing source: err = %v, want ErrNotFound", err)
	}
	for _, jid := range []string{"bob@example.com", "carol_x@example.com", "dave@example.org"} {
		if _, err := s.AddUser(ctx, User{JID: jid, Kind: UserLocal, Name: "N " + jid}); err != nil {
			t.Fatal(err)
		}
	}

	got, err := s.UserByJID(ctx, "alice@example.com")
	if err != nil || got.ID != alice.ID || got.PasswordHash != "$argon2id$h" || got.SCRAMSHA256 != "s256" {
		t.Errorf("UserByJID = %+v, %v; want alice with her credentials", got, err)
	}
	if _, err := s.User(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("User(missing): err = %v, want ErrNotFound", err)
	}

	tests := []struct {
		filter        string
		offset, limit int
		want          []string
		total         int
	}{
		{"", 0, 0, []string{"alice@example.com", "bob@example.com", "carol_x@example.com", "dave@example.org"}, 4},
		{"", 1, 2, []string{"bob@example.com", "carol_x@example.com"}, 4},
		{"EXAMPLE.ORG", 0, 0, []string{"dave@example.org"}, 1},
		{"_", 0, 0, []string{"carol_x@example.com"}, 1}, // a LIKE wildcard is matched literally
		{"alice", 0, 0, []string{"alice@example.com"}, 1},
		{"nobody", 0, 0, []string{}, 0},
	}
	for _, tt := range tests {
		us, total, err := s.ListUsers(ctx, tt.filter, tt.offset, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		jids := []string{}
		for _, u := range us {
			jids = append(jids, u.JID)
			if u.PasswordHash != "" || u.SCRAMSHA1 != "" || u.SCRAMSHA256 != "" {
				t.Errorf("ListUsers returned credentials of %s", u.JID)
			}
		}
		if total != tt.total || !equalStrings(jids, tt.want) {
			t.Errorf("ListUsers(%q, %d, %d) = %v total %d; want %v total %d", tt.filter, tt.offset, tt.limit, jids, total, tt.want, tt.total)
		}
	}

	up, err := s.UpdateUser(ctx, alice.ID, func(u *User) error {
		u.Name, u.JID, u.PasswordHash = "Alice A.", "mallory@example.com", "$argon2id$new"
		return nil
	})
	if err != nil || up.Name != "Alice A." || up.JID != "alice@example.com" || up.PasswordHash != "$argon2id$new" {
		t.Errorf("UpdateUser = %+v, %v; want the name and hash changed and the JID kept", up, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateUser(ctx, alice.ID, func(u *User) error { u.Name = "X"; return boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateUser with a failing fn: err = %v", err)
	}
	if got, _ := s.User(ctx, alice.ID); got.Name != "Alice A." {
		t.Errorf("a failed update wrote name %q", got.Name)
	}
	if err := s.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, alice.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func newSource(t *testing.T, s *Store) LDAPSource {
	t.Helper()
	ctx := context.Background()
	srv, err := s.AddLDAPServer(ctx, LDAPServer{Address: "ldap.example.com", PortNumber: 389, Username: "cn=admin", Password: secret.New("pw")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.AddLDAPMapping(ctx, LDAPMapping{JIDMapping: "$uid$@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.AddLDAPSource(ctx, LDAPSource{Server: srv.ID, Mapping: m.ID, BaseDN: "dc=example,dc=com"})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func sourceJIDs(t *testing.T, s *Store, source string) []string {
	t.Helper()
	us, _, err := s.ListUsers(context.Background(), "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, u := range us {
		if u.LDAPSource == source {
			out = append(out, u.JID+"|"+u.Name+"|"+u.LDAPDN)
		}
	}
	sort.Strings(out)
	return out
}

func TestApplyLDAPSync(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "confab.db"))
	src := newSource(t, s)
	other := newSource(t, s)
	if _, err := s.AddUser(ctx, User{JID: "local@example.com", Kind: UserLocal}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyLDAPSync(ctx, other.ID, []LDAPEntry{{DN: "uid=o,dc=x", JID: "o@example.com"}}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		entries []LDAPEntry
		want    LDAPSyncCounts
		clash   string
		users   []string
	}{
		{"first import", []LDAPEntry{
			{DN: "uid=a,dc=x", JID: "a@example.com", Name: "A"},
			{DN: "uid=b,dc=x", JID: "b@example.com", Name: "B"},
		}, LDAPSyncCounts{Created: 2}, "", []string{"a@example.com|A|uid=a,dc=x", "b@example.com|B|uid=b,dc=x"}},
		{"again unchanged", []LDAPEntry{
			{DN: "uid=a,dc=x", JID: "a@example.com", Name: "A"},
			{DN: "uid=b,dc=x", JID: "b@example.com", Name: "B"},
		}, LDAPSyncCounts{Unchanged: 2}, "", []string{"a@example.com|A|uid=a,dc=x", "b@example.com|B|uid=b,dc=x"}},
		{"rename, new JID for the same DN, one removed", []LDAPEntry{
			{DN: "uid=a,dc=x", JID: "a@example.com", Name: "A2"},
			{DN: "UID=B,dc=x", JID: "bee@example.com", Name: "B"},
			{DN: "uid=c,dc=x", JID: "c@example.com", Name: "C"},
		}, LDAPSyncCounts{Updated: 2, Created: 1}, "", []string{"a@example.com|A2|uid=a,dc=x", "bee@example.com|B|UID=B,dc=x", "c@example.com|C|uid=c,dc=x"}},
		{"clash with a local user changes nothing", []LDAPEntry{
			{DN: "uid=a,dc=x", JID: "local@example.com"},
		}, LDAPSyncCounts{}, "local@example.com", []string{"a@example.com|A2|uid=a,dc=x", "bee@example.com|B|UID=B,dc=x", "c@example.com|C|uid=c,dc=x"}},
		{"clash with another source", []LDAPEntry{
			{DN: "uid=n,dc=x", JID: "o@example.com"},
		}, LDAPSyncCounts{}, "o@example.com", []string{"a@example.com|A2|uid=a,dc=x", "bee@example.com|B|UID=B,dc=x", "c@example.com|C|uid=c,dc=x"}},
		{"two entries with one JID", []LDAPEntry{
			{DN: "uid=a,dc=x", JID: "a@example.com"}, {DN: "uid=z,dc=x", JID: "a@example.com"},
		}, LDAPSyncCounts{}, "a@example.com", []string{"a@example.com|A2|uid=a,dc=x", "bee@example.com|B|UID=B,dc=x", "c@example.com|C|uid=c,dc=x"}},
		{"empty directory", nil, LDAPSyncCounts{Deleted: 3}, "", []string{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := s.ApplyLDAPSync(ctx, src.ID, st.entries)
			var clash *ClashError
			switch {
			case st.clash != "":
				if !errors.As(err, &clash) || clash.JID != st.clash {
					t.Fatalf("err = %v, want a clash on %s", err, st.clash)
				}
			case err != nil:
				t.Fatal(err)
			case got != st.want:
				t.Errorf("counts = %+v, want %+v", got, st.want)
			}
			if users := sourceJIDs(t, s, src.ID); !equalStrings(users, st.users) {
				t.Errorf("users = %v, want %v", users, st.users)
			}
		})
	}
	if got := sourceJIDs(t, s, other.ID); len(got) != 1 {
		t.Errorf("the other source's users = %v, want its one user untouched", got)
	}
	var ref *RefError
	if _, err := s.ApplyLDAPSync(ctx, "missing", nil); !errors.As(err, &ref) || ref.Kind != "ldapSource" {
		t.Errorf("sync of a missing source: err = %v, want a RefError", err)
	}
}

func TestLDAPConfig(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "confab.db"))
	src := newSource(t, s)

	srv, err := s.LDAPServer(ctx, src.Server)
	if err != nil || srv.Password.Reveal() != "pw" || srv.PortNumber != 389 || srv.Secure {
		t.Fatalf("LDAPServer = %+v, %v", srv, err)
	}
	srv, err = s.UpdateLDAPServer(ctx, srv.ID, func(v *LDAPServer) error { v.Secure, v.PortNumber = true, 636; return nil })
	if err != nil || !srv.Secure || srv.PortNumber != 636 {
		t.Errorf("UpdateLDAPServer = %+v, %v", srv, err)
	}
	if err := s.DeleteLDAPServer(ctx, srv.ID); !errors.Is(err, ErrInUse) {
		t.Errorf("delete a server in use: err = %v, want ErrInUse", err)
	}
	if err := s.DeleteLDAPMapping(ctx, src.Mapping); !errors.Is(err, ErrInUse) {
		t.Errorf("delete a mapping in use: err = %v, want ErrInUse", err)
	}
	var ref *RefError
	if _, err := s.UpdateLDAPSource(ctx, src.ID, func(v *LDAPSource) error { v.Server = "nope"; return nil }); !errors.As(err, &ref) || ref.Kind != "ldapServer" {
		t.Errorf("source with a missing server: err = %v, want RefError ldapServer", err)
	}
	if _, err := s.AddLDAPSource(ctx, LDAPSource{Server: srv.ID, Mapping: "nope"}); !errors.As(err, &ref) || ref.Kind != "ldapMapping" {
		t.Errorf("source with a missing mapping: err = %v, want RefError ldapMapping", err)
	}
	if _, err := s.ApplyLDAPSync(ctx, src.ID, []LDAPEntry{{DN: "uid=a", JID: "a@example.com"}}); err != nil {
		t.Fatal(err)
	}
	// Deleting a source deletes its users; then the server and mapping are free.
	if err := s.DeleteLDAPSource(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByJID(ctx, "a@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("user of a deleted source: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteLDAPServer(ctx, srv.ID); err != nil {
		t.Errorf("delete the unused server: %v", err)
	}
	if err := s.DeleteLDAPServer(ctx, srv.ID); !errors.As(err, &ref) {
		t.Errorf("delete it again: err = %v, want RefError", err)
	}
	servers, total, err := s.ListLDAPServers(ctx, 0, 0)
	if err != nil || total != 0 || len(servers) != 0 {
		t.Errorf("ListLDAPServers = %v, %d, %v; want none", servers, total, err)
	}
}

func TestLDAPSyncQueue(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "confab.db"))
	src := newSource(t, s)

	first, err := s.AddLDAPSync(ctx, src.ID, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.AddLDAPSync(ctx, "", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddLDAPSync(ctx, "", false, 2); !errors.Is(err, ErrInUse) {
		t.Errorf("a third pending sync over a limit of 2: err = %v, want ErrInUse", err)
	}
	if _, err := s.AddLDAPSync(ctx, "missing", false, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("sync of a missing source: err = %v, want ErrNotFound", err)
	}

	got, ok, err := s.ClaimLDAPSync(ctx)
	if err != nil || !ok || got.ID != first.ID || got.State != SyncInProgress || got.Started.IsZero() {
		t.Fatalf("first claim = %+v, %v, %v; want the first sync in progress", got, ok, err)
	}
	if err := s.DeleteLDAPSync(ctx, first.ID); !errors.Is(err, ErrInUse) {
		t.Errorf("delete a running sync: err = %v, want ErrInUse", err)
	}
	got.State, got.UsersCreated, got.NumUsersImported = SyncComplete, 3, 3
	if err := s.SaveLDAPSync(ctx, got); err != nil {
		t.Fatal(err)
	}
	if v, err := s.LDAPSync(ctx, first.ID); err != nil || v.State != SyncComplete || v.UsersCreated != 3 || v.Finished.IsZero() {
		t.Errorf("finished sync = %+v, %v", v, err)
	}

	got, ok, err = s.ClaimLDAPSync(ctx)
	if err != nil || !ok || got.ID != second.ID {
		t.Fatalf("second claim = %+v, %v, %v; want the second sync", got, ok, err)
	}
	got.State = SyncFailed
	if err := s.SaveLDAPSync(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LDAPSync(ctx, second.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a finished sync with removeWhenFinished: err = %v, want it gone", err)
	}
	if _, ok, err := s.ClaimLDAPSync(ctx); ok || err != nil {
		t.Errorf("claim with nothing pending = %v, %v", ok, err)
	}

	third, _ := s.AddLDAPSync(ctx, "", false, 0)
	if _, _, err := s.ClaimLDAPSync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.FailInterruptedLDAPSyncs(ctx, "restarted"); err != nil || n != 1 {
		t.Errorf("FailInterruptedLDAPSyncs = %d, %v; want 1", n, err)
	}
	if v, _ := s.LDAPSync(ctx, third.ID); v.State != SyncFailed || v.Detail != "restarted" {
		t.Errorf("interrupted sync = %+v", v)
	}
	if err := s.PruneLDAPSyncs(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if all, total, err := s.ListLDAPSyncs(ctx, 0, 0); err != nil || total != 1 || all[0].ID != third.ID {
		t.Errorf("after pruning to 1: %+v total %d, %v; want the newest", all, total, err)
	}
	if err := s.DeleteLDAPSync(ctx, third.ID); err != nil {
		t.Errorf("delete a finished sync: %v", err)
	}
	if err := s.DeleteLDAPSync(ctx, third.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete it again: err = %v, want ErrNotFound", err)
	}
}

// Reads go through prepared statements kept by the store: a change made through another
// handle on the same file (another process, or another Call Bridge on a shared database)
// must be seen by the next read, and the statement cache must not grow with repeated reads.
func TestPreparedReadsSeeOtherWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "confab.db")
	a, b := open(t, path), open(t, path)
	u, err := a.AddUser(ctx, User{JID: "erin@example.com", Kind: UserLocal, SCRAMSHA256: "old"})
	if err != nil {
		t.Fatal(err)
	}
	stmts := func() int {
		b.stmtMu.Lock()
		defer b.stmtMu.Unlock()
		return len(b.stmts)
	}
	before := stmts()
	for i := range 3 {
		if got, err := b.UserByJID(ctx, "erin@example.com"); err != nil || got.SCRAMSHA256 != "old" {
			t.Fatalf("read %d through b = %+v, %v; want the old keys", i, got, err)
		}
	}
	if _, err := a.UpdateUser(ctx, u.ID, func(u *User) error { u.SCRAMSHA256 = "new"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := b.UserByJID(ctx, "erin@example.com"); err != nil || got.SCRAMSHA256 != "new" {
		t.Errorf("read through b after a's update = %+v, %v; want the new keys", got, err)
	}
	if _, err := b.UserByJID(ctx, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing user: err = %v, want ErrNotFound", err)
	}
	if n := stmts() - before; n != 1 {
		t.Errorf("b prepared %d statements for reads by JID only; want 1", n)
	}
}

// BenchmarkUserByJID is the Call Bridge's lookup at every login.
func BenchmarkUserByJID(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Options{DSN: filepath.Join(b.TempDir(), "confab.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddUser(ctx, User{JID: "alice@example.com", Kind: UserLocal, SCRAMSHA256: "keys"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.UserByJID(ctx, "alice@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
