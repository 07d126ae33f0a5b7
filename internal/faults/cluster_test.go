package faults

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/certs"
)

// domain is the XMPP domain of every test.
const domain = "example.com"

// pki is a test CA and the certificates it issued, as files the processes read.
type pki struct {
	ca     *certs.CA
	dir    string
	caFile string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca, err := certs.NewCA("confab faults test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, dir: t.TempDir()}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes a server certificate for the domain, localhost, 127.0.0.1 and names.
func (p *pki) issue(t testing.TB, file string, names ...string) (certFile, keyFile string) {
	t.Helper()
	pair, err := p.ca.Issue(certs.Options{
		CommonName: domain,
		DNSNames:   append([]string{domain, "localhost"}, names...),
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Server:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, file+".pem"), filepath.Join(p.dir, file+"-key.pem")
	if err := pair.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// clientTLS verifies a server of the test CA under serverName.
func (p *pki) clientTLS(serverName string) *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool(), ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// xmppServer is a `confab xmpp` process and its configuration; it can be stopped and started
// again on the same ports and data.
type xmppServer struct {
	name                 string
	dir, config          string
	c2s, comp, ws, admin string
	// fqdn is the name Call Bridges connect to (in the certificate beside the domain).
	fqdn string
	proc *proc
	pki  *pki
	// hc reads the admin listener; its short timeout lets a poll try again.
	hc *http.Client
}

// newXMPPServer writes the configuration of an XMPP server whose certificate names the
// domain and fqdn. It does not start it.
func newXMPPServer(t testing.TB, p *pki, name, fqdn string) *xmppServer {
	t.Helper()
	x := &xmppServer{name: name, dir: filepath.Join(t.TempDir(), name), fqdn: fqdn, pki: p,
		hc:  &http.Client{Timeout: 2 * time.Second},
		c2s: freePort(t), comp: freePort(t), ws: freePort(t), admin: freePort(t)}
	cert, key := p.issue(t, name, fqdn)
	x.config = filepath.Join(x.dir, "xmpp.toml")
	cfg := fmt.Sprintf(`domain = %q
data_dir = %q
[listen]
c2s = %q
component = %q
websocket = %q
admin = %q
[tls]
cert = %q
key = %q
[log]
level = "debug"
`, domain, x.dir, x.c2s, x.comp, x.ws, x.admin, cert, key)
	if err := os.MkdirAll(x.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(x.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return x
}

// addCallBridge registers a Call Bridge name (`confab xmpp callbridge add`) and returns the
// secret it printed.
func (x *xmppServer) addCallBridge(t testing.TB, name string) string {
	t.Helper()
	out := runConfab(t, "", "xmpp", "callbridge", "add", name, "-config", x.config)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "secret: "); ok {
			return strings.TrimSpace(s)
		}
	}
	t.Fatalf("xmpp callbridge add printed no secret: %q", out)
	return ""
}

// start starts the server and waits until its admin listener says it is healthy.
func (x *xmppServer) start(t testing.TB) {
	t.Helper()
	x.proc = startProc(t, x.name, "xmpp", "-config", x.config)
	poll(t, 30*time.Second, 20*time.Millisecond, x.name+" healthy", func() (bool, string) {
		h, err := x.health()
		return err == nil && h.Status == "ok", errString(err)
	}, x.proc)
}

// componentAddr is where Call Bridges connect: fqdn and the component port.
func (x *xmppServer) componentAddr() string {
	_, port, _ := net.SplitHostPort(x.comp)
	return net.JoinHostPort(x.fqdn, port)
}

func (x *xmppServer) componentPort() uint16 {
	_, port, _ := net.SplitHostPort(x.comp)
	var n uint16
	fmt.Sscan(port, &n)
	return n
}

type health struct {
	Status      string `json:"status"`
	CallBridges int    `json:"callBridges"`
}

func (x *xmppServer) getJSON(path string, v any) error {
	resp, err := x.hc.Get("http://" + x.admin + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (x *xmppServer) health() (health, error) {
	var h health
	return h, x.getJSON("/healthz", &h)
}

type linkInfo struct {
	Name           string    `json:"name"`
	JID            string    `json:"jid"`
	RemoteAddr     string    `json:"remoteAddress"`
	ConnectedSince time.Time `json:"connectedSince"`
}

// links returns the Call Bridges connected to the server, by name.
func (x *xmppServer) links() (map[string]linkInfo, error) {
	var ls []linkInfo
	if err := x.getJSON("/callbridges", &ls); err != nil {
		return nil, err
	}
	m := make(map[string]linkInfo, len(ls))
	for _, l := range ls {
		m[l.Name] = l
	}
	return m, nil
}

// waitLinks waits until exactly the named Call Bridges are connected.
func (x *xmppServer) waitLinks(t testing.TB, timeout time.Duration, names ...string) map[string]linkInfo {
	t.Helper()
	var got map[string]linkInfo
	poll(t, timeout, 20*time.Millisecond, fmt.Sprintf("%s to have links %v", x.name, names), func() (bool, string) {
		ls, err := x.links()
		if err != nil {
			return false, errString(err)
		}
		got = ls
		if len(ls) != len(names) {
			return false, fmt.Sprintf("links %v", keys(ls))
		}
		for _, n := range names {
			if _, ok := ls[n]; !ok {
				return false, fmt.Sprintf("links %v", keys(ls))
			}
		}
		return true, ""
	}, x.proc)
	return got
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// target is the load tool's client for this server's c2s port.
func (x *xmppServer) target() *bench.Target {
	return &bench.Target{Addr: x.c2s, Domain: domain, TLS: x.pki.clientTLS(domain), Timeout: 10 * time.Second}
}

// login logs user in (STARTTLS, SCRAM-SHA-256, bind) and returns the open session.
func (x *xmppServer) login(ctx context.Context, user, pass, resource string) (*bench.Conn, error) {
	c, _, err := x.target().Login(ctx, user, pass, resource)
	return c, err
}

// callBridge is a `confab callbridge` process, its configuration and an API client.
type callBridge struct {
	name        string
	dir, config string
	apiAddr     string
	proc        *proc
	api         *apiClient
}

// cbOptions are the [xmpp] settings of a Call Bridge's file.
type cbOptions struct {
	DNSServer              string
	BackoffMin, BackoffMax time.Duration
}

// newCallBridge writes a Call Bridge's configuration (its own data directory, the test CA as
// its trust store for the XMPP server) and adds the API account admin. It does not start it.
func newCallBridge(t testing.TB, p *pki, name string, o cbOptions) *callBridge {
	t.Helper()
	cb := &callBridge{name: name, dir: filepath.Join(t.TempDir(), name), apiAddr: freePort(t)}
	cert, key := p.issue(t, name+"-api")
	cb.config = filepath.Join(cb.dir, "callbridge.toml")
	cfg := fmt.Sprintf(`data_dir = %q
[listen]
api = %q
web = %q
[tls]
cert = %q
key = %q
[media]
udp = "127.0.0.1:0"
[xmpp]
ca = %q
`, cb.dir, cb.apiAddr, freePort(t), cert, key, p.caFile)
	if o.DNSServer != "" {
		cfg += fmt.Sprintf("dns_server = %q\n", o.DNSServer)
	}
	if o.BackoffMin > 0 {
		cfg += fmt.Sprintf("backoff_min = %q\n", o.BackoffMin.String())
	}
	if o.BackoffMax > 0 {
		cfg += fmt.Sprintf("backoff_max = %q\n", o.BackoffMax.String())
	}
	cfg += "[log]\nlevel = \"debug\"\n"
	if err := os.MkdirAll(cb.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cb.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	password := rand.Text()
	runConfab(t, password+"\n", "callbridge", "api-user", "add", "admin", "-config", cb.config)
	cb.api = &apiClient{
		base: "https://" + cb.apiAddr,
		user: "admin", pass: password,
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: p.clientTLS("localhost"), MaxIdleConnsPerHost: 16,
		}},
	}
	return cb
}

// start starts the Call Bridge and waits until its API answers.
func (cb *callBridge) start(t testing.TB) {
	t.Helper()
	cb.proc = startProc(t, cb.name, "callbridge", "-config", cb.config)
	poll(t, 30*time.Second, 20*time.Millisecond, cb.name+" API", func() (bool, string) {
		_, err := cb.status(context.Background())
		return err == nil, errString(err)
	}, cb.proc)
}

// configure sets the XMPP settings through the API, as an administrator would.
func (cb *callBridge) configure(t testing.TB, uniqueName, override, secret string) {
	t.Helper()
	form := url.Values{"uniqueName": {uniqueName}, "domain": {domain}, "serverAddressOverride": {override}, "sharedSecret": {secret}}
	if _, err := cb.api.do(context.Background(), http.MethodPut, "/api/v1/system/configuration/xmpp", form); err != nil {
		t.Fatalf("%s: configure: %v", cb.name, err)
	}
}

// addUser creates a local user through the API.
func (cb *callBridge) addUser(t testing.TB, user, pass string) {
	t.Helper()
	if _, err := cb.api.do(context.Background(), http.MethodPost, "/api/v1/users", url.Values{"username": {user}, "password": {pass}}); err != nil {
		t.Fatalf("%s: add user %s: %v", cb.name, user, err)
	}
}

type linkStatus struct {
	State       string    `json:"state"`
	Server      string    `json:"server"`
	Attempt     int       `json:"attempt"`
	NextAttempt time.Time `json:"nextAttempt"`
	LastError   string    `json:"lastError"`
}

func (cb *callBridge) status(ctx context.Context) (linkStatus, error) {
	var doc struct {
		Status struct {
			XMPPLink linkStatus `json:"xmppLink"`
		} `json:"status"`
	}
	err := cb.api.getJSON(ctx, "/api/v1/system/status", &doc)
	return doc.Status.XMPPLink, err
}

type alarm struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	FailureReason string `json:"failureReason"`
	Detail        string `json:"detail"`
}

func (cb *callBridge) alarms(ctx context.Context) ([]alarm, error) {
	var doc struct {
		Alarms struct {
			Total int     `json:"total"`
			Alarm []alarm `json:"alarm"`
		} `json:"alarms"`
	}
	err := cb.api.getJSON(ctx, "/api/v1/system/alarms", &doc)
	return doc.Alarms.Alarm, err
}

type traceEvent struct {
	Seq        uint64    `json:"seq"`
	Attempt    uint64    `json:"attempt"`
	Step       string    `json:"step"`
	Target     string    `json:"target"`
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"durationMs"`
	Outcome    string    `json:"outcome"`
	Cause      string    `json:"cause"`
}

func (cb *callBridge) trace(ctx context.Context) ([]traceEvent, error) {
	var doc struct {
		Trace struct {
			Event []traceEvent `json:"event"`
		} `json:"xmppTrace"`
	}
	err := cb.api.getJSON(ctx, "/api/v1/system/xmppTrace", &doc)
	return doc.Trace.Event, err
}

// waitAlarm waits until the xmppRegistrationFailure alarm is up with the given reason.
func (cb *callBridge) waitAlarm(t testing.TB, timeout time.Duration, reason string) alarm {
	t.Helper()
	var got alarm
	poll(t, timeout, 20*time.Millisecond, cb.name+" alarm "+reason, func() (bool, string) {
		as, err := cb.alarms(context.Background())
		if err != nil {
			return false, errString(err)
		}
		for _, a := range as {
			if a.Type == "xmppRegistrationFailure" && a.FailureReason == reason {
				got = a
				return true, ""
			}
		}
		return false, fmt.Sprintf("alarms %+v", as)
	}, cb.proc)
	return got
}

// waitNoAlarm waits until no alarm is active.
func (cb *callBridge) waitNoAlarm(t testing.TB, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, 20*time.Millisecond, cb.name+" alarms cleared", func() (bool, string) {
		as, err := cb.alarms(context.Background())
		if err != nil {
			return false, errString(err)
		}
		return len(as) == 0, fmt.Sprintf("alarms %+v", as)
	}, cb.proc)
}

// apiClient speaks the REST API: form-encoded writes, JSON reads, HTTP Basic.
type apiClient struct {
	base, user, pass string
	hc               *http.Client
}

// apiError is a response other than 200.
type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("status %d: %s", e.Status, e.Body) }

// do sends a form-encoded request and returns the response's Location header; a status other
// than 200 is an *apiError.
func (a *apiClient) do(ctx context.Context, method, path string, form url.Values) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(a.user, a.pass)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &apiError{Status: resp.StatusCode, Body: string(body)}
	}
	return resp.Header.Get("Location"), nil
}

// getJSON reads a document as JSON.
func (a *apiClient) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	req.Header.Set("Accept", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &apiError{Status: resp.StatusCode, Body: string(body)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w: %s", path, err, body)
	}
	return nil
}
