// Package webapp is the Web Bridge's browser app (port 8443): the sign-in, join and meeting
// pages, the one JavaScript bundle that talks XMPP over WebSocket [RFC 7395] to the XMPP
// server, and the two JSON endpoints the pages need:
//
//   - GET  /api/webapp/config: the XMPP domain, the WebSocket URL and the Call Bridge's JID;
//   - POST /api/webapp/guest: a guest joins with call ID and passcode and gets a one-time
//     XMPP account for the meeting, and a rejoin credential;
//   - POST /api/webapp/guest/rejoin: a guest gives its rejoin credential, after its session
//     or the Call Bridge was lost, and gets an account for the same meeting again;
//   - POST /api/webapp/connection-test and its probes: the "Test your connection" page
//     (/test) connects to the media server over each path and reads the server's media
//     ladder (conntest.go).
//
// The meeting itself (spaces, join, participants, chat, leave) is XMPP, in the namespace
// urn:confab:meeting:1, between the browser and the Call Bridge; this package only serves the
// code that speaks it. Everything is embedded: the machine the app runs on may have no
// Internet, and the pages load no fonts, scripts or styles from elsewhere.
//
// The bundle assets/app.js is built from web/app by esbuild (`npm run build` there) and
// committed, so that `go build` alone works; a test checks it is current.
package webapp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"confab.dev/confab/internal/web/assets"
)

//go:embed assets
var assetsFS embed.FS

// Config is what the browser app needs to reach the XMPP server and the Call Bridge.
type Config struct {
	// Domain is the XMPP domain users sign in to (e.g. example.com).
	Domain string
	// WebSocketURL is the wss:// URL of XMPP over WebSocket (e.g.
	// wss://confab.example.com:8443/xmpp-websocket). Empty means /xmpp-websocket on the
	// host the page was loaded from.
	WebSocketURL string
	// CallBridgeJID is the Call Bridge's component JID (e.g. cb1.example.com), to which the
	// app sends its meeting requests.
	CallBridgeJID string
}

// GuestGrant is what a guest who gave a valid call ID and passcode receives: a temporary
// XMPP account and the space to join.
type GuestGrant struct {
	JID       string // bare JID of the temporary account, e.g. guest482913@example.com
	Password  string // one-time password of that account
	SpaceJID  string // <coSpaceId>@<callBridgeJid>
	SpaceName string // the space's name, for the page's title
	Name      string // the display name the guest gave
	// Rejoin is the guest's rejoin credential, good until RejoinExpires ("" when none could
	// be made): the app keeps it for the browser tab's session and presents it to
	// /api/webapp/guest/rejoin to get back into the meeting without the call ID and passcode.
	Rejoin        string
	RejoinExpires time.Time
}

// GuestJoiner creates guest accounts; the Call Bridge's meeting service implements it.
type GuestJoiner interface {
	// JoinAsGuest checks callID and passcode and creates a temporary account for a guest
	// called name, connecting from remoteAddr (the HTTP request's RemoteAddr, host:port).
	// It returns ErrInvalidCallID, a *ThrottledError, ErrNoCallBridge or another error.
	JoinAsGuest(ctx context.Context, callID, passcode, name, remoteAddr string) (GuestGrant, error)
}

// GuestRejoiner lets a guest back into its meeting with its rejoin credential; the Call
// Bridge's meeting service implements it. A GuestJoiner that is also a GuestRejoiner serves
// POST /api/webapp/guest/rejoin.
type GuestRejoiner interface {
	// RejoinGuest checks a rejoin credential and returns a grant for the same space and name:
	// the same account with a new one-time password while it lives, else a new one. It
	// returns ErrRejoinExpired, ErrRejoinChanged, ErrRejoinInvalid, a *ThrottledError,
	// ErrNoCallBridge or another error.
	RejoinGuest(ctx context.Context, credential, remoteAddr string) (GuestGrant, error)
}

