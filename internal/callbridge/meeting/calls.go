package meeting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// Errors of the call methods.
var (
	ErrNoSuchCall    = errors.New("meeting: no such call")
	ErrNoSuchCallLeg = errors.New("meeting: no such call leg")
)

// Participant roles, as the protocol and the API name them.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
	RoleGuest  = "guest"
)

// call is a meeting in progress: a space with at least one participant, or one the API
// created (POST /calls) that nobody has joined yet.
type call struct {
	id, correlator string
	spaceID        string
	spaceJID       string
	name           string
	ownerJID       string
	cdrTag         string
	started        time.Time
	parts          []*participant // in the order they joined
	// settings are the call profile settings in force (resolved at the latest join);
	// overrides are the call's own (PUT /calls/{id}), above them.
	settings  map[string]string
	overrides map[string]string
	maxLegs   int // the most participants at once
	completed int // participants that have left
	// apiCreated marks a call made by CreateCall: it stays, empty, until someone joins or it
	// is ended; after that the last one out ends it as any call.
	apiCreated bool
}

// setting returns a call setting: the call's own, else the profiles'.
func (c *call) setting(name string) string {
	if v, ok := c.overrides[name]; ok {
		return v
	}
	return c.settings[name]
}

// participant is one person in a call: a call leg.
type participant struct {
	id     string
	full   string // the client's full JID, normalised
	bare   string
	name   string
	role   string
	guest  bool
	conn   Sender // the link the join came over; where stanzas for this participant go
	joined time.Time
	call   *call
	// accessMethod is the access method the participant came in by ("" for the space).
	accessMethod string
	// base are the call leg settings of the profiles at its join; overrides are the leg's
	// own (PUT /callLegs/{id}, <control/>), above them.
	base      map[string]string
	overrides map[string]string
}

// setting returns a call leg setting: the leg's own, else the profiles', else CMS's default.
func (p *participant) setting(name string) string {
	if v, ok := p.overrides[name]; ok {
		return v
	}
	if v, ok := p.base[name]; ok {
		return v
	}
	return legDefaults[name]
}

func (p *participant) flag(name string) bool { return p.setting(name) == "true" }

// layout is the participant's layout: its chosen one, else its default, else automatic.
func (p *participant) layout() string {
	if l := p.setting("chosenLayout"); l != "" {
		return l
	}
	if l := p.setting("defaultLayout"); l != "" {
		return l
	}
	return "automatic"
}

// displayName is the name shown for the participant.
func (p *participant) displayName() string {
	if n := p.setting("nameLabelOverride"); n != "" {
		return n
	}
	return p.name
}

// settings returns every call leg setting in force, defaults included.
func (p *participant) settings() map[string]string {
	out := maps.Clone(legDefaults)
	maps.Copy(out, p.base)
	maps.Copy(out, p.overrides)
	return out
}

// occupantJID is the participant's address in the meeting, <space>/<participant id>.
func (p *participant) occupantJID() string { return p.call.spaceJID + "/" + p.id }

// Call is a snapshot of a call in progress (REST /calls).
type Call struct {
	ID         string
	Correlator string // CMS callCorrelator: the same on every Call Bridge that hosts the call
	CoSpaceID  string
	SpaceJID   string
	Name       string // the space's name
	OwnerJID   string
	Started    time.Time
	Legs       int
	MaxLegs    int
	// Settings are the call settings in force (call profile and the call's own); Overrides
	// the call's own only (PUT /calls/{id}).
	Settings  map[string]string
	Overrides map[string]string
}

// CallLeg is a snapshot of one participant (REST /callLegs, /calls/{id}/participants).
type CallLeg struct {
	ID           string // also the participant id: the resource of its address in the space
	CallID       string
	CoSpaceID    string
	Name         string // as shown: nameLabelOverride if set
	RemoteParty  string // the participant's bare JID
	FullJID      string
	Type         string // "guest" or "user"
	Role         string // "owner", "member" or "guest"
	AccessMethod string // the access method it came in by, or ""
	Joined       time.Time
	// Settings are the call leg settings in force (CMS's defaults, the profiles, the leg's
	// own); Overrides the leg's own only.
	Settings  map[string]string
	Overrides map[string]string
	Layout    string
}

// Muted reports a mute setting ("rxAudioMute", …) in force.
func (l CallLeg) Muted(name string) bool { return l.Settings[name] == "true" }

func (c *call) snapshot() Call {
	settings := maps.Clone(c.settings)
	if settings == nil {
		settings = map[string]string{}
	}
	maps.Copy(settings, c.overrides)
	return Call{ID: c.id, Correlator: c.correlator, CoSpaceID: c.spaceID, SpaceJID: c.spaceJID,
		Name: c.name, OwnerJID: c.ownerJID, Started: c.started, Legs: len(c.parts), MaxLegs: c.maxLegs,
		Settings: settings, Overrides: maps.Clone(c.overrides)}
}

