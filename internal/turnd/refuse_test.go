package turnd

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// TestDeniedPeers: peers that are not allowed get 403, counted by cause; loopback is
// allowed only by the allow list; the allocation still serves allowed peers afterwards.
func TestDeniedPeers(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.AllowPeers = []netip.Prefix{mustPrefix("127.0.0.2/32")}
		c.DenyPeers = []netip.Prefix{mustPrefix("198.51.100.0/24"), mustPrefix("2001:db8::/32")}
	})
	user, pass := credentials(t, "dave")
	c := ts.raw(t, TransportUDP, user, pass)
	if got := c.allocate(); got != 0 {
		t.Fatalf("allocate: %d", got)
	}
	tests := []struct {
		peer  string
		code  int
		cause Cause
	}{
		{"127.0.0.1:5000", 403, CausePeerLoopback},
		{"127.9.9.9:5000", 403, CausePeerLoopback},
		{"169.254.10.1:5000", 403, CausePeerLinkLocal},
		{"0.0.0.0:5000", 403, CausePeerUnspecified},
		{"0.1.2.3:5000", 403, CausePeerUnspecified},
		{"224.0.0.251:5353", 403, CausePeerMulticast},
		{"255.255.255.255:9", 403, CausePeerMulticast},
		{"198.51.100.7:5000", 403, CausePeerDenyList},
		// Allowed: no traffic is sent by a permission alone.
		{"127.0.0.2:5000", 0, ""},
		{"192.0.2.10:5000", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.peer, func(t *testing.T) {
			var before float64
			if tt.cause != "" {
				before = ts.refusedCount(t, tt.cause)
			}
			if got := c.permission(netip.MustParseAddrPort(tt.peer)); got != tt.code {
				t.Fatalf("CreatePermission %s: %d, want %d", tt.peer, got, tt.code)
			}
			if tt.cause != "" {
				if got := ts.refusedCount(t, tt.cause); got != before+1 {
					t.Errorf("refused{%s} = %v, want %v", tt.cause, got, before+1)
				}
			}
		})
	}
	// A denied ChannelBind: pion answers 401 (not 403); it is refused and counted all the
	// same.
	before := ts.refusedCount(t, CausePeerLoopback)
	res := c.request(stun.MethodChannelBind, rawAttr{stun.AttrChannelNumber, []byte{0x40, 0x00, 0, 0}},
		xorPeer(netip.MustParseAddrPort("127.0.0.1:5000")))
	if code(res) == 0 {
		t.Error("ChannelBind to a loopback peer succeeded")
	}
	if got := ts.refusedCount(t, CausePeerLoopback); got != before+1 {
		t.Errorf("refused{peer_loopback} after ChannelBind = %v, want %v", got, before+1)
	}
	if got := ts.refusedCount(t, CauseNoCredentials); got != 1 {
		t.Errorf("refused{no_credentials} = %v, want 1 (the first Allocate): the ChannelBind's 401 was counted twice", got)
	}
}

// TestUserQuota: a user's allocations are bounded (486), another user's are not, and a
// released allocation makes room.
func TestUserQuota(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxAllocationsPerUser = 2 })
	user, pass := credentials(t, "erin")
	var clients []*rawClient
	for i := range 2 {
		c := ts.raw(t, TransportUDP, user, pass)
		if got := c.allocate(); got != 0 {
			t.Fatalf("allocation %d: %d", i+1, got)
		}
		clients = append(clients, c)
	}
	// The same user id with another expiry is the same user.
	later, err := IssueCredentials(ts.cfg.Secret, "erin", time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, cred := range [][2]string{{user, pass}, {later.Username, later.Password.Reveal()}} {
		if got := ts.raw(t, TransportTCP, cred[0], cred[1]).allocate(); got != 486 {
			t.Errorf("allocation 3 of %s: %d, want 486", cred[0], got)
		}
	}
	if got := ts.refusedCount(t, CauseQuotaUser); got != 2 {
		t.Errorf("refused{quota_user} = %v, want 2", got)
	}
	other, otherPass := credentials(t, "frank")
	if got := ts.raw(t, TransportUDP, other, otherPass).allocate(); got != 0 {
		t.Errorf("another user's allocation: %d", got)
	}
	if got := clients[0].release(); got != 0 {
		t.Fatalf("release: %d", got)
	}
	if got := ts.raw(t, TransportUDP, user, pass).allocate(); got != 0 {
		t.Errorf("allocation after a release: %d, want success", got)
	}
}

