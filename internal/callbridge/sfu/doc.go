// Package sfu is Confab's media server core: a selective forwarding unit on pion/webrtc v4.
// It forwards, never mixes. A room (a meeting, keyed by a string) has participants (keyed
// by a string: the Call Bridge uses call-leg ids); each participant has one PeerConnection
// (BUNDLE, rtcp-mux) over which it publishes its tracks and receives everyone else's.
// The package knows no signalling protocol: the caller carries descriptions, candidates and
// events between a Participant and its client (XMPP for the Call Bridge; in-process for
// the tests and sfutest).
//
// # Shape
//
// New(Config) listens on one UDP port (every participant's media, ICE UDP mux) and one
// TCP port (ICE-TCP mux); the zero Config is valid. Join(room, participant, Signal)
// returns a *Participant; the Signal (implemented by the caller) delivers the server's
// descriptions and events to the client. The client's messages go to
// Participant.HandleDescription and Participant.AddCandidate; Leave removes it;
// SFU.Shutdown(ctx) removes everyone and waits for every goroutine. SFU.SetMute is the
// administrator's mute of what a participant sends, Participant.SetSelfMute the client's;
// SFU.SetDeliveryMute stops a kind reaching one participant (what it receives). Subscribers steer simulcast
// with SetMaxResolution, SetPreferredLayer and SetMaxBitrate. SFU.Stats,
// SFU.ParticipantStats and Participant.Stats give the counters and call-leg statistics;
// Participant.Transport (SFU.ParticipantTransport) the connection's record for the media
// ladder — offer and answer, the client's candidates, the checks that arrived, the selected
// pair, ICE and DTLS states with their times, the first media each way — kept after the
// participant left (Closed says when it is final). Config.Metrics registers confab_sfu_*
// with Prometheus. Errors wrap the sentinels in errors.go.
//
// # Negotiation (what a client implements)
//
//  1. The client makes the first offer, with at least one audio or video m-section of a
//     codec the SFU forwards (a client that only receives offers recvonly transceivers),
//     and sends it to HandleDescription. The answer comes through Signal.Description.
//  2. The SFU is ICE-lite and does not trickle: each of its descriptions carries all its
//     candidates (host candidates of the UDP and TCP ports, with Config.PublicIPs in
//     place of the interface's address). The client trickles its own through
//     AddCandidate, or puts them in its SDP; candidates that arrive before the first offer
//     are held (up to 64). The client is the controlling ICE agent; the SFU answers the
//     first offer as the DTLS client (setup:active).
//  3. After answering the first offer, the SFU offers whenever what the client receives
//     changes (another participant publishes or stops a track, joins or leaves) and when
//     RestartICE is called (an ICE restart). Each track the client receives gets a new
//     sendonly m-section with msid "<StreamID> <ID>" of its TrackInfo, offering only the
//     publisher's codec and its RTX; an ended track's m-section is made inactive (not
//     reused: the SDP grows with the churn of tracks). The EventTrackPublished that names
//     the track is delivered before the offer that carries it.
//  4. The client may offer at any time after the first answer: to add a track (a screen
//     share: a second video track whose MediaStream id begins with "screen"), to remove
//     one, or to restart ICE (new ufrag and pwd).
//  5. Glare is resolved as in "perfect negotiation", the server impolite and the client
//     polite. An offer of the client that arrives while a server offer is outstanding is
//     ignored: HandleDescription returns ErrGlare. A client that receives a server offer
//     while its own is outstanding rolls its own back (setLocalDescription rollback),
//     answers the server's, and then offers again. Descriptions and events reach a client
//     in the order the SFU produced them (one goroutine per participant calls Signal).
//  6. Simulcast is rid-based (a=rid send, a=simulcast, with the mid and rid header
//     extensions, as Chrome sends q/h/f; any rids work). A subscriber receives one layer
//     of it as a plain m-section; the SFU switches layers on key frames and rewrites SSRC,
//     sequence numbers and timestamps so the subscriber sees one continuous stream.
//  7. Mute: the client reports its own mute through the signalling (SetSelfMute); the
//     SFU stops forwarding that kind and tells the room (EventMute with SelfMuted and
//     AdminMuted). While either is set nothing of that kind is forwarded.
//
// The SFU offers: Opus (minptime=10;useinbandfec=1;usedtx=1, so in-band FEC and DTX
// stay on), VP8, VP9 (profile-id=0), H.264 (packetization-mode=1, profiles 42001f,
// 42e01f, 4d001f), each video codec with RTX; the header extensions ssrc-audio-level
// (RFC 6464), sdes:mid, sdes:rtp-stream-id, sdes:repaired-rtp-stream-id and
// transport-wide-cc; the feedback nack, nack pli, ccm fir, transport-cc (and goog-remb,
// which the SFU does not use).
//
// # Media
//
// Each incoming stream (each simulcast layer) is read by a goroutine into a pooled buffer
// and forwarded synchronously to every subscriber through downTrack, the SFU's own
// webrtc.TrackLocal: the per-packet path (the flood budget, parsing, statistics, key
// frame and audio level detection, the rewrite and the write to pion) allocates nothing
// (TestForwardAllocatesNothing, BenchmarkForward). pion's interceptors do the rest per
// PeerConnection: NACK generation towards publishers and NACK answers with RTX towards
// subscribers, from the last 256 packets of each stream and within a budget per subscriber
// (nackbudget.go: retransmissions up to a fifth of what it was sent, so that a subscriber
// that falls behind cannot crowd out everyone's media with its NACKs); RTCP sender and receiver reports; transport-wide congestion control
// feedback for what the client sends; and for what it receives the transport-cc header
// extension with a send-side bandwidth estimator (pion's GCC, interceptor/pkg/gcc, with
// no pacer), whose estimate (capped by SetMaxBitrate) chooses the simulcast layers:
// screen shares first, then cameras, each the best layer that fits the size its
// subscriber renders, its preference and the bandwidth left (by the layers' bit rates
// smoothed over about a second, so that a key frame's burst does not count). The choice
// has hysteresis (layers.go): a layer that no longer fits is left at once, but a higher
// one is taken for bandwidth only after it has fitted with 15 % to spare for 3 s, a hold
// that each failed attempt doubles (up to 48 s). A changed choice asks the publisher for
// a key frame (PLI, at most one per Config.KeyframeMinGap per layer), every tick until the
// switch; a subscriber's PLI or FIR is passed on the same way. The RFC 6464 audio levels give the
// active speaker: the loudest (smoothed over 200 ms ticks) for Config.SpeakerHold.
//
// # Goroutines
//
// Every goroutine the package starts is owned and waited for:
//
//   - one housekeeping goroutine per SFU (bit rates, active speakers, layer choice, every
//     200 ms), ended and waited for by Shutdown;
//   - pion's UDP mux reader and TCP mux acceptor, closed by Shutdown after the
//     participants;
//   - per participant, run: it calls the Signal, in order, and makes the server's offers.
//     It ends when the participant closes, and close waits for it (Participant.wg);
//   - per incoming stream, a reader of its RTP and one of its RTCP (Participant.wg); they
//     end when pion ends the track (the client removed it, or the PeerConnection closed);
//   - per track a participant receives, an RTCP reader of its sender (Participant.wg);
//     it ends when the sender stops (the track was removed) or the connection closes;
//   - per participant, the connect timer (time.AfterFunc), stopped by close; its
//     callback, like a failed connection or an overflowing signal queue, starts close on
//     a goroutine counted in SFU.wg (not once Shutdown has begun: Shutdown closes
//     everyone itself);
//   - pion's own goroutines of each PeerConnection, ended by GracefulClose in close,
//     which waits for them before it waits for Participant.wg.
//
// Leave returns when all of the participant's goroutines have ended; it must not be called
// from a Signal method (it waits for the goroutine that calls them).
//
// # Lock order
//
// Participant.negMu (negotiation; held while calling pion's negotiation methods) and
// Participant.layerMu (layer choice) come first. Then SFU.mu (rooms) → room.mu
// (participants) → Participant.mu (tracks, subscriptions, mute). publishedTrack.mu,
// downTrack.prefMu, layer.rxMu, limiter.mu and SFU.wgMu are leaves. downTrack.mu is a
// leaf held across the write to pion (so the rewrite's scratch header stays valid).
// Participant.statsMu is a leaf held (for reading) across pion's GetStats and (for
// writing) only to mark the PeerConnection closed, so that pion never clears its stats
// getter under a GetStats; pion itself does not close a PeerConnection when DTLS closes
// (SettingEngine.DisableCloseByDTLS): the participant does, leaving with
// ErrConnectionClosed.
// No lock is held while calling the Signal; pion callbacks take Participant.mu and
// room.mu, never negMu; a subscriber's Bind (inside pion, under its negMu) touches only
// atomics and the publisher's PeerConnection.
package sfu
