package webadmin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/web/webadmin"
)

// storeSessions keeps the web admin's sessions in a store, as the Call Bridge does.
type storeSessions struct{ st *store.Store }

func (s storeSessions) SessionKey(ctx context.Context) ([]byte, error) {
	return s.st.Secret(ctx, "admin-signin", 32)
}

func (s storeSessions) AddSession(ctx context.Context, a webadmin.StoredSession) error {
	return s.st.AddAdminSession(ctx, store.AdminSession{IDHash: a.IDHash, User: a.User, CSRF: a.CSRF, Created: a.Created, Seen: a.Seen})
}

func (s storeSessions) Session(ctx context.Context, h string) (webadmin.StoredSession, error) {
	a, err := s.st.AdminSessionByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return webadmin.StoredSession{}, fmt.Errorf("%w: %w", webadmin.ErrNotFound, err)
	}
	return webadmin.StoredSession{IDHash: a.IDHash, User: a.User, CSRF: a.CSRF, Created: a.Created, Seen: a.Seen}, err
}

func (s storeSessions) TouchSession(ctx context.Context, h string, seen time.Time) error {
	return s.st.TouchAdminSession(ctx, h, seen)
}

func (s storeSessions) DeleteSession(ctx context.Context, h string) error {
	return s.st.DeleteAdminSession(ctx, h)
}

func (s storeSessions) PruneSessions(ctx context.Context, idle, created time.Time, keep int) error {
	_, err := s.st.DeleteExpiredAdminSessions(ctx, idle, created)
	return err
}

func sessionCookie(t *testing.T, e *adminEnv, c *http.Client) string {
	t.Helper()
	u, _ := url.Parse(e.srv.URL + "/admin/")
	for _, k := range c.Jar.Cookies(u) {
		if k.Name == "confab_admin" {
			return k.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// TestSessionSurvivesRestart: with its sessions in the store, a signed-in administrator is
// still signed in, with the same token, after the web admin restarts; a sign-in page opened
// before the restart still signs in after it; the store holds the identifier's hash, not the
// identifier; signing out ends the session for good; and expiry still ends it.
func TestSessionSurvivesRestart(t *testing.T) {
	e := newAdminEnv(t)
	sessions := storeSessions{e.st}
	e.start(sessions)
	token := e.login(t, e.client)
	id := sessionCookie(t, e, e.client)
	sum := sha256.Sum256([]byte(id))
	if _, err := e.st.AdminSessionByHash(context.Background(), hex.EncodeToString(sum[:])); err != nil {
		t.Errorf("the store does not hold the session's hash: %v", err)
	}
	if _, err := e.st.AdminSessionByHash(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the store holds the session identifier itself (%v)", err)
	}
	// Someone else opens the sign-in page before the restart.
	other := e.newClient(t)
	page := e.get(t, other, "/admin/login")

	e.start(sessions) // the restart
	res := e.get(t, e.client, "/admin/status")
	if res.code != http.StatusOK {
		t.Fatalf("after a restart the status page answers %d, want 200 (still signed in)", res.code)
	}
	if got := csrfOf(t, res.body); got != token {
		t.Errorf("the session's token changed across the restart")
	}
	res = e.post(t, other, "/admin/login", url.Values{"csrf": {csrfOf(t, page.body)}, "username": {"admin"}, "password": {"correct horse"}}, nil)
	if res.code != http.StatusSeeOther {
		t.Errorf("signing in with a page from before the restart: %d, want 303", res.code)
	}

	// Signing out ends the session, also for the next restart.
	if res := e.post(t, e.client, "/admin/logout", url.Values{"csrf": {token}}, nil); res.code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", res.code)
	}
	e.start(sessions)
	replay := e.newClient(t)
	u, _ := url.Parse(e.srv.URL + "/admin/")
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "confab_admin", Value: id, Path: "/admin/"}})
	if res := e.get(t, replay, "/admin/status"); res.code != http.StatusSeeOther {
		t.Errorf("the signed-out session's cookie still works after a restart: %d", res.code)
	}

	// Expiry is kept too: 31 idle minutes end the other session.
	if res := e.get(t, other, "/admin/status"); res.code != http.StatusOK {
		t.Fatalf("the other session: %d", res.code)
	}
	e.clock.Advance(31 * time.Minute)
	e.start(sessions)
	if res := e.get(t, other, "/admin/status"); res.code != http.StatusSeeOther {
		t.Errorf("a session idle for 31 minutes: %d, want a redirect to sign-in", res.code)
	}
}
