package webadmin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// ---- Calls: the live list, ending a call, removing a participant ---------------------

type callsBody struct {
	Items  []CallView
	Error  string
	Notice string
}

func (s *server) callsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	c, err := s.b.Calls(ctx)
	sort.SliceStable(c, func(i, j int) bool { return c[i].Started.Before(c[j].Started) })
	body := callsBody{Items: c, Notice: notice(r)}
	code := http.StatusOK
	if err != nil {
		s.log.Error("web admin: list calls", "err", err)
		body.Error = "The list could not be read: " + err.Error()
		code = http.StatusInternalServerError
	}
	s.render(w, r, code, "calls.html", s.page(sess, "calls", "Active calls", body))
}

// findCall returns the live call of the request's {id}, and the participant {leg} when
// the route has one.
func (s *server) findCall(w http.ResponseWriter, r *http.Request) (CallView, *ParticipantView, bool) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	calls, err := s.b.Calls(ctx)
	if err != nil {
		http.Error(w, "the calls could not be read: "+err.Error(), http.StatusInternalServerError)
		return CallView{}, nil, false
	}
	for _, c := range calls {
		if c.ID != r.PathValue("id") {
			continue
		}
		leg := r.PathValue("leg")
		if leg == "" {
			return c, nil, true
		}
		for i := range c.Participants {
			if c.Participants[i].ID == leg {
				return c, &c.Participants[i], true
			}
		}
	}
	s.gone(w, r)
	return CallView{}, nil, false
}

// gone answers for a call or participant that is no longer there: the calls page says so.
func (s *server) gone(w http.ResponseWriter, r *http.Request) {
	sess := s.sessions.get(r)
	b := confirmBody{Title: "That call or participant is no longer there", Lead: "The call may have ended, or the participant left, since the page was shown.", Back: "/admin/calls"}
	s.render(w, r, http.StatusNotFound, "confirm.html", s.page(sess, "calls", "Not there any more", b))
}

func endCallBody(c CallView) confirmBody {
	return confirmBody{
		Title:   "End the call in “" + c.SpaceName + "”?",
		Lead:    "Every participant is dropped from the call; the space stays, and people can join it again.",
		Warning: "This ends the call for " + plural(len(c.Participants), "participant", "participants") + ".",
		Details: participantNames(c),
		Action:  "/admin/calls/" + url.PathEscape(c.ID) + "/end",
		Button:  "End call",
		Back:    "/admin/calls",
		ID:      "confirm-end",
	}
}

func participantNames(c CallView) []string {
	var out []string
	for _, p := range c.Participants {
		out = append(out, fmt.Sprintf("%s (%s, %s)", p.Name, p.JID, p.Role))
	}
	return out
}

func (s *server) endCallPage(w http.ResponseWriter, r *http.Request, sess *session) {
	c, _, ok := s.findCall(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "confirm.html", s.page(sess, "calls", "End call", endCallBody(c)))
}

func (s *server) endCall(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	err := s.b.EndCall(id)
	if errors.Is(err, ErrNotFound) {
		s.gone(w, r)
		return
	}
	if err != nil {
		c, _, ok := s.findCall(w, r)
		if !ok {
			return
		}
		b := endCallBody(c)
		b.Error = "The call could not be ended: " + err.Error()
		s.render(w, r, http.StatusInternalServerError, "confirm.html", s.page(sess, "calls", "End call", b))
		return
	}
	s.log.Info("web admin: call ended", "user", sess.user, "call", id)
	http.Redirect(w, r, "/admin/calls?done=call-ended", http.StatusSeeOther)
}

func removeBody(c CallView, p ParticipantView) confirmBody {
	return confirmBody{
		Title: "Remove " + p.Name + " from the call?",
		Lead:  "They are taken out of the call in “" + c.SpaceName + "” and told so; the call goes on for the others. They can join again unless you change the space's access.",
		Details: []string{
			"JID: " + p.JID, "Role: " + p.Role, "Joined: " + p.Joined.Format("15:04:05"),
		},
		Action: "/admin/calls/" + url.PathEscape(c.ID) + "/participants/" + url.PathEscape(p.ID) + "/remove",
		Button: "Remove participant",
		Back:   "/admin/calls",
		ID:     "confirm-remove",
	}
}

func (s *server) removePage(w http.ResponseWriter, r *http.Request, sess *session) {
	c, p, ok := s.findCall(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "confirm.html", s.page(sess, "calls", "Remove participant", removeBody(c, *p)))
}

