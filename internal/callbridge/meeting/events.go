package meeting

import "time"

// EventType names what an Event reports, as CMS's Call Detail Records name it.
type EventType string

// The events of calls and call legs.
const (
	CallStart     EventType = "callStart"
	CallEnd       EventType = "callEnd"
	CallLegStart  EventType = "callLegStart"
	CallLegUpdate EventType = "callLegUpdate"
	CallLegEnd    EventType = "callLegEnd"
)

// Event is something that happened to a call or a call leg, with what CMS's Call Detail
// Record of that type carries. Fields that do not belong to the type are zero.
type Event struct {
	Type EventType
	Time time.Time

	CallID         string
	CallCorrelator string

	// callStart
	CallName  string
	CoSpaceID string
	OwnerName string // the space's owner's JID
	CDRTag    string

	// callEnd
	CallLegsCompleted int
	CallLegsMaxActive int
	CallDuration      time.Duration

	// callLegStart, callLegUpdate, callLegEnd
	LegID        string
	DisplayName  string
	RemoteParty  string // the participant's bare JID
	LocalAddress string // what it joined: the space's address
	Guest        bool
	// callLegUpdate: the leg's state ("connected") and its media settings as they now are.
	State                                              string
	RxAudioMute, TxAudioMute, RxVideoMute, TxVideoMute bool
	Layout                                             string
	// callLegEnd
	Reason         string // CMS's reason code: remoteTeardown, localTeardown, timeout
	RemoteTeardown bool
	LegDuration    time.Duration
}

// EventSink receives the events of a Service, one at a time and in the order they happened,
// never while the Service holds its lock. Record must not block for long: it delays the
// stanzas queued behind the event (the CDR service queues them in memory).
type EventSink interface {
	Record(Event)
}
