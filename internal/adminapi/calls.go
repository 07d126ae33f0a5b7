package adminapi

import (
	"encoding/xml"
	"net/http"
	"strings"
)

// callRoutes registers /calls and /callLegs: the meetings in progress, read from
// meeting.Service's memory.
func (s *server) callRoutes() {
	s.handle("GET /api/v1/calls", s.listCalls)
	s.handle("GET /api/v1/calls/{id}", s.getCall)
	s.handle("DELETE /api/v1/calls/{id}", s.deleteCall)
	s.handle("GET /api/v1/calls/{id}/participants", s.listParticipants)
	s.handle("GET /api/v1/callLegs", s.listCallLegs)
	s.handle("GET /api/v1/callLegs/{id}", s.getCallLeg)
	s.handle("DELETE /api/v1/callLegs/{id}", s.deleteCallLeg)
}

// sliceWindow applies offset and limit (0: all) to items.
func sliceWindow[T any](items []T, offset, limit int) []T {
	if offset >= len(items) {
		return items[:0]
	}
	items = items[offset:]
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}

// callsDoc is GET /calls.
type callsDoc struct {
	XMLName xml.Name      `xml:"calls" json:"-"`
	Total   int           `xml:"total,attr" json:"total"`
	Calls   []callSummary `xml:"call" json:"call"`
}

type callSummary struct {
	ID             string `xml:"id,attr" json:"id"`
	Name           string `xml:"name" json:"name"`
	CoSpace        string `xml:"coSpace" json:"coSpace"`
	CallCorrelator string `xml:"callCorrelator" json:"callCorrelator"`
}

// callDoc is GET /calls/{id}.
type callDoc struct {
	XMLName              xml.Name `xml:"call" json:"-"`
	ID                   string   `xml:"id,attr" json:"id"`
	CoSpace              string   `xml:"coSpace" json:"coSpace"`
	CallCorrelator       string   `xml:"callCorrelator" json:"callCorrelator"`
	Name                 string   `xml:"name" json:"name"`
	DurationSeconds      int64    `xml:"durationSeconds" json:"durationSeconds"`
	NumCallLegs          int      `xml:"numCallLegs" json:"numCallLegs"`
	NumParticipantsLocal int      `xml:"numParticipantsLocal" json:"numParticipantsLocal"`
	// Confab's extension: the space's XMPP address.
	JID string `xml:"jid,omitempty" json:"jid,omitempty"`
}

func (s *server) listCalls(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	calls := s.meetings.Calls()
	if f := r.URL.Query().Get("coSpaceFilter"); f != "" {
		kept := calls[:0]
		for _, c := range calls {
			if c.CoSpaceID == f {
				kept = append(kept, c)
			}
		}
		calls = kept
	}
	doc := callsDoc{Total: len(calls), Calls: []callSummary{}}
	for _, c := range sliceWindow(calls, offset, limit) {
		doc.Calls = append(doc.Calls, callSummary{ID: c.ID, Name: c.Name, CoSpace: c.CoSpaceID, CallCorrelator: c.Correlator})
	}
	return doc, nil
}

func (s *server) getCall(w http.ResponseWriter, r *http.Request) (any, error) {
	c, ok := s.meetings.Call(r.PathValue("id"))
	if !ok {
		return nil, DoesNotExist("callDoesNotExist")
	}
	return callDoc{ID: c.ID, CoSpace: c.CoSpaceID, CallCorrelator: c.Correlator, Name: c.Name,
		DurationSeconds: seconds(s.now().Sub(c.Started)), NumCallLegs: c.Legs, NumParticipantsLocal: c.Legs,
		JID: c.SpaceJID}, nil
}

// deleteCall ends a call: its participants get unavailable presence from the space.
func (s *server) deleteCall(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.meetings.EndCall(id, "ended through the API by "+user(r)); err != nil {
		return nil, DoesNotExist("callDoesNotExist")
	}
	s.log.Info("call ended", "user", user(r), "call", id)
	return nil, nil
}

// participantsDoc is GET /calls/{id}/participants.
type participantsDoc struct {
	XMLName      xml.Name         `xml:"participants" json:"-"`
	Total        int              `xml:"total,attr" json:"total"`
	Participants []participantDoc `xml:"participant" json:"participant"`
}