func (s *server) removeParticipant(w http.ResponseWriter, r *http.Request, sess *session) {
	leg := r.PathValue("leg")
	err := s.b.RemoveParticipant(leg)
	if errors.Is(err, ErrNotFound) {
		s.gone(w, r)
		return
	}
	if err != nil {
		c, p, ok := s.findCall(w, r)
		if !ok {
			return
		}
		b := removeBody(c, *p)
		b.Error = "The participant could not be removed: " + err.Error()
		s.render(w, r, http.StatusInternalServerError, "confirm.html", s.page(sess, "calls", "Remove participant", b))
		return
	}
	s.log.Info("web admin: participant removed", "user", sess.user, "call", r.PathValue("id"), "leg", leg)
	http.Redirect(w, r, "/admin/calls?done=participant-out", http.StatusSeeOther)
}

// ---- media statistics, as the calls page shows them -----------------------------------

// bitrate formats bits/s.
func bitrate(bps int) string {
	switch {
	case bps >= 1_000_000:
		return fmt.Sprintf("%.1f Mbit/s", float64(bps)/1e6)
	case bps >= 1000:
		return fmt.Sprintf("%d kbit/s", bps/1000)
	default:
		return fmt.Sprintf("%d bit/s", bps)
	}
}

// streamText is one stream as one line: "opus · 32 kbit/s · loss 0.0% · jitter 3 ms".
func streamText(v StreamView) string {
	if v.Codec == "" {
		return "—"
	}
	codec := v.Codec
	if i := len("audio/"); len(codec) > i && (codec[:i] == "audio/" || codec[:i] == "video/") {
		codec = codec[i:]
	}
	out := codec + " · " + bitrate(v.BitRate) + fmt.Sprintf(" · loss %.1f%%", v.LossFraction*100)
	if v.Jitter > 0 {
		out += fmt.Sprintf(" · jitter %d ms", v.Jitter.Round(time.Millisecond)/time.Millisecond)
	}
	if v.Width > 0 && v.Height > 0 {
		out += fmt.Sprintf(" · %d×%d", v.Width, v.Height)
	}
	return out
}

// ---- the media ladder, as the calls page shows it --------------------------------------

// sinceText is a step's offset from the ladder's start: "+0.42 s".
func sinceText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("+%.2f s", d.Seconds())
}

// stepMark is the symbol of a step's state, beside its colour (so that colour is not the
// only sign).
func stepMark(state string) string {
	switch state {
	case "ok":
		return "✓"
	case "failed":
		return "✗"
	case "warning":
		return "!"
	case "skipped":
		return "–"
	}
	return "…"
}

// bytesText formats a byte count.
func bytesText(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ---- Configuration > TURN ------------------------------------------------------------

type turnBody struct {
	TURN  TURNView
	Error string
}

func (s *server) turnPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	v, err := s.b.TURN(ctx)
	body := turnBody{TURN: v}
	code := http.StatusOK
	if err != nil {
		s.log.Error("web admin: TURN servers", "err", err)
		body.Error = "The TURN servers could not be read: " + err.Error()
		code = http.StatusInternalServerError
	}
	s.render(w, r, code, "turn.html", s.page(sess, "configuration", "Configuration: TURN", body))
}

// stepLabel is a step's short name on the ladder's chips.
func stepLabel(name string) string {
	switch name {
	case "servers":
		return "ICE servers"
	case "offer":
		return "offer/answer"
	case "gather":
		return "candidates"
	case "checks":
		return "checks"
	case "pair":
		return "pair"
	case "dtls":
		return "DTLS"
	case "media-in":
		return "SRTP in"
	case "media-out":
		return "SRTP out"
	}
	if u, ok := strings.CutPrefix(name, "relay "); ok {
		how := "UDP"
		switch {
		case strings.HasPrefix(u, "turns:"):
			how = "TLS"
		case strings.Contains(u, "transport=tcp"):
			how = "TCP"
		}
		host := u[strings.IndexByte(u, ':')+1:]
		if i := strings.IndexByte(host, '?'); i >= 0 {
			host = host[:i]
		}
		return "relay " + how + " " + host
	}
	return name
}

// ladderClass is the pill class of a ladder's or a step's state.
func ladderClass(state string) string {
	switch state {
	case "ok", "connected":
		return "ok"
	case "failed":
		return "failed"
	case "warning", "connecting", "pending":
		return "warn"
	}
	return "none"
}

// ladderState is a ladder's state in words.
func ladderState(state string) string {
	switch state {
	case "connected":
		return "Connected"
	case "connecting":
		return "Connecting"
	case "failed":
		return "Failed"
	}
	return "No media"
}
