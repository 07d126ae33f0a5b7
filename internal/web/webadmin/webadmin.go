// Package webadmin is Confab's web admin, served by the Call Bridge under /admin/ on the
// admin port (8445, beside the REST API): sign-in with an API user's name and password, the
// XMPP server settings (Configuration > General, with a second confirmation when saving
// would drop the link and so end live calls), the status of the link to the XMPP server
// drawn as the signal flow of docs/signalling.md (a ladder diagram of the twelve steps,
// coloured by their last outcome, updated every second, with a banner when the page can no
// longer reach the server), the active alarms; spaces created, edited (members too) and
// deleted; local users created and their passwords reset; LDAP servers, mappings and
// sources and their syncs; the live calls with their participants' media and each one's
// media ladder (package ladder: the path media takes, or the step that failed, its cause and
// remedy), refreshed every few seconds, a participant removed or a call ended;
// Configuration > TURN (the TURN servers as browsers get them, the embedded server's
// allocations); and the event log (Logs > Event log).
//
// Pages are rendered on the server; admin.js only refreshes live parts and moves focus to
// a form's first error. Every change is a POST with the CSRF token, answered with a
// redirect (POST-redirect-GET) or the form again with errors beside the fields. What
// cannot be undone (delete a space, end a call, remove a participant) goes through a
// confirmation page that says what it ends.
//
// # Security
//
// A session is a random 256-bit identifier in a cookie that is HttpOnly, Secure,
// SameSite=Strict and limited to /admin/, with an idle and an absolute expiry; the identifier
// is replaced at sign-in. Sessions are kept in the Call Bridge's store (SessionStore), only
// the identifier's SHA-256, so an administrator stays signed in across a restart, and signing
// out ends the session for good. Every state-changing request (sign-in, sign-out, saving settings)
// must pass two checks: its Origin (or Referer) must be this server's own origin, and it
// must carry the synchronizer token of its session (before sign-in, a token bound to a
// pre-session cookie). Pages are sent with a Content Security Policy that allows this
// origin's own scripts and styles only, and may not be framed. The XMPP shared secret is
// write-only: the page says whether one is set, never what it is.
package webadmin

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
)

//go:embed assets templates
var embedded embed.FS

