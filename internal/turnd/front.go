package turnd

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// A front is what one pion server serves: a UDP socket, or one TCP or TLS connection. Its
// handlers (authentication, quota, permission, relay sockets, events) run on the pion
// server's one read loop, one request after another, so the fields marked "loop" need no
// lock: a handler that refuses a request marks the refusal counted, and the error response
// that follows on the same goroutine finds the mark.
type front struct {
	s         *Server
	transport string
	local     netip.AddrPort
	relayIP   netip.Addr
	bindIP    netip.Addr
	out       net.PacketConn // the conn pion writes to, for this package's own replies

	// counted is set by a handler that counted the refusal the next error response
	// carries; the response's observer clears it. It is atomic because relays also write
	// (data, never error responses) from their own goroutines.
	counted atomic.Bool

	allocated bool         // loop: an allocation was made on this front (streams: the idle timeout applies)
	username  string       // loop: of the request being handled, once authenticated
	pending   *relayConn   // loop: the relay opened for the Allocate being handled
	scratch   stun.Message // loop: decodes inbound messages

	endOnce sync.Once
	ended   chan struct{} // closed when the read loop has ended
	endErr  error
}

func (s *Server) newFront(transport string, local netip.AddrPort, relayIP, bindIP netip.Addr) *front {
	return &front{s: s, transport: transport, local: local, relayIP: relayIP, bindIP: bindIP, ended: make(chan struct{})}
}

// end records that the read loop ends with err.
func (f *front) end(err error) {
	f.endOnce.Do(func() {
		f.endErr = err
		close(f.ended)
		f.s.frontEnded(f)
		f.s.wg.Done()
	})
}

// refuse counts a refusal whose error response pion sends next.
func (f *front) refuse(c Cause, client net.Addr, attrs ...any) {
	f.counted.Store(true)
	f.s.refuse(c, client, append(attrs, "transport", f.transport)...)
}

// auth is pion's AuthHandler: static users first, then time-limited usernames.
func (f *front) auth(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	s := f.s
	f.username = ""
	if ra.Realm != s.cfg.Realm {
		f.refuse(CauseWrongRealm, ra.SrcAddr, "realm", ra.Realm)
		return "", nil, false
	}
	if pw, ok := s.cfg.Users[ra.Username]; ok {
		f.username = ra.Username
		return ra.Username, turn.GenerateAuthKey(ra.Username, s.cfg.Realm, pw.Reveal()), true
	}
	expires, id, ok := parseRESTUsername(ra.Username)
	if !ok || s.cfg.Secret.IsZero() {
		f.refuse(CauseUnknownUser, ra.SrcAddr, "username", ra.Username)
		return "", nil, false
	}
	if expires.Unix() < time.Now().Unix() {
		f.refuse(CauseExpired, ra.SrcAddr, "username", ra.Username)
		return "", nil, false
	}
	f.username = ra.Username
	return id, turn.GenerateAuthKey(ra.Username, s.cfg.Realm, restPassword(s.cfg.Secret, ra.Username)), true
}

// onAuth is told of each authentication pion checked; a false verdict is a message
// integrity that does not verify.
func (f *front) onAuth(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if !verdict {
		f.refuse(CauseBadPassword, src, "username", username, "method", method)
	}
}

// quota is pion's QuotaHandler, asked before an allocation is made.
func (f *front) quota(userID, _ string, src net.Addr) bool {
	s := f.s
	if s.cfg.MaxAllocationsPerUser < 0 {
		return true
	}
	s.mu.Lock()
	n := s.perUser[userID]
	s.mu.Unlock()
	if n >= s.cfg.MaxAllocationsPerUser {
		f.refuse(CauseQuotaUser, src, "user", userID, "allocations", n)
		return false
	}
	return true
}

// permit is pion's PermissionHandler (CreatePermission, ChannelBind, Connect).
func (f *front) permit(client net.Addr, peer net.IP) bool {
	if c := f.s.policy.check(addrOf(peer)); c != "" {
		f.refuse(c, client, "peer", peer.String())
		return false
	}
	return true
}

// Validate is part of turn.RelayAddressGenerator.
func (f *front) Validate() error { return nil }

// AllocatePacketConn opens a relay socket (turn.RelayAddressGenerator).
func (f *front) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	r, err := f.s.openRelay(f, conf)
	if err != nil {
		return nil, nil, err
	}
	f.pending = r
	return r, r.addr, nil
}

var errTCPRelay = errors.New("turnd: TCP allocations (RFC 6062) are not offered")

