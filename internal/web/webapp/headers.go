package webapp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// setSecurityHeaders sets the headers every response of the app carries. The Content
// Security Policy allows only this origin's own scripts, styles and images, and connections
// to this origin and to the XMPP WebSocket's origin: nothing the pages load or reach comes
// from anywhere else.
func setSecurityHeaders(h http.Header, websocketURL string) {
	connect := "'self'"
	if o := cspOrigin(websocketURL); o != "" {
		connect += " " + o
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src "+connect+"; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	// Camera, microphone and screen capture are allowed for this origin (the meeting's
	// media), for nothing framed or elsewhere; autoplay too, so that the meeting's sound
	// plays once the person has clicked on the page.
	h.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), autoplay=(self), geolocation=(), payment=(), usb=()")
}

// cspOrigin returns the origin of a ws:// or wss:// URL as a CSP source expression, or ""
// if the URL is not one (a malformed setting must not break the policy).
func cspOrigin(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return ""
	}
	if strings.ContainsAny(u.Host, " ;,'\"") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errorJSON is the body of every error answer: {"error": "words a person understands"}.
type errorJSON struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorJSON{Error: msg})
}

// contextWithTimeout bounds a request's work; the cause names what timed out.
func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(r.Context(), d, errors.New("guest join took longer than "+d.String()))
}