// Backend is what the web admin shows and changes: the Call Bridge's store, its link to
// the XMPP server, and its meetings. Methods with a context may block on the store.
type Backend interface {
	// CheckLogin returns nil if user and password are an API user's (the REST API's
	// accounts), checked as the REST API checks them; any error refuses the sign-in: a
	// *accounts.ThrottledError or accounts.ErrBusy with "try again later" (429), anything
	// else with "Sign in failed". remoteAddr is the client's, for the throttle.
	CheckLogin(ctx context.Context, user, password, remoteAddr string) error
	// XMPPSettings returns the XMPP server settings as stored.
	XMPPSettings(ctx context.Context) (XMPPSettings, error)
	// SetXMPPSettings stores the settings and applies them to the link at once. newSecret
	// nil keeps the shared secret; a pointer to "" removes it. An invalid value is reported
	// as a *FieldError, which the form shows beside the field.
	SetXMPPSettings(ctx context.Context, uniqueName, domain, serverAddressOverride string, newSecret *string) error
	// LinkStatus, Trace and Alarms are the link's observable state (package linkstate).
	LinkStatus() linkstate.Status
	Trace(after uint64) []linkstate.Event
	Alarms() []linkstate.Alarm
	// Users, Spaces and Calls list what the REST API's /users, /coSpaces and /calls list.
	Users(ctx context.Context) ([]UserView, error)
	Spaces(ctx context.Context) ([]SpaceView, error)
	Calls(ctx context.Context) ([]CallView, error)

	// Space returns one space with its members and its live call, or an error wrapping
	// ErrNotFound.
	Space(ctx context.Context, id string) (SpaceDetail, error)
	// CreateSpace stores a new space and returns its id; UpdateSpace changes one. Invalid
	// values are *FieldError naming the form's field (name, uri, callId, passcode).
	CreateSpace(ctx context.Context, in SpaceInput) (string, error)
	UpdateSpace(ctx context.Context, id string, in SpaceInput) error
	// DeleteSpace deletes a space, ending its call if one is live.
	DeleteSpace(ctx context.Context, id string) error
	// AddMember makes the user with that bare JID a member (role "member" or "owner");
	// RemoveMember ends a membership. Field errors name "jid" or "role".
	AddMember(ctx context.Context, spaceID, jid, role string) error
	RemoveMember(ctx context.Context, spaceID, memberID string) error

	// CreateUser creates a local user; SetPassword replaces a local user's password. Field
	// errors name username, name, email or password.
	CreateUser(ctx context.Context, in NewUser) error
	SetPassword(ctx context.Context, userID, password string) error

	// LDAP returns the LDAP servers, mappings, sources and the recent syncs.
	LDAP(ctx context.Context) (LDAPView, error)
	// CreateLDAPServer, CreateLDAPMapping and CreateLDAPSource add LDAP configuration; field
	// errors name the form's fields. DeleteLDAP deletes one object of kind "server",
	// "mapping" or "source".
	CreateLDAPServer(ctx context.Context, in LDAPServerInput) error
	CreateLDAPMapping(ctx context.Context, in LDAPMappingInput) error
	CreateLDAPSource(ctx context.Context, in LDAPSourceInput) error
	DeleteLDAP(ctx context.Context, kind, id string) error
	// StartLDAPSync queues a sync of every source and returns its id.
	StartLDAPSync(ctx context.Context) (string, error)

	// EndCall ends a live call; RemoveParticipant takes one participant (call leg) out of
	// its call. Both wrap ErrNotFound when there is no such call or participant.
	EndCall(id string) error
	RemoveParticipant(id string) error

	// TURN returns the TURN servers browsers are given and the embedded TURN server's
	// allocations.
	TURN(ctx context.Context) (TURNView, error)

	// LogRecords returns the Call Bridge's recent log records, newest first (nil when none
	// are kept).
	LogRecords() []LogRecord
	// API makes a request to the REST API on behalf of the signed-in administrator user,
	// with no credentials of its own (the API browser): method GET, POST, PUT or DELETE;
	// path under /api/v1, with its query; form the parameters of a POST or PUT.
	API(ctx context.Context, user, method, path string, form url.Values) APIResponse
}

// ErrNotFound is wrapped by the Backend's errors for an object that does not exist.
var ErrNotFound = errors.New("not found")

// XMPPSettings are the Call Bridge's XMPP server settings; the secret is never read back.
type XMPPSettings struct {
	UniqueName            string
	Domain                string
	ServerAddressOverride string
	SecretSet             bool
}

// FieldError is an invalid setting, named by its form field: "uniqueName", "domain",
// "serverAddressOverride" or "sharedSecret".
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// UserView is one user.
type UserView struct {
	ID     string
	JID    string
	Name   string
	Email  string
	Source string // "local" or "ldap"
}

// SpaceView is one space (coSpace).
type SpaceView struct {
	ID              string
	Name            string
	URI             string
	CallID          string
	OwnerJID        string
	Members         int
	PasscodeSet     bool
	NonMemberAccess bool
}

// CallView is one active call (a meeting in a space) with its participants.
type CallView struct {
	ID           string
	SpaceID      string
	SpaceName    string
	Started      time.Time
	Participants []ParticipantView
}

// ParticipantView is one participant of a call (a call leg).
type ParticipantView struct {
	ID     string
	Name   string
	JID    string
	Role   string // owner, member or guest
	Joined time.Time
	// Media is the participant's media, nil when it has none (chat only, or no media
	// server).
	Media *MediaView
	// Ladder is the participant's media ladder, nil when it never asked for media.
	Ladder *LadderView
}

