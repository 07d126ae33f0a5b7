// Package linktest supports tests of the Call Bridge's XMPP link and of `confab diagnose`: a
// certificate authority that issues server certificates per test, and a small component
// server on loopback (real TLS, the real XEP-0114 accept side from package component) that
// can be stopped, restarted on the same port, and told to go silent — faults the full XMPP
// server (package xmppd) is not built to stage.
package linktest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// PKI is a test certificate authority.
type PKI struct {
	CA *certs.CA
}

// NewPKI makes a CA named name.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	ca, err := certs.NewCA(name, time.Hour)
	if err != nil {
		t.Fatalf("linktest: new CA: %v", err)
	}
	return &PKI{CA: ca}
}

// Pool returns a pool trusting the CA.
func (p *PKI) Pool() *x509.CertPool { return p.CA.Pool() }

// Issue issues a certificate; names that parse as IP addresses become IP SANs.
func (p *PKI) Issue(t testing.TB, o certs.Options, names ...string) *certs.Pair {
	t.Helper()
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			o.IPs = append(o.IPs, ip)
		} else {
			o.DNSNames = append(o.DNSNames, n)
		}
	}
	if o.CommonName == "" && len(names) > 0 {
		o.CommonName = names[0]
	}
	pair, err := p.CA.Issue(o)
	if err != nil {
		t.Fatalf("linktest: issue %v: %v", names, err)
	}
	return pair
}

// Config configures a Server.
type Config struct {
	// Domain is the XMPP domain.
	Domain string
	// Cert is the server certificate.
	Cert tls.Certificate
	// ClientCAs and RequireClientCert ask for (and with RequireClientCert require) a
	// client certificate.
	ClientCAs         *x509.CertPool
	RequireClientCert bool
	// Components maps a registered name (cb1) to its shared secret.
	Components map[string]string
	// Addr is where to listen (default 127.0.0.1:0).
	Addr string
}

// Server is a component server on loopback.
type Server struct {
	cfg    Config
	tls    *tls.Config
	silent atomic.Bool
	// Got receives the elements the components send, other than pings (buffered; elements
	// are dropped when it is full).
	Got chan *stream.Element
	// Pinged receives a token for each XEP-0199 ping the server answers (buffered; tokens
	// are dropped when it is full).
	Pinged chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a component connects or leaves
	addr    string
	ln      net.Listener
	conns   map[*component.Conn]struct{}
	accept  int
	snis    []string
	wg      sync.WaitGroup
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	tc, err := certs.ServerConfig(certs.ServerOptions{Certificates: []tls.Certificate{cfg.Cert}})
	if err != nil {
		t.Fatalf("linktest: %v", err)
	}
	if cfg.ClientCAs != nil {
		tc.ClientCAs = cfg.ClientCAs
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if cfg.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	s := &Server{cfg: cfg, tls: tc, Got: make(chan *stream.Element, 64), Pinged: make(chan struct{}, 64),
		conns: make(map[*component.Conn]struct{}), changed: make(chan struct{})}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := s.listen(addr); err != nil {
		t.Fatalf("linktest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// SNIs returns the server names (TLS SNI) the clients sent, one per TLS handshake, in order.
func (s *Server) SNIs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.snis...)
}

// Addr returns the listening address, 127.0.0.1:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Port returns the listening port.
func (s *Server) Port() uint16 {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

// Accepted returns how many components have registered.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accept
}

// Connected returns the JIDs of the components connected now.
func (s *Server) Connected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for c := range s.conns {
		out = append(out, c.JID())
	}
	return out
}

// WaitConnected waits until exactly the components jids are connected, and fails the test
// if that does not happen within 10s.
func (s *Server) WaitConnected(t testing.TB, jids ...string) {
	t.Helper()
	want := strings.Join(slices.Sorted(slices.Values(jids)), ",")
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		got := strings.Join(slices.Sorted(slices.Values(s.Connected())), ",")
		if got == want {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("linktest: connected components are [%s], want [%s]", got, want)
		}
	}
}

// notifyLocked wakes WaitConnected; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// SetSilent makes the server stop answering anything (pings included) on its links, as a
// peer that hung without closing would; false resumes.
func (s *Server) SetSilent(v bool) { s.silent.Store(v) }

// Send writes raw XML to every connected component.
func (s *Server) Send(b []byte) error {
	s.mu.Lock()
	conns := make([]*component.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if len(conns) == 0 {
		return errors.New("linktest: no component connected")
	}
	for _, c := range conns {
		if err := c.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Stop closes the listener and every link (with a system-shutdown stream error), and waits
// for the server's goroutines.
func (s *Server) Stop() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	conns := s.conns
	s.conns = make(map[*component.Conn]struct{})
	s.notifyLocked()
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for c := range conns {
		_ = c.Close(stream.SystemShutdown, "test server stopping")
	}
	s.wg.Wait()
}

// Restart listens again on the same address after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.listen(s.Addr()); err != nil {
		t.Fatalf("linktest: restart: %v", err)
	}
}

func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln = ln
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.handle(nc)
			}()
		}
	}()
	return nil
}

func (s *Server) lookup(jid string) (string, secret.Secret, bool) {
	name, ok := strings.CutSuffix(jid, "."+s.cfg.Domain)
	if !ok {
		return "", secret.Secret{}, false
	}
	sec, ok := s.cfg.Components[name]
	return name, secret.New(sec), ok
}

func (s *Server) handle(nc net.Conn) {
	tc := tls.Server(nc, s.tls)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return
	}
	s.mu.Lock()
	s.snis = append(s.snis, tc.ConnectionState().ServerName)
	s.mu.Unlock()
	c, err := component.Accept(ctx, tc, component.AcceptConfig{Domain: s.cfg.Domain, Lookup: s.lookup})
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.ln == nil { // stopped meanwhile
		s.mu.Unlock()
		_ = c.Close(stream.SystemShutdown, "")
		return
	}
	s.conns[c] = struct{}{}
	s.accept++
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.conns[c]; ok {
			delete(s.conns, c)
			s.notifyLocked()
		}
		s.mu.Unlock()
		_ = c.Close("", "")
	}()
	for {
		e, err := c.Next()
		if err != nil {
			return
		}
		if s.silent.Load() {
			continue
		}
		if e.Name.Local == "iq" && e.Get("type") == "get" && strings.Contains(string(e.Inner), "urn:xmpp:ping") {
			reply := `<iq type="result" id="` + stream.Escape(e.Get("id")) + `" from="` + stream.Escape(e.Get("to")) +
				`" to="` + stream.Escape(e.Get("from")) + `"/>`
			if err := c.Write([]byte(reply)); err != nil {
				return
			}
			select {
			case s.Pinged <- struct{}{}:
			default:
			}
			continue
		}
		select {
		case s.Got <- e:
		default:
		}
	}
}
