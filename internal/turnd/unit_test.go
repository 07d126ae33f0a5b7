package turnd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"confab.dev/confab/internal/secret"
)

// TestIssueCredentials: the password of a known username is the one the scheme gives,
// computed with openssl: printf '1700000000:alice' | openssl dgst -sha1 -hmac north-wind
// -binary | base64.
func TestIssueCredentials(t *testing.T) {
	c, err := IssueCredentials(secret.New("north-wind"), "alice", time.Unix(1700000000, 900_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "1700000000:alice" || c.Password.Reveal() != "Oko4dt8u/EbTRjRUJWQDFm/zTCc=" || c.Expires.Unix() != 1700000000 {
		t.Errorf("got %q / %q / %v", c.Username, c.Password.Reveal(), c.Expires)
	}
	tests := []struct {
		name   string
		secret string
		user   string
		want   error
	}{
		{"no secret", "", "alice", ErrNoSecret},
		{"empty", "s", "", ErrBadUserID},
		{"control", "s", "al\nice", ErrBadUserID},
		{"not utf-8", "s", "\xff", ErrBadUserID},
		{"too long", "s", strings.Repeat("a", maxUserID+1), ErrBadUserID},
		{"colon and unicode", "s", "guest:42 Zoë", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := IssueCredentials(secret.New(tt.secret), tt.user, time.Now())
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestServerCredentials(t *testing.T) {
	s, err := New(Config{Secret: secret.New("k")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Credentials("ann", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp, id, ok := parseRESTUsername(c.Username)
	if !ok || id != "ann" || exp.Sub(time.Now()) < 59*time.Minute || exp.Sub(time.Now()) > time.Hour {
		t.Errorf("username %q: %v %q %v", c.Username, exp, id, ok)
	}
	if _, err := s.Credentials("ann", 0); err == nil {
		t.Error("ttl 0 accepted")
	}
	if _, err := (&Server{}).Credentials("ann", time.Hour); !errors.Is(err, ErrNoSecret) {
		t.Errorf("without a secret: %v, want ErrNoSecret", err)
	}
}

// TestEnsureSecret: the first call makes a secret and keeps it owner-only; later calls read
// it back, and so does the server it configures.
func TestEnsureSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "turn-secret")
	s1, err := EnsureSecret(file)
	if err != nil || len(s1.Reveal()) < 43 { // 256 bits in base32
		t.Fatalf("first: %d characters, %v", len(s1.Reveal()), err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file: %v, %v; want mode 0600", st, err)
	}
	s2, err := EnsureSecret(file)
	if err != nil || s2 != s1 {
		t.Errorf("second: %v; want the first secret again", err)
	}
	srv, err := New(Config{Secret: s2})
	if err != nil {
		t.Fatal(err)
	}
	if srv.SharedSecret() != s1 {
		t.Error("SharedSecret is not the configured secret")
	}
	if _, err := EnsureSecret(filepath.Join(file, "not-a-directory")); err == nil {
		t.Error("a path under a file: no error")
	}
}

func TestParseRESTUsername(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		expiry int64
		id     string
	}{
		{"1700000000:alice", true, 1700000000, "alice"},
		{"1700000000:a:b", true, 1700000000, "a:b"},
		{"1700000000", true, 1700000000, "1700000000"},
		{"1700000000:", true, 1700000000, "1700000000:"},
		{"alice:1700000000", false, 0, ""},
		{":alice", false, 0, ""},
		{"-5:alice", false, 0, ""},
		{"99999999999999999999:x", false, 0, ""},
		{"", false, 0, ""},
	}
	for _, tt := range tests {
		exp, id, ok := parseRESTUsername(tt.in)
		if ok != tt.ok || ok && (exp.Unix() != tt.expiry || id != tt.id) {
			t.Errorf("parseRESTUsername(%q) = %v, %q, %v; want %d, %q, %v", tt.in, exp.Unix(), id, ok, tt.expiry, tt.id, tt.ok)
		}
	}
}

func TestPeerPolicy(t *testing.T) {
	p := peerPolicy{
		allow: []netip.Prefix{mustPrefix("127.0.0.1/32"), mustPrefix("10.1.2.0/24")},
		deny:  []netip.Prefix{mustPrefix("10.0.0.0/8"), mustPrefix("fd00::/8")},
	}
	tests := []struct {
		ip   string
		want Cause
	}{
		{"127.0.0.1", ""},
		{"::ffff:127.0.0.1", ""},
		{"127.0.0.2", CausePeerLoopback},
		{"::1", CausePeerLoopback},
		{"169.254.1.1", CausePeerLinkLocal},
		{"fe80::1", CausePeerLinkLocal},
		{"0.0.0.0", CausePeerUnspecified},
		{"0.255.0.1", CausePeerUnspecified},
		{"::", CausePeerUnspecified},
		{"239.1.1.1", CausePeerMulticast},
		{"ff02::1", CausePeerMulticast},
		{"255.255.255.255", CausePeerMulticast},
		{"10.9.9.9", CausePeerDenyList},
		{"::ffff:10.9.9.9", CausePeerDenyList},
		{"10.1.2.3", ""},
		{"fd12::1", CausePeerDenyList},
		{"192.0.2.1", ""},
		{"2001:db8::1", ""},
	}
	for _, tt := range tests {
		if got := p.check(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("check(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	if got := p.check(addrOf(net.IP(nil))); got != CauseBadRequest {
		t.Errorf("check(nil) = %q", got)
	}

	// The exact list: its IPs are permitted, only to its ports, unless allowed otherwise.
	e := newPeerPolicy([]netip.Prefix{mustPrefix("10.1.2.0/24")}, []netip.Prefix{mustPrefix("10.0.0.0/8")},
		[]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:10000"), netip.MustParseAddrPort("10.9.9.9:10000"),
			netip.MustParseAddrPort("10.1.2.3:10000")})
	for _, tt := range []struct {
		ap        string
		permitted bool
		port      bool
	}{
		{"127.0.0.1:10000", true, true},
		{"127.0.0.1:5290", true, false},
		{"[::ffff:127.0.0.1]:5290", true, false},
		{"127.0.0.2:10000", false, true}, // not in the exact list: the policy decides, the port check does not
		{"10.9.9.9:10000", true, true},
		{"10.9.9.9:53", true, false},
		{"10.1.2.3:53", true, true}, // allowed by the allow list anyway
		{"192.0.2.1:53", true, true},
	} {
		ap := netip.MustParseAddrPort(tt.ap)
		if got := e.check(ap.Addr()) == ""; got != tt.permitted {
			t.Errorf("check(%s) permitted = %v, want %v", ap.Addr(), got, tt.permitted)
		}
		if got := e.portAllowed(ap); got != tt.port {
			t.Errorf("portAllowed(%s) = %v, want %v", ap, got, tt.port)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for _, c := range []stun.ErrorCode{400, 401, 403, 438, 486, 508} {
		m := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
			stun.NewSoftware("x"), stun.ErrorCodeAttribute{Code: c}, stun.NewNonce("n"))
		if got := errorCode(m.Raw); got != int(c) {
			t.Errorf("errorCode = %d, want %d", got, c)
		}
	}
	m := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse), stun.NewSoftware("x"))
	if got := errorCode(m.Raw); got != 0 {
		t.Errorf("no ERROR-CODE: %d", got)
	}
	// An attribute length past the end stops the walk.
	raw := append([]byte(nil), m.Raw...)
	raw[stunHeaderSize+3] = 200
	if got := errorCode(raw); got != 0 {
		t.Errorf("truncated: %d", got)
	}
}

func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(time.Minute)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		cause    Cause
		at       time.Duration
		ok       bool
		wantHeld int
	}{
		{CauseExpired, 0, true, 0},
		{CauseExpired, time.Second, false, 0},
		{CauseExpired, 30 * time.Second, false, 0},
		{CauseBadPassword, 31 * time.Second, true, 0},
		{CauseExpired, 61 * time.Second, true, 2},
		{CauseExpired, 62 * time.Second, false, 0},
		{CauseExpired, 200 * time.Second, true, 1},
	}
	for i, s := range steps {
		ok, held := l.allow(s.cause, t0.Add(s.at))
		if ok != s.ok || held != s.wantHeld {
			t.Errorf("step %d (%s at %v): %v, %d; want %v, %d", i, s.cause, s.at, ok, held, s.ok, s.wantHeld)
		}
	}
}

func TestBucket(t *testing.T) {
	b := newBucket(1000, 100)
	t0 := time.Unix(0, 0)
	steps := []struct {
		n  int
		at time.Duration
		ok bool
	}{
		{600, 0, true},
		{500, 0, false}, // 400 left
		{400, 0, true},
		{1, 0, false},
		{500, 500 * time.Millisecond, true}, // 500 refilled
		{1000, 10 * time.Second, true},      // capped at the burst
		{1, 10 * time.Second, false},
	}
	for i, s := range steps {
		if got := b.take(s.n, t0.Add(s.at)); got != s.ok {
			t.Errorf("step %d: take(%d) = %v, want %v", i, s.n, got, s.ok)
		}
	}
}

func TestICEURLs(t *testing.T) {
	got := ICEURLs("turn.example.com", 3478, 3478, 443)
	want := []string{"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp", "turns:turn.example.com:443?transport=tcp"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := ICEURLs("2001:db8::1", 3478, 0, 0); !slices.Equal(got, []string{"turn:[2001:db8::1]:3478?transport=udp"}) {
		t.Errorf("IPv6: %q", got)
	}
}

func TestRelayIPs(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name              string
		relay, bind       string
		local             string
		wantRelay, wantBd string
		wantErr           error
	}{
		{"listener's address", "", "", "127.0.0.1", "127.0.0.1", "127.0.0.1", nil},
		{"public address, specific listener", "203.0.113.5", "", "10.0.0.5", "203.0.113.5", "10.0.0.5", nil},
		{"public address, wildcard listener", "203.0.113.5", "", "0.0.0.0", "203.0.113.5", "0.0.0.0", nil},
		{"bind given", "203.0.113.5", "10.0.0.6", "0.0.0.0", "203.0.113.5", "10.0.0.6", nil},
		{"wildcard without relay", "", "", "0.0.0.0", "", "", ErrNoRelayIP},
		{"IPv6 wildcard", "2001:db8::5", "", "::", "2001:db8::5", "::", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			if tt.relay != "" {
				cfg.RelayIP = a(tt.relay)
			}
			if tt.bind != "" {
				cfg.RelayBindIP = a(tt.bind)
			}
			s := &Server{cfg: cfg}
			relay, bind, err := s.relayIPs(a(tt.local))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (relay.String() != tt.wantRelay || bind.String() != tt.wantBd) {
				t.Errorf("relay %s bind %s, want %s %s", relay, bind, tt.wantRelay, tt.wantBd)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"ports reversed", Config{MinPort: 5000, MaxPort: 4000}},
		{"max message too small", Config{MaxMessageSize: 100}},
		{"empty password", Config{Users: map[string]secret.Secret{"u": {}}}},
		{"invalid prefix", Config{DenyPeers: []netip.Prefix{{}}}},
		{"exact peer without port", Config{AllowPeerAddrs: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// TestShutdown: Shutdown ends the Serve methods, closes the allocations and the client
// connections, and later Serves return ErrServerClosed at once.
func TestShutdown(t *testing.T) {
	ts := startServer(t, nil)
	user, pass := credentials(t, "ivy")
	var relays []net.PacketConn
	for _, transport := range []string{TransportUDP, TransportTCP, TransportTLS} {
		relay, err := ts.newClient(t, transport, user, pass).Allocate()
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, relay)
	}
	if n := len(ts.Allocations()); n != 3 {
		t.Fatalf("%d allocations, want 3", n)
	}
	// A connection in the middle of nothing (no TLS handshake yet).
	idle, err := net.Dial("tcp4", ts.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ts.shutdown(t)
	if n := len(ts.Allocations()); n != 0 {
		t.Errorf("%d allocations after Shutdown", n)
	}
	for _, tr := range []string{TransportTCP, TransportTLS} {
		if got := metricValue(t, ts.reg, "confab_turn_connections", "transport", tr); got != 0 {
			t.Errorf("connections{%s} = %v after Shutdown", tr, got)
		}
	}
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("a connection still open after Shutdown")
	}
	// The relayed addresses are free again.
	for _, r := range relays {
		pc, err := net.ListenPacket("udp4", r.LocalAddr().String())
		if err != nil {
			t.Errorf("relayed address %s still bound: %v", r.LocalAddr(), err)
			continue
		}
		pc.Close()
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.ServeUDP(pc); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeUDP after Shutdown: %v", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.ServeTCP(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeTCP after Shutdown: %v", err)
	}
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestServeUDPNeedsRelayIP: a UDP socket on all addresses without RelayIP is refused.
func TestServeUDPNeedsRelayIP(t *testing.T) {
	s, err := New(Config{Secret: secret.New("k")})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := s.ServeUDP(pc); !errors.Is(err, ErrNoRelayIP) {
		t.Errorf("ServeUDP = %v, want ErrNoRelayIP", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeTLS(l); !errors.Is(err, ErrNoTLS) {
		t.Errorf("ServeTLS without Config.TLS = %v, want ErrNoTLS", err)
	}
}
