package discover

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"

	"confab.dev/confab/internal/discover/dnstest"
)

func TestServerAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5353", "127.0.0.1:5353"},
		{"[::1]:53", "[::1]:53"},
		{"192.0.2.53", "192.0.2.53:53"},
		{"2001:db8::53", "[2001:db8::53]:53"},
		{"[2001:db8::53]", "[2001:db8::53]:53"},
		{"dns.example.com", "dns.example.com:53"},
		{"dns.example.com:5353", "dns.example.com:5353"},
	} {
		if got := serverAddr(tc.in); got != tc.want {
			t.Errorf("serverAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDialerRecordsResponseCodes exercises the wrappers below the resolver: the response
// code is learnt on both transports, even when the resolver reads a TCP message in pieces,
// and no deadline outlives the dialer's timeout.
func TestDialerRecordsResponseCodes(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{
		"refused.example": {Rcode: dnstest.Refused},
		"silent.example":  {Silent: true},
	})
	d := &dnsDialer{server: srv.Addr, timeout: 500 * time.Millisecond}
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			ctx, log := withLookupLog(t.Context())
			c, err := d.dial(ctx, network, "192.0.2.99:53")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, isPacket := c.(net.PacketConn); isPacket != (network == "udp") {
				t.Fatalf("%s connection %T: net.PacketConn = %v", network, c, isPacket)
			}
			for _, q := range []struct {
				name string
				want int
			}{{"nx.example.", rcodeNXDomain}, {"refused.example.", rcodeRefused}} {
				exchange(t, c, network, q.name)
				if got := log.lastErrorCode(); got != q.want {
					t.Errorf("%s: recorded rcode %d, want %d", q.name, got, q.want)
				}
			}
			if log.serverAddr() != srv.Addr {
				t.Errorf("recorded server %q, want %q (not the resolver's)", log.serverAddr(), srv.Addr)
			}
			// A zero deadline would wait for ever; the dialer's timeout still applies.
			c.SetDeadline(time.Time{})
			writeQuery(t, c, network, "silent.example.")
			if _, err := c.Read(make([]byte, 512)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read from a silent server: %v, want a deadline error", err)
			}
		})
	}
}

func writeQuery(t *testing.T, c net.Conn, network, name string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeSRV)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if network == "tcp" {
		b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func exchange(t *testing.T, c net.Conn, network, name string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	writeQuery(t, c, network, name)
	if network == "udp" {
		if _, err := c.Read(make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
		return
	}
	// One byte at a time, the worst a reader can do.
	var hdr [2]byte
	for i := range hdr {
		if _, err := io.ReadFull(c, hdr[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	for i := range body {
		if _, err := io.ReadFull(c, body[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
}
