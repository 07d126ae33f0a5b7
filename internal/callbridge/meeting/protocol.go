package meeting

import (
	"context"
	"encoding/xml"
	"errors"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// MaxBodyBytes bounds a chat message's body.
const MaxBodyBytes = 16 << 10

// Handle handles a stanza that arrived on the component link (conn) if it belongs to the
// meeting protocol, and reports whether it did. It claims what is addressed to a space
// (<spaceId>@<callBridgeJid>, with or without a resource), and the requests addressed to
// the Call Bridge itself (<callBridgeJid>) except IQ results and errors. The Call Bridge's
// dispatcher gives the login relay's traffic to its owner (by payload namespace) and the
// link answers XEP-0199 pings, so neither reaches Handle. A request it does not understand
// is answered with a stanza error; stanzas of type error are never answered.
//
// Handle does not block on the network: its answers are queued and written in order (see
// the package comment).
func (s *Service) Handle(ctx context.Context, conn Sender, e *stream.Element) bool {
	if !e.IsStanza() {
		return false
	}
	to, err := jid.Parse(e.Get("to"))
	if err != nil {
		return false
	}
	domain, cb, err := s.addresses(ctx)
	if err != nil || to.Domainpart() != cb {
		return false
	}
	kind, typ := e.Name.Local, e.Get("type")
	if to.Localpart() == "" && kind == "iq" && (typ == "result" || typ == "error") {
		return false
	}
	defer s.flush()

	from, err := jid.Parse(e.Get("from"))
	if err != nil || from.Domainpart() != domain || from.Localpart() == "" || from.Resourcepart() == "" {
		// Only clients of our domain (the XMPP server stamps from) take part in meetings.
		s.log.Warn("meeting: stanza from outside the domain refused", "from", e.Get("from"), "to", e.Get("to"))
		if e.Name.Local == "presence" {
			e = e.Clone()
			e.Set("to", to.Bare().String()) // presence errors come from the space itself
		}
		s.reply(conn, e, "cancel", "forbidden", "Only users of "+domain+" may take part in meetings")
		return true
	}
	if to.Localpart() == "" {
		s.handleService(ctx, conn, e, from, cb)
		return true
	}
	s.handleSpace(ctx, conn, e, from, to)
	return true
}

// reply queues an error answer to e, unless e is itself an error or an IQ result.
func (s *Service) reply(conn Sender, e *stream.Element, typ, condition, text string) {
	if t := e.Get("type"); t == "error" || e.Name.Local == "iq" && t == "result" {
		return
	}
	s.mu.Lock()
	s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: typ, Condition: condition, Text: text}))
	s.mu.Unlock()
}

// payload is the child elements of the meeting protocol a stanza may carry.
type payload struct {
	Spaces *struct{} `xml:"urn:confab:meeting:1 spaces"`
	Lookup *struct {
		CallID   string `xml:"callId,attr"`
		Passcode string `xml:"passcode,attr"`
	} `xml:"urn:confab:meeting:1 lookup"`
	Join *struct {
		Name string `xml:"name,attr"`
	} `xml:"urn:confab:meeting:1 join"`
	Body []string `xml:"body"`
}

// handleService answers the requests addressed to the Call Bridge itself.
func (s *Service) handleService(ctx context.Context, conn Sender, e *stream.Element, from jid.JID, cb string) {
	kind, typ := e.Name.Local, e.Get("type")
	if kind != "iq" {
		if kind == "message" {
			s.reply(conn, e, "cancel", "service-unavailable", "")
		}
		return // presence to the Call Bridge means nothing
	}
	var p payload
	if err := e.Decode(&p); err != nil {
		s.reply(conn, e, "modify", "bad-request", "")
		return
	}
	switch {
	case p.Spaces != nil && typ == "get":
		s.listSpaces(ctx, conn, e, from, cb)
	case p.Lookup != nil && typ == "get":
		s.lookup(ctx, conn, e, from, cb, p.Lookup.CallID, p.Lookup.Passcode)
	case p.Spaces != nil || p.Lookup != nil:
		s.reply(conn, e, "modify", "bad-request", "Use type='get'")
	default:
		s.reply(conn, e, "cancel", "service-unavailable", "")
	}
}

