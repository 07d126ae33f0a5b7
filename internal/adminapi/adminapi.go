// Package adminapi is the Call Bridge's REST API (port 8445), following the conventions of
// the Cisco Meeting Server API so that scripts written for CMS work against Confab:
//
//   - HTTP Basic authentication against the store's API accounts;
//   - requests are form-encoded (application/x-www-form-urlencoded) POST and PUT, where a
//     parameter that is absent leaves its field unchanged and one that is present but empty
//     unsets it (see Form);
//   - responses are XML documents (<?xml version="1.0"?><xmpp>…</xmpp>, lists as
//     <alarms total="N"><alarm id="…">…</alarm></alarms>), or the same fields as JSON when the
//     client's Accept header prefers application/json;
//   - errors are <failureDetails> documents (see Failure) with a 4xx status.
//
// docs/api.md describes every endpoint and Confab's extensions. To add an endpoint, write a
// handler (a function returning the document to send, or an error) and register it in
// routes with a Go 1.22 pattern; authentication, content negotiation, body limits, errors and
// logging are done around it.
package adminapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"confab.dev/confab/internal/callbridge/accounts"
	"confab.dev/confab/internal/callbridge/cdr"
	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
)

// Link is the Call Bridge's link to its XMPP server, as the API sees it.
type Link interface {
	// Status is a snapshot of the link.
	Status() linkstate.Status
	// Alarms are the link's active alarms.
	Alarms() []linkstate.Alarm
	// Trace returns the step events with a sequence number above after, oldest first.
	Trace(after uint64) []linkstate.Event
	// Apply makes the link use cfg now (reconnecting if needed). It must not block on the
	// network: the API calls it while answering the request that changed the settings.
	Apply(cfg store.XMPPSettings)
}

// Options configures the API.
type Options struct {
	Store *store.Store // required
	// Link is the XMPP link; when nil, the status shows it unavailable and changes of the XMPP
	// settings are only stored.
	Link Link
	// Settings writes the XMPP settings (the Call Bridge's one writer, shared with the web
	// admin); one over Store and Link when nil.
	Settings *link.SettingsWriter
	Logger   *slog.Logger     // slog.DiscardHandler when nil
	Version  string           // softwareVersion in /system/status
	Now      func() time.Time // time.Now when nil
	// AuthFailureDelay is how long a request with wrong credentials waits before its 401, to
	// slow password guessing; 500ms when zero, none when negative.
	AuthFailureDelay time.Duration
	// Accounts checks credentials (the Call Bridge's one checker, shared with the web
	// admin); one over Store with its defaults when nil. A name or an address that failed too
	// often gets 429 tooManyAuthenticationFailures with Retry-After, before its credentials
	// are checked, until its block ends; too many checks at once get 503.
	Accounts *accounts.Checker
	Meetings *meeting.Service // spaces, calls and call legs; one over Store when nil
	Users    *users.Service   // /users and the LDAP endpoints; not served when nil
	// CDR holds the CDR receivers (/system/cdrReceivers) and sends them the records; when
	// nil, one over Store that sends nothing (receivers are only stored).
	CDR *cdr.Service
	// Media gives call legs' media statistics (GET /callLegs/{id} status) and the media
	// server's bit rates (/system/status); nil without media.
	Media Media
	// WebBridgeURL is where browsers reach the Web Bridge (GET /webBridges); none when empty.
	WebBridgeURL string
	// TURN returns the embedded TURN server (nil when none runs), whose allocations
	// /turnServers/{EmbeddedTURN}/allocations lists.
	TURN         func() *turnd.Server
	EmbeddedTURN string
	// MediaLadder returns a call leg's media ladder (shown on GET /callLegs/{id}); none
	// when nil.
	MediaLadder func(legID string) (ladder.Ladder, bool)
}

// Media is the Call Bridge's media server as the API sees it (*media.Service).
type Media interface {
	// Stats returns a call leg's media statistics, if it has media.
	Stats(callID, legID string) (sfu.ParticipantStats, bool)
	// Totals returns the bit rates received from and sent to participants, by kind.
	Totals() (audioIn, videoIn, audioOut, videoOut int)
}

// MaxBodyBytes is the largest request body accepted; a larger one is refused with 413.
const MaxBodyBytes = 1 << 20

// server holds the API's dependencies; its methods are the handlers.
type server struct {
	store   *store.Store
	link    Link
	log     *slog.Logger
	version string
	now     func() time.Time
	started time.Time
	auth    *authenticator
	mux     *http.ServeMux
	names   map[string]string // the literal segments of the routes, by their lower case (see normalizePath)

	meetings *meeting.Service // see spaceRoutes
	users    *users.Service   // see userRoutes
	cdr      *cdr.Service     // see cdrRoutes
	webURL   string
	media    Media // nil without media

	turn         func() *turnd.Server
	embeddedTURN string
	ladder       func(legID string) (ladder.Ladder, bool)

	settings *link.SettingsWriter
}

// handler serves one endpoint. It returns the document to send with status 200 (nil for an
// empty body), or an error: a *Failure is sent as failureDetails with its status, anything
// else is logged and answered with 500.
type handler func(w http.ResponseWriter, r *http.Request) (any, error)

// Handler is the API: an http.Handler for the paths under /api/v1/.
type Handler struct{ s *server }

// ServeHTTP authenticates, routes, and logs one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.s.ServeHTTP(w, r) }

