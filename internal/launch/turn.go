package launch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/callbridge"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
)

// TURNConfig turns a [turn] section into the TURN server's Config (without TLS, logger
// and metrics). It does not insist on credentials: `confab turn` does, and an embedded
// server generates a secret.
func TURNConfig(c config.TURN) (turnd.Config, error) {
	sec, err := c.Secret()
	if err != nil {
		return turnd.Config{}, err
	}
	tc := turnd.Config{
		Realm:                 c.Realm,
		Secret:                sec,
		Users:                 c.UserSecrets(),
		MinPort:               uint16(c.Relay.MinPort),
		MaxPort:               uint16(c.Relay.MaxPort),
		MaxAllocationsPerUser: c.Quotas.PerUser,
		MaxAllocations:        c.Quotas.Total,
		Bandwidth:             c.Quotas.Bandwidth,
		MaxConnections:        c.Quotas.Connections,
	}
	ip := func(name, s string) (netip.Addr, error) {
		if s == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return a, fmt.Errorf("turn.relay.%s: %w", name, err)
		}
		return a, nil
	}
	if tc.RelayIP, err = ip("ip", c.Relay.IP); err != nil {
		return tc, err
	}
	if tc.RelayBindIP, err = ip("bind_ip", c.Relay.BindIP); err != nil {
		return tc, err
	}
	if tc.DenyPeers, err = prefixes("deny", c.Peers.Deny); err != nil {
		return tc, err
	}
	if tc.AllowPeers, err = prefixes("allow", c.Peers.Allow); err != nil {
		return tc, err
	}
	return tc, nil
}

// prefixes parses CIDRs of [turn.peers]; a bare address is a /32 or /128.
func prefixes(name string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("turn.peers.%s: %q: %w", name, s, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("turn.peers.%s: %w", name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Off reports whether a listener setting turns the listener off.
func Off(addr string) bool { return addr == "" || addr == "off" }

// EmbeddedTURN is the TURN server a Call Bridge runs beside itself: started by
// StartCallBridge when the configuration has a [turn] section (and by `confab up`), its
// metrics on the Call Bridge's registry, its allocations in the REST API, and offered to
// browsers as the turnServer EmbeddedTURNID.
type EmbeddedTURN struct {
	Server *turnd.Server
	// UDP, TCP and TLS are the bound listener addresses, "" for a listener that is off.
	UDP, TCP, TLS string
	// Host is the address browsers are told to use (the turnServer's serverAddress host).
	Host string
}

// EmbeddedTURNID is the id of the embedded TURN server in /api/v1/turnServers.
var EmbeddedTURNID = callbridge.EmbeddedTURNID

// embeddedPeers is the embedded server's default peer policy: nothing may be relayed to
// but the Call Bridge's media port (AllowPeerAddrs), unless [turn.peers] allow says so.
var embeddedPeers = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// turnListen are the addresses an embedded TURN server binds; TLS is tried in order (the
// first that binds wins: 443 where it is free, else 5349).
type turnListen struct {
	UDP, TCP string
	TLS      []string
	Host     string // the host clients use; empty: the listeners' host or the relay address
}

// startEmbeddedTURN binds the TURN listeners of c and starts serving them in g. media are
// the Call Bridge's media addresses (the only peers by default).
func startEmbeddedTURN(g *group, c config.TURN, l turnListen, dataDir string, tlsCfg *tls.Config,
	media []netip.AddrPort, reg prometheus.Registerer, log *slog.Logger) (_ *EmbeddedTURN, err error) {
	tc, err := TURNConfig(c)
	if err != nil {
		return nil, err
	}
	if tc.Secret.IsZero() {
		if tc.Secret, err = turnd.EnsureSecret(filepath.Join(dataDir, "turn-secret")); err != nil {
			return nil, err
		}
	}
	tc.DenyPeers = append(append([]netip.Prefix(nil), embeddedPeers...), tc.DenyPeers...)
	tc.AllowPeerAddrs = media
	tc.TLS, tc.Logger, tc.Metrics = tlsCfg, log.With("component", "turn"), reg
	srv, err := turnd.New(tc)
	if err != nil {
		return nil, err
	}
	e := &EmbeddedTURN{Server: srv}
	var closers []func()
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
		}
	}()
	var serves []func()
	if !Off(l.UDP) {
		pc, err := net.ListenPacket("udp", l.UDP)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (turn udp): %w", l.UDP, err)
		}
		closers = append(closers, func() { pc.Close() })
		if a := pc.LocalAddr().(*net.UDPAddr); a.IP.IsUnspecified() && !tc.RelayIP.IsValid() {
			return nil, fmt.Errorf("turn udp %s is on all addresses: set [turn.relay] ip to the address clients reach, or listen on one address", l.UDP)
		}
		e.UDP = pc.LocalAddr().String()
		serves = append(serves, func() { g.run("turn udp", func() error { return srv.ServeUDP(pc) }) })
	}
	if !Off(l.TCP) {
		ln, err := listen("turn tcp", l.TCP)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { ln.Close() })
		e.TCP = ln.Addr().String()
		serves = append(serves, func() { g.run("turn tcp", func() error { return srv.ServeTCP(ln) }) })
	}
	var tlsErrs []error
	for _, addr := range l.TLS {
		if Off(addr) {
			break
		}
		ln, err := listen("turn tls", addr)
		if err != nil {
			tlsErrs = append(tlsErrs, err)
			continue
		}
		closers = append(closers, func() { ln.Close() })
		e.TLS = ln.Addr().String()
		serves = append(serves, func() { g.run("turn tls", func() error { return srv.ServeTLS(ln) }) })
		break
	}
	if e.TLS == "" && len(tlsErrs) > 0 {
		return nil, errors.Join(tlsErrs...)
	}
	if len(serves) == 0 {
		return nil, errors.New("turn: every listener is off")
	}
	e.Host = l.Host
	if e.Host == "" {
		e.Host = turnHost(e, tc.RelayIP)
	}
	for _, s := range serves {
		s()
	}
	g.stops = append(g.stops, srv.Shutdown)
	log.Info("TURN server started", "udp", e.UDP, "tcp", e.TCP, "tls", e.TLS, "host", e.Host, "realm", srv.Realm(),
		"peers", fmt.Sprint(media))
	return e, nil
}