// iqResult starts a result answering the IQ e.
func iqResult(e *stream.Element) *stream.Builder {
	var x stream.Builder
	x.Open("iq", "type", "result", "id", e.Get("id"), "from", e.Get("to"), "to", e.Get("from"))
	return &x
}

// listSpaces answers <spaces/>: the spaces the user may enter; for a guest, its own.
func (s *Service) listSpaces(ctx context.Context, conn Sender, e *stream.Element, from jid.JID, cb string) {
	bare := from.Bare().String()
	var spaces []store.CoSpace
	s.mu.Lock()
	g := s.guestLocked(bare)
	s.mu.Unlock()
	var err error
	switch {
	case g != nil:
		var sp store.CoSpace
		if sp, err = s.st.CoSpace(ctx, g.spaceID); err == nil {
			spaces = append(spaces, sp)
		} else if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
	case IsGuestUsername(from.Localpart()):
	default:
		spaces, err = s.st.CoSpacesFor(ctx, bare)
	}
	if err != nil {
		s.log.Error("meeting: list spaces", "jid", bare, "err", err)
		s.reply(conn, e, "wait", "internal-server-error", "")
		return
	}
	x := iqResult(e)
	x.Open("spaces", "xmlns", NS)
	for _, sp := range spaces {
		// The owner may invite others: it is told the passcode too.
		passcode := ""
		if g == nil && sp.OwnerJID == bare {
			passcode = sp.Passcode.Reveal()
		}
		x.Empty("space", "jid", sp.ID+"@"+cb, "name", sp.Name, "callId", sp.CallID, "uri", sp.URI, "passcode", passcode)
	}
	x.End("spaces").End("iq")
	s.mu.Lock()
	s.queue(conn, x.B)
	s.mu.Unlock()
}

// lookup answers <lookup callId passcode/>, throttled per user like guest joins per address.
func (s *Service) lookup(ctx context.Context, conn Sender, e *stream.Element, from jid.JID, cb, callID, passcode string) {
	callID = strings.TrimSpace(callID)
	// Failures count against the account, the address it logged in from (guest accounts
	// cost nothing to make, addresses do) and the call ID (a passcode guessed from many
	// accounts and addresses at once).
	keys := []string{"jid:" + from.Bare().String()}
	s.mu.Lock()
	if src := s.sources[from.Bare().String()]; src != "" {
		keys = append(keys, "src:"+src)
	}
	callKey := "call:" + callID
	var wait time.Duration
	for _, k := range keys {
		wait = max(wait, s.throttle.Blocked(k))
	}
	wait = max(wait, s.callThrottle.Blocked(callKey))
	s.mu.Unlock()
	if wait > 0 {
		te := &ThrottledError{RetryAfter: wait}
		s.log.Warn("meeting: lookup refused: too many failed attempts", "jid", from.String(), "callId", callID, "retryAfterSeconds", te.Seconds())
		s.reply(conn, e, "wait", "forbidden", te.Text())
		return
	}
	sp, _, found, ok, err := s.matchCallID(ctx, callID, passcode)
	if err != nil {
		s.log.Error("meeting: lookup", "err", err)
		s.reply(conn, e, "wait", "internal-server-error", "")
		return
	}
	if !ok {
		s.mu.Lock()
		for _, k := range keys {
			s.throttle.Fail(k)
		}
		s.callThrottle.Fail(callKey)
		s.mu.Unlock()
		// The same answer for an unknown call ID and a wrong passcode, as the web join
		// gives: which call IDs exist is not for guessing either. The log says which.
		if !found {
			s.log.Info("meeting: lookup of an unknown call ID", "jid", from.String(), "callId", callID)
		} else {
			s.log.Warn("meeting: lookup with a wrong passcode", "jid", from.String(), "callId", callID)
		}
		s.reply(conn, e, "auth", "forbidden", "Invalid call ID or passcode")
		return
	}
	s.mu.Lock()
	s.throttle.Reset(keys[0])
	s.mu.Unlock()
	x := iqResult(e)
	x.Open("lookup", "xmlns", NS)
	x.Empty("space", "jid", sp.ID+"@"+cb, "name", sp.Name, "callId", callID, "uri", sp.URI)
	x.End("lookup").End("iq")
	s.mu.Lock()
	s.queue(conn, x.B)
	s.mu.Unlock()
}

