package meeting

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

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

// call is a meeting in progress: a space with at least one participant.
type call struct {
	id, correlator string
	spaceID        string
	spaceJID       string
	name           string
	started        time.Time
	parts          []*participant // in the order they joined
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
	Started    time.Time
	Legs       int
}

// CallLeg is a snapshot of one participant (REST /callLegs, /calls/{id}/participants).
type CallLeg struct {
	ID          string // also the participant id: the resource of its address in the space
	CallID      string
	CoSpaceID   string
	Name        string
	RemoteParty string // the participant's bare JID
	FullJID     string
	Type        string // "guest" or "user"
	Role        string // "owner", "member" or "guest"
	Joined      time.Time
}

func (c *call) snapshot() Call {
	return Call{ID: c.id, Correlator: c.correlator, CoSpaceID: c.spaceID, SpaceJID: c.spaceJID,
		Name: c.name, Started: c.started, Legs: len(c.parts)}
}

func (p *participant) snapshot() CallLeg {
	typ := "user"
	if p.guest {
		typ = "guest"
	}
	return CallLeg{ID: p.id, CallID: p.call.id, CoSpaceID: p.call.spaceID, Name: p.name,
		RemoteParty: p.bare, FullJID: p.full, Type: typ, Role: p.role, Joined: p.joined}
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

// EndCall ends a call: every participant gets unavailable presence from the space (its own
// with self='true', so that it knows it was removed) and guests lose their accounts. It
// returns ErrNoSuchCall if there is no such call.
func (s *Service) EndCall(id, reason string) error {
	s.mu.Lock()
	c, ok := s.callByID[id]
	if ok {
		s.endCallLocked(c, reason)
	}
	s.mu.Unlock()
	s.flush()
	if !ok {
		return ErrNoSuchCall
	}
	return nil
}

// RemoveCallLeg takes one participant out of its call, as if it had left, telling it and the
// others. It returns ErrNoSuchCallLeg if there is no such call leg.
func (s *Service) RemoveCallLeg(id, reason string) error {
	s.mu.Lock()
	p, ok := s.legs[id]
	if ok {
		s.removeLocked(p, true, reason)
	}
	s.mu.Unlock()
	s.flush()
	if !ok {
		return ErrNoSuchCallLeg
	}
	return nil
}

// Reset forgets every call without telling anyone, for when the component link is lost:
// the participants' sessions are no longer reachable through it, and their clients join
// again once the link is back. Guest accounts are kept so that guests can do so.
func (s *Service) Reset(reason string) {
	s.mu.Lock()
	for _, c := range s.callByID {
		s.log.Info("meeting: call ended", "call", c.id, "space", c.spaceID, "legs", len(c.parts), "reason", reason)
		for _, p := range c.parts {
			s.legEnds = append(s.legEnds, LegEnd{CallID: c.id, LegID: p.id, Reason: reason})
		}
	}
	clear(s.calls)
	clear(s.callByID)
	clear(s.legs)
	s.mu.Unlock()
	s.flush()
}

// endCallLocked removes every participant of c; the last removal ends the call.
func (s *Service) endCallLocked(c *call, reason string) {
	for len(c.parts) > 0 {
		s.removeLocked(c.parts[0], true, reason)
	}
}

// startCallLocked returns the call in a space, starting it if there is none.
func (s *Service) startCallLocked(spaceID, spaceJID, name string) *call {
	if c, ok := s.calls[spaceID]; ok {
		return c
	}
	c := &call{id: uuid.NewString(), correlator: uuid.NewString(), spaceID: spaceID, spaceJID: spaceJID,
		name: name, started: s.now()}
	s.calls[spaceID] = c
	s.callByID[c.id] = c
	s.log.Info("meeting: call started", "call", c.id, "space", spaceID, "name", name)
	return c
}

// addLocked puts p into c and queues the presences of a join: to p, one per participant
// already there, then its own with self='true'; to each of the others, p's.
func (s *Service) addLocked(c *call, p *participant) {
	p.call = c
	for _, q := range c.parts {
		s.queue(p.conn, presence(q, p.full, "", false))
	}
	c.parts = append(c.parts, p)
	s.legs[p.id] = p
	s.queue(p.conn, presence(p, p.full, "", true))
	for _, q := range c.parts {
		if q != p {
			s.queue(q.conn, presence(p, q.full, "", false))
		}
	}
	s.log.Info("meeting: participant joined", "call", c.id, "space", c.spaceID, "participant", p.id,
		"jid", p.full, "role", p.role, "name", p.name)
}

// removeLocked takes p out of its call and queues unavailable presence from p to the
// others (and to p itself when it did not leave of its own accord). A guest loses its
// account. The last one out ends the call.
func (s *Service) removeLocked(p *participant, tellSelf bool, reason string) {
	c := p.call
	i := slices.Index(c.parts, p)
	if i < 0 {
		return
	}
	c.parts = slices.Delete(c.parts, i, i+1)
	delete(s.legs, p.id)
	s.legEnds = append(s.legEnds, LegEnd{CallID: c.id, LegID: p.id, Reason: reason})
	for _, q := range c.parts {
		s.queue(q.conn, presence(p, q.full, "unavailable", false))
	}
	if tellSelf {
		s.queue(p.conn, presence(p, p.full, "unavailable", true))
	}
	s.log.Info("meeting: participant left", "call", c.id, "space", c.spaceID, "participant", p.id,
		"jid", p.full, "reason", reason)
	if p.guest {
		s.dropGuestLocked(localpart(p.bare), "left the meeting")
	}
	if len(c.parts) == 0 {
		delete(s.calls, c.spaceID)
		delete(s.callByID, c.id)
		s.log.Info("meeting: call ended", "call", c.id, "space", c.spaceID,
			"duration", s.now().Sub(c.started).Round(time.Second), "reason", reason)
	}
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
// "", else typ ("unavailable"); self marks a participant's own presence.
func presence(p *participant, to, typ string, self bool) []byte {
	var x stream.Builder
	x.Open("presence", "type", typ, "from", p.occupantJID(), "to", to)
	selfAttr := ""
	if self {
		selfAttr = "true"
	}
	x.Empty("participant", "xmlns", NS, "id", p.id, "name", p.name, "jid", p.bare, "role", p.role, "self", selfAttr)
	return x.End("presence").B
}

func localpart(bare string) string {
	l, _, _ := strings.Cut(bare, "@")
	return l
}
