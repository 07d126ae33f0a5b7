package roster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestStores(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "roster.db")
	sq, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for name, s := range map[string]Store{"memory": NewMemory(), "sqlite": sq} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if _, err := s.Item(ctx, "alice@example.com", "bob@example.com"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Item of an empty roster: %v, want ErrNotFound", err)
			}
			bob := Item{JID: "bob@example.com", Name: "Bob", Groups: []string{"Friends", "Work"}, Subscription: To, Ask: true, Listed: true}
			carol := Item{JID: "carol@example.com", Subscription: None, PendingIn: true}
			for _, it := range []Item{carol, bob} {
				if err := s.Put(ctx, "alice@example.com", it); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Items(ctx, "alice@example.com")
			if err != nil || len(got) != 2 || got[0].JID != "bob@example.com" || !slices.Equal(got[0].Groups, bob.Groups) ||
				got[0].Name != "Bob" || !got[0].Ask || !got[0].Listed || got[0].Subscription != To || !got[1].PendingIn {
				t.Fatalf("Items = %+v, %v", got, err)
			}
			bob.Subscription, bob.Ask = Both, false
			if err := s.Put(ctx, "alice@example.com", bob); err != nil {
				t.Fatal(err)
			}
			if it, err := s.Item(ctx, "alice@example.com", "bob@example.com"); err != nil || it.Subscription != Both || it.Ask {
				t.Errorf("after update: %+v, %v", it, err)
			}
			if err := s.Delete(ctx, "alice@example.com", "carol@example.com"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Items(ctx, "alice@example.com"); len(got) != 1 {
				t.Errorf("after delete: %+v", got)
			}
			if got, _ := s.Items(ctx, "bob@example.com"); len(got) != 0 {
				t.Errorf("another owner's roster: %+v", got)
			}
		})
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("roster file: %v, %v; want 0600", st, err)
	}
	// Kept across a reopen.
	sq.Close()
	sq2, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sq2.Close()
	if it, err := sq2.Item(context.Background(), "alice@example.com", "bob@example.com"); err != nil || it.Name != "Bob" {
		t.Errorf("after reopen: %+v, %v", it, err)
	}
}
