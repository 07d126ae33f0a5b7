package webadmin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"confab.dev/confab/internal/sameorigin"
)

const (
	sessionCookie = "confab_admin"
	preCookie     = "confab_admin_pre" // before sign-in: binds the sign-in form's token
	maxSessions   = 10000
	maxFormBytes  = 16 << 10
)

// session is a signed-in administrator. id is the identifier the browser holds in its
// cookie; the SessionStore keeps only its hash.
type session struct {
	id      string
	user    string
	csrf    string
	created time.Time
	seen    time.Time
}

// StoredSession is a session as a SessionStore keeps it: IDHash is the hex SHA-256 of the
// cookie's identifier, so that whoever reads the store cannot sign in with it.
type StoredSession struct {
	IDHash        string
	User          string
	CSRF          string
	Created, Seen time.Time
}

// SessionStore keeps the web admin's sessions so that an administrator stays signed in
// across a restart of the Call Bridge (the store of the Call Bridge implements it: a Backend
// that is also a SessionStore is used). Without one, sessions are kept in memory and end
// with the process.
type SessionStore interface {
	// SessionKey returns the key that signs the sign-in form's tokens, the same after a
	// restart (a sign-in page opened before a restart still works after it).
	SessionKey(ctx context.Context) ([]byte, error)
	AddSession(ctx context.Context, s StoredSession) error
	// Session returns the session with that hash, or an error wrapping ErrNotFound.
	Session(ctx context.Context, idHash string) (StoredSession, error)
	// TouchSession records activity; DeleteSession ends a session (one that is gone is no
	// error).
	TouchSession(ctx context.Context, idHash string, seen time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	// PruneSessions removes the sessions last seen before idleBefore or created before
	// createdBefore, then, if more than keep are left, those seen longest ago.
	PruneSessions(ctx context.Context, idleBefore, createdBefore time.Time, keep int) error
}

// touchEvery bounds how often a session's activity is written: every request counts as
// activity, and the Status page asks every second.
const touchEvery = time.Minute

// sessions are the signed-in administrators, kept in a SessionStore, with an idle and an
// absolute expiry.
type sessions struct {
	st        SessionStore
	now       func() time.Time
	idle, max time.Duration
	log       *slog.Logger

	keyMu sync.Mutex
	key   []byte // HMAC key of pre-session tokens, from the store
}

func newSessions(st SessionStore, now func() time.Time, idle, max time.Duration, log *slog.Logger) *sessions {
	if st == nil {
		st = newMemorySessions()
	}
	return &sessions{st: st, now: now, idle: idle, max: max, log: log}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// hashID is what the store keeps of a session identifier.
func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// get returns the live session named by the request's cookie, or nil; it counts as
// activity.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil
	}
	now := ss.now()
	ctx := r.Context()
	h := hashID(c.Value)
	st, err := ss.st.Session(ctx, h)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			ss.log.Error("web admin: read session", "err", err)
		}
		return nil
	}
	if ss.expired(st.Seen, st.Created, now) {
		if err := ss.st.DeleteSession(ctx, h); err != nil {
			ss.log.Error("web admin: end an expired session", "err", err)
		}
		return nil
	}
	if now.Sub(st.Seen) >= touchEvery {
		if err := ss.st.TouchSession(ctx, h, now); err != nil && !errors.Is(err, ErrNotFound) {
			ss.log.Error("web admin: record session activity", "err", err)
		}
		st.Seen = now
	}
	return &session{id: c.Value, user: st.User, csrf: st.CSRF, created: st.Created, seen: st.Seen}
}

func (ss *sessions) expired(seen, created, now time.Time) bool {
	return now.Sub(seen) > ss.idle || now.Sub(created) > ss.max
}

