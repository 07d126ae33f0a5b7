package turnd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/secret"
)

const (
	testRealm  = "turn.test"
	testSecret = "north-wind"
)

var loopback32 = netip.MustParsePrefix("127.0.0.1/32")

// testPKI is a CA and a certificate for localhost and 127.0.0.1.
type testPKI struct {
	cert              tls.Certificate
	roots             *x509.CertPool
	certFile, keyFile string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := certs.NewCA("turnd test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(certs.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &testPKI{cert: pair.Cert, roots: ca.Pool(),
		certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	if err := pair.WriteFiles(p.certFile, p.keyFile); err != nil {
		t.Fatal(err)
	}
	return p
}

// testServer is a Server serving UDP, TCP and TLS on 127.0.0.1.
type testServer struct {
	*Server
	reg                       *prometheus.Registry
	pki                       *testPKI
	udpAddr, tcpAddr, tlsAddr string
	udpDone, tcpDone, tlsDone chan error
	shutdownOnce              bool
}

// startServer starts a server on loopback with the test secret, the peers of 127.0.0.1
// allowed, and whatever edit changes; it is shut down when the test ends.
func startServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	p := newPKI(t)
	reg := prometheus.NewRegistry()
	cfg := Config{
		Realm:      testRealm,
		Secret:     secret.New(testSecret),
		TLS:        &tls.Config{Certificates: []tls.Certificate{p.cert}, MinVersion: tls.VersionTLS12},
		AllowPeers: []netip.Prefix{loopback32},
		Metrics:    reg,
		Logger:     testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, reg: reg, pki: p,
		udpAddr: pc.LocalAddr().String(), tcpAddr: tl.Addr().String(), tlsAddr: sl.Addr().String(),
		udpDone: make(chan error, 1), tcpDone: make(chan error, 1), tlsDone: make(chan error, 1)}
	go func() { ts.udpDone <- s.ServeUDP(pc) }()
	go func() { ts.tcpDone <- s.ServeTCP(tl) }()
	go func() { ts.tlsDone <- s.ServeTLS(sl) }()
	t.Cleanup(func() { ts.shutdown(t) })
	return ts
}

// shutdown stops the server and checks that every Serve returned ErrServerClosed.
func (ts *testServer) shutdown(t *testing.T) {
	t.Helper()
	if ts.shutdownOnce {
		return
	}
	ts.shutdownOnce = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	for name, ch := range map[string]chan error{"ServeUDP": ts.udpDone, "ServeTCP": ts.tcpDone, "ServeTLS": ts.tlsDone} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("%s returned %v, want ErrServerClosed", name, err)
			}
		case <-ctx.Done():
			t.Errorf("%s did not return after Shutdown", name)
		}
	}
}

// testLogger logs to standard error with -v, and nowhere otherwise.
func testLogger(*testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// refusedCount returns confab_turn_refused_total{cause}.
func (ts *testServer) refusedCount(t *testing.T, c Cause) float64 {
	t.Helper()
	return metricValue(t, ts.reg, "confab_turn_refused_total", "cause", string(c))
}

// metricValue returns the value of the series of name whose label has value.
func metricValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.Counter != nil {
						return m.Counter.GetValue()
					}
					return m.Gauge.GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// waitFor polls cond every 10ms until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// dial returns a client socket to the server over transport: a UDP socket, or a TCP or TLS
// connection framed by pion's STUNConn.
func (ts *testServer) dial(t *testing.T, transport string) (net.PacketConn, string) {
	t.Helper()
	return dialTURN(t, transport, map[string]string{TransportUDP: ts.udpAddr, TransportTCP: ts.tcpAddr, TransportTLS: ts.tlsAddr}[transport], ts.pki.roots)
}

func dialTURN(t *testing.T, transport, addr string, roots *x509.CertPool) (net.PacketConn, string) {
	t.Helper()
	var pc net.PacketConn
	switch transport {
	case TransportUDP:
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc = c
	case TransportTCP:
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		pc = turn.NewSTUNConn(c)
	case TransportTLS:
		c, err := tls.Dial("tcp4", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		pc = turn.NewSTUNConn(c)
	default:
		t.Fatalf("transport %q", transport)
	}
	t.Cleanup(func() { pc.Close() })
	return pc, addr
}

// newClient returns a pion TURN client over transport with the given credentials.
func (ts *testServer) newClient(t *testing.T, transport, user, pass string) *turn.Client {
	t.Helper()
	pc, addr := ts.dial(t, transport)
	return pionClient(t, pc, addr, user, pass)
}

func pionClient(t *testing.T, pc net.PacketConn, addr, user, pass string) *turn.Client {
	t.Helper()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, Username: user, Password: pass,
		Conn: pc, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// codeOf returns the STUN error code of a pion client error, 0 for nil, -1 for another
// error.
func codeOf(err error) int {
	var te *stun.TurnError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &te):
		return int(te.ErrorCodeAttr.Code)
	}
	return -1
}

// echoPeer is a UDP peer on loopback that sends back what it receives.
func echoPeer(t *testing.T) net.Addr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := pc.WriteTo(buf[:n], from); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr()
}