// handleSpace handles a stanza addressed to a space or to someone in it.
func (s *Service) handleSpace(ctx context.Context, conn Sender, e *stream.Element, from, to jid.JID) {
	spaceID := to.Localpart()
	full := from.String()
	kind, typ := e.Name.Local, e.Get("type")
	switch {
	case kind == "presence" && typ == "":
		var p payload
		if err := e.Decode(&p); err == nil && p.Join != nil {
			s.join(ctx, conn, e, from, to, p.Join.Name)
			return
		}
		s.mu.Lock()
		in := s.participantLocked(spaceID, full) != nil
		s.mu.Unlock()
		if !in {
			s.reply(conn, e, "modify", "bad-request", "Join with <join xmlns='"+NS+"'/>")
		}
		// A participant's presence update carries nothing the meeting uses.
	case kind == "presence" && typ == "unavailable", typ == "error" && kind != "iq":
		// Leaving; an error bounced by the participant's server means it is gone too.
		// The leaver is told too (own presence, self='true'), as a multi-user chat room
		// confirms a leave; an unreachable one is not.
		reason, tell := reasonLeft, true
		if typ == "error" {
			reason, tell = reasonUnreachable, false
		}
		s.mu.Lock()
		if p := s.participantLocked(spaceID, full); p != nil {
			s.removeLocked(p, tell, reason)
		}
		s.mu.Unlock()
	case kind == "presence":
		// subscription requests and probes: a space has no roster of its own.
	case kind == "message" && typ == "groupchat" && to.Resourcepart() == "":
		s.chat(conn, e, spaceID, full)
	case kind == "message":
		s.reply(conn, e, "cancel", "feature-not-implemented", "Send groupchat messages to the space")
	case kind == "iq" && typ == "set" && to.Resourcepart() != "" && e.Payload() == xml.Name{Space: NS, Local: "control"}:
		s.control(conn, e, from, to)
	case kind == "iq" && typ == "get" && to.Resourcepart() != "" && e.Payload() == xml.Name{Space: NS, Local: "ping"}:
		s.selfPing(conn, e, spaceID, full, to.Resourcepart())
	case typ == "get" || typ == "set":
		s.reply(conn, e, "cancel", "service-unavailable", "")
	}
}

// join admits from to the space, or refuses with an error presence from the space.
func (s *Service) join(ctx context.Context, conn Sender, e *stream.Element, from, to jid.JID, name string) {
	full, bare := from.String(), from.Bare().String()
	spaceID, spaceJID := to.Localpart(), to.Bare().String()
	refuse := func(r *refusal) {
		var x stream.Builder
		x.Open("presence", "type", "error", "id", e.Get("id"), "from", spaceJID, "to", e.Get("from"))
		stream.StanzaError{Type: r.typ, Condition: r.condition, Text: r.text}.Append(&x)
		x.End("presence")
		s.mu.Lock()
		s.queue(conn, x.B)
		s.mu.Unlock()
	}

	s.spaceMu.RLock()
	defer s.spaceMu.RUnlock()
	sp, err := s.st.CoSpace(ctx, spaceID)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("meeting: join refused: no such space", "jid", full, "space", spaceID)
		refuse(&refusal{"cancel", "item-not-found", "There is no such space"})
		return
	}
	if err != nil {
		s.log.Error("meeting: join: read space", "space", spaceID, "err", err)
		refuse(errInternal)
		return
	}

	s.mu.Lock()
	var g guestInfo
	if gl := s.guestLocked(bare); gl != nil {
		g = guestInfo{ok: true, space: gl.spaceID, name: gl.name, access: gl.accessMethod}
	}
	s.mu.Unlock()

	role, r := s.admit(ctx, sp, from, g)
	if r != nil {
		refuse(r)
		return
	}
	name = s.displayName(ctx, role, name, g.name, from)
	settings, r := s.joinSettings(ctx, sp, g.access)
	if r != nil {
		refuse(r)
		return
	}
	if r := s.enter(conn, sp, spaceJID, from, role, name, g.access, settings); r != nil {
		refuse(r)
	}
}