// TestAllocationFlood: one client host opening many allocations at once, over many sockets
// and connections, gets no more than the quotas allow; the total quota answers 508.
func TestAllocationFlood(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxAllocationsPerUser = 3
		c.MaxAllocations = 8
	})
	const attempts = 24
	results := make([]int, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half over TCP, whose connections are served concurrently.
			transport := TransportUDP
			if i%2 == 1 {
				transport = TransportTCP
			}
			user, pass := credentials(t, "flood")
			results[i] = ts.raw(t, transport, user, pass).allocate()
		}()
	}
	wg.Wait()
	counts := map[int]int{}
	for _, r := range results {
		counts[r]++
	}
	if counts[0] != 3 {
		t.Errorf("successes of one user: %d, want 3 (results %v)", counts[0], counts)
	}
	if counts[0]+counts[486]+counts[508] != attempts {
		t.Errorf("results %v: want only successes, 486 and 508", counts)
	}
	if n := len(ts.Allocations()); n != 3 {
		t.Errorf("%d allocations, want 3", n)
	}
	// Many users: the total quota.
	results = make([]int, attempts)
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, pass := credentials(t, "user-"+string(rune('a'+i)))
			results[i] = ts.raw(t, TransportUDP, user, pass).allocate()
		}()
	}
	wg.Wait()
	counts = map[int]int{}
	for _, r := range results {
		counts[r]++
	}
	if counts[0] != 5 || counts[508] != attempts-5 {
		t.Errorf("results %v: want 5 successes (8 in all) and 508 for the rest", counts)
	}
	if got := ts.refusedCount(t, CauseQuotaTotal); got != attempts-5 {
		t.Errorf("refused{quota_total} = %v, want %d", got, attempts-5)
	}
	if n := len(ts.Allocations()); n != 8 {
		t.Errorf("%d allocations, want 8", n)
	}
}

// bigBinding is a STUN Binding request of size bytes (with a comprehension-optional
// attribute of a private type).
func bigBinding(t *testing.T, size int) *stun.Message {
	t.Helper()
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest,
		rawAttr{stun.AttrType(0xC0DE), make([]byte, size-stunHeaderSize-4)})
	if len(m.Raw) != size {
		t.Fatalf("built %d bytes, want %d", len(m.Raw), size)
	}
	return m
}