func (p *participant) snapshot() CallLeg {
	typ := "user"
	if p.guest {
		typ = "guest"
	}
	overrides := maps.Clone(p.overrides)
	if overrides == nil {
		overrides = map[string]string{}
	}
	return CallLeg{ID: p.id, CallID: p.call.id, CoSpaceID: p.call.spaceID, Name: p.displayName(),
		RemoteParty: p.bare, FullJID: p.full, Type: typ, Role: p.role, AccessMethod: p.accessMethod,
		Joined: p.joined, Settings: p.settings(), Overrides: overrides, Layout: p.layout()}
}

// Calls returns the calls in progress, oldest first.
func (s *Service) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, 0, len(s.callByID))
	for _, c := range s.callByID {
		out = append(out, c.snapshot())
	}
	slices.SortFunc(out, func(a, b Call) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Call returns the call with that id.
func (s *Service) Call(id string) (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.callByID[id]
	if !ok {
		return Call{}, false
	}
	return c.snapshot(), true
}

// CallOfSpace returns the call in progress in a space, if there is one.
func (s *Service) CallOfSpace(spaceID string) (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[spaceID]
	if !ok {
		return Call{}, false
	}
	return c.snapshot(), true
}

// CallLegs returns every call leg, ordered by call (oldest first), then by joining.
func (s *Service) CallLegs() []CallLeg {
	var out []CallLeg
	for _, c := range s.Calls() {
		legs, _ := s.Participants(c.ID)
		out = append(out, legs...)
	}
	if out == nil {
		out = []CallLeg{}
	}
	return out
}

// CallLeg returns the call leg with that id.
func (s *Service) CallLeg(id string) (CallLeg, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.legs[id]
	if !ok {
		return CallLeg{}, false
	}
	return p.snapshot(), true
}

// Participants returns the call legs of a call in the order they joined, and false if there
// is no such call.
func (s *Service) Participants(callID string) ([]CallLeg, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.callByID[callID]
	if !ok {
		return nil, false
	}
	out := make([]CallLeg, 0, len(c.parts))
	for _, p := range c.parts {
		out = append(out, p.snapshot())
	}
	return out, true
}

// Why a participant leaves, as its unavailable presence tells it (reason attribute and
// status text) and as its callLegEnd record says (CMS's reason code).
type leaveReason struct {
	code   string // the <participant/> reason attribute; "" when it left of its own accord
	status string // the <status/> text of its own unavailable presence
	cdr    string // CMS's callLegEnd reason
	remote bool   // CMS's remoteTeardown: the participant's side ended it
	log    string
}

var (
	reasonLeft        = leaveReason{cdr: "remoteTeardown", remote: true, log: "left"}
	reasonUnreachable = leaveReason{cdr: "timeout", log: "unreachable"}
	reasonRemoved     = leaveReason{code: "removed", status: "You were removed from the meeting", cdr: "localTeardown"}
	reasonEnded       = leaveReason{code: "ended", status: "The meeting was ended by the organiser", cdr: "localTeardown"}
	reasonDeleted     = leaveReason{code: "ended", status: "The meeting was ended: its space was deleted", cdr: "localTeardown", log: "space deleted"}
)

func sessionEnded(why string) leaveReason {
	return leaveReason{cdr: "remoteTeardown", remote: true, log: "session ended (" + why + ")"}
}

// EndCall ends a call: every participant gets unavailable presence from the space (its own
// with self='true', reason='ended' and a status saying the organiser ended the meeting) and
// guests lose their accounts. why is for the log. It returns ErrNoSuchCall if there is no such
// call.
func (s *Service) EndCall(id, why string) error {
	s.mu.Lock()
	c, ok := s.callByID[id]
	if ok {
		r := reasonEnded
		r.log = why
		s.endCallLocked(c, r)
	}
	s.mu.Unlock()
	s.flush()
	if !ok {
		return ErrNoSuchCall
	}
	return nil
}

// RemoveCallLeg takes one participant out of its call, telling it (reason='removed') and the
// others. why is for the log. It returns ErrNoSuchCallLeg if there is no such call leg.
func (s *Service) RemoveCallLeg(id, why string) error {
	s.mu.Lock()
	p, ok := s.legs[id]
	if ok {
		r := reasonRemoved
		r.log = why
		s.removeLocked(p, true, r)
	}
	s.mu.Unlock()
	s.flush()
	if !ok {
		return ErrNoSuchCallLeg
	}
	return nil
}

// Reset forgets every call without telling anyone, for when the component link is lost (or
// the Call Bridge stops): the participants' sessions are no longer reachable through it, and
// their clients join again once the link is back. Guest accounts are kept so that guests can
// do so. The calls' and legs' end events are recorded.
func (s *Service) Reset(why string) {
	s.mu.Lock()
	for _, c := range s.callByID {
		for _, p := range c.parts {
			s.recordLegEnd(p, leaveReason{cdr: "localTeardown"})
			s.legEnds = append(s.legEnds, LegEnd{CallID: c.id, LegID: p.id, Reason: why})
			c.completed++
		}
		s.recordCallEnd(c)
		s.log.Info("meeting: call ended", "call", c.id, "space", c.spaceID, "legs", len(c.parts), "reason", why)
	}
	clear(s.calls)
	clear(s.callByID)
	clear(s.legs)
	s.mu.Unlock()
	s.flush()
}

// endCallLocked removes every participant of c; the last removal ends the call (and an empty
// call ends at once).
func (s *Service) endCallLocked(c *call, r leaveReason) {
	for len(c.parts) > 0 {
		s.removeLocked(c.parts[0], true, r)
	}
	if s.callByID[c.id] == c {
		s.finishCallLocked(c, r.log)
	}
}

// finishCallLocked forgets a call and records its end.
func (s *Service) finishCallLocked(c *call, why string) {
	delete(s.calls, c.spaceID)
	delete(s.callByID, c.id)
	s.recordCallEnd(c)
	s.log.Info("meeting: call ended", "call", c.id, "space", c.spaceID,
		"duration", s.now().Sub(c.started).Round(time.Second), "reason", why)
}

// startCallLocked returns the call in a space, starting it if there is none.
func (s *Service) startCallLocked(sp store.CoSpace, spaceJID string) *call {
	if c, ok := s.calls[sp.ID]; ok {
		if c.spaceJID == "" {
			c.spaceJID = spaceJID
		}
		return c
	}
	c := &call{id: uuid.NewString(), correlator: uuid.NewString(), spaceID: sp.ID, spaceJID: spaceJID,
		name: sp.Name, ownerJID: sp.OwnerJID, cdrTag: sp.CDRTag, started: s.now()}
	s.calls[sp.ID] = c
	s.callByID[c.id] = c
	s.record(Event{Type: CallStart, CallID: c.id, CallCorrelator: c.correlator, CallName: c.name,
		CoSpaceID: c.spaceID, OwnerName: c.ownerJID, CDRTag: c.cdrTag})
	s.log.Info("meeting: call started", "call", c.id, "space", sp.ID, "name", sp.Name)
	return c
}

// CreateCall starts a call in a space for the API (POST /calls), so that people can be put in
// it, and returns it; if the space has a call already, that call is returned with created
// false. The call stays, empty, until someone joins (the last one out then ends it) or it is
// ended. Errors: store.ErrNotFound for a missing space, or a store failure.
func (s *Service) CreateCall(ctx context.Context, spaceID string) (Call, bool, error) {
	s.spaceMu.RLock()
	defer s.spaceMu.RUnlock()
	sp, err := s.st.CoSpace(ctx, spaceID)
	if err != nil {
		return Call{}, false, fmt.Errorf("meeting: create call: %w", err)
	}
	r, err := s.resolve(ctx, sp, nil)
	if err != nil {
		return Call{}, false, fmt.Errorf("meeting: create call: %w", err)
	}
	spaceJID, _ := s.SpaceJID(ctx, sp.ID) // "" until the XMPP settings are complete; set at the first join
	s.mu.Lock()
	_, existed := s.calls[sp.ID]
	c := s.startCallLocked(sp, spaceJID)
	if !existed {
		c.apiCreated = true
		c.settings = r.call
	}
	snap := c.snapshot()
	s.mu.Unlock()
	s.flush()
	return snap, !existed, nil
}

// UpdateCall changes a call's own settings (CMS call parameters, e.g. locked,
// joinAudioMuteOverride), validated by the caller: an empty value unsets one. It returns
// ErrNoSuchCall if there is no such call.
func (s *Service) UpdateCall(id string, changes map[string]string) (Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.callByID[id]
	if !ok {
		return Call{}, ErrNoSuchCall
	}
	if c.overrides == nil {
		c.overrides = map[string]string{}
	}
	for k, v := range changes {
		if v == "" {
			delete(c.overrides, k)
		} else {
			c.overrides[k] = v
		}
	}
	s.log.Info("meeting: call changed", "call", c.id, "settings", changes)
	return c.snapshot(), nil
}

// addLocked puts p into c and queues the presences of a join: to p, one per participant
// already there, then its own with self='true'; to each of the others, p's.
func (s *Service) addLocked(c *call, p *participant) {
	p.call = c
	for _, q := range c.parts {
		s.queue(p.conn, presence(q, p.full, "", false, leaveReason{}))
	}
	c.parts = append(c.parts, p)
	c.maxLegs = max(c.maxLegs, len(c.parts))
	s.legs[p.id] = p
	s.queue(p.conn, presence(p, p.full, "", true, leaveReason{}))
	for _, q := range c.parts {
		if q != p {
			s.queue(q.conn, presence(p, q.full, "", false, leaveReason{}))
		}
	}
	s.record(Event{Type: CallLegStart, CallID: c.id, CallCorrelator: c.correlator, LegID: p.id,
		DisplayName: p.displayName(), RemoteParty: p.bare, LocalAddress: c.spaceJID, Guest: p.guest})
	s.recordLegUpdate(p)
	s.log.Info("meeting: participant joined", "call", c.id, "space", c.spaceID, "participant", p.id,
		"jid", p.full, "role", p.role, "name", p.name, "accessMethod", p.accessMethod)
}

// removeLocked takes p out of its call and queues unavailable presence from p to the
// others (and to p itself when it did not leave of its own accord), with the reason. A guest
// loses its account. The last one out ends the call.
func (s *Service) removeLocked(p *participant, tellSelf bool, r leaveReason) {
	c := p.call
	i := slices.Index(c.parts, p)
	if i < 0 {
		return
	}
	c.parts = slices.Delete(c.parts, i, i+1)
	c.completed++
	delete(s.legs, p.id)
	why := r.log
	if why == "" {
		why = r.code
	}
	s.legEnds = append(s.legEnds, LegEnd{CallID: c.id, LegID: p.id, Reason: why})
	for _, q := range c.parts {
		s.queue(q.conn, presence(p, q.full, "unavailable", false, r))
	}
	if tellSelf {
		s.queue(p.conn, presence(p, p.full, "unavailable", true, r))
	}
	s.recordLegEnd(p, r)
	s.log.Info("meeting: participant left", "call", c.id, "space", c.spaceID, "participant", p.id,
		"jid", p.full, "reason", why)
	if p.guest {
		s.dropGuestLocked(localpart(p.bare), "left the meeting")
	}
	if len(c.parts) == 0 {
		s.finishCallLocked(c, why)
	}
}

func (s *Service) recordLegUpdate(p *participant) {
	s.record(Event{Type: CallLegUpdate, CallID: p.call.id, CallCorrelator: p.call.correlator, LegID: p.id,
		DisplayName: p.displayName(), State: "connected",
		RxAudioMute: p.flag("rxAudioMute"), TxAudioMute: p.flag("txAudioMute"),
		RxVideoMute: p.flag("rxVideoMute"), TxVideoMute: p.flag("txVideoMute"), Layout: p.layout()})
}

func (s *Service) recordLegEnd(p *participant, r leaveReason) {
	s.record(Event{Type: CallLegEnd, CallID: p.call.id, CallCorrelator: p.call.correlator, LegID: p.id,
		Reason: r.cdr, RemoteTeardown: r.remote, LegDuration: s.now().Sub(p.joined)})
}

func (s *Service) recordCallEnd(c *call) {
	s.record(Event{Type: CallEnd, CallID: c.id, CallCorrelator: c.correlator,
		CallLegsCompleted: c.completed, CallLegsMaxActive: c.maxLegs, CallDuration: s.now().Sub(c.started)})
}

// participantLocked returns the participant with that full JID in a space's call.
func (s *Service) participantLocked(spaceID, full string) *participant {
	c, ok := s.calls[spaceID]
	if !ok {
		return nil
	}
	for _, p := range c.parts {
		if p.full == full {
			return p
		}
	}
	return nil
}

// presence is the presence of participant p sent to the full JID to: available when typ is
// "", else typ ("unavailable"); self marks a participant's own presence. The participant's
// mute states are attributes present only when true, its layout always; r, for unavailable
// presence, says why it left (reason attribute; status text to itself).
func presence(p *participant, to, typ string, self bool, r leaveReason) []byte {
	var x stream.Builder
	x.Open("presence", "type", typ, "from", p.occupantJID(), "to", to)
	if self && r.status != "" {
		x.Elem("status", r.status)
	}
	attrs := []string{"xmlns", NS, "id", p.id, "name", p.displayName(), "jid", p.bare, "role", p.role,
		"self", trueOrEmpty(self), "reason", r.code}
	if typ == "" {
		for _, m := range []string{"rxAudioMute", "txAudioMute", "rxVideoMute", "txVideoMute"} {
			attrs = append(attrs, m, trueOrEmpty(p.flag(m)))
		}
		attrs = append(attrs, "layout", p.layout())
	}
	x.Empty("participant", attrs...)
	return x.End("presence").B
}

func trueOrEmpty(b bool) string {
	if b {
		return "true"
	}
	return ""
}

func localpart(bare string) string {
	l, _, _ := strings.Cut(bare, "@")
	return l
}
