package webadmin

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/accounts"
)

// pageData is what every page's template gets.
type pageData struct {
	Title string
	Nav   string // the current section: status, configuration, users, spaces, calls
	User  string // signed-in administrator, "" on the sign-in page
	CSRF  string // the session's token, for every form
	Body  any    // the page's own data
}

var pageFiles = []string{"login.html", "status.html", "general.html", "api.html", "users.html", "spaces.html", "calls.html", "forbidden.html",
	"space.html", "confirm.html", "password.html", "ldap.html", "logs.html", "notfound.html", "turn.html"}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Format("2006-01-02 15:04:05 MST")
		},
		"count": func(n int, one, many string) string {
			if n == 1 {
				return "1 " + one
			}
			return fmt.Sprintf("%d %s", n, many)
		},
		"failed": func(steps []StepView) bool {
			for _, s := range steps {
				if s.Class == classFailed {
					return true
				}
			}
			return false
		},
		"plural": plural,
		"field": func(f formState, name, label, typ, hint string) fieldData {
			return fieldData{Name: name, Label: label, Type: typ, Hint: hint, Value: f.V(name), Error: f.E(name)}
		},
		"stream":      streamText,
		"since":       sinceText,
		"bytes":       bytesText,
		"stepMark":    stepMark,
		"stepLabel":   stepLabel,
		"ladderClass": ladderClass,
		"ladderState": ladderState,
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return time.Since(t).Round(time.Second).String()
		},
		"levelName":  levelName,
		"levelClass": levelClass,
		"clock": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Format("15:04:05.000")
		},
		"day": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Format("2006-01-02")
		},
		"stamp": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Format(time.RFC3339)
		},
	}
	pages := make(map[string]*template.Template, len(pageFiles))
	for _, p := range pageFiles {
		pages[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(embedded, "templates/layout.html", "templates/"+p))
	}
	return pages
}

// fieldData is one labelled input of a form, for the "field" template.
type fieldData struct {
	Name, Label, Type, Hint, Value, Error string
}

// ---- sign-in -------------------------------------------------------------------------

type loginBody struct {
	Token string
	Next  string
	User  string
	Error string
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.sessions.get(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	body := loginBody{Token: s.sessions.preToken(w, r), Next: safeNext(r.URL.Query().Get("next"))}
	s.render(w, r, http.StatusOK, "login.html", pageData{Title: "Sign in", Body: body})
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	user := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	again := func(code int, msg string) {
		body := loginBody{Token: s.sessions.preToken(w, r), Next: next, User: user, Error: msg}
		s.render(w, r, code, "login.html", pageData{Title: "Sign in", Body: body})
	}
	if user == "" || password == "" {
		again(http.StatusOK, "Enter your username and password")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	err := s.b.CheckLogin(ctx, user, password, r.RemoteAddr)
	var te *accounts.ThrottledError
	switch {
	case errors.As(err, &te):
		secs := int((te.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		s.log.Warn("web admin sign-in refused: too many failures", "remote", r.RemoteAddr, "user", user)
		again(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts; try again in %d seconds", secs))
		return
	case errors.Is(err, accounts.ErrBusy):
		w.Header().Set("Retry-After", "1")
		s.log.Warn("web admin sign-in refused: too many sign-ins at once", "remote", r.RemoteAddr, "user", user)
		again(http.StatusServiceUnavailable, "Too many sign-ins at once; try again in a moment")
		return
	case err != nil:
		s.log.Info("web admin sign-in failed", "remote", r.RemoteAddr, "user", user, "err", err)
		// The same words whether the user exists or not.
		again(http.StatusOK, "Sign in failed")
		return
	}
	clearPreCookie(w)
	s.sessions.create(w, r, user)
	s.log.Info("web admin sign-in", "remote", r.RemoteAddr, "user", user)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if sess := s.sessions.get(r); sess != nil {
		s.log.Info("web admin sign-out", "remote", r.RemoteAddr, "user", sess.user)
	}
	s.sessions.end(w, r)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

func (s *server) page(sess *session, nav, title string, body any) pageData {
	return pageData{Title: title, Nav: nav, User: sess.user, CSRF: sess.csrf, Body: body}
}

// ---- status --------------------------------------------------------------------------

type statusBody struct {
	Flow   SignalFlow
	Ladder Ladder
}

func (s *server) statusPage(w http.ResponseWriter, r *http.Request, sess *session) {
	flow := s.signalFlow(s.now())
	s.render(w, r, http.StatusOK, "status.html", s.page(sess, "status", "Status", statusBody{Flow: flow, Ladder: buildLadder(flow.Steps)}))
}

// ---- Configuration > General ---------------------------------------------------------

type generalBody struct {
	UniqueName, Domain, ServerAddressOverride string
	SecretSet                                 bool
	Saved                                     bool
	Errors                                    map[string]string
	Error                                     string
	// Confirm is set when saving would end live calls: the page warns and asks again.
	Confirm *confirmSettings
}

func (s *server) generalPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	x, err := s.b.XMPPSettings(ctx)
	body := generalBody{
		UniqueName: x.UniqueName, Domain: x.Domain, ServerAddressOverride: x.ServerAddressOverride, SecretSet: x.SecretSet,
		Saved: r.URL.Query().Get("saved") == "1",
	}
	code := http.StatusOK
	if err != nil {
		s.log.Error("web admin: read XMPP settings", "err", err)
		body.Error = "The settings could not be read: " + err.Error()
		code = http.StatusInternalServerError
	}
	s.render(w, r, code, "general.html", s.page(sess, "configuration", "Configuration: General", body))
}

// ---- lists ---------------------------------------------------------------------------

type listBody[T any] struct {
	Items  []T
	Error  string
	Notice string
}

func listPage[T any](s *server, w http.ResponseWriter, r *http.Request, sess *session, nav, title, page string, load func(context.Context) ([]T, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	items, err := load(ctx)
	body := listBody[T]{Items: items, Notice: notice(r)}
	code := http.StatusOK
	if err != nil {
		s.log.Error("web admin: list "+nav, "err", err)
		body.Error = "The list could not be read: " + err.Error()
		code = http.StatusInternalServerError
	}
	s.render(w, r, code, page, s.page(sess, nav, title, body))
}

func (s *server) spacesPage(w http.ResponseWriter, r *http.Request, sess *session) {
	listPage(s, w, r, sess, "spaces", "Spaces", "spaces.html", func(ctx context.Context) ([]SpaceView, error) {
		sp, err := s.b.Spaces(ctx)
		sort.SliceStable(sp, func(i, j int) bool { return strings.ToLower(sp[i].Name) < strings.ToLower(sp[j].Name) })
		return sp, err
	})
}