type participantDoc struct {
	ID   string `xml:"id,attr" json:"id"`
	Name string `xml:"name" json:"name"`
	Call string `xml:"call" json:"call"`
	// Confab's extensions: who it is and as what.
	JID  string `xml:"jid" json:"jid"`
	Role string `xml:"role" json:"role"`
}

func (s *server) listParticipants(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	legs, ok := s.meetings.Participants(r.PathValue("id"))
	if !ok {
		return nil, DoesNotExist("callDoesNotExist")
	}
	doc := participantsDoc{Total: len(legs), Participants: []participantDoc{}}
	for _, l := range sliceWindow(legs, offset, limit) {
		doc.Participants = append(doc.Participants, participantDoc{ID: l.ID, Name: l.Name, Call: l.CallID, JID: l.RemoteParty, Role: l.Role})
	}
	return doc, nil
}

// callLegsDoc is GET /callLegs.
type callLegsDoc struct {
	XMLName xml.Name         `xml:"callLegs" json:"-"`
	Total   int              `xml:"total,attr" json:"total"`
	Legs    []callLegSummary `xml:"callLeg" json:"callLeg"`
}

type callLegSummary struct {
	ID          string `xml:"id,attr" json:"id"`
	Name        string `xml:"name" json:"name"`
	RemoteParty string `xml:"remoteParty" json:"remoteParty"`
	Call        string `xml:"call" json:"call"`
}

// callLegDoc is GET /callLegs/{id}.
type callLegDoc struct {
	XMLName     xml.Name      `xml:"callLeg" json:"-"`
	ID          string        `xml:"id,attr" json:"id"`
	Name        string        `xml:"name" json:"name"`
	RemoteParty string        `xml:"remoteParty" json:"remoteParty"`
	Call        string        `xml:"call" json:"call"`
	CoSpace     string        `xml:"coSpace" json:"coSpace"`
	Type        string        `xml:"type" json:"type"` // Confab: guest or user
	Role        string        `xml:"role" json:"role"` // Confab: owner, member or guest
	Status      callLegStatus `xml:"status" json:"status"`
}

type callLegStatus struct {
	State           string `xml:"state" json:"state"`
	DurationSeconds int64  `xml:"durationSeconds" json:"durationSeconds"`
}

// listCallLegs is GET /callLegs: offset, limit, and filter (part of the name or the
// remote party, ignoring case).
func (s *server) listCallLegs(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	legs := s.meetings.CallLegs()
	if f := strings.ToLower(r.URL.Query().Get("filter")); f != "" {
		kept := legs[:0]
		for _, l := range legs {
			if strings.Contains(strings.ToLower(l.Name), f) || strings.Contains(l.RemoteParty, f) {
				kept = append(kept, l)
			}
		}
		legs = kept
	}
	doc := callLegsDoc{Total: len(legs), Legs: []callLegSummary{}}
	for _, l := range sliceWindow(legs, offset, limit) {
		doc.Legs = append(doc.Legs, callLegSummary{ID: l.ID, Name: l.Name, RemoteParty: l.RemoteParty, Call: l.CallID})
	}
	return doc, nil
}

func (s *server) getCallLeg(w http.ResponseWriter, r *http.Request) (any, error) {
	l, ok := s.meetings.CallLeg(r.PathValue("id"))
	if !ok {
		return nil, DoesNotExist("callLegDoesNotExist")
	}
	return callLegDoc{ID: l.ID, Name: l.Name, RemoteParty: l.RemoteParty, Call: l.CallID, CoSpace: l.CoSpaceID,
		Type: l.Type, Role: l.Role,
		Status: callLegStatus{State: "connected", DurationSeconds: seconds(s.now().Sub(l.Joined))}}, nil
}

// deleteCallLeg takes a participant out of its call.
func (s *server) deleteCallLeg(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.meetings.RemoveCallLeg(id, "removed through the API by "+user(r)); err != nil {
		return nil, DoesNotExist("callLegDoesNotExist")
	}
	s.log.Info("call leg removed", "user", user(r), "callLeg", id)
	return nil, nil
}
