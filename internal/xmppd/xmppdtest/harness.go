// Package xmppdtest starts a real Confab XMPP server for tests: listeners on 127.0.0.1:0
// (c2s, component, HTTPS with XMPP over WebSocket, admin), a CA and server certificate made
// for the test, a Call Bridge registry file, and optionally a connected test Call Bridge that
// checks logins with loginrelay against an in-memory user table. It also has a small XMPP
// client (STARTTLS, SCRAM and PLAIN, resource binding, raw elements) for driving the server.
//
//	h := xmppdtest.Start(t, xmppdtest.Options{})
//	alice := h.Login(t, "alice")
//	bob := h.Login(t, "bob")
//	alice.Send(t, `<message to='`+bob.JID+`'><body>hi</body></message>`)
//
// Everything the harness starts is stopped by t.Cleanup, and the server's Shutdown must
// succeed there.
package xmppdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/throttle"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/callbridges"
)

// DefaultUsers are the users of the test Call Bridges' directory, by username.
var DefaultUsers = map[string]string{"alice": "alice-secret-1", "bob": "bob-secret-2"}

// DefaultCallBridge is the name under which the test Call Bridge registers.
const DefaultCallBridge = "cb1"

// Options configure Start. The zero value is a working server for example.com with the test
// Call Bridge cb1 connected and users alice and bob.
type Options struct {
	// Domain is the XMPP domain (default example.com).
	Domain string
	// Users maps usernames to passwords (default DefaultUsers).
	Users map[string]string
	// NoCallBridge starts the server without a connected Call Bridge (cb1 is still in the
	// registry; ConnectCallBridge connects it).
	NoCallBridge bool
	// CertDNSNames are the DNS subjectAltNames of the server certificate (default: Domain and
	// localhost); the IP SAN 127.0.0.1 is always there. Tests of certificate checks (a
	// certificate missing the domain or the server's name) set it.
	CertDNSNames []string
	// MutualTLS makes the component port require a client certificate issued by the test
	// CA; the harness's Call Bridges present ClientCert.
	MutualTLS bool
	// Config, if set, adjusts the server's configuration before New (timeouts, limits...).
	Config func(*xmppd.Config)
	// Logger receives the server's logs (default: the test log, at debug level; discarded
	// when t is a *testing.F).
	Logger *slog.Logger
}

