package webapp

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"confab.dev/confab/internal/sameorigin"
)

// Limits of the guest form. The body limit leaves room for the three fields only.
const (
	maxGuestBody  = 4 << 10
	maxCallID     = 64
	maxPasscode   = 64
	maxNameRunes  = 64
	guestTimeout  = 15 * time.Second
	msgInvalid    = "Invalid call ID or passcode"
	msgNoBridge   = "No Call Bridge is available"
	msgJoinFailed = "The meeting could not be joined; try again later"
)

// guestJSON is the body of a successful POST /api/webapp/guest or /api/webapp/guest/rejoin
// (docs/protocol.md, "Guest accounts").
type guestJSON struct {
	JID           string `json:"jid"`
	Password      string `json:"password"`
	SpaceJID      string `json:"spaceJid"`
	SpaceName     string `json:"spaceName"`
	Name          string `json:"name"`
	Rejoin        string `json:"rejoin,omitempty"`
	RejoinExpires string `json:"rejoinExpires,omitempty"`
}

func grantJSON(g GuestGrant) guestJSON {
	j := guestJSON{JID: g.JID, Password: g.Password, SpaceJID: g.SpaceJID, SpaceName: g.SpaceName, Name: g.Name, Rejoin: g.Rejoin}
	if g.Rejoin != "" && !g.RejoinExpires.IsZero() {
		j.RejoinExpires = g.RejoinExpires.UTC().Format(time.RFC3339)
	}
	return j
}

// guest handles POST /api/webapp/guest: form fields callId, passcode and name, from a page
// of this origin only (the answer holds a password, and creating accounts is a state
// change a foreign page must not trigger).
func (a *app) guest(w http.ResponseWriter, r *http.Request) {
	if err := sameorigin.Check(r); err != nil {
		a.log.Info("guest join refused: not same-origin", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusForbidden, "This request must come from the meeting page")
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusUnsupportedMediaType, "Send the form as application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxGuestBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "The form is too large")
			return
		}
		writeError(w, http.StatusBadRequest, "The form could not be read")
		return
	}
	callID := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1 // people copy call IDs as "123 456 789" or "123-456-789"
		}
		return r
	}, r.PostForm.Get("callId"))
	passcode := strings.TrimSpace(r.PostForm.Get("passcode"))
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if msg := validateGuest(callID, passcode, name); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if a.o.Guests == nil {
		writeError(w, http.StatusServiceUnavailable, msgNoBridge)
		return
	}
	ctx, cancel := contextWithTimeout(r, guestTimeout)
	defer cancel()
	g, err := a.o.Guests.JoinAsGuest(ctx, callID, passcode, name, r.RemoteAddr)
	var throttled *ThrottledError
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalidCallID):
		a.log.Info("guest join refused: invalid call ID or passcode", "remote", r.RemoteAddr, "call_id", callID)
		writeError(w, http.StatusForbidden, msgInvalid)
		return
	case errors.As(err, &throttled):
		a.log.Info("guest join throttled", "remote", r.RemoteAddr, "retry_after_s", throttledSeconds(throttled))
		writeThrottled(w, throttled)
		return
	case errors.Is(err, ErrNoCallBridge):
		a.log.Warn("guest join failed: no call bridge", "remote", r.RemoteAddr)
		writeError(w, http.StatusServiceUnavailable, msgNoBridge)
		return
	default:
		a.log.Error("guest join failed", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusInternalServerError, msgJoinFailed)
		return
	}
	a.log.Info("guest joined", "remote", r.RemoteAddr, "jid", g.JID, "space", g.SpaceJID)
	writeJSON(w, http.StatusOK, grantJSON(g))
}

// validateGuest returns what is wrong with the form, in words for the person filling it in,
// or "".
func validateGuest(callID, passcode, name string) string {
	switch {
	case callID == "":
		return "Enter the call ID"
	case len(callID) > maxCallID || len(passcode) > maxPasscode:
		return msgInvalid
	case name == "":
		return "Enter your name"
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameRunes:
		return fmt.Sprintf("Your name can have at most %d characters", maxNameRunes)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "Your name cannot contain control characters"
	case !utf8.ValidString(callID) || !utf8.ValidString(passcode):
		return msgInvalid
	}
	return ""
}

func throttledSeconds(t *ThrottledError) int {
	return max(int((t.RetryAfter+time.Second-1)/time.Second), 1)
}

// writeThrottled answers 429 with Retry-After and the wait in words.
func writeThrottled(w http.ResponseWriter, t *ThrottledError) {
	secs := throttledSeconds(t)
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	unit := "seconds"
	if secs == 1 {
		unit = "second"
	}
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("Too many attempts; try again in %d %s", secs, unit))
}

// The words for a refused rejoin credential, by reason.
const (
	msgRejoinExpired = "Your place in this meeting has expired: join again with the call ID and passcode"
	msgRejoinChanged = "The meeting's passcode has changed: join again with the new passcode"
	msgRejoinInvalid = "Join again with the call ID and passcode"
	maxCredential    = 2 << 10
)

// rejoin handles POST /api/webapp/guest/rejoin: form field credential, the rejoin credential
// of an earlier guest grant, from a page of this origin only. The answer is a guest grant
// (as POST /api/webapp/guest's), or 403 with {"error", "reason": expired | changed | invalid}.
func (a *app) rejoin(w http.ResponseWriter, r *http.Request) {
	if err := sameorigin.Check(r); err != nil {
		a.log.Info("guest rejoin refused: not same-origin", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusForbidden, "This request must come from the meeting page")
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusUnsupportedMediaType, "Send the form as application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxGuestBody)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "The form could not be read")
		return
	}
	credential := r.PostForm.Get("credential")
	rj, ok := a.o.Guests.(GuestRejoiner)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, msgNoBridge)
		return
	}
	if credential == "" || len(credential) > maxCredential || !utf8.ValidString(credential) {
		writeRejoinRefused(w, "invalid", msgRejoinInvalid)
		return
	}
	ctx, cancel := contextWithTimeout(r, guestTimeout)
	defer cancel()
	g, err := rj.RejoinGuest(ctx, credential, r.RemoteAddr)
	var throttled *ThrottledError
	switch {
	case err == nil:
	case errors.Is(err, ErrRejoinExpired):
		writeRejoinRefused(w, "expired", msgRejoinExpired)
		return
	case errors.Is(err, ErrRejoinChanged):
		writeRejoinRefused(w, "changed", msgRejoinChanged)
		return
	case errors.Is(err, ErrRejoinInvalid):
		writeRejoinRefused(w, "invalid", msgRejoinInvalid)
		return
	case errors.As(err, &throttled):
		a.log.Info("guest rejoin throttled", "remote", r.RemoteAddr, "retry_after_s", throttledSeconds(throttled))
		writeThrottled(w, throttled)
		return
	case errors.Is(err, ErrNoCallBridge):
		writeError(w, http.StatusServiceUnavailable, msgNoBridge)
		return
	default:
		a.log.Error("guest rejoin failed", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusInternalServerError, msgJoinFailed)
		return
	}
	a.log.Info("guest rejoined", "remote", r.RemoteAddr, "jid", g.JID, "space", g.SpaceJID)
	writeJSON(w, http.StatusOK, grantJSON(g))
}

func writeRejoinRefused(w http.ResponseWriter, reason, msg string) {
	writeJSON(w, http.StatusForbidden, map[string]string{"error": msg, "reason": reason})
}
