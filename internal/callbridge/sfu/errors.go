package sfu

import "errors"

// Sentinel errors. Every error the package returns wraps one of them (or a context error);
// callers branch with errors.Is, never on the text.
var (
	// ErrClosed: the SFU has been shut down.
	ErrClosed = errors.New("sfu: closed")
	// ErrParticipantGone: the participant has left (Leave, the connect timeout, a failed
	// connection, a signal queue that overflowed, or Shutdown).
	ErrParticipantGone = errors.New("sfu: participant has left")
	// ErrUnknownParticipant: no participant with that id is in that room.
	ErrUnknownParticipant = errors.New("sfu: unknown participant")
	// ErrDuplicateParticipant: Join with an id already in the room.
	ErrDuplicateParticipant = errors.New("sfu: participant already in the room")
	// ErrUnknownTrack: no track with that id is subscribed (or published) by the participant.
	ErrUnknownTrack = errors.New("sfu: unknown track")
	// ErrSDPTooLarge: a description longer than Config.MaxSDPSize.
	ErrSDPTooLarge = errors.New("sfu: session description too large")
	// ErrBadSDP: a description that does not parse, has a type other than offer or
	// answer, or that pion rejects.
	ErrBadSDP = errors.New("sfu: bad session description")
	// ErrNoCommonCodec: an offer none of whose audio or video sections has a codec the SFU
	// forwards (Opus; VP8, VP9, H.264).
	ErrNoCommonCodec = errors.New("sfu: no common codec")
	// ErrGlare: the client's offer crossed an offer of the server's, which is outstanding.
	// The server is the impolite peer: it ignores the client's offer; the client (polite)
	// rolls back, answers the server's offer, and offers again afterwards.
	ErrGlare = errors.New("sfu: offer ignored, a server offer is outstanding (glare)")
	// ErrBadState: a description that does not fit the negotiation's state, such as an
	// answer when the server has no offer outstanding.
	ErrBadState = errors.New("sfu: description does not fit the negotiation state")
	// ErrBadCandidate: an ICE candidate pion cannot parse or add.
	ErrBadCandidate = errors.New("sfu: bad ICE candidate")
	// ErrConnectTimeout is the reason a participant is removed when ICE and DTLS did not
	// complete within Config.ConnectTimeout.
	ErrConnectTimeout = errors.New("sfu: connection not established in time")
	// ErrConnectionFailed is the reason a participant is removed when its connection failed.
	ErrConnectionFailed = errors.New("sfu: connection failed")
	// ErrConnectionClosed is the reason a participant is removed when the client closed its
	// DTLS connection (a close_notify): it has ended its media.
	ErrConnectionClosed = errors.New("sfu: connection closed by the client")
	// ErrSignalOverflow is the reason a participant is removed when its Signal did not keep
	// up and its queue of outgoing messages filled.
	ErrSignalOverflow = errors.New("sfu: signal queue overflow")
	// ErrBadArgument: an invalid argument (empty id, unknown kind, negative size).
	ErrBadArgument = errors.New("sfu: invalid argument")
)