// AllocateListener refuses TCP allocations (RFC 6062): WebRTC does not use them.
func (f *front) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	f.refuse(CauseTCPRelay, nil)
	return nil, nil, errTCPRelay
}

// AllocateConn is never reached without a TCP allocation.
func (f *front) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) { return nil, errTCPRelay }

// onAllocationCreated attaches who asked to the relay socket just opened.
func (f *front) onAllocationCreated(src, _ net.Addr, _, userID, realm string, relayAddr net.Addr, _ int) {
	r := f.pending
	f.pending = nil
	f.allocated = true
	if r == nil || net.Addr(r.addr) != relayAddr {
		f.s.log.Debug("TURN allocation created on a relay this server did not open", "relayed", relayAddr)
		return
	}
	f.s.attach(r, &allocInfo{
		transport: f.transport,
		client:    addrPort(src),
		server:    f.local,
		userID:    userID,
		since:     time.Now(),
	})
}

const (
	stunHeaderSize  = 20
	attrErrorCode   = 0x0009
	classMask       = 0x0110
	classErrorResp  = 0x0110
	classRequest    = 0x0000
	stunMagicCookie = 0x2112A442
)

// isSTUNHeader reports whether b starts like a STUN message: two zero bits and the magic
// cookie.
func isSTUNHeader(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 0 && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie
}

// inspect decides whether a message from a client goes on to pion: oversized messages
// (truncated set), and messages that are neither ChannelData nor a decodable STUN message,
// are refused, with 400 to a STUN request whose header is readable.
func (f *front) inspect(msg []byte, truncated bool, from net.Addr) bool {
	f.counted.Store(false)
	if truncated {
		f.refuse(CauseOversized, from, "bytes_at_least", len(msg))
		f.badRequest(msg, from)
		return false
	}
	if len(msg) >= 4 && msg[0]>>6 == 1 && 4+int(binary.BigEndian.Uint16(msg[2:4])) <= len(msg) {
		return true // ChannelData (padding is optional over UDP): pion checks the channel
	}
	if isSTUNHeader(msg) {
		m := &f.scratch
		m.Raw = msg
		err := m.Decode()
		m.Raw = nil
		if err == nil {
			return true
		}
		f.refuse(CauseMalformed, from, "err", err)
		f.badRequest(msg, from)
		return false
	}
	f.refuse(CauseMalformed, from, "bytes", len(msg))
	return false
}

// badRequest answers 400 to msg if it has the header of a STUN request.
func (f *front) badRequest(msg []byte, to net.Addr) {
	if len(msg) < stunHeaderSize || !isSTUNHeader(msg) {
		return
	}
	t := binary.BigEndian.Uint16(msg[0:2])
	if t&classMask != classRequest {
		return
	}
	var mt stun.MessageType
	mt.ReadValue(t)
	var id [stun.TransactionIDSize]byte
	copy(id[:], msg[8:stunHeaderSize])
	resp, err := stun.Build(stun.NewTransactionIDSetter(id),
		stun.NewType(mt.Method, stun.ClassErrorResponse),
		stun.ErrorCodeAttribute{Code: stun.CodeBadRequest, Reason: []byte("Bad Request")})
	if err != nil {
		return
	}
	f.counted.Store(true)
	_, _ = f.out.WriteTo(resp.Raw, to)
}

// observe looks at what goes to a client: an error response that no handler counted is
// one pion decided on, counted here by its code.
func (f *front) observe(p []byte, to net.Addr) {
	if len(p) < stunHeaderSize || !isSTUNHeader(p) || binary.BigEndian.Uint16(p[0:2])&classMask != classErrorResp {
		return
	}
	if f.counted.Swap(false) {
		return
	}
	f.s.refuse(causeOfCode(errorCode(p)), to, "transport", f.transport)
}

// errorCode returns the code of a STUN error response's ERROR-CODE attribute, or 0.
func errorCode(p []byte) int {
	end := min(stunHeaderSize+int(binary.BigEndian.Uint16(p[2:4])), len(p))
	for off := stunHeaderSize; off+4 <= end; {
		typ := binary.BigEndian.Uint16(p[off:])
		n := int(binary.BigEndian.Uint16(p[off+2:]))
		if off+4+n > end {
			return 0
		}
		if typ == attrErrorCode && n >= 4 {
			v := p[off+4:]
			return int(v[2]&7)*100 + int(v[3])
		}
		off += 4 + (n+3)&^3
	}
	return 0
}