// refusal is why a join is refused: the stanza error of the error presence.
type refusal struct{ typ, condition, text string }

// errInternal refuses a join the store could not decide.
var errInternal = &refusal{"wait", "internal-server-error", ""}

// guestInfo is what a join needs of the joiner's guest account, if it has one.
type guestInfo struct {
	ok                  bool
	space, name, access string
}

// admit decides who the joiner is in the space: a guest of its own space, the owner, a
// member, or a user let in by non-member access; or why it may not join.
func (s *Service) admit(ctx context.Context, sp store.CoSpace, from jid.JID, g guestInfo) (string, *refusal) {
	full, bare := from.String(), from.Bare().String()
	switch {
	case g.ok && g.space == sp.ID:
		return RoleGuest, nil
	case g.ok:
		s.log.Warn("meeting: join refused: a guest may join only its own space", "jid", full, "space", sp.ID, "guestSpace", g.space)
		return "", &refusal{"auth", "forbidden", "This guest account is for another space"}
	case IsGuestUsername(from.Localpart()):
		s.log.Warn("meeting: join refused: no such guest account (expired or removed)", "jid", full, "space", sp.ID)
		return "", &refusal{"auth", "forbidden", "This guest account has expired"}
	case sp.OwnerJID == bare:
		return RoleOwner, nil
	}
	m, err := s.st.CoSpaceMemberByJID(ctx, sp.ID, bare)
	switch {
	case err == nil && m.Role == RoleOwner:
		return RoleOwner, nil
	case err == nil:
		return RoleMember, nil
	case !errors.Is(err, store.ErrNoCoSpaceMember):
		s.log.Error("meeting: join: read membership", "space", sp.ID, "jid", bare, "err", err)
		return "", errInternal
	case sp.NonMemberAccess:
		return RoleMember, nil
	}
	s.log.Warn("meeting: join refused: not a member", "jid", full, "space", sp.ID)
	return "", &refusal{"auth", "forbidden", "You are not a member of this space"}
}

// displayName is the name the participant is shown with: a guest's from its call ID join, a
// user's as given or, given none, its account's; the JID's local part as the last resort.
func (s *Service) displayName(ctx context.Context, role, name, guestName string, from jid.JID) string {
	if role == RoleGuest {
		if guestName != "" {
			name = guestName
		}
	} else if CleanName(name) == "" {
		if u, err := s.st.UserByJID(ctx, from.Bare().String()); err == nil && u.Name != "" {
			name = u.Name
		}
	}
	if name = CleanName(name); name == "" {
		name = guestName
	}
	if name == "" {
		name = from.Localpart()
	}
	return name
}