// New returns the API's handler. It serves paths under /api/v1/.
func New(o Options) *Handler {
	s := &server{
		store:   o.Store,
		link:    o.Link,
		log:     o.Logger,
		version: o.Version,
		now:     o.Now,
		mux:     http.NewServeMux(),
		names:   map[string]string{},

		meetings: o.Meetings,
		users:    o.Users,
		cdr:      o.CDR,
		webURL:   o.WebBridgeURL,
		media:    o.Media,

		turn:         o.TURN,
		embeddedTURN: o.EmbeddedTURN,
		ladder:       o.MediaLadder,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.link == nil {
		s.link = noLink{}
	}
	s.settings = o.Settings
	if s.settings == nil {
		s.settings = &link.SettingsWriter{Store: o.Store, Link: s.link}
	}
	s.started = s.now()
	delay := o.AuthFailureDelay
	if delay == 0 {
		delay = 500 * time.Millisecond
	}
	if o.Accounts == nil {
		o.Accounts = accounts.New(accounts.Options{Store: o.Store, Now: s.now})
	}
	s.auth = &authenticator{accounts: o.Accounts, failDelay: max(delay, 0)}
	s.routes()
	return &Handler{s}
}

func (s *server) routes() {
	s.handle("GET /api/v1/system/status", s.getStatus)
	s.handle("GET /api/v1/system/alarms", s.getAlarms)
	s.handle("GET /api/v1/system/xmppTrace", s.getXMPPTrace)
	s.handle("GET /api/v1/system/configuration/xmpp", s.getXMPPConfig)
	s.handle("PUT /api/v1/system/configuration/xmpp", s.setXMPPSettings)
	s.handle("POST /api/v1/system/configuration/xmpp", s.setXMPPSettings)
	s.spaceRoutes()
	s.userRoutes()
	s.cdrRoutes()
	s.systemRoutes()
}

func (s *server) handle(pattern string, h handler) {
	s.learnNames(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		doc, err := h(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.write(w, r, http.StatusOK, doc)
	})
}

type userKey struct{}

// user returns the authenticated API account of the request.
func user(r *http.Request) string {
	u, _ := r.Context().Value(userKey{}).(string)
	return u
}

// ServeHTTP authenticates, routes, and logs one request.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	r = normalizePath(r, s.names)
	name, err := s.auth.check(r)
	wait, isThrottled := throttled(err)
	switch {
	case isThrottled:
		secs := int((wait + time.Second - 1) / time.Second)
		sw.Header().Set("Retry-After", strconv.Itoa(secs))
		s.write(sw, r, http.StatusTooManyRequests, &Failure{Status: http.StatusTooManyRequests, Name: "tooManyAuthenticationFailures"})
		s.log.Warn("api request refused: too many authentication failures", "user", name, "remote", r.RemoteAddr, "retry_after_s", secs)
	case err == nil:
		s.serveAs(sw, r, name)
	case errors.Is(err, errUnauthorized):
		if !errors.Is(err, errNoCredentials) {
			// Wrong credentials wait, to slow guessing; a client that sent none (PowerShell and
			// .NET send credentials only when challenged) gets its challenge at once.
			s.auth.slowDown(r.Context())
		}
		sw.Header().Set("WWW-Authenticate", `Basic realm="Confab"`)
		s.write(sw, r, http.StatusUnauthorized, &Failure{Status: http.StatusUnauthorized, Name: "authenticationFailure"})
		if name != "" {
			s.log.Warn("api authentication failed", "user", name, "remote", r.RemoteAddr)
		}
	case errors.Is(err, accounts.ErrBusy):
		sw.Header().Set("Retry-After", "1")
		s.write(sw, r, http.StatusServiceUnavailable, &Failure{Status: http.StatusServiceUnavailable, Name: "tooManyRequests"})
	default:
		s.fail(sw, r, err)
	}
	level := slog.LevelDebug
	if r.Method != http.MethodGet && r.Method != http.MethodHead || sw.status >= 400 {
		level = slog.LevelInfo
	}
	s.log.Log(r.Context(), level, "api request", "method", r.Method, "path", r.URL.Path,
		"status", sw.status, "user", name, "remote", r.RemoteAddr, "duration", time.Since(start))
}

// serveAs serves an authenticated request of the API account name.
func (s *server) serveAs(w http.ResponseWriter, r *http.Request, name string) {
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, name))
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	s.route(w, r)
}

// route dispatches to the endpoint's handler, answering unknown paths (404) and methods
// (405, with Allow) with failureDetails documents instead of the mux's plain text.
func (s *server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // (not h: ServeHTTP also sets the request's path values)
		return
	}
	rec := &statusWriter{ResponseWriter: discard{header: http.Header{}}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.Header().Get("Allow"))
		s.fail(w, r, &Failure{Status: http.StatusMethodNotAllowed, Name: "methodNotAllowed"})
		return
	}
	s.fail(w, r, &Failure{Status: http.StatusNotFound, Name: "pathDoesNotExist"})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discard is a ResponseWriter that keeps only headers.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// noLink stands in when no link is wired.
type noLink struct{}

func (noLink) Status() linkstate.Status       { return linkstate.Status{State: linkstate.Unavailable} }
func (noLink) Alarms() []linkstate.Alarm      { return nil }
func (noLink) Trace(uint64) []linkstate.Event { return nil }
func (noLink) Apply(store.XMPPSettings)       {}