// Refusals of a rejoin credential, answered with HTTP 403 and a reason the app tells apart:
// the credential expired, the meeting's passcode changed since it was issued (or the space is
// gone), or it is not a credential at all.
var (
	ErrRejoinExpired = errors.New("the rejoin credential has expired")
	ErrRejoinChanged = errors.New("the meeting's passcode has changed")
	ErrRejoinInvalid = errors.New("not a valid rejoin credential")
)

// ErrInvalidCallID is returned by a GuestJoiner for an unknown call ID or a wrong passcode
// (which of the two is not told to the guest). It is answered with HTTP 403.
var ErrInvalidCallID = errors.New("invalid call ID or passcode")

// ErrNoCallBridge is returned by a GuestJoiner when no Call Bridge can take the guest. It is
// answered with HTTP 503.
var ErrNoCallBridge = errors.New("no call bridge is available")

// ThrottledError is returned by a GuestJoiner when too many wrong attempts came from the
// same place; it is answered with HTTP 429 and a Retry-After header.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many attempts; retry after %s", e.RetryAfter)
}

// Options configure New.
type Options struct {
	// Config returns the current configuration; it is called for every request, so a change
	// of the XMPP settings shows without a restart. Required.
	Config func() Config
	// Guests creates guest accounts. Nil makes POST /api/webapp/guest answer 503.
	Guests GuestJoiner
	// WebSocket, when set, is mounted at /xmpp-websocket (the XMPP server's RFC 7395
	// handler, when the XMPP server runs in the same process).
	WebSocket http.Handler
	// Tester runs connection tests (conntest.go); nil answers them 503.
	Tester ConnectionTester
	// Logger receives the app's logs (default: discarded).
	Logger *slog.Logger
}

// New returns the browser app's handler, to be served over HTTPS at the root of the Web
// Bridge's listener.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Config == nil {
		o.Config = func() Config { return Config{} }
	}
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic(err) // the embedded directory is part of the build
	}
	a := &app{o: o, log: o.Logger, static: assets.New(sub), ct: newConnTests()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /join", a.page)
	mux.HandleFunc("GET /assets/{name}", a.asset)
	mux.HandleFunc("GET /api/webapp/config", a.config)
	mux.HandleFunc("POST /api/webapp/guest", a.guest)
	mux.HandleFunc("POST /api/webapp/guest/rejoin", a.rejoin)
	mux.HandleFunc("GET /test", a.page)
	mux.HandleFunc("POST /api/webapp/connection-test", a.startConnTest)
	mux.HandleFunc("POST /api/webapp/connection-test/{test}/probes", a.startProbe)
	mux.HandleFunc("POST /api/webapp/connection-test/probes/{probe}/report", a.probeReport)
	a.mux = mux
	return a
}

type app struct {
	o      Options
	log    *slog.Logger
	static *assets.Files
	mux    *http.ServeMux
	ct     *connTests
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.o.WebSocket != nil && r.URL.Path == "/xmpp-websocket" {
		// The XMPP server's handler answers the upgrade itself; page headers have no
		// meaning on a WebSocket.
		a.o.WebSocket.ServeHTTP(w, r)
		return
	}
	setSecurityHeaders(w.Header(), a.o.Config().WebSocketURL)
	a.mux.ServeHTTP(w, r)
}

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	a.static.Serve(w, r, "index.html")
}

func (a *app) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "index.html" {
		http.NotFound(w, r)
		return
	}
	a.static.Serve(w, r, name)
}

// configJSON is the body of GET /api/webapp/config: what the browser app needs to sign in.
type configJSON struct {
	Domain        string `json:"domain"`
	WebSocketURL  string `json:"websocketURL"`
	CallBridgeJID string `json:"callBridgeJid"`
}

func (a *app) config(w http.ResponseWriter, r *http.Request) {
	c := a.o.Config()
	ws := c.WebSocketURL
	if ws == "" {
		scheme := "wss"
		if r.TLS == nil {
			scheme = "ws"
		}
		ws = scheme + "://" + r.Host + "/xmpp-websocket"
	}
	writeJSON(w, http.StatusOK, configJSON{Domain: c.Domain, WebSocketURL: ws, CallBridgeJID: c.CallBridgeJID})
}