// joinSettings resolves the profiles that apply: the access method the guest came in by, the
// space's, the system's.
func (s *Service) joinSettings(ctx context.Context, sp store.CoSpace, access string) (resolved, *refusal) {
	var am *store.AccessMethod
	if access != "" {
		a, err := s.st.AccessMethod(ctx, sp.ID, access)
		switch {
		case err == nil:
			am = &a
		case !errors.Is(err, store.ErrNoAccessMethod):
			s.log.Error("meeting: join: read access method", "space", sp.ID, "accessMethod", access, "err", err)
			return resolved{}, errInternal
		}
	}
	settings, err := s.resolve(ctx, sp, am)
	if err != nil {
		s.log.Error("meeting: join: read profiles", "space", sp.ID, "err", err)
		return resolved{}, errInternal
	}
	return settings, nil
}

// enter puts the admitted joiner in the space's call (starting it), unless the call's limits
// refuse it; a joiner already in sends itself the roster again.
func (s *Service) enter(conn Sender, sp store.CoSpace, spaceJID string, from jid.JID, role, name, access string, settings resolved) *refusal {
	full, bare := from.String(), from.Bare().String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.guestLocked(bare); g != nil {
		// Joining proves a login (whether or not LoginResult was told): the account no
		// longer waits for one, and its password has served.
		g.loggedIn, g.password = true, secret.Secret{}
	}
	if p := s.participantLocked(sp.ID, full); p != nil {
		// Joined already (a client repeating itself): send it the roster again.
		for _, q := range p.call.parts {
			s.queue(conn, presence(q, full, "", q == p, leaveReason{}))
		}
		return nil
	}
	c, inCall := s.calls[sp.ID]
	callSettings := settings.call
	n := 0
	if inCall {
		c.settings = settings.call
		callSettings = maps.Clone(settings.call)
		maps.Copy(callSettings, c.overrides)
		n = len(c.parts)
	}
	if limit, err := strconv.Atoi(callSettings["participantLimit"]); err == nil && n >= limit {
		s.log.Warn("meeting: join refused: participant limit reached", "jid", full, "space", sp.ID, "limit", limit)
		return &refusal{"wait", "service-unavailable", "The meeting is full: it has reached its limit of " + strconv.Itoa(limit) + " participants"}
	}
	if role == RoleGuest && callSettings["locked"] == "true" {
		s.log.Warn("meeting: join refused: the call is locked", "jid", full, "space", sp.ID)
		return &refusal{"auth", "forbidden", "The meeting is locked"}
	}
	c = s.startCallLocked(sp, spaceJID)
	if !inCall {
		c.settings = settings.call
	}
	leg := settings.leg
	if v := c.setting("joinAudioMuteOverride"); v != "" {
		leg["rxAudioMute"] = v
	}
	s.addLocked(c, &participant{id: uuid.NewString(), full: full, bare: bare, name: name, role: role,
		guest: role == RoleGuest, conn: conn, joined: s.now(), accessMethod: access, base: leg})
	return nil
}

// chat relays a groupchat message from a participant to every participant, sender
// included.
func (s *Service) chat(conn Sender, e *stream.Element, spaceID, full string) {
	var p payload
	if err := e.Decode(&p); err != nil {
		s.reply(conn, e, "modify", "bad-request", "")
		return
	}
	if len(p.Body) == 0 {
		return // chat states and the like: nothing to relay
	}
	body := p.Body[0]
	if len(body) > MaxBodyBytes {
		s.reply(conn, e, "modify", "not-acceptable", "The message is too long")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sender := s.participantLocked(spaceID, full)
	if sender == nil {
		s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: "cancel", Condition: "not-acceptable", Text: "Join the space before sending to it"}))
		return
	}
	if sender.call.setting("messageBoardEnabled") == "false" {
		s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: "cancel", Condition: "not-allowed", Text: "Chat is disabled in this meeting"}))
		return
	}
	for _, q := range sender.call.parts {
		var x stream.Builder
		x.Open("message", "type", "groupchat", "id", e.Get("id"), "from", sender.occupantJID(), "to", q.full)
		x.Open("body").Text(body).End("body")
		x.Empty("participant", "xmlns", NS, "id", sender.id, "name", sender.displayName())
		s.queue(q.conn, x.End("message").B)
	}
}