// LadderView is a participant's media ladder (package ladder): the state of its media, the
// path media takes, the words it was given, and each step.
type LadderView struct {
	State string // none, connecting, connected, failed
	Path  string
	Cause string
	Text  string
	Steps []LadderStep
}

// LadderStep is one step of a media ladder.
type LadderStep struct {
	Name, Title string
	State       string // ok, failed, pending, skipped, warning
	At          time.Time
	Since       time.Duration // from the ladder's start
	Detail      string
	Cause       string
	Remedy      string
}

// TURNView is what the TURN page shows.
type TURNView struct {
	Servers []TURNServerView
	// Embedded says whether the Call Bridge runs its own TURN server; Allocations are its
	// current allocations.
	Embedded    bool
	Allocations []AllocationView
}

// TURNServerView is one entry of /api/v1/turnServers as browsers get it.
type TURNServerView struct {
	ID, ServerAddress, ClientAddress, Type string
	// URLs are what a browser is given; Credentials says how it authenticates.
	URLs        []string
	Credentials string
	Embedded    bool
}

// AllocationView is one allocation of the embedded TURN server.
type AllocationView struct {
	// Who is the participant whose credentials made it (its name), Leg its call leg.
	Who, Leg, UserID               string
	Transport, Client, Relayed     string
	Since                          time.Time
	BytesToPeer, BytesFromPeer     uint64
	PacketsToPeer, PacketsFromPeer uint64
	Dropped                        uint64
}

// MediaView is a call leg's media statistics: what the Call Bridge receives from the
// participant (Rx) and sends to it (Tx).
type MediaView struct {
	RxAudio, RxVideo, TxAudio, TxVideo StreamView
}

// StreamView is one direction of one kind of media; a zero Codec means none flows.
type StreamView struct {
	Codec         string // e.g. "audio/opus"
	BitRate       int    // bits/s
	LossFraction  float64
	Jitter        time.Duration
	Width, Height int
}

// SpaceInput is a space as the form edits it.
type SpaceInput struct {
	Name, URI, CallID string
	// Passcode: nil keeps the stored passcode, a pointer to "" removes it.
	Passcode        *string
	NonMemberAccess bool
}

// SpaceDetail is a space with its members and its live call.
type SpaceDetail struct {
	SpaceView
	MemberList []MemberView
	// Call is the live call in the space, nil when there is none.
	Call *CallView
}

// MemberView is one membership of a space.
type MemberView struct {
	ID, JID, Role string
}

// NewUser is a local user to create.
type NewUser struct {
	Username, Name, Email, Password string
}

// LDAPView is the LDAP configuration and the recent syncs.
type LDAPView struct {
	Servers  []LDAPServerView
	Mappings []LDAPMappingView
	Sources  []LDAPSourceView
	Syncs    []LDAPSyncView // newest first
}

// LDAPServerView is an LDAP server; its password is never read back.
type LDAPServerView struct {
	ID, Address, Username string
	Port                  int
	Secure, PasswordSet   bool
}

// LDAPMappingView is an LDAP mapping's templates.
type LDAPMappingView struct {
	ID, JID, Name, Email string
}

// LDAPSourceView is an LDAP source.
type LDAPSourceView struct {
	ID, Server, Mapping, BaseDN, Filter string
}

// LDAPSyncView is one LDAP sync.
type LDAPSyncView struct {
	ID, Source, State, FailureReason, Detail     string
	Imported, Created, Updated, Deleted, Skipped int
	Queued, Finished                             time.Time
}

// LDAPServerInput is an LDAP server as the form gives it.
type LDAPServerInput struct {
	Address, Port, Username, Password string
	Secure                            bool
}

// LDAPMappingInput is an LDAP mapping as the form gives it.
type LDAPMappingInput struct {
	JID, Name, Email string
}

// LDAPSourceInput is an LDAP source as the form gives it.
type LDAPSourceInput struct {
	Server, Mapping, BaseDN, Filter string
}