// credentials issues test credentials for user, valid for an hour.
func credentials(t *testing.T, user string) (string, string) {
	t.Helper()
	c, err := IssueCredentials(secret.New(testSecret), user, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return c.Username, c.Password.Reveal()
}

// rawClient speaks STUN by hand, for the requests a well-behaved client never sends.
type rawClient struct {
	t      *testing.T
	pc     net.PacketConn
	server net.Addr
	user   string
	pass   string
	realm  string
	nonce  stun.Nonce
	// realmOverride, if set, is sent instead of the realm the server gave.
	realmOverride string
}

func (ts *testServer) raw(t *testing.T, transport, user, pass string) *rawClient {
	t.Helper()
	pc, addr := ts.dial(t, transport)
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, pc: pc, server: ua, user: user, pass: pass}
}

// roundTrip sends m and returns the response with its transaction id, or nil after 3s.
func (c *rawClient) roundTrip(m *stun.Message) *stun.Message {
	c.t.Helper()
	if _, err := c.pc.WriteTo(m.Raw, c.server); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c.read(m.TransactionID, 3*time.Second)
}

// read returns the next message with transaction id, or nil after wait.
func (c *rawClient) read(id [stun.TransactionIDSize]byte, wait time.Duration) *stun.Message {
	c.t.Helper()
	buf := make([]byte, 65536)
	_ = c.pc.SetReadDeadline(time.Now().Add(wait))
	for range 100 {
		n, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			return nil
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() == nil && res.TransactionID == id {
			return res
		}
	}
	return nil
}

// code returns a response's error code, 0 for success, -1 for none.
func code(m *stun.Message) int {
	if m == nil {
		return -1
	}
	if m.Type.Class == stun.ClassSuccessResponse {
		return 0
	}
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		return -2
	}
	return int(ec.Code)
}

type rawAttr struct {
	typ stun.AttrType
	v   []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.typ, a.v); return nil }

var udpTransport = rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}

type xorPeer netip.AddrPort

func (p xorPeer) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(p)
	return stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
}

// request sends an authenticated request (after a 401 that gives the nonce, if none is
// known yet) and returns the response.
func (c *rawClient) request(method stun.Method, attrs ...stun.Setter) *stun.Message {
	c.t.Helper()
	for range 3 {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != nil {
			realm := c.realm
			if c.realmOverride != "" {
				realm = c.realmOverride
			}
			setters = append(setters, stun.NewUsername(c.user), stun.NewRealm(realm), c.nonce,
				stun.NewLongTermIntegrity(c.user, realm, c.pass))
		}
		setters = append(setters, stun.Fingerprint)
		res := c.roundTrip(stun.MustBuild(setters...))
		if cd := code(res); (cd == 401 && c.nonce == nil) || cd == 438 {
			var realm stun.Realm
			if err := c.nonce.GetFrom(res); err != nil {
				c.t.Fatalf("%d without a nonce: %v", cd, err)
			}
			if err := realm.GetFrom(res); err != nil {
				c.t.Fatalf("%d without a realm: %v", cd, err)
			}
			c.realm = realm.String()
			continue
		}
		return res
	}
	c.t.Fatal("no answer but 401/438 three times")
	return nil
}

// allocate requests a UDP allocation and returns the error code (0: success).
func (c *rawClient) allocate() int {
	c.t.Helper()
	return code(c.request(stun.MethodAllocate, udpTransport))
}

func (c *rawClient) permission(peer netip.AddrPort) int {
	c.t.Helper()
	return code(c.request(stun.MethodCreatePermission, xorPeer(peer)))
}

// release deletes the allocation (Refresh with lifetime 0).
func (c *rawClient) release() int {
	c.t.Helper()
	return code(c.request(stun.MethodRefresh, rawAttr{stun.AttrLifetime, []byte{0, 0, 0, 0}}))
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
