package meeting

import (
	"maps"
	"slices"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/stream"
)

// Call control: the API's PUT /callLegs/{id} and PUT /calls/{id}/participants/*, and a
// participant's own <control/> requests, change call legs' settings (mute states, layout,
// name). Every change goes out at once as the leg's presence, to every participant, and as a
// callLegUpdate event: the media server acts on the same state later.

// ControlCallLeg changes a call leg's own settings: CMS callLeg parameters by name (see
// CallLegFields), validated by the caller; an empty value unsets the leg's own value, so that
// the profiles' applies again. The participants are told at once. It returns
// ErrNoSuchCallLeg if there is no such leg.
func (s *Service) ControlCallLeg(id string, changes map[string]string) (CallLeg, error) {
	s.mu.Lock()
	p, ok := s.legs[id]
	var snap CallLeg
	if ok {
		s.applyLocked(p, changes)
		snap = p.snapshot()
	}
	s.mu.Unlock()
	s.flush()
	if !ok {
		return CallLeg{}, ErrNoSuchCallLeg
	}
	return snap, nil
}

// ControlCall applies changes as ControlCallLeg does to the legs of a call: every one, or,
// with ids, only those (selected) or all but those (!selected). It returns how many legs it
// changed, or ErrNoSuchCall.
func (s *Service) ControlCall(callID string, changes map[string]string, ids []string, selected bool) (int, error) {
	s.mu.Lock()
	c, ok := s.callByID[callID]
	n := 0
	if ok {
		for _, p := range slices.Clone(c.parts) {
			if len(ids) > 0 && slices.Contains(ids, p.id) != selected {
				continue
			}
			s.applyLocked(p, changes)
			n++
		}
	}
	s.mu.Unlock()
	s.flush()
	if !ok {
		return 0, ErrNoSuchCall
	}
	return n, nil
}

// applyLocked sets p's own settings and, when what the participants see changed, queues p's
// presence to every participant and a callLegUpdate event. "layout" is CMS's older name of
// defaultLayout, which wins when both are given.
func (s *Service) applyLocked(p *participant, changes map[string]string) {
	before := presence(p, "", "", false, leaveReason{})
	if p.overrides == nil {
		p.overrides = map[string]string{}
	}
	set := func(k, v string) {
		if v == "" {
			delete(p.overrides, k)
		} else {
			p.overrides[k] = v
		}
	}
	if v, ok := changes["layout"]; ok {
		set("defaultLayout", v)
	}
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		if k != "layout" {
			set(k, changes[k])
		}
	}
	if string(presence(p, "", "", false, leaveReason{})) == string(before) {
		return
	}
	for _, q := range p.call.parts {
		s.queue(q.conn, presence(p, q.full, "", q == p, leaveReason{}))
	}
	s.recordLegUpdate(p)
	s.log.Info("meeting: call leg changed", "call", p.call.id, "participant", p.id, "settings", changes)
}

// controlPayload is a participant's request to change a leg: its own or, where its settings
// allow, another's.
type controlPayload struct {
	Control *struct {
		RxAudioMute  *string `xml:"rxAudioMute,attr"`
		TxAudioMute  *string `xml:"txAudioMute,attr"`
		RxVideoMute  *string `xml:"rxVideoMute,attr"`
		TxVideoMute  *string `xml:"txVideoMute,attr"`
		ChosenLayout *string `xml:"chosenLayout,attr"`
	} `xml:"urn:confab:meeting:1 control"`
}

// control answers <iq type='set' to='space/participant'><control …/></iq> from a participant:
// it may mute and unmute itself (muteSelfAllowed, videoMuteSelfAllowed) and others
// (muteOthersAllowed, videoMuteOthersAllowed), stop receiving audio or video itself
// (txAudioMute, txVideoMute), and choose its own layout (changeLayoutAllowed).
func (s *Service) control(conn Sender, e *stream.Element, from, to jid.JID) {
	var pl controlPayload
	if err := e.Decode(&pl); err != nil || pl.Control == nil {
		s.reply(conn, e, stream.ErrCancel, "service-unavailable", "")
		return
	}
	c := pl.Control
	s.mu.Lock()
	defer s.mu.Unlock()
	sender := s.participantLocked(to.Localpart(), from.String())
	if sender == nil {
		s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: stream.ErrCancel, Condition: "not-acceptable", Text: "Join the space first"}))
		return
	}
	target := s.legs[to.Resourcepart()]
	if target == nil || target.call != sender.call {
		s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: stream.ErrCancel, Condition: "item-not-found", Text: "No such participant in this meeting"}))
		return
	}
	self := target == sender
	changes := map[string]string{}
	for _, r := range []struct {
		name        string
		v           *string
		selfAllowed string // the sender's setting that lets it change its own; "" always
		othersAllow string // the sender's setting that lets it change others'; "" never
	}{
		{"rxAudioMute", c.RxAudioMute, "muteSelfAllowed", "muteOthersAllowed"},
		{"rxVideoMute", c.RxVideoMute, "videoMuteSelfAllowed", "videoMuteOthersAllowed"},
		{"txAudioMute", c.TxAudioMute, "", ""},
		{"txVideoMute", c.TxVideoMute, "", ""},
		{"chosenLayout", c.ChosenLayout, "changeLayoutAllowed", ""},
	} {
		if r.v == nil {
			continue
		}
		f, _ := FieldByName(CallLegFields, r.name)
		if *r.v == "" || f.Valid(*r.v) != nil {
			s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: stream.ErrModify, Condition: "bad-request", Text: "Invalid " + r.name}))
			return
		}
		allowed := self && (r.selfAllowed == "" || sender.flag(r.selfAllowed)) ||
			!self && r.othersAllow != "" && sender.flag(r.othersAllow)
		if !allowed {
			s.log.Info("meeting: control refused", "participant", sender.id, "target", target.id, "setting", r.name)
			s.queue(conn, stream.ErrorReply(e, stream.StanzaError{Type: stream.ErrAuth, Condition: "forbidden", Text: "You may not change " + r.name + " of this participant"}))
			return
		}
		changes[r.name] = *r.v
	}
	s.applyLocked(target, changes)
	s.queue(conn, stream.Result(e))
}