// LogRecord is one log record of the Call Bridge, its attributes already redacted.
type LogRecord struct {
	Time      time.Time
	Level     slog.Level
	Component string
	Message   string
	Attrs     []LogAttr
}

// LogAttr is one attribute of a log record, as text.
type LogAttr struct {
	Key, Value string
}

// Options configure New.
type Options struct {
	// Backend is required.
	Backend Backend
	// Logger receives the admin's logs (default: discarded).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SessionIdle and SessionMax bound a session: it ends after SessionIdle without a
	// request (default 30 minutes) or SessionMax after sign-in (default 12 hours).
	SessionIdle, SessionMax time.Duration
	// Sessions keeps the sessions; nil uses the Backend when it is a SessionStore, else
	// memory (sessions then end with the process).
	Sessions SessionStore
}

func sessionStoreOf(o Options) SessionStore {
	if o.Sessions != nil {
		return o.Sessions
	}
	if st, ok := o.Backend.(SessionStore); ok {
		return st
	}
	return nil
}

// Prefix is the path under which New's handler serves the web admin.
const Prefix = "/admin/"

// New returns the web admin's handler. It serves paths under /admin/ (and redirects
// /admin to /admin/); mount it at /admin/ on the admin listener, which must be HTTPS.
func New(o Options) http.Handler {
	if o.Backend == nil {
		panic("webadmin: Options.Backend is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 30 * time.Minute
	}
	if o.SessionMax <= 0 {
		o.SessionMax = 12 * time.Hour
	}
	s := &server{
		b:        o.Backend,
		log:      o.Logger,
		now:      o.Now,
		sessions: newSessions(sessionStoreOf(o), o.Now, o.SessionIdle, o.SessionMax, o.Logger),
	}
	assets, err := fs.Sub(embedded, "assets")
	if err != nil {
		panic(err) // embedded at build time
	}
	s.static = newAssetFiles(assets)
	s.pages = parsePages()
	s.routes()
	return s
}

type server struct {
	b        Backend
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	static   *assetFiles
	pages    map[string]*template.Template
	mux      *http.ServeMux
	pending  pendingSettings
}

func (s *server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /admin/{$}", s.authed(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/admin/status", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /admin/assets/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.serveAsset(w, r, r.PathValue("name"))
	})
	m.HandleFunc("GET /admin/login", s.loginPage)
	m.HandleFunc("POST /admin/login", s.checked(s.login))
	m.HandleFunc("POST /admin/logout", s.checked(s.logout))
	m.HandleFunc("GET /admin/status", s.authed(s.statusPage))
	m.HandleFunc("GET /admin/api/signal-flow", s.authedAPI(s.signalFlowJSON))
	m.HandleFunc("GET /admin/configuration/general", s.authed(s.generalPage))
	m.HandleFunc("POST /admin/configuration/general", s.checked(s.authed(s.saveGeneral)))

	m.HandleFunc("GET /admin/configuration/api", s.authed(s.apiPage))
	m.HandleFunc("GET /admin/configuration/turn", s.authed(s.turnPage))
	m.HandleFunc("POST /admin/configuration/api", s.checked(s.authed(s.apiAction)))
	m.HandleFunc("GET /admin/users", s.authed(s.usersPage))
	m.HandleFunc("POST /admin/users", s.checked(s.authed(s.createUser)))
	m.HandleFunc("GET /admin/users/{id}/password", s.authed(s.passwordPage))
	m.HandleFunc("POST /admin/users/{id}/password", s.checked(s.authed(s.setPassword)))
	m.HandleFunc("GET /admin/ldap", s.authed(s.ldapPage))
	m.HandleFunc("POST /admin/ldap/servers", s.checked(s.authed(s.createLDAPServer)))
	m.HandleFunc("POST /admin/ldap/mappings", s.checked(s.authed(s.createLDAPMapping)))
	m.HandleFunc("POST /admin/ldap/sources", s.checked(s.authed(s.createLDAPSource)))
	m.HandleFunc("POST /admin/ldap/{kind}/{id}/delete", s.checked(s.authed(s.deleteLDAP)))
	m.HandleFunc("POST /admin/ldap/sync", s.checked(s.authed(s.startSync)))

	m.HandleFunc("GET /admin/spaces", s.authed(s.spacesPage))
	m.HandleFunc("GET /admin/spaces/new", s.authed(s.newSpacePage))
	m.HandleFunc("POST /admin/spaces/new", s.checked(s.authed(s.createSpace)))
	m.HandleFunc("GET /admin/spaces/{id}", s.authed(s.spacePage))
	m.HandleFunc("POST /admin/spaces/{id}", s.checked(s.authed(s.saveSpace)))
	m.HandleFunc("POST /admin/spaces/{id}/members", s.checked(s.authed(s.addMember)))
	m.HandleFunc("POST /admin/spaces/{id}/members/{member}/remove", s.checked(s.authed(s.removeMember)))
	m.HandleFunc("GET /admin/spaces/{id}/delete", s.authed(s.deleteSpacePage))
	m.HandleFunc("POST /admin/spaces/{id}/delete", s.checked(s.authed(s.deleteSpace)))

	m.HandleFunc("GET /admin/calls", s.authed(s.callsPage))
	m.HandleFunc("GET /admin/calls/{id}/end", s.authed(s.endCallPage))
	m.HandleFunc("POST /admin/calls/{id}/end", s.checked(s.authed(s.endCall)))
	m.HandleFunc("GET /admin/calls/{id}/participants/{leg}/remove", s.authed(s.removePage))
	m.HandleFunc("POST /admin/calls/{id}/participants/{leg}/remove", s.checked(s.authed(s.removeParticipant)))

	m.HandleFunc("GET /admin/logs", s.authed(s.logsPage))
	// Anything else under /admin/ is a friendly 404.
	m.HandleFunc("/admin/", s.notFound)
	s.mux = m
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if !strings.HasPrefix(r.URL.Path, "/admin/assets/") {
		// Pages and answers hold the state of the system and tokens: never from a cache.
		h.Set("Cache-Control", "no-store")
	}
	s.mux.ServeHTTP(w, r)
}

