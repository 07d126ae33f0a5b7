package turnd

import (
	"log/slog"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// Cause says why a request, a message or a connection was refused; it is the cause label
// of confab_turn_refused_total.
type Cause string

// The causes, with the STUN error each request gets.
const (
	CauseNoCredentials Cause = "no_credentials" // 401 with a nonce: the first step of every allocation
	CauseUnknownUser   Cause = "unknown_user"   // 401: not a static user, nor a time-limited username (or no secret)
	CauseExpired       Cause = "expired"        // 401: a time-limited username past its expiry
	CauseBadPassword   Cause = "bad_password"   // 401: the message integrity does not verify (forged, wrong secret)
	CauseWrongRealm    Cause = "wrong_realm"    // 401: a realm that is not this server's
	CauseStaleNonce    Cause = "stale_nonce"    // 438: an old nonce; the client retries with the new one

	CausePeerLoopback    Cause = "peer_loopback"    // 403: a loopback peer
	CausePeerLinkLocal   Cause = "peer_link_local"  // 403: a link-local peer
	CausePeerUnspecified Cause = "peer_unspecified" // 403: 0.0.0.0/8 or ::
	CausePeerMulticast   Cause = "peer_multicast"   // 403: multicast or broadcast
	CausePeerDenyList    Cause = "peer_deny_list"   // 403: a peer in the operator's deny list
	CausePeerPort        Cause = "peer_port"        // dropped: a datagram to a port other than the one an exact peer address allows

	CauseQuotaUser  Cause = "quota_user"  // 486: the user has its quota of allocations
	CauseQuotaTotal Cause = "quota_total" // 508: the server has its quota of allocations
	CauseNoPort     Cause = "no_port"     // 508: no free relay port (or the requested one is outside the range)
	CauseTCPRelay   Cause = "tcp_relay"   // 508: a TCP allocation (RFC 6062), which is not offered
	CauseCapacity   Cause = "capacity"    // 508 for another reason (a zero lifetime, shutting down)

	CauseBadRequest Cause = "bad_request" // 400: a malformed request
	CauseMalformed  Cause = "malformed"   // neither STUN nor ChannelData, or undecodable: dropped (400 to a request; a stream is closed)
	CauseOversized  Cause = "oversized"   // over MaxMessageSize: 400 to a request, dropped otherwise; a stream is closed
	CauseOtherError Cause = "other_error" // another error response (437 allocation mismatch, 420, 440, 442, …)

	CauseConnections  Cause = "connection_limit" // a TCP or TLS connection over MaxConnections: closed at once
	CauseTLSHandshake Cause = "tls_handshake"    // a TLS handshake that failed or timed out
)

// causes lists every Cause, so that each series exists from the start.
var causes = []Cause{
	CauseNoCredentials, CauseUnknownUser, CauseExpired, CauseBadPassword, CauseWrongRealm, CauseStaleNonce,
	CausePeerLoopback, CausePeerLinkLocal, CausePeerUnspecified, CausePeerMulticast, CausePeerDenyList, CausePeerPort,
	CauseQuotaUser, CauseQuotaTotal, CauseNoPort, CauseTCPRelay, CauseCapacity,
	CauseBadRequest, CauseMalformed, CauseOversized, CauseOtherError,
	CauseConnections, CauseTLSHandshake,
}

// level is the level a refusal is logged at: the steps of a normal exchange at debug.
func (c Cause) level() slog.Level {
	switch c {
	case CauseNoCredentials, CauseStaleNonce:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// causeOfCode is the cause of an error response that no handler of this package counted:
// one pion decided on its own.
func causeOfCode(code int) Cause {
	switch stun.ErrorCode(code) {
	case stun.CodeUnauthorized:
		return CauseNoCredentials
	case stun.CodeStaleNonce:
		return CauseStaleNonce
	case stun.CodeBadRequest:
		return CauseBadRequest
	case stun.CodeInsufficientCapacity:
		return CauseCapacity
	}
	return CauseOtherError
}

// logLimiter lets one log line per cause through per interval; the next one says how many
// were held back.
type logLimiter struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[Cause]time.Time
	held     map[Cause]int
}

func newLogLimiter(interval time.Duration) *logLimiter {
	return &logLimiter{interval: interval, last: map[Cause]time.Time{}, held: map[Cause]int{}}
}

// allow reports whether a refusal for c at now is logged, and how many were not since the
// last one that was.
func (l *logLimiter) allow(c Cause, now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, seen := l.last[c]; seen && now.Sub(last) < l.interval {
		l.held[c]++
		return false, 0
	}
	l.last[c] = now
	held = l.held[c]
	l.held[c] = 0
	return true, held
}
