package discover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// NewResolver returns a resolver that asks server, or net.DefaultResolver (the system's
// configuration) if server is empty. server is "host:port", "[v6]:port", or an IP address
// alone (port 53). A timeout above zero bounds each exchange with the server (each try of
// each query); the resolver still tries as often as resolv.conf says (twice by default), and
// a context deadline bounds the whole lookup.
//
// Lookups through Targets and LookupAddrs with such a resolver learn the server's response
// codes, so their errors tell NXDOMAIN from NODATA and REFUSED from SERVFAIL.
func NewResolver(server string, timeout time.Duration) *net.Resolver {
	server = strings.TrimSpace(server)
	if server == "" {
		return net.DefaultResolver
	}
	d := &dnsDialer{server: serverAddr(server), timeout: timeout}
	return &net.Resolver{PreferGo: true, Dial: d.dial}
}

// serverAddr adds port 53 to a server address that has none.
func serverAddr(s string) string {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return netip.AddrPortFrom(a, 53).String()
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(s, "53")
}

type dnsDialer struct {
	server  string
	timeout time.Duration
}

// dial connects to the configured server whatever address the resolver asks for (that one
// comes from resolv.conf).
func (d *dnsDialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	log, _ := ctx.Value(lookupLogKey{}).(*lookupLog)
	log.setServer(d.server)
	nd := net.Dialer{Timeout: d.timeout}
	c, err := nd.DialContext(ctx, network, d.server)
	if err != nil {
		log.transportError(err)
		return nil, err
	}
	var limit time.Time
	if d.timeout > 0 {
		limit = time.Now().Add(d.timeout)
	}
	// The resolver tells datagram from stream transport by net.PacketConn, so the UDP
	// wrapper must stay one.
	if u, ok := c.(*net.UDPConn); ok {
		return &packetConn{UDPConn: u, log: log, limit: limit}, nil
	}
	return &streamConn{Conn: c, log: log, limit: limit}, nil
}

// packetConn is a UDP connection to a DNS server that records the response codes it reads
// and keeps deadlines within the dialer's timeout.
type packetConn struct {
	*net.UDPConn
	log   *lookupLog
	limit time.Time
}

func (c *packetConn) Read(b []byte) (int, error) {
	n, err := c.UDPConn.Read(b)
	if n > 0 {
		c.log.record(b[:n])
	}
	if err != nil {
		c.log.transportError(err)
	}
	return n, err
}

func (c *packetConn) SetDeadline(t time.Time) error { return c.UDPConn.SetDeadline(clamp(t, c.limit)) }

func (c *packetConn) SetReadDeadline(t time.Time) error {
	return c.UDPConn.SetReadDeadline(clamp(t, c.limit))
}

// streamConn is packetConn for TCP, where messages carry a two-byte length (RFC 1035
// §4.2.2).
type streamConn struct {
	net.Conn
	log   *lookupLog
	limit time.Time
	buf   []byte
}

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.log.transportError(err)
	}
	if n > 0 && c.log != nil {
		c.buf = append(c.buf, b[:n]...)
		for len(c.buf) >= 2 {
			l := int(c.buf[0])<<8 | int(c.buf[1])
			if len(c.buf) < 2+l {
				break
			}
			c.log.record(c.buf[2 : 2+l])
			c.buf = c.buf[2+l:]
		}
	}
	return n, err
}

func (c *streamConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(clamp(t, c.limit)) }

func (c *streamConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(clamp(t, c.limit))
}

func clamp(t, limit time.Time) time.Time {
	if !limit.IsZero() && (t.IsZero() || t.After(limit)) {
		return limit
	}
	return t
}

// A lookupLog records, for one lookup, the DNS server asked and the response codes it
// answered with. It travels in the lookup's context to the dialer. All methods accept a nil
// receiver (a lookup through a resolver that NewResolver did not make).
type lookupLog struct {
	mu        sync.Mutex
	server    string
	noError   bool // some response was NOERROR (so a not-found is NODATA)
	lastError int  // the last error response code
	refused   bool // the server's address refused the connection (nothing listens there)
}

type lookupLogKey struct{}

// Response codes (RFC 1035 §4.1.1) the classifier needs by number.
const (
	rcodeNXDomain = 3
	rcodeRefused  = 5
)

func withLookupLog(ctx context.Context) (context.Context, *lookupLog) {
	l := new(lookupLog)
	return context.WithValue(ctx, lookupLogKey{}, l), l
}

func (l *lookupLog) setServer(s string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.server = s
	l.mu.Unlock()
}

func (l *lookupLog) record(msg []byte) {
	if l == nil {
		return
	}
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || !h.Response {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if h.RCode == dnsmessage.RCodeSuccess {
		l.noError = true
	} else {
		l.lastError = int(h.RCode)
	}
}

// transportError notes an error of the connection to the DNS server: a refused connection
// (TCP RST, or ICMP port unreachable on UDP) means nothing listens at the server's address,
// which the resolver reports only as text.
func (l *lookupLog) transportError(err error) {
	if l == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	l.mu.Lock()
	l.refused = true
	l.mu.Unlock()
}

func (l *lookupLog) sawRefused() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

func (l *lookupLog) serverAddr() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.server
}

func (l *lookupLog) sawNoError() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.noError
}

func (l *lookupLog) lastErrorCode() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastError
}
