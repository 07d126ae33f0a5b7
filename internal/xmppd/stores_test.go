package xmppd_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/roster"
)

// TestOpenStores: both files are created owner-only, in directories that did not exist, and
// what is kept in them is there when they are opened again.
func TestOpenStores(t *testing.T) {
	dir := t.TempDir()
	regFile, rosterFile := filepath.Join(dir, "a", "callbridges.toml"), filepath.Join(dir, "b", "roster.db")
	s, err := xmppd.OpenStores(regFile, rosterFile)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.Registry.Add("cb1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Roster.Put(ctx, "ann@example.com", roster.Item{JID: "bob@example.com", Subscription: roster.Both}); err != nil {
		t.Fatal(err)
	}
	if err := s.Roster.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{regFile, rosterFile} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, st, err)
		}
	}

	s, err = xmppd.OpenStores(regFile, rosterFile)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Roster.Close()
	if got, ok := s.Registry.Lookup("cb1"); !ok || got != sec {
		t.Errorf("registry after reopening: cb1 found %v, same secret %v", ok, got == sec)
	}
	if it, err := s.Roster.Item(ctx, "ann@example.com", "bob@example.com"); err != nil || it.Subscription != roster.Both {
		t.Errorf("roster after reopening: %+v, %v", it, err)
	}
}