// create starts a session for user, ending the one the request had (a new identifier at
// sign-in defeats session fixation). It returns nil when the session could not be kept.
func (ss *sessions) create(w http.ResponseWriter, r *http.Request, user string) *session {
	now := ss.now()
	ctx := r.Context()
	s := &session{id: randomToken(), user: user, csrf: randomToken(), created: now, seen: now}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := ss.st.DeleteSession(ctx, hashID(c.Value)); err != nil {
			ss.log.Error("web admin: end the previous session", "err", err)
		}
	}
	if err := ss.st.PruneSessions(ctx, now.Add(-ss.idle), now.Add(-ss.max), maxSessions-1); err != nil {
		ss.log.Error("web admin: prune sessions", "err", err)
	}
	if err := ss.st.AddSession(ctx, StoredSession{IDHash: hashID(s.id), User: user, CSRF: s.csrf, Created: now, Seen: now}); err != nil {
		ss.log.Error("web admin: keep a new session", "err", err)
		return nil
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.id, Path: Prefix, MaxAge: int(ss.max / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	return s
}

// end ends the request's session and clears its cookie.
func (ss *sessions) end(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := ss.st.DeleteSession(r.Context(), hashID(c.Value)); err != nil {
			ss.log.Error("web admin: end a session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// signingKey returns the pre-session tokens' key, read from the store once; while the store
// cannot give one, a key of this process's own.
func (ss *sessions) signingKey(ctx context.Context) []byte {
	ss.keyMu.Lock()
	defer ss.keyMu.Unlock()
	if ss.key != nil {
		return ss.key
	}
	k, err := ss.st.SessionKey(ctx)
	if err != nil || len(k) == 0 {
		ss.log.Error("web admin: the sign-in key could not be read; using one until the restart", "err", err)
		k = randomBytes(32)
	}
	ss.key = k
	return k
}

// memorySessions is the SessionStore of a web admin without one: sessions in memory, ended
// by a restart.
type memorySessions struct {
	mu  sync.Mutex
	m   map[string]StoredSession
	key []byte
}

func newMemorySessions() *memorySessions {
	return &memorySessions{m: map[string]StoredSession{}, key: randomBytes(32)}
}

func (m *memorySessions) SessionKey(context.Context) ([]byte, error) { return m.key, nil }

func (m *memorySessions) AddSession(_ context.Context, s StoredSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[s.IDHash] = s
	return nil
}

func (m *memorySessions) Session(_ context.Context, h string) (StoredSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[h]
	if !ok {
		return StoredSession{}, ErrNotFound
	}
	return s, nil
}

func (m *memorySessions) TouchSession(_ context.Context, h string, seen time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[h]
	if !ok {
		return ErrNotFound
	}
	s.Seen = seen
	m.m[h] = s
	return nil
}

func (m *memorySessions) DeleteSession(_ context.Context, h string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, h)
	return nil
}

func (m *memorySessions) PruneSessions(_ context.Context, idleBefore, createdBefore time.Time, keep int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, s := range m.m {
		if s.Seen.Before(idleBefore) || s.Created.Before(createdBefore) {
			delete(m.m, h)
		}
	}
	for len(m.m) > keep {
		var oldest StoredSession
		for _, s := range m.m {
			if oldest.IDHash == "" || s.Seen.Before(oldest.Seen) {
				oldest = s
			}
		}
		delete(m.m, oldest.IDHash)
	}
	return nil
}

// preToken returns the sign-in form's token, setting the pre-session cookie it is bound to
// when the request has none.
func (ss *sessions) preToken(w http.ResponseWriter, r *http.Request) string {
	nonce := ""
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 32 {
		nonce = c.Value
	} else {
		nonce = randomToken()
		http.SetCookie(w, &http.Cookie{
			Name: preCookie, Value: nonce, Path: Prefix, MaxAge: 3600,
			HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		})
	}
	return ss.sign(r.Context(), nonce)
}

func (ss *sessions) sign(ctx context.Context, nonce string) string {
	m := hmac.New(sha256.New, ss.signingKey(ctx))
	m.Write([]byte("confab web admin sign-in\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkPreToken reports whether token is the sign-in token of the request's pre-session.
func (ss *sessions) checkPreToken(r *http.Request, token string) bool {
	c, err := r.Cookie(preCookie)
	if err != nil || c.Value == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(ss.sign(r.Context(), c.Value)), []byte(token))
}

func clearPreCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// errForbidden is a state-changing request that failed the same-origin or token check.
var errForbidden = errors.New("cross-site request refused")

// checked guards a state-changing request: same origin (Origin, or Referer), a bounded
// form, and the synchronizer token of the session (or of the pre-session, for sign-in).
func (s *server) checked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := sameorigin.Check(r); err != nil {
			s.log.Warn("web admin request refused: not same-origin", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			s.forbidden(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "the form could not be read", http.StatusBadRequest)
			return
		}
		token := r.PostForm.Get("csrf")
		ok := false
		if sess := s.sessions.get(r); sess != nil {
			ok = token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
		}
		if !ok && r.URL.Path == "/admin/login" {
			ok = s.sessions.checkPreToken(r, token)
		}
		if !ok && r.URL.Path == "/admin/logout" && s.sessions.get(r) == nil {
			// Nothing to sign out of: no state changes, so no token is needed.
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		if !ok {
			s.log.Warn("web admin request refused: missing or wrong CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
			s.forbidden(w, r)
			return
		}
		h(w, r)
	}
}

func (s *server) forbidden(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusForbidden, "forbidden.html", pageData{Title: "Request refused"})
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
