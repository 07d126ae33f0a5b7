package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestSecretSurvivesReopen: a key is made once, is the same for every caller and is still
// the same after the database is closed and opened again (a restart).
func TestSecretSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "confab.db")
	s := open(t, path)
	k1, err := s.Secret(ctx, "guest-rejoin", 32)
	if err != nil || len(k1) != 32 {
		t.Fatalf("Secret = %d bytes, %v; want 32", len(k1), err)
	}
	k2, err := s.Secret(ctx, "guest-rejoin", 32)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("second Secret differs (%v)", err)
	}
	other, err := s.Secret(ctx, "admin-signin", 32)
	if err != nil || bytes.Equal(other, k1) {
		t.Errorf("another name's key = %x, %v; want a different key", other, err)
	}
	s.Close()
	s = open(t, path)
	k3, err := s.Secret(ctx, "guest-rejoin", 32)
	if err != nil || !bytes.Equal(k1, k3) {
		t.Errorf("after reopening, Secret = %x, %v; want the same key", k3, err)
	}
	if _, err := s.Secret(ctx, "", 32); err == nil {
		t.Error("Secret without a name succeeded")
	}
}

func TestAdminSessions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "confab.db")
	s := open(t, path)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, h := range []string{"aa", "bb", "cc"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := s.AddAdminSession(ctx, AdminSession{IDHash: h, User: "admin", CSRF: "tok-" + h, Created: at, Seen: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddAdminSession(ctx, AdminSession{IDHash: "aa", User: "admin", CSRF: "x", Created: t0, Seen: t0}); err == nil {
		t.Error("a second session with the same id was kept")
	}
	s.Close()
	s = open(t, path) // sessions outlive a restart

	got, err := s.AdminSessionByHash(ctx, "bb")
	if err != nil || got.User != "admin" || got.CSRF != "tok-bb" || !got.Created.Equal(t0.Add(time.Minute)) {
		t.Fatalf("AdminSessionByHash(bb) = %+v, %v", got, err)
	}
	if _, err := s.AdminSessionByHash(ctx, "zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown session: %v, want ErrNotFound", err)
	}
	if err := s.TouchAdminSession(ctx, "aa", t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAdminSession(ctx, "zz", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("touching an unknown session: %v, want ErrNotFound", err)
	}
	// Seen before 12:01:30: bb only (aa was touched at 12:10, cc seen at 12:02).
	n, err := s.DeleteExpiredAdminSessions(ctx, t0.Add(90*time.Second), t0.Add(-time.Hour))
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredAdminSessions (idle) removed %d, %v; want 1 (bb)", n, err)
	}
	n, err = s.DeleteExpiredAdminSessions(ctx, t0.Add(-time.Hour), t0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredAdminSessions (absolute) removed %d, %v; want 1 (aa, created first)", n, err)
	}
	if c, err := s.CountAdminSessions(ctx); err != nil || c != 1 {
		t.Errorf("CountAdminSessions = %d, %v; want 1", c, err)
	}
	if err := s.DeleteAdminSession(ctx, "cc"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAdminSession(ctx, "cc"); err != nil {
		t.Errorf("deleting a deleted session: %v, want nil", err)
	}
	for i := 0; i < 4; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		if err := s.AddAdminSession(ctx, AdminSession{IDHash: string(rune('p' + i)), User: "u", CSRF: "t", Created: at, Seen: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteOldestAdminSessions(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminSessionByHash(ctx, "s"); err != nil {
		t.Errorf("the newest session was removed: %v", err)
	}
	if c, _ := s.CountAdminSessions(ctx); c != 1 {
		t.Errorf("%d sessions left, want 1", c)
	}
}
