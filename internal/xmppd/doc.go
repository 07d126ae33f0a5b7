// Package xmppd is Confab's XMPP server, as a library: client-to-server streams over TCP
// with STARTTLS [RFC 6120] and over WebSocket [RFC 7395], and the component port on which
// Call Bridges register [XEP-0114].
//
// Client sessions may enable stream management [XEP-0198]: acknowledgements, and
// resumption on a new connection after the old one was lost (sm.go).
//
// The server stores no passwords. Every SASL exchange [RFC 6120 §6] is relayed, step by step,
// over a component link to a connected Call Bridge (package loginrelay), which runs the SASL
// server side and decides; without a connected Call Bridge a login fails at once with
// temporary-auth-failure.
//
// # Shape
//
// A Server is built by New from a Config and serves listeners the caller owns, in the manner
// of net/http: ServeC2S and ServeComponents block until Shutdown and then return
// ErrServerClosed; WebSocketHandler and AdminHandler are http.Handlers to mount.
//
// # Goroutines
//
// Every goroutine the package starts is owned and waited for:
//
//   - one handler goroutine per connection (c2s, WebSocket, component), counted in
//     Server.wg, which Shutdown waits for. A c2s session's handler hands over to a fresh
//     goroutine, also counted in Server.wg, once the resource is bound (so that the stack
//     grown by the TLS handshake and the login is not kept), and ends;
//   - per c2s session, a flusher goroutine while output is queued: started by whoever
//     queues into an empty queue, it writes until the queue is empty and ends, so an idle
//     session has none. The session's end waits for it;
//   - per c2s session, a timer (time.AfterFunc) that looks at the session every
//     min(KeepAlive, IdleTimeout/4): its callback runs briefly on a goroutine of its own,
//     queues a keepalive or an XEP-0199 ping, or aborts a silent session, and writes
//     nothing itself. The session's end stops it; a callback that runs afterwards does
//     nothing;
//   - a session detached by XEP-0198 (its connection lost, waiting to be resumed) has no
//     goroutine: a time.AfterFunc expires it, and its end (expiry, abort, Shutdown) runs
//     on a goroutine counted in Server.wg, added under session.mu while the session is
//     still tracked, so before Shutdown waits. A resumption hands the session to the
//     connection that resumed it, whose reading goroutine then serves it;
//   - per WebSocket connection, one pump goroutine that reads messages, so that reads can be
//     interrupted and time out like a net.Conn's; the transport's close waits for it;
//   - per component, one writer goroutine, and while it connects one goroutine that asks it
//     whether it speaks the login relay (loginrelay.Client.Probe); both are waited for by
//     the component's handler. A refused duplicate of its name arms a time.AfterFunc that
//     closes it if it stays silent (component.go); its callback runs briefly.
//
// Routing never blocks: a stanza is put on the destination's queue or, when the queue is
// full, the stanza is refused to its sender (a component's queue: resource-constraint) or
// the destination, a client that does not read, is disconnected. Each client's stanzas to
// others pass a token bucket first (Config.SenderRate; policy-violation past it), and take
// at most an eighth of a component's queue. The server's own traffic to a component (the
// login relay, session-end notices) is never refused (compqueue.go). A session's output is
// written in the order it was queued (one flusher at a time); the bind result is queued
// before the session is routable, and the closing stream error is written by the session's
// end after the flusher has finished and the queue is closed.
//
// # Lock order
//
// Server.mu (listeners, tracked connections, shutdown state) and router.mu (sessions and
// components by address) are never held together, and no lock is held while writing to the
// network, while calling into loginrelay or while asking the roster store. session.mu,
// outQueue.mu, compQueue.mu, componentSession.dupMu, bucket.mu and the server's
// addrCounts.mu, srcMu and limitLog.mu guard their own state only and are leaves: nothing
// else is locked while they are held.
// session.tickMu serialises the timer's callbacks with the session's end; session.mu and
// outQueue.mu may be taken under it, never the other way round. Server.smMu (XEP-0198
// resumption ids) is a leaf. A session's transport is replaced by a resumption under
// session.mu, while neither its reader nor a flusher runs. Session
// availability, read by the router under router.mu, is an atomic and needs no lock.
package xmppd
