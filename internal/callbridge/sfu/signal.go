package sfu

import "time"

// SDPType is the type of a session description.
type SDPType string

// The description types the SFU sends and accepts.
const (
	Offer  SDPType = "offer"
	Answer SDPType = "answer"
)

// Description is a session description (JSEP): the server's offers and answers through
// Signal.Description, the client's through Participant.HandleDescription.
type Description struct {
	Type SDPType
	SDP  string
}

// Candidate is a trickled ICE candidate of the client (RTCIceCandidateInit). An empty
// Candidate is the end of candidates and is ignored.
type Candidate struct {
	Candidate     string
	SDPMid        string
	SDPMLineIndex uint16
}

// Signal carries the server's messages to one client; the caller implements it over its
// signalling channel (XMPP for the Call Bridge). Its methods are called from one goroutine
// per participant, one at a time, in the order the messages were produced: an answer
// always reaches the client before the next server offer, and a TrackPublished event
// before the offer that carries the track. A method should return quickly; it must not
// call Leave (which waits for that goroutine). While it blocks, further messages queue
// (up to 1024); a participant whose queue overflows is removed (ErrSignalOverflow).
type Signal interface {
	// Description delivers a server offer (renegotiation, ICE restart) or the answer to
	// the client's offer. The server is ICE-lite and does not trickle: every description
	// carries all of its candidates.
	Description(Description)
	// Event delivers a room or participant event.
	Event(Event)
}

// Kind is a track's media kind.
type Kind string

// The media kinds.
const (
	Audio Kind = "audio"
	Video Kind = "video"
)

func (k Kind) index() int {
	if k == Video {
		return 1
	}
	return 0
}

// Source says what a track carries, so that a UI can tell camera from screen.
type Source string

// The track sources. A video track whose client stream id (the msid stream id in the
// client's offer, MediaStream.id in a browser) begins with "screen" is SourceScreen; other
// video is SourceCamera and audio is SourceMicrophone.
const (
	SourceMicrophone Source = "microphone"
	SourceCamera     Source = "camera"
	SourceScreen     Source = "screen"
)

// TrackInfo describes a published track.
type TrackInfo struct {
	// ID is the server's id of the track: the msid track id of the m-section that carries
	// it in every subscriber's SDP. Subscription calls (SetMaxResolution, ...) name it.
	ID string
	// StreamID is the msid stream id in the subscribers' SDP: one per publisher and client
	// stream, so a publisher's camera and microphone stay in one stream (lip sync).
	StreamID string
	// Participant is the publisher.
	Participant string
	Kind        Kind
	Source      Source
	// ClientStreamID and ClientTrackID are the msid the publisher's offer gave.
	ClientStreamID, ClientTrackID string
	// Codec is the MIME type, such as "video/VP8".
	Codec string
	// RIDs are the simulcast layers seen so far (empty without simulcast).
	RIDs []string
}

// EventType says what an Event reports.
type EventType int

// The event types.
const (
	// EventParticipantJoined: Participant joined the room. A new participant gets one for
	// each participant already there.
	EventParticipantJoined EventType = iota + 1
	// EventParticipantLeft: Participant left; Reason says why.
	EventParticipantLeft
	// EventTrackPublished: Track was published. It is delivered before the server offer
	// that adds the track to a subscriber's connection.
	EventTrackPublished
	// EventTrackUnpublished: Track ended (the publisher stopped it or left).
	EventTrackUnpublished
	// EventMute: Participant's Kind mute state changed (SelfMuted, AdminMuted). A muted
	// kind is not forwarded while either is set.
	EventMute
	// EventActiveSpeaker: Participant is the active speaker now.
	EventActiveSpeaker
	// EventLayerChanged: the recipient now receives Layer (a rid) of Track.
	EventLayerChanged
	// EventConnectionState: the recipient's own connection changed to State
	// ("connected", "disconnected", "failed", ...).
	EventConnectionState
)

var eventNames = [...]string{"", "participant-joined", "participant-left", "track-published",
	"track-unpublished", "mute", "active-speaker", "layer-changed", "connection-state"}

func (t EventType) String() string {
	if int(t) < len(eventNames) && t > 0 {
		return eventNames[t]
	}
	return "unknown"
}

// Event is a room or participant event, delivered through Signal.Event.
type Event struct {
	Type        EventType
	Room        string
	Participant string
	Track       TrackInfo
	Kind        Kind
	SelfMuted   bool
	AdminMuted  bool
	Layer       string
	State       string
	Reason      string
	Time        time.Time
}