// turnHost is the host browsers reach the TURN server at: the listeners' address when it
// is a specific one, else the relay address, else this machine's name.
func turnHost(e *EmbeddedTURN, relay netip.Addr) string {
	for _, a := range []string{e.UDP, e.TCP, e.TLS} {
		if a == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(a); err == nil && !ap.Addr().IsUnspecified() {
			return ap.Addr().Unmap().String()
		}
	}
	if relay.IsValid() {
		return relay.String()
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// portOf returns the port of a host:port, 0 when there is none.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// registerEmbeddedTURN writes the embedded server into /api/v1/turnServers (id
// EmbeddedTURNID) as it listens now, keeping a clientAddress an administrator set; with e
// nil it removes it, so that browsers are not sent to a server that is not running.
func registerEmbeddedTURN(ctx context.Context, st *store.Store, e *EmbeddedTURN) error {
	if e == nil {
		err := st.DeleteObject(ctx, store.KindTURNServer, EmbeddedTURNID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	}
	port := portOf(e.UDP)
	if port == 0 {
		port = portOf(e.TCP)
	}
	if port == 0 {
		port = portOf(e.TLS)
	}
	set := func(f map[string]string) {
		f["serverAddress"] = net.JoinHostPort(e.Host, strconv.Itoa(port))
		f["type"] = "standard"
		f["embedded"] = "true"
		f["sharedSecret"] = e.Server.SharedSecret().Reveal()
		delete(f, "username")
		delete(f, "password")
		delete(f, "tcpPortNumberOverride")
		delete(f, "tlsPortNumber")
		if p := portOf(e.TCP); p != 0 {
			f["tcpPortNumberOverride"] = strconv.Itoa(p)
		}
		if p := portOf(e.TLS); p != 0 {
			f["tlsPortNumber"] = strconv.Itoa(p)
		}
		delete(f, "udpDisabled")
		delete(f, "tcpDisabled")
		if e.UDP == "" {
			f["udpDisabled"] = "true"
		}
		if e.TCP == "" {
			f["tcpDisabled"] = "true"
		}
	}
	_, err := st.UpdateObject(ctx, store.KindTURNServer, EmbeddedTURNID, func(o *store.Object) error {
		set(o.Fields)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		f := map[string]string{}
		set(f)
		_, err = st.CreateObject(ctx, store.Object{ID: EmbeddedTURNID, Kind: store.KindTURNServer, Fields: f})
	}
	return err
}

// mediaPeers are the addresses the embedded TURN server may relay to: the media UDP port
// on the SFU's address (each interface's when it listens on all), and on the public
// addresses it advertises.
func mediaPeers(udp *net.UDPAddr, public []string) []netip.AddrPort {
	port := uint16(udp.Port)
	var out []netip.AddrPort
	add := func(a netip.Addr) {
		if a.IsValid() && !a.IsUnspecified() {
			out = append(out, netip.AddrPortFrom(a.Unmap(), port))
		}
	}
	if ip, ok := netip.AddrFromSlice(udp.IP); ok && !ip.IsUnspecified() {
		add(ip)
	} else if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(n.IP)
				add(ip)
			}
		}
	}
	for _, p := range public {
		ip, _ := netip.ParseAddr(p)
		add(ip)
	}
	return out
}