// authed runs h with the request's session, or sends the browser to the sign-in page.
func (s *server) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessions.get(r)
		if sess == nil {
			next := r.URL.Path
			if r.Method != http.MethodGet {
				next = Prefix
			}
			http.Redirect(w, r, "/admin/login?next="+urlQueryEscape(next), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, sess)
	}
}

// authedAPI is authed for JSON endpoints: 401 rather than a redirect.
func (s *server) authedAPI(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessions.get(r)
		if sess == nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Sign in again", "login": "/admin/login"})
			return
		}
		h(w, r, sess)
	}
}

func (s *server) signalFlowJSON(w http.ResponseWriter, _ *http.Request, _ *session) {
	writeJSON(w, http.StatusOK, s.signalFlow(s.now()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// safeNext returns where to go after sign-in: a path of the web admin, never elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/admin/login") {
		return "/admin/status"
	}
	return next
}

// errTemplate wraps template execution failures, which are bugs.
var errTemplate = errors.New("render template")

func (s *server) render(w http.ResponseWriter, _ *http.Request, code int, page string, data pageData) {
	t, ok := s.pages[page]
	if !ok {
		panic("webadmin: no page " + page)
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("web admin page failed", "page", page, "err", fmt.Errorf("%w %s: %w", errTemplate, page, err))
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(buf.String()))
}

// notFound is the web admin's 404 page: what happened and where to go, with the menu
// when the request has a session.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Page not found", Body: r.URL.Path}
	if sess := s.sessions.get(r); sess != nil {
		d = s.page(sess, "", "Page not found", r.URL.Path)
	}
	s.render(w, r, http.StatusNotFound, "notfound.html", d)
}
