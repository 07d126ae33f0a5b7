package adminapi

import (
	"encoding/xml"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/store"
)

// callRoutes registers /calls, /callLegs and /participants: the meetings in progress, read
// from meeting.Service's memory, and their control.
func (s *server) callRoutes() {
	s.handle("GET /api/v1/calls", s.listCalls)
	s.handle("POST /api/v1/calls", s.createCall)
	s.handle("GET /api/v1/calls/{id}", s.getCall)
	s.handle("PUT /api/v1/calls/{id}", s.updateCall)
	s.handle("DELETE /api/v1/calls/{id}", s.deleteCall)
	s.handle("GET /api/v1/calls/{id}/participants", s.listParticipants)
	s.handle("POST /api/v1/calls/{id}/participants", s.dialOut)
	s.handle("PUT /api/v1/calls/{id}/participants", s.controlCall)
	s.handle("PUT /api/v1/calls/{id}/participants/{which}", s.controlCall)
	s.handle("GET /api/v1/calls/{id}/callLegs", s.listCallLegsOfCall)
	s.handle("POST /api/v1/calls/{id}/callLegs", s.dialOut)
	s.handle("GET /api/v1/callLegs", s.listCallLegs)
	s.handle("GET /api/v1/callLegs/{id}", s.getCallLeg)
	s.handle("PUT /api/v1/callLegs/{id}", s.controlCallLeg)
	s.handle("DELETE /api/v1/callLegs/{id}", s.deleteCallLeg)
	s.handle("GET /api/v1/participants", s.listAllParticipants)
	s.handle("GET /api/v1/participants/{id}", s.getParticipant)
	s.handle("PUT /api/v1/participants/{id}", s.controlCallLeg)
	s.handle("DELETE /api/v1/participants/{id}", s.deleteCallLeg)
	s.handle("GET /api/v1/participants/{id}/callLegs", s.listCallLegsOfParticipant)
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
	XMLName               xml.Name `xml:"call" json:"-"`
	ID                    string   `xml:"id,attr" json:"id"`
	Name                  string   `xml:"name" json:"name"`
	CallType              string   `xml:"callType" json:"callType"`
	CoSpace               string   `xml:"coSpace" json:"coSpace"`
	OwnerName             string   `xml:"ownerName,omitempty" json:"ownerName,omitempty"`
	CallCorrelator        string   `xml:"callCorrelator" json:"callCorrelator"`
	DurationSeconds       int64    `xml:"durationSeconds" json:"durationSeconds"`
	NumCallLegs           int      `xml:"numCallLegs" json:"numCallLegs"`
	MaxCallLegs           int      `xml:"maxCallLegs" json:"maxCallLegs"`
	NumParticipantsLocal  int      `xml:"numParticipantsLocal" json:"numParticipantsLocal"`
	Locked                bool     `xml:"locked" json:"locked"`
	AllowAllMuteSelf      bool     `xml:"allowAllMuteSelf" json:"allowAllMuteSelf"`
	JoinAudioMuteOverride string   `xml:"joinAudioMuteOverride,omitempty" json:"joinAudioMuteOverride,omitempty"`
	MessageText           string   `xml:"messageText,omitempty" json:"messageText,omitempty"`
	// Confab's extensions: the space's XMPP address, and the call profile's limit in force.
	JID              string `xml:"jid,omitempty" json:"jid,omitempty"`
	ParticipantLimit string `xml:"participantLimit,omitempty" json:"participantLimit,omitempty"`
}