// TestOversizedAndMalformed: over UDP, an oversized request gets 400 and junk is dropped;
// over TCP, an oversized request gets 400 and the connection is closed, junk closes it;
// each is counted, and the server still allocates afterwards.
func TestOversizedAndMalformed(t *testing.T) {
	ts := startServer(t, nil)
	t.Run("udp oversized", func(t *testing.T) {
		c := ts.raw(t, TransportUDP, "", "")
		before := ts.refusedCount(t, CauseOversized)
		if got := code(c.roundTrip(bigBinding(t, DefaultMaxMessageSize+100))); got != 400 {
			t.Errorf("oversized Binding: %d, want 400", got)
		}
		// Exactly the limit is fine.
		if got := code(c.roundTrip(bigBinding(t, DefaultMaxMessageSize))); got != 0 {
			t.Errorf("Binding of MaxMessageSize: %d, want success", got)
		}
		if got := ts.refusedCount(t, CauseOversized); got != before+1 {
			t.Errorf("refused{oversized} = %v, want %v", got, before+1)
		}
	})
	t.Run("udp malformed", func(t *testing.T) {
		c := ts.raw(t, TransportUDP, "", "")
		before := ts.refusedCount(t, CauseMalformed)
		junk := []byte("GET / HTTP/1.1\r\n\r\n")
		if _, err := c.pc.WriteTo(junk, c.server); err != nil {
			t.Fatal(err)
		}
		// A STUN header whose attribute runs past the end: 400.
		bad := stun.MustBuild(stun.TransactionID, stun.BindingRequest, rawAttr{stun.AttrSoftware, []byte("abcd")})
		binary.BigEndian.PutUint16(bad.Raw[stunHeaderSize+2:], 200) // attribute length past the message
		if got := code(c.roundTrip(bad)); got != 400 {
			t.Errorf("undecodable request: %d, want 400", got)
		}
		if got := ts.refusedCount(t, CauseMalformed); got != before+2 {
			t.Errorf("refused{malformed} = %v, want %v", got, before+2)
		}
	})
	t.Run("tcp oversized", func(t *testing.T) {
		conn, err := net.Dial("tcp4", ts.tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		m := bigBinding(t, 4000)
		if _, err := conn.Write(m.Raw[:64]); err != nil { // the header says 4000 bytes
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res := readSTUN(t, conn)
		if code(res) != 400 || res.TransactionID != m.TransactionID {
			t.Errorf("oversized over TCP: %v, want 400", res)
		}
		if _, err := io.ReadAll(conn); err != nil {
			t.Errorf("want the connection closed by the server: %v", err)
		}
	})
	t.Run("tls junk", func(t *testing.T) {
		conn, err := tls.Dial("tcp4", ts.tlsAddr, &tls.Config{RootCAs: ts.pki.roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		before := ts.refusedCount(t, CauseMalformed)
		if _, err := conn.Write([]byte("\xff\xff\xff\xff\xff\xff\xff\xff")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := io.ReadAll(conn); err != nil || len(n) != 0 {
			t.Errorf("after junk: read %q, %v; want the connection closed", n, err)
		}
		if got := ts.refusedCount(t, CauseMalformed); got != before+1 {
			t.Errorf("refused{malformed} = %v, want %v", got, before+1)
		}
	})
	t.Run("tls handshake", func(t *testing.T) {
		before := ts.refusedCount(t, CauseTLSHandshake)
		conn, err := net.Dial("tcp4", ts.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("not a client hello, not at all, really\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(conn)
		waitFor(t, "the failed handshake to be counted", func() bool { return ts.refusedCount(t, CauseTLSHandshake) == before+1 })
	})
	t.Run("still serving", func(t *testing.T) {
		peer := echoPeer(t)
		for _, transport := range []string{TransportUDP, TransportTCP, TransportTLS} {
			user, pass := credentials(t, "after-"+transport)
			relay, err := ts.newClient(t, transport, user, pass).Allocate()
			if err != nil {
				t.Fatalf("%s: allocate: %v", transport, err)
			}
			relayRoundTrip(t, relay, peer, []byte("still here"))
			relay.Close()
		}
	})
}

// readSTUN reads one STUN message from a stream.
func readSTUN(t *testing.T, r io.Reader) *stun.Message {
	t.Helper()
	hdr := make([]byte, stunHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		t.Fatalf("read a STUN header: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read a STUN body: %v", err)
	}
	m := &stun.Message{Raw: append(hdr, body...)}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConnectionLimit: a TCP or TLS connection past MaxConnections is closed at once and
// counted.
func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxConnections = 2 })
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp4", ts.tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitFor(t, "two connections", func() bool {
		return metricValue(t, ts.reg, "confab_turn_connections", "transport", TransportTCP) == 2
	})
	extra, err := net.Dial("tcp4", ts.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("third connection: read %v, want it closed", err)
	}
	if got := ts.refusedCount(t, CauseConnections); got != 1 {
		t.Errorf("refused{connection_limit} = %v, want 1", got)
	}
	conns[0].Close()
	waitFor(t, "the closed connection to be forgotten", func() bool {
		return metricValue(t, ts.reg, "confab_turn_connections", "transport", TransportTCP) == 1
	})
	user, pass := credentials(t, "gina")
	if _, err := ts.newClient(t, TransportTLS, user, pass).Allocate(); err != nil {
		t.Errorf("allocate once below the limit again: %v", err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// TestBandwidthCap: what an allocation sends beyond its cap is dropped and counted.
func TestBandwidthCap(t *testing.T) {
	const rate = 20_000 // bytes per second; the burst is one second's worth
	ts := startServer(t, func(c *Config) { c.Bandwidth = rate })
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	user, pass := credentials(t, "hank")
	// Over TCP, so that no datagram is lost on its way to the server (a burst of 100 over
	// UDP can overflow the server's socket buffer on a busy machine).
	relay, err := ts.newClient(t, TransportTCP, user, pass).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	const packets, size = 100, 1000
	payload := bytes.Repeat([]byte{'x'}, size)
	start := time.Now()
	for range packets {
		if _, err := relay.WriteTo(payload, sink.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	var a Allocation
	waitFor(t, "every datagram to be relayed or dropped", func() bool {
		all := ts.Allocations()
		if len(all) != 1 {
			return false
		}
		a = all[0]
		return a.ToPeer.Packets+a.ToPeer.Dropped == packets
	})
	elapsed := time.Since(start).Seconds()
	if maxPassed := uint64((rate + elapsed*rate) / size); a.ToPeer.Packets > maxPassed+1 || a.ToPeer.Dropped == 0 {
		t.Errorf("relayed %d, dropped %d in %.2fs; want at most %d relayed", a.ToPeer.Packets, a.ToPeer.Dropped, elapsed, maxPassed+1)
	}
	if got := metricValue(t, ts.reg, "confab_turn_relay_dropped_total", "direction", toPeer); got != float64(a.ToPeer.Dropped) {
		t.Errorf("relay_dropped_total{to_peer} = %v, want %d", got, a.ToPeer.Dropped)
	}
}

// TestAllocateTimeout: a TCP connection that makes no allocation is closed after
// AllocateTimeout; one that did is not.
func TestAllocateTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.AllocateTimeout = 300 * time.Millisecond })
	// The allocating connection's last read starts before the idle one connects: had the
	// timeout applied to it, it would be closed before the idle one.
	user, pass := credentials(t, "jay")
	c := ts.raw(t, TransportTCP, user, pass)
	if got := c.allocate(); got != 0 {
		t.Fatalf("allocate: %d", got)
	}
	idle, err := net.Dial("tcp4", ts.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("idle connection: read %v, want it closed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
	if got := code(c.request(stun.MethodRefresh, rawAttr{stun.AttrLifetime, []byte{0, 0, 2, 0}})); got != 0 {
		t.Errorf("refresh on the allocating connection: %d", got)
	}
}

// TestExactPeerAddrs: an exact peer address (the Call Bridge's media port, for the
// embedded server) is relayed to although its IP (loopback) is denied, and a datagram to
// another port of that IP is dropped and counted; the allocation goes on serving.
func TestExactPeerAddrs(t *testing.T) {
	media := echoPeer(t)
	other := echoPeer(t)
	ts := startServer(t, func(c *Config) {
		c.AllowPeers = nil // loopback denied, as by default
		c.AllowPeerAddrs = []netip.AddrPort{media.(*net.UDPAddr).AddrPort()}
	})
	user, pass := credentials(t, "erin")
	c := ts.newClient(t, TransportUDP, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer relay.Close()
	relayRoundTrip(t, relay, media, []byte("to the media port"))

	before := ts.refusedCount(t, CausePeerPort)
	if _, err := relay.WriteTo([]byte("to another port"), other); err != nil {
		t.Fatalf("write: %v", err)
	}
	waitFor(t, "the datagram to another port to be dropped", func() bool {
		return ts.refusedCount(t, CausePeerPort) == before+1
	})
	if a := ts.Allocations(); len(a) != 1 || a[0].ToPeer.Dropped != 1 {
		t.Errorf("allocations %+v: want one, with one datagram dropped to the peer", a)
	}
	// Still serving the media port.
	relayRoundTrip(t, relay, media, []byte("and again"))
	// Another loopback IP is still refused outright.
	raw := ts.raw(t, TransportUDP, user, pass)
	if got := raw.allocate(); got != 0 {
		t.Fatalf("allocate: %d", got)
	}
	if got := raw.permission(netip.MustParseAddrPort("127.0.0.3:5000")); got != 403 {
		t.Errorf("CreatePermission 127.0.0.3: %d, want 403", got)
	}
}
