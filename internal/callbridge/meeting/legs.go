package meeting

import "mellium.im/xmpp/jid"

// LegEnd says that a call leg ended: its participant left, was removed, lost its session, or
// the call ended.
type LegEnd struct {
	CallID, LegID, Reason string
}

// ObserveLegs makes f hear of every call leg that ends, once, after the change is made and
// the meeting's lock released (from the goroutine that flushes the meeting's stanzas, in the
// order the legs ended). f must not block: the media server hands the work to a goroutine
// of its own. Set it before the Service is used.
func (s *Service) ObserveLegs(f func(LegEnd)) {
	s.mu.Lock()
	s.legObs = f
	s.mu.Unlock()
}

// Leg returns the call and call leg of the participant whose full JID is fullJID in the
// meeting of space spaceID, if it has joined.
func (s *Service) Leg(spaceID, fullJID string) (CallLeg, bool) {
	j, err := jid.Parse(fullJID)
	if err != nil {
		return CallLeg{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.participantLocked(spaceID, j.String())
	if p == nil {
		return CallLeg{}, false
	}
	return p.snapshot(), true
}

// maxSources bounds the remembered login addresses.
const maxSources = 100000

// LoginFrom records the address (a throttle key) that bare JID jid last logged in from, so
// that its lookups of call IDs count against that address too (loginrelay's OnLoginSource).
func (s *Service) LoginFrom(jidStr, source string) {
	j, err := jid.Parse(jidStr)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sources) >= maxSources {
		clear(s.sources) // a flood of accounts: start over rather than grow
	}
	s.sources[j.Bare().String()] = source
}
