// Package dnstest runs a real DNS server on loopback for tests: an authoritative server on
// 127.0.0.1 (UDP and TCP on the same port) that answers SRV, A and AAAA queries from a
// Zone, NXDOMAIN for names outside it, and can be told to stop answering (to simulate DNS
// failing) and to resume.
//
//	srv := dnstest.Start(t, dnstest.Zone{
//		"_xmpp-component._tcp.example.com": {SRV: []dnstest.SRV{{Priority: 10, Weight: 50, Port: 5223, Target: "xmpp1.example.com"}}},
//		"xmpp1.example.com":                {A: []string{"127.0.0.1"}, AAAA: []string{"::1"}},
//	})
//	r := srv.Resolver() // or discover.NewResolver(srv.Addr, timeout)
package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Rcode is a DNS response code (RFC 1035 §4.1.1).
type Rcode int

// Response codes a zone name can be made to answer with.
const (
	NoError  Rcode = dns.RcodeSuccess
	FormErr  Rcode = dns.RcodeFormatError
	ServFail Rcode = dns.RcodeServerFailure
	NXDomain Rcode = dns.RcodeNameError
	NotImp   Rcode = dns.RcodeNotImplemented
	Refused  Rcode = dns.RcodeRefused
)

// SRV is one SRV record (RFC 2782). A Target of "." means the service is decidedly not
// available at this domain.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
}

// Records are the answers for one name. A name with no records exists but answers
// NOERROR with an empty answer section (NODATA).
type Records struct {
	SRV  []SRV
	A    []string // IPv4 addresses, e.g. "127.0.0.1"
	AAAA []string // IPv6 addresses, e.g. "::1"
	// Rcode, if not NoError, is the answer to every query for the name, with no records.
	Rcode Rcode
	// Silent names are never answered, so that lookups of them time out while the rest of
	// the zone works.
	Silent bool
}

// Zone maps owner names (case-insensitive, with or without the final dot) to their records.
// Names not in the zone are NXDOMAIN, except the ancestors of names in it, which exist
// without records (as in real DNS).
type Zone map[string]Records

// Server is a running DNS server. Its methods are safe for concurrent use.
type Server struct {
	// Addr is the server's "127.0.0.1:port", on UDP and TCP.
	Addr string

	paused  atomic.Bool
	queries atomic.Int64

	mu   sync.Mutex
	zone map[string]Records // by lower-case fully qualified name

	closeOnce sync.Once
	servers   []*dns.Server
}

// Start starts a server for zone on 127.0.0.1 and stops it when the test ends. It fails
// the test if the zone holds an unparsable address.
func Start(t testing.TB, zone Zone) *Server {
	t.Helper()
	s := &Server{}
	if err := s.setZone(zone); err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// UDP and TCP must share a port, and the kernel picks the UDP one; the TCP port of that
	// number is almost always free, but retry in case it is not.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("dnstest: %v", err)
		}
	}
	if err != nil {
		t.Fatalf("dnstest: no port free on both UDP and TCP: %v", err)
	}
	s.Addr = pc.LocalAddr().String()

	handler := dns.HandlerFunc(s.serveDNS)
	s.servers = []*dns.Server{
		{PacketConn: pc, Handler: handler},
		{Listener: ln, Handler: handler},
	}
	errc := make(chan error, len(s.servers))
	for _, srv := range s.servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("dnstest: serve: %v", err)
		}
	}
	t.Cleanup(func() {
		s.Close()
		for range s.servers {
			if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("dnstest: serve: %v", err)
			}
		}
	})
	return s
}

// Close stops the server: its ports close, so queries fail at once (ICMP port unreachable
// on UDP, connection refused on TCP) rather than time out. Start's cleanup calls it too.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			srv.ShutdownContext(ctx)
		}
	})
}

// Pause makes the server read queries and never answer them, as a dead or unreachable DNS
// server would: lookups time out.
func (s *Server) Pause() { s.paused.Store(true) }

// Resume undoes Pause.
func (s *Server) Resume() { s.paused.Store(false) }

// SetZone replaces the zone; queries that arrive afterwards see the new records. An
// unparsable address is an error, and the old zone stays.
func (s *Server) SetZone(zone Zone) error {
	if err := s.setZone(zone); err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	return nil
}

// Queries returns how many queries the server has received, answered or not.
func (s *Server) Queries() int { return int(s.queries.Load()) }

// Resolver returns a pure-Go resolver that sends every query to this server. Its per-query
// timeout comes from resolv.conf (5s by default), so give lookups of a paused server a
// context deadline.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.Addr)
		},
	}
}

func (s *Server) setZone(zone Zone) error {
	m := make(map[string]Records, len(zone))
	for name, rr := range zone {
		for _, a := range rr.A {
			if ip, err := netip.ParseAddr(a); err != nil || !ip.Is4() {
				return fmt.Errorf("%s: A %q is not an IPv4 address", name, a)
			}
		}
		for _, a := range rr.AAAA {
			if ip, err := netip.ParseAddr(a); err != nil || !ip.Is6() {
				return fmt.Errorf("%s: AAAA %q is not an IPv6 address", name, a)
			}
		}
		m[canonical(name)] = rr
	}
	s.mu.Lock()
	s.zone = m
	s.mu.Unlock()
	return nil
}

func canonical(name string) string { return dns.CanonicalName(name) }

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	if s.paused.Load() || len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)

	s.mu.Lock()
	rr, found := s.zone[name]
	exists := found
	if !found {
		for n := range s.zone {
			if strings.HasSuffix(n, "."+name) || name == "." {
				exists = true
				break
			}
		}
	}
	s.mu.Unlock()

	if rr.Silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true // an empty non-authoritative answer would look like a lame referral
	switch {
	case !exists:
		m.Rcode = dns.RcodeNameError
	case rr.Rcode != NoError:
		m.Rcode = int(rr.Rcode)
	default:
		m.Answer = answers(q, rr)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size) // sets TC, so the client retries over TCP
	}
	w.WriteMsg(m)
}

func answers(q dns.Question, rr Records) []dns.RR {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 1}
	}
	var out []dns.RR
	switch q.Qtype {
	case dns.TypeSRV:
		for _, s := range rr.SRV {
			out = append(out, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: s.Priority, Weight: s.Weight, Port: s.Port, Target: dns.Fqdn(s.Target)})
		}
	case dns.TypeA:
		for _, a := range rr.A {
			out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(a).To4()})
		}
	case dns.TypeAAAA:
		for _, a := range rr.AAAA {
			out = append(out, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.ParseIP(a)})
		}
	}
	return out
}
