// Package callbridge is Confab's Call Bridge, as a library: it keeps the link to an XMPP
// server (package link: steps 2 to 11 of the signalling flow), answers what arrives over it
// — every client login of the XMPP server (package loginrelay's Responder, checking users of
// package users) and the meetings browsers take part in (package meeting) — and serves the
// REST API (package adminapi), the web admin (package webadmin) and the browser app
// (package webapp) over the users, spaces and settings in its store.
//
// # Shape
//
// A Bridge is built by New from a Config (only Store is required) and runs in the manner of
// xmppd.Server: Run keeps the link up until its context ends or Shutdown is called (it then
// returns ErrBridgeClosed); APIHandler and WebHandler are http.Handlers the caller serves
// on its own listeners (package launch binds them: 8445 for the API and web admin, 8443 for
// the browser app). The caller opens the store and closes it after Shutdown. New puts an
// event log (package eventlog) in front of Config.Logger, for the web admin to show the
// last records; the caller logs through Bridge.Logger what it runs beside the Bridge, so
// that those records are in the event log too.
//
// The parts a Bridge holds, each in its own package under internal/callbridge:
//
//   - link: the link to the XMPP server, its trace, alarms and backoff; and SettingsWriter,
//     the one writer of the XMPP settings that the REST API and the web admin both call;
//   - accounts: the one check of API accounts (REST API, web admin, /metrics): one
//     throttle, one dummy hash, a bound on concurrent Argon2 checks; and Add, which hashes
//     a new account's password (`confab up`'s first admin);
//   - users: local and LDAP users, the login Directory;
//   - meeting: spaces, guests, calls and call legs, the meeting protocol;
//   - sfu and media: the media server (an SFU on pion/webrtc, all media on one UDP and one
//     TCP port, configured by MediaConfig) and its signalling over the participants' XMPP
//     sessions; a call leg's media ends with the leg (meeting.Service.ObserveLegs);
//   - cdr: the Call Detail Records of the meetings (their EventSink), queued in the store and
//     posted to the receivers configured through the REST API;
//   - TURN (turn.go): the ICE servers each participant is given, from /api/v1/turnServers
//     with credentials issued for its call leg (ICEServers); the embedded TURN server
//     (package turnd, started by package launch and attached with AttachTURN), whose
//     allocations the REST API and the web admin show; the web app's connection tests,
//     run by the media service.
//
// # Dispatch
//
// Elements from the XMPP server are routed by the namespace of their payload
// (stream.Element.Payload, the parsed first child), never by searching their bytes: the
// login relay's requests to the login workers, its session-end notices to the login
// responder, the media signalling to the media service, everything else to the meeting
// service, which answers what it does not know with a stanza error. The link answers
// XEP-0199 pings itself.
//
// # Goroutines
//
// Every goroutine is owned and waited for:
//
//   - the caller's goroutine runs Run, which runs the link (link.Link.Run owns the link's
//     connect/backoff loop and, while a link is up, its reader, dispatcher and pinger) and
//     two goroutines, waited for by Run: one that ends every call when the link goes down
//     (resetOnLinkLoss), and the CDR service's Run (its writer and one sender per receiver,
//     which it waits for);
//   - up to Config.LoginWorkers login workers, started by the dispatcher as logins arrive
//     and kept until Shutdown (a login exchange is slow: Argon2id, an LDAP bind), counted in
//     Bridge.wg; the dispatcher hands them work over an unbuffered channel and waits when all
//     are busy, which is the back-pressure on the XMPP server's relay;
//   - users.Service's LDAP sync goroutine, stopped by Shutdown;
//   - the SFU's and the media service's goroutines (see their packages), stopped by
//     Shutdown: the media service first (every leg's media ends), then the SFU.
//
// Meeting stanzas are handled on the link's dispatcher goroutine, in order; the meeting
// service queues its answers and writes them after releasing its lock (see package meeting).
//
// Shutdown ends the calls in progress (their end records are queued), cancels the Bridge's
// context, which ends Run (the CDR service stores what it holds before it returns) and the
// login workers, waits for Bridge.wg, then closes the users service.
//
// # Lock order
//
// Bridge.mu guards the login pool's size, the current login responder and the run state; it
// is a leaf, held only for short, non-blocking work. The SettingsWriter's lock is held from
// reading the stored settings to applying them to the link and may take the store's and the
// link's own locks under it, never the other way round. The meeting service's, the link's,
// the account checker's and the users service's locks are their own and are never held while
// calling back into the Bridge.
//
// # What comes next
//
// Several Call Bridges will share one store (PostgreSQL); each meeting is hosted by one
// Call Bridge, where its media is.
package callbridge
