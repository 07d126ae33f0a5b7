// Package turnd is Confab's TURN server [RFC 8656, RFC 5766] on pion/turn v5 (the TURN
// module pion/webrtc already brings, so the binary carries one TURN implementation): relays
// for browsers whose media cannot cross a NAT or firewall, over UDP (3478), TCP (3478) and
// TLS (5349, or 443).
//
// # Credentials
//
// Clients authenticate with long-term credentials [RFC 8489 §9.2] of two kinds. Time-limited
// credentials are derived from a shared secret in the scheme coturn implements with
// use-auth-secret and static-auth-secret (the "TURN REST API"): the username is
// "<expiry unix time>:<user id>", the password base64(HMAC-SHA1(secret, username)).
// IssueCredentials makes them — the Call Bridge hands a pair to each participant as it
// joins — and the same pair is accepted by coturn configured with the same secret and
// realm. Static users (Config.Users) are for tests and small sites. A server embedded
// beside a Call Bridge may keep a generated secret in a file (EnsureSecret); the Call Bridge
// reads it back with Server.SharedSecret.
//
// # Refusals
//
// Every refusal gets the STUN error RFC 8656 gives it, is counted in
// confab_turn_refused_total by Cause and logged at most once per cause per
// Config.LogInterval, and the server goes on serving: 401 for missing, unknown, expired or
// forged credentials; 403 for a peer that is not allowed (loopback, link-local,
// unspecified, multicast and Config.DenyPeers unless in Config.AllowPeers — pion answers a
// denied ChannelBind with 401, not 403); a datagram to a port other than the one an exact
// peer address (Config.AllowPeerAddrs) allows is dropped and counted as peer_port; 486 past a user's quota; 508 past the server's
// quota or without a free relay port (and for TCP allocations, RFC 6062, which are not
// offered: WebRTC relays over UDP); 400 for a malformed request or one over
// Config.MaxMessageSize. pion decides some refusals itself (a malformed attribute, a stale
// nonce); they are counted from the error responses on their way out.
//
// # Shape
//
// A Server is built by New from a Config and serves sockets the caller owns, in the manner
// of net/http: ServeUDP, ServeTCP and ServeTLS block until Shutdown and then return
// ErrServerClosed. Allocations lists the current allocations, Credentials issues
// credentials from the server's secret.
//
// Inside, each UDP socket and each TCP or TLS connection is a front: one pion server, with
// its own read loop and allocation manager, whose handlers are the front's methods. The
// read loop reads through a wrapper (datagramConn, streamConn) that refuses oversized and
// malformed messages before pion sees them, frames TCP and TLS streams, and observes the
// error responses written. Relay sockets are opened by the front (a
// turn.RelayAddressGenerator) within the port range and the quotas, and wrapped
// (relayConn) to count bytes each way and drop what exceeds the bandwidth cap; a relay
// socket's close is its allocation's end.
//
// A front has its own allocation manager, so an allocation over TCP or TLS ends with its
// connection (RFC 8656 §3.1), and a port reserved with EVEN-PORT can be claimed with its
// RESERVATION-TOKEN only on the same UDP socket or TCP connection (WebRTC uses neither).
//
// # Goroutines
//
//   - the caller's goroutine in each Serve method: ServeUDP waits for Shutdown; ServeTCP and
//     ServeTLS run the accept loop;
//   - per TLS connection, a handshake goroutine (bounded by TLSTimeout), which starts the
//     connection's front and ends; counted in Server.wg;
//   - per front, pion's read loop, which handles requests one after another; counted in
//     Server.wg from the front's start until the loop's last read fails (front.end);
//   - per allocation, pion's relay goroutine, reading the relay socket, and pion's timers
//     (allocation lifetime, permissions, channels); the relay socket is counted in
//     Server.wg until it is closed, which ends that goroutine.
//
// Shutdown closes the listeners, the fronts' sockets and connections (and those still in a
// TLS handshake); each read loop then ends and pion closes its allocations. It waits for
// Server.wg and, if its context ends first, closes the relay sockets still open.
//
// # Lock order
//
// pion's locks (its allocation manager's, taken while it closes an allocation) come
// before Server.mu: relayConn.Close takes Server.mu under them. So Server.mu (fronts,
// listeners, connections, relays, per-user counts) is never held while calling into pion
// or writing to the network. logLimiter.mu and bucket.mu are leaves. A front's loop fields
// are touched only by its read loop and need no lock.
package turnd
