package webadmin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
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

// session is a signed-in administrator.
type session struct {
	id      string
	user    string
	csrf    string
	created time.Time
	seen    time.Time
}

// sessions holds the sessions in memory: they end with the process, as an administrator
// expects of a restart.
type sessions struct {
	mu        sync.Mutex
	m         map[string]*session
	now       func() time.Time
	idle, max time.Duration
	key       []byte // HMAC key of pre-session tokens
}

func newSessions(now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{m: make(map[string]*session), now: now, idle: idle, max: max, key: randomBytes(32)}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// get returns the live session named by the request's cookie, or nil; it counts as
// activity.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.m, s.id)
		return nil
	}
	s.seen = now
	cp := *s
	return &cp
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) > ss.idle || now.Sub(s.created) > ss.max
}

// create starts a session for user, ending the one the request had (a new identifier at
// sign-in defeats session fixation).
func (ss *sessions) create(w http.ResponseWriter, r *http.Request, user string) *session {
	now := ss.now()
	s := &session{id: randomToken(), user: user, csrf: randomToken(), created: now, seen: now}
	ss.mu.Lock()
	if c, err := r.Cookie(sessionCookie); err == nil {
		delete(ss.m, c.Value)
	}
	if len(ss.m) >= maxSessions {
		ss.evictLocked(now)
	}
	ss.m[s.id] = s
	ss.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.id, Path: Prefix, MaxAge: int(ss.max / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	return s
}

// evictLocked drops expired sessions and, if that is not enough, the oldest one.
func (ss *sessions) evictLocked(now time.Time) {
	var oldest *session
	for id, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, id)
			continue
		}
		if oldest == nil || s.seen.Before(oldest.seen) {
			oldest = s
		}
	}
	if len(ss.m) >= maxSessions && oldest != nil {
		delete(ss.m, oldest.id)
	}
}

// end ends the request's session and clears its cookie.
func (ss *sessions) end(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss.mu.Lock()
		delete(ss.m, c.Value)
		ss.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
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
	return ss.sign(nonce)
}

func (ss *sessions) sign(nonce string) string {
	m := hmac.New(sha256.New, ss.key)
	m.Write([]byte("confab web admin sign-in\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkPreToken reports whether token is the sign-in token of the request's pre-session.
func (ss *sessions) checkPreToken(r *http.Request, token string) bool {
	c, err := r.Cookie(preCookie)
	if err != nil || c.Value == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(ss.sign(c.Value)), []byte(token))
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