// Harness is a running server and what a test needs to talk to it.
type Harness struct {
	// Domain is the XMPP domain.
	Domain string
	// Server is the running server, and Config the configuration it was built from.
	Server *xmppd.Server
	Config xmppd.Config
	// C2SAddr and ComponentAddr are host:port of the client and component listeners.
	C2SAddr, ComponentAddr string
	// WebSocketURL is the wss:// URL of XMPP over WebSocket; HTTPSURL the base of that server.
	WebSocketURL, HTTPSURL string
	// AdminURL is the http:// base URL of the admin handler (/metrics, /healthz, /callbridges).
	AdminURL string
	// CA issued the server certificate (whose SANs are Domain, localhost and 127.0.0.1) and
	// ClientCert; CAPEM is its certificate, CAFile a file holding it, Roots a pool of it.
	CA         *certs.CA
	CAPEM      []byte
	CAFile     string
	Roots      *x509.CertPool
	ServerCert *certs.Pair
	ClientCert *certs.Pair
	// RegistryPath is the Call Bridge registry file; Registry is it, opened.
	RegistryPath string
	Registry     *callbridges.Registry
	// Users maps usernames to passwords; Directory holds them for the test Call Bridges.
	Users     map[string]string
	Directory *loginrelay.MemoryDirectory
	// CallBridge is the test Call Bridge connected at start (nil with NoCallBridge).
	CallBridge *CallBridge
	// Metrics is the registry the server's metrics are registered on.
	Metrics *prometheus.Registry

	t    testing.TB
	dir  string
	log  *slog.Logger
	wg   sync.WaitGroup
	errs chan error
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB, o Options) *Harness {
	t.Helper()
	h := &Harness{t: t, Domain: o.Domain, dir: t.TempDir(), errs: make(chan error, 2)}
	if h.Domain == "" {
		h.Domain = "example.com"
	}
	h.Users = o.Users
	if h.Users == nil {
		h.Users = maps.Clone(DefaultUsers)
	}
	h.log = o.Logger
	if _, fuzz := t.(*testing.F); fuzz && h.log == nil {
		// A fuzz target's goroutines may not log through the *testing.F.
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	h.makeCerts(t, o.CertDNSNames)

	var err error
	h.RegistryPath = filepath.Join(h.dir, "callbridges.toml")
	if h.Registry, err = callbridges.Open(h.RegistryPath); err != nil {
		t.Fatalf("open registry: %v", err)
	}
	if _, err := h.Registry.Add(DefaultCallBridge); err != nil {
		t.Fatalf("registry: add %s: %v", DefaultCallBridge, err)
	}

	h.Directory = loginrelay.NewMemoryDirectory(h.Domain)
	for u, p := range h.Users {
		if err := h.Directory.Add(u, p); err != nil {
			t.Fatalf("directory: add %s: %v", u, err)
		}
	}

	h.Metrics = prometheus.NewRegistry()
	cfg := xmppd.Config{
		Domain:       h.Domain,
		TLS:          &tls.Config{Certificates: []tls.Certificate{h.ServerCert.Cert}, MinVersion: tls.VersionTLS12},
		Registry:     h.Registry,
		Logger:       h.log,
		Metrics:      h.Metrics,
		OpenTimeout:  5 * time.Second,
		TLSTimeout:   5 * time.Second,
		AuthTimeout:  10 * time.Second,
		RelayTimeout: 5 * time.Second,
		WriteTimeout: 5 * time.Second,
		// Tests (of the Call Bridge's link) retry wrong secrets every few milliseconds; a
		// test of the throttle sets its own ComponentThrottle in Options.Config.
		ComponentThrottle: throttle.Config{Off: true},
	}
	if o.MutualTLS {
		cfg.ComponentClientCAs = h.Roots
		cfg.RequireComponentCert = true
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	h.Config = cfg
	if h.Server, err = xmppd.New(cfg); err != nil {
		t.Fatalf("xmppd.New: %v", err)
	}

	c2s := listen(t)
	comp := listen(t)
	h.C2SAddr, h.ComponentAddr = c2s.Addr().String(), comp.Addr().String()
	h.serve(func() error { return h.Server.ServeC2S(c2s) })
	h.serve(func() error { return h.Server.ServeComponents(comp) })

	mux := http.NewServeMux()
	mux.Handle("/xmpp-websocket", h.Server.WebSocketHandler())
	https := httptest.NewUnstartedServer(mux)
	https.TLS = &tls.Config{Certificates: []tls.Certificate{h.ServerCert.Cert}}
	https.Config.ErrorLog = slog.NewLogLogger(h.log.Handler(), slog.LevelDebug)
	https.StartTLS()
	h.HTTPSURL = https.URL
	h.WebSocketURL = "wss" + strings.TrimPrefix(https.URL, "https") + "/xmpp-websocket"
	admin := httptest.NewServer(h.Server.AdminHandler())
	h.AdminURL = admin.URL

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Server.Shutdown(ctx); err != nil {
			t.Errorf("xmppd shutdown: %v", err)
		}
		h.wg.Wait()
		close(h.errs)
		for err := range h.errs {
			t.Errorf("xmppd serve: %v", err)
		}
		https.Close()
		admin.Close()
	})

	if !o.NoCallBridge {
		h.CallBridge = h.ConnectCallBridge(t, DefaultCallBridge)
	}
	return h
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// serve runs a Serve method until Shutdown; anything but ErrServerClosed is reported.
func (h *Harness) serve(f func() error) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := f(); !errors.Is(err, xmppd.ErrServerClosed) {
			h.errs <- err
		}
	}()
}

func (h *Harness) makeCerts(t testing.TB, dnsNames []string) {
	t.Helper()
	var err error
	if h.CA, err = certs.NewCA("xmppdtest CA", time.Hour); err != nil {
		t.Fatalf("make CA: %v", err)
	}
	h.CAPEM = h.CA.CertPEM
	h.Roots = h.CA.Pool()
	h.CAFile = filepath.Join(h.dir, "ca.pem")
	if err := os.WriteFile(h.CAFile, h.CAPEM, 0o644); err != nil {
		t.Fatalf("write CA: %v", err)
	}
	if dnsNames == nil {
		dnsNames = []string{h.Domain, "localhost"}
	}
	h.ServerCert, err = h.CA.Issue(certs.Options{
		CommonName: h.Domain,
		DNSNames:   dnsNames,
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Server:     true,
	})
	if err != nil {
		t.Fatalf("issue server certificate: %v", err)
	}
	h.ClientCert, err = h.CA.Issue(certs.Options{CommonName: DefaultCallBridge + "." + h.Domain, Client: true})
	if err != nil {
		t.Fatalf("issue client certificate: %v", err)
	}
}

// ClientTLS returns a TLS client configuration that trusts the test CA and checks name.
func (h *Harness) ClientTLS(name string) *tls.Config {
	return &tls.Config{RootCAs: h.Roots, ServerName: name, MinVersion: tls.VersionTLS12}
}

// testWriter sends log lines to t.Log until the test's cleanup begins, then drops them (a
// goroutine logging after the test has ended would make the testing package panic).
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newTestWriter(t testing.TB) io.Writer {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