func (s *server) listCalls(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	calls := s.meetings.Calls()
	if q.Get("tenantFilter") != "" {
		calls = nil // Confab has no tenants
	}
	if f := q.Get("coSpaceFilter"); f != "" {
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
	return callDoc{ID: c.ID, Name: c.Name, CallType: "coSpace", CoSpace: c.CoSpaceID, OwnerName: c.OwnerJID,
		CallCorrelator: c.Correlator, DurationSeconds: seconds(s.now().Sub(c.Started)), NumCallLegs: c.Legs,
		MaxCallLegs: c.MaxLegs, NumParticipantsLocal: c.Legs, Locked: c.Settings["locked"] == "true",
		AllowAllMuteSelf: c.Settings["allowAllMuteSelf"] == "true", JoinAudioMuteOverride: c.Settings["joinAudioMuteOverride"],
		MessageText: c.Settings["messageText"], JID: c.SpaceJID, ParticipantLimit: c.Settings["participantLimit"]}, nil
}

// callFields are the call parameters of POST and PUT /calls (CMS's), each kept on the call;
// locked and joinAudioMuteOverride act (see meeting.Applied), the others are shown as set.
var callFields = []meeting.Field{
	{Name: "locked", Kind: meeting.KindBool},
	{Name: "allowAllMuteSelf", Kind: meeting.KindBool},
	{Name: "allowAllPresentationContribution", Kind: meeting.KindBool},
	{Name: "joinAudioMuteOverride", Kind: meeting.KindBool},
	{Name: "recording", Kind: meeting.KindBool},
	{Name: "streaming", Kind: meeting.KindBool},
	{Name: "activeWhenEmpty", Kind: meeting.KindBool},
	{Name: "messageText", Kind: meeting.KindString, Max: 1000},
	{Name: "messagePosition", Kind: meeting.KindEnum, Values: []string{"top", "middle", "bottom"}},
	{Name: "messageDuration", Kind: meeting.KindString, Max: 20},
}

// readChanges reads the schema's parameters present in f as changes (an empty value unsets).
func readChanges(f *Form, schema []meeting.Field) (map[string]string, error) {
	changes := map[string]string{}
	for _, fd := range schema {
		v, ok := f.value(fd.Name)
		if !ok {
			continue
		}
		if err := fd.Valid(v); err != nil {
			f.setErr(ParameterError(fd.Name, "invalidValue", err.Error()))
			continue
		}
		changes[fd.Name] = v
	}
	return changes, f.Err()
}

// createCall is POST /calls: a call for a space (coSpace), so that people can be put in it;
// the call parameters of PUT may be given too. A space that has a call already answers with
// that call's Location. Confab hosts no calls without a space: name alone is refused.
func (s *server) createCall(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var space, name string
	f.String("coSpace", &space, nil)
	f.String("name", &name, nil)
	changes, err := readChanges(f, callFields)
	if err != nil {
		return nil, err
	}
	if space == "" {
		return nil, ParameterError("coSpace", "required", "Confab hosts the calls of spaces only (no ad hoc calls by name)")
	}
	c, created, err := s.meetings.CreateCall(r.Context(), space)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Failure{Status: http.StatusBadRequest, Name: "coSpaceDoesNotExist", Reason: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	if len(changes) > 0 {
		if _, err := s.meetings.UpdateCall(c.ID, changes); err != nil {
			return nil, DoesNotExist("callDoesNotExist")
		}
	}
	s.log.Info("call created", "user", user(r), "call", c.ID, "coSpace", space, "new", created)
	w.Header().Set("Location", "/api/v1/calls/"+c.ID)
	return nil, nil
}

// updateCall is PUT /calls/{id}.
func (s *server) updateCall(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	changes, err := readChanges(f, callFields)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if _, err := s.meetings.UpdateCall(id, changes); err != nil {
		return nil, DoesNotExist("callDoesNotExist")
	}
	s.log.Info("call changed", "user", user(r), "call", id, "settings", changes)
	return nil, nil
}

// deleteCall ends a call: its participants get unavailable presence from the space, telling
// them the organiser ended the meeting.
func (s *server) deleteCall(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.meetings.EndCall(id, "ended through the API by "+user(r)); err != nil {
		return nil, DoesNotExist("callDoesNotExist")
	}
	s.log.Info("call ended", "user", user(r), "call", id)
	return nil, nil
}

// dialOut is POST /calls/{id}/participants and /calls/{id}/callLegs: calling someone into the
// call. Confab has no SIP yet, nor a way to ring a user: it answers as a CMS with no outbound
// route to the destination, unknownDestination (400), and nothing changes.
func (s *server) dialOut(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	if _, ok := s.meetings.Call(r.PathValue("id")); !ok {
		return nil, DoesNotExist("callDoesNotExist")
	}
	var remote string
	f.String("remoteParty", &remote, nil)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if remote == "" {
		return nil, ParameterError("remoteParty", "required", "no remoteParty given")
	}
	return nil, &Failure{Status: http.StatusBadRequest, Name: "unknownDestination",
		Reason: "no route to " + remote + ": Confab does not call out (no SIP yet); participants join from the web app"}
}

// participantsDoc is GET /calls/{id}/participants and /participants.
type participantsDoc struct {
	XMLName      xml.Name         `xml:"participants" json:"-"`
	Total        int              `xml:"total,attr" json:"total"`
	Participants []participantDoc `xml:"participant" json:"participant"`
}

type participantDoc struct {
	XMLName xml.Name `xml:"participant" json:"-"`
	ID      string   `xml:"id,attr" json:"id"`
	Name    string   `xml:"name" json:"name"`
	Call    string   `xml:"call" json:"call"`
	// Confab's extensions: who it is and as what.
	JID  string `xml:"jid" json:"jid"`
	Role string `xml:"role" json:"role"`
}

// participantDetailDoc is GET /participants/{id}.
type participantDetailDoc struct {
	XMLName     xml.Name `xml:"participant" json:"-"`
	ID          string   `xml:"id,attr" json:"id"`
	Name        string   `xml:"name" json:"name"`
	Call        string   `xml:"call" json:"call"`
	UserJID     string   `xml:"userJid,omitempty" json:"userJid,omitempty"`
	URI         string   `xml:"uri" json:"uri"`
	NumCallLegs int      `xml:"numCallLegs" json:"numCallLegs"`
	IsActivator bool     `xml:"isActivator" json:"isActivator"`
	Status      struct {
		State string `xml:"state" json:"state"`
	} `xml:"status" json:"status"`
	Role string `xml:"role" json:"role"` // Confab's extension
}

func participantOf(l meeting.CallLeg) participantDoc {
	return participantDoc{ID: l.ID, Name: l.Name, Call: l.CallID, JID: l.RemoteParty, Role: l.Role}
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
	legs = filterLegs(r, legs)
	doc := participantsDoc{Total: len(legs), Participants: []participantDoc{}}
	for _, l := range sliceWindow(legs, offset, limit) {
		doc.Participants = append(doc.Participants, participantOf(l))
	}
	return doc, nil
}

// listAllParticipants is GET /participants: every participant of every call (in Confab a
// participant has one call leg, with the same id).
func (s *server) listAllParticipants(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	legs := filterLegs(r, s.meetings.CallLegs())
	doc := participantsDoc{Total: len(legs), Participants: []participantDoc{}}
	for _, l := range sliceWindow(legs, offset, limit) {
		doc.Participants = append(doc.Participants, participantOf(l))
	}
	return doc, nil
}

func (s *server) getParticipant(w http.ResponseWriter, r *http.Request) (any, error) {
	l, ok := s.meetings.CallLeg(r.PathValue("id"))
	if !ok {
		return nil, DoesNotExist("participantDoesNotExist")
	}
	d := participantDetailDoc{ID: l.ID, Name: l.Name, Call: l.CallID, URI: l.RemoteParty, NumCallLegs: 1,
		IsActivator: true, Role: l.Role}
	if l.Type == "user" {
		d.UserJID = l.RemoteParty
	}
	d.Status.State = "connected"
	return d, nil
}

// filterLegs applies the CMS filters of call leg and participant lists: filter (part of the
// name or remote party, ignoring case), participantFilter (a participant's id, which is its
// call leg's), activeLayoutFilter, tenantFilter (Confab has no tenants: nothing matches).
func filterLegs(r *http.Request, legs []meeting.CallLeg) []meeting.CallLeg {
	q := r.URL.Query()
	if q.Get("tenantFilter") != "" {
		return nil
	}
	f := strings.ToLower(q.Get("filter"))
	p := q.Get("participantFilter")
	layout := q.Get("activeLayoutFilter")
	return slices.DeleteFunc(legs, func(l meeting.CallLeg) bool {
		return f != "" && !strings.Contains(strings.ToLower(l.Name), f) && !strings.Contains(l.RemoteParty, f) ||
			p != "" && l.ID != p ||
			layout != "" && l.Layout != layout
	})
}

// callLegsDoc is GET /callLegs and /calls/{id}/callLegs.
type callLegsDoc struct {
	XMLName xml.Name         `xml:"callLegs" json:"-"`
	Total   int              `xml:"total,attr" json:"total"`
	Legs    []callLegSummary `xml:"callLeg" json:"callLeg"`
}

type callLegSummary struct {
	ID                  string `xml:"id,attr" json:"id"`
	Name                string `xml:"name" json:"name"`
	RemoteParty         string `xml:"remoteParty" json:"remoteParty"`
	OriginalRemoteParty string `xml:"originalRemoteParty" json:"originalRemoteParty"`
	Call                string `xml:"call" json:"call"`
}

// callLegDoc is GET /callLegs/{id}. configuration holds the leg's mute states (always) and the
// settings set on the leg itself; status its state and layout.
type callLegDoc struct {
	XMLName             xml.Name      `xml:"callLeg" json:"-"`
	ID                  string        `xml:"id,attr" json:"id"`
	Name                string        `xml:"name" json:"name"`
	RemoteParty         string        `xml:"remoteParty" json:"remoteParty"`
	OriginalRemoteParty string        `xml:"originalRemoteParty" json:"originalRemoteParty"`
	LocalAddress        string        `xml:"localAddress,omitempty" json:"localAddress,omitempty"`
	Call                string        `xml:"call" json:"call"`
	CoSpace             string        `xml:"coSpace" json:"coSpace"`
	Type                string        `xml:"type" json:"type"`
	Direction           string        `xml:"direction" json:"direction"`
	CanMove             bool          `xml:"canMove" json:"canMove"`
	Configuration       objectDoc     `xml:"configuration" json:"configuration"`
	Status              callLegStatus `xml:"status" json:"status"`
	// Confab's extensions: guest or user, its role, and the access method it came in by;
	// its media ladder, when it has asked for media.
	Kind         string     `xml:"kind" json:"kind"`
	Role         string     `xml:"role" json:"role"`
	AccessMethod string     `xml:"accessMethod,omitempty" json:"accessMethod,omitempty"`
	MediaLadder  *ladderDoc `xml:"mediaLadder,omitempty" json:"mediaLadder,omitempty"`
}

// ladderDoc is a call leg's media ladder (Confab's): its state, the path media takes,
// and each step with its time, and its cause and remedy when it failed.
type ladderDoc struct {
	State string        `xml:"state,attr" json:"state"`
	Path  string        `xml:"path,attr,omitempty" json:"path,omitempty"`
	Cause string        `xml:"cause,attr,omitempty" json:"cause,omitempty"`
	Text  string        `xml:"text,omitempty" json:"text,omitempty"`
	Steps []ladderStepD `xml:"step" json:"step"`
}

type ladderStepD struct {
	Name        string `xml:"name,attr" json:"name"`
	State       string `xml:"state,attr" json:"state"`
	Time        string `xml:"time,attr,omitempty" json:"time,omitempty"`
	SinceMillis int64  `xml:"sinceMillis,attr,omitempty" json:"sinceMillis,omitempty"`
	Title       string `xml:"title" json:"title"`
	Detail      string `xml:"detail,omitempty" json:"detail,omitempty"`
	Cause       string `xml:"cause,omitempty" json:"cause,omitempty"`
	Remedy      string `xml:"remedy,omitempty" json:"remedy,omitempty"`
}

func ladderOf(l ladder.Ladder) *ladderDoc {
	d := &ladderDoc{State: l.State, Path: l.Path, Cause: l.Cause, Text: l.Text, Steps: []ladderStepD{}}
	for _, s := range l.Steps {
		st := ladderStepD{Name: s.Name, State: s.State, Title: s.Title, Detail: s.Detail, Cause: s.Cause, Remedy: s.Remedy,
			SinceMillis: s.Since.Milliseconds()}
		if !s.At.IsZero() {
			st.Time = s.At.UTC().Format(time.RFC3339Nano)
		}
		d.Steps = append(d.Steps, st)
	}
	return d
}

type callLegStatus struct {
	State           string `xml:"state" json:"state"`
	DurationSeconds int64  `xml:"durationSeconds" json:"durationSeconds"`
	Direction       string `xml:"direction" json:"direction"`
	Layout          string `xml:"layout" json:"layout"`
	ActiveLayout    string `xml:"activeLayout" json:"activeLayout"`
	// The media, as CMS shows it: rx is what the Call Bridge receives from the participant,
	// tx what it sends. Absent while the leg has no media. RxScreen is Confab's: a screen
	// share, the participant's second video.
	RxAudio  *mediaStatus `xml:"rxAudio,omitempty" json:"rxAudio,omitempty"`
	TxAudio  *mediaStatus `xml:"txAudio,omitempty" json:"txAudio,omitempty"`
	RxVideo  *mediaStatus `xml:"rxVideo,omitempty" json:"rxVideo,omitempty"`
	TxVideo  *mediaStatus `xml:"txVideo,omitempty" json:"txVideo,omitempty"`
	RxScreen *mediaStatus `xml:"rxScreen,omitempty" json:"rxScreen,omitempty"`
}

// mediaStatus is one direction of one kind of a call leg's media.
type mediaStatus struct {
	Codec                string  `xml:"codec" json:"codec"`
	BitRate              int     `xml:"bitRate" json:"bitRate"`
	PacketLossPercentage float64 `xml:"packetLossPercentage" json:"packetLossPercentage"`
	Jitter               int64   `xml:"jitter" json:"jitter"` // milliseconds
	Width                int     `xml:"width,omitempty" json:"width,omitempty"`
	Height               int     `xml:"height,omitempty" json:"height,omitempty"`
	// Confab's: packets so far, and the simulcast layer sent (tx video).
	Packets uint64 `xml:"packets" json:"packets"`
	Layer   string `xml:"layer,omitempty" json:"layer,omitempty"`
}

// mediaStatusOf is nil when nothing of that kind flows (no codec negotiated).
func mediaStatusOf(m sfu.MediaStats) *mediaStatus {
	if m.Codec == "" {
		return nil
	}
	codec := strings.ToLower(m.Codec)
	if _, sub, ok := strings.Cut(codec, "/"); ok {
		codec = sub // "audio/opus" is CMS's "opus"
	}
	return &mediaStatus{Codec: codec, BitRate: m.BitRate, PacketLossPercentage: math.Round(m.LossFraction*1000) / 10,
		Jitter: m.Jitter.Milliseconds(), Width: m.Width, Height: m.Height, Packets: m.Packets, Layer: m.Layer}
}

func legSummary(l meeting.CallLeg) callLegSummary {
	return callLegSummary{ID: l.ID, Name: l.Name, RemoteParty: l.RemoteParty, OriginalRemoteParty: l.RemoteParty, Call: l.CallID}
}

func (s *server) legsDoc(r *http.Request, legs []meeting.CallLeg) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	legs = filterLegs(r, legs)
	doc := callLegsDoc{Total: len(legs), Legs: []callLegSummary{}}
	for _, l := range sliceWindow(legs, offset, limit) {
		doc.Legs = append(doc.Legs, legSummary(l))
	}
	return doc, nil
}

// listCallLegs is GET /callLegs, every leg by call then joining.
func (s *server) listCallLegs(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.legsDoc(r, s.meetings.CallLegs())
}

// listCallLegsOfCall is GET /calls/{id}/callLegs.
func (s *server) listCallLegsOfCall(w http.ResponseWriter, r *http.Request) (any, error) {
	legs, ok := s.meetings.Participants(r.PathValue("id"))
	if !ok {
		return nil, DoesNotExist("callDoesNotExist")
	}
	return s.legsDoc(r, legs)
}

// listCallLegsOfParticipant is GET /participants/{id}/callLegs: its one leg.
func (s *server) listCallLegsOfParticipant(w http.ResponseWriter, r *http.Request) (any, error) {
	l, ok := s.meetings.CallLeg(r.PathValue("id"))
	if !ok {
		return nil, DoesNotExist("participantDoesNotExist")
	}
	return s.legsDoc(r, []meeting.CallLeg{l})
}

// muteFields are always shown in a leg's configuration.
var muteFields = []string{"rxAudioMute", "txAudioMute", "rxVideoMute", "txVideoMute"}

func (s *server) getCallLeg(w http.ResponseWriter, r *http.Request) (any, error) {
	l, ok := s.meetings.CallLeg(r.PathValue("id"))
	if !ok {
		return nil, DoesNotExist("callLegDoesNotExist")
	}
	shown := map[string]string{}
	for k, v := range l.Overrides {
		shown[k] = v
	}
	for _, m := range muteFields {
		shown[m] = l.Settings[m]
	}
	jid, _ := s.meetings.SpaceJID(r.Context(), l.CoSpaceID)
	d := callLegDoc{ID: l.ID, Name: l.Name, RemoteParty: l.RemoteParty, OriginalRemoteParty: l.RemoteParty,
		LocalAddress: jid, Call: l.CallID, CoSpace: l.CoSpaceID, Type: "acano", Direction: "incoming",
		Configuration: docOf("configuration", "", meeting.CallLegFields, shown),
		Status: callLegStatus{State: "connected", DurationSeconds: seconds(s.now().Sub(l.Joined)), Direction: "incoming",
			Layout: l.Layout, ActiveLayout: l.Layout},
		Kind: l.Type, Role: l.Role, AccessMethod: l.AccessMethod}
	if s.media != nil {
		if st, ok := s.media.Stats(l.CallID, l.ID); ok {
			d.Status.RxAudio, d.Status.TxAudio = mediaStatusOf(st.RxAudio), mediaStatusOf(st.TxAudio)
			d.Status.RxVideo, d.Status.TxVideo = mediaStatusOf(st.RxVideo), mediaStatusOf(st.TxVideo)
			d.Status.RxScreen = mediaStatusOf(st.RxScreen)
		}
	}
	if s.ladder != nil {
		if lad, ok := s.ladder(l.ID); ok {
			d.MediaLadder = ladderOf(lad)
		}
	}
	return d, nil
}

// controlCallLeg is PUT /callLegs/{id} (and /participants/{id}): the leg's settings, CMS's
// call leg parameters (meeting.CallLegFields); the participants see mute and layout changes at
// once. An empty value unsets the leg's own value.
func (s *server) controlCallLeg(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	changes, err := readChanges(f, meeting.CallLegFields)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	notFound := "callLegDoesNotExist"
	if strings.Contains(r.URL.Path, "/participants/") {
		notFound = "participantDoesNotExist"
	}
	if _, err := s.meetings.ControlCallLeg(id, changes); err != nil {
		return nil, DoesNotExist(notFound)
	}
	s.log.Info("call leg changed", "user", user(r), "callLeg", id, "settings", changes)
	return nil, nil
}

// participantsFields are the parameters of PUT /calls/{id}/participants/* (CMS's).
var participantsFields = []meeting.Field{
	{Name: "rxAudioMute", Kind: meeting.KindBool},
	{Name: "txAudioMute", Kind: meeting.KindBool},
	{Name: "rxVideoMute", Kind: meeting.KindBool},
	{Name: "txVideoMute", Kind: meeting.KindBool},
	{Name: "layout", Kind: meeting.KindEnum, Values: meeting.Layouts},
	{Name: "importance", Kind: meeting.KindInt, Max: 1<<31 - 1},
}

// controlCall is PUT /calls/{id}/participants/* (also without the *, as a trailing slash):
// the parameters apply to every participant, or with filterIds (up to 20 ids, comma
// separated) to those (mode=selected) or all but those (mode=exclude, the default).
// /calls/{id}/participants/{participantId} applies them to one participant of the call.
func (s *server) controlCall(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	changes, err := readChanges(f, participantsFields)
	if err != nil {
		return nil, err
	}
	var filter, mode string
	f.String("filterIds", &filter, nil)
	f.String("mode", &mode, func(v string) error {
		if v != "exclude" && v != "selected" {
			return errors.New("want exclude or selected")
		}
		return nil
	})
	if err := f.Err(); err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range strings.Split(filter, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) > 20 {
		return nil, ParameterError("filterIds", "invalidValue", "more than 20 ids")
	}
	selected := mode == "selected"
	if which := r.PathValue("which"); which != "" && which != "*" {
		ids, selected = []string{which}, true
		if l, ok := s.meetings.CallLeg(which); !ok || l.CallID != r.PathValue("id") {
			return nil, DoesNotExist("participantDoesNotExist")
		}
	}
	if selected && len(ids) == 0 {
		return nil, ParameterError("filterIds", "required", "mode=selected without filterIds")
	}
	delete(changes, "importance") // Confab has no pane placement: accepted, not kept
	n, err := s.meetings.ControlCall(r.PathValue("id"), changes, ids, selected)
	if err != nil {
		return nil, DoesNotExist("callDoesNotExist")
	}
	s.log.Info("call participants changed", "user", user(r), "call", r.PathValue("id"), "participants", n, "settings", changes)
	return nil, nil
}

// deleteCallLeg takes a participant out of its call; it is told it was removed.
func (s *server) deleteCallLeg(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.meetings.RemoveCallLeg(id, "removed through the API by "+user(r)); err != nil {
		if strings.Contains(r.URL.Path, "/participants/") {
			return nil, DoesNotExist("participantDoesNotExist")
		}
		return nil, DoesNotExist("callLegDoesNotExist")
	}
	s.log.Info("call leg removed", "user", user(r), "callLeg", id)
	return nil, nil
}
