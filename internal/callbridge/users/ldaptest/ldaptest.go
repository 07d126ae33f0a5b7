// Package ldaptest runs a real OpenLDAP server (Debian's slapd) for tests: a throwaway
// configuration and database in a temporary directory, listening on loopback (plain LDAP, and
// LDAPS with a certificate from a test CA), running as the current user in the foreground, and
// stopped when the test ends.
//
// Tests that use it need the Debian package slapd (and its schemas in /etc/ldap/schema); when
// it is missing, Start skips or fails the test as internal/testenv decides.
package ldaptest

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/testenv"
)

// Where Debian installs slapd and what it needs.
const (
	slapdPath  = "/usr/sbin/slapd"
	schemaDir  = "/etc/ldap/schema"
	modulePath = "/usr/lib/ldap"
)

// The directory every Server holds.
const (
	BaseDN        = "dc=example,dc=com"
	PeopleDN      = "ou=people," + BaseDN
	AdminDN       = "cn=admin," + BaseDN
	AdminPassword = "admin-secret"
)

// Options configure a Server.
type Options struct {
	// TLS adds an LDAPS listener with a certificate for 127.0.0.1 and "localhost" issued by a
	// test CA (Server.CA).
	TLS bool
}

// Server is a running slapd.
type Server struct {
	// Host and Port are where plain LDAP is served (Host is 127.0.0.1); TLSPort serves LDAPS
	// when Options.TLS was set.
	Host    string
	Port    int
	TLSPort int
	// CA verifies the LDAPS certificate.
	CA *x509.CertPool

	t    testing.TB
	dir  string
	conf string
	urls string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

// Start starts a slapd with the base entries (BaseDN, PeopleDN) and the admin account
// AdminDN/AdminPassword, waits until it answers a bind, and stops it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	testenv.File(t, slapdPath, "slapd (Debian package slapd)")
	testenv.File(t, filepath.Join(schemaDir, "inetorgperson.schema"), "the OpenLDAP schemas (Debian package slapd)")
	testenv.File(t, filepath.Join(modulePath, "back_mdb.la"), "the slapd mdb backend (Debian package slapd)")

	s := &Server{t: t, Host: "127.0.0.1", dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(s.dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	tlsConf := ""
	if o.TLS {
		ca, err := certs.NewCA("ldaptest CA", 0)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := ca.Issue(certs.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
			IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Algorithm: certs.RSA2048})
		if err != nil {
			t.Fatal(err)
		}
		caFile, certFile, keyFile := filepath.Join(s.dir, "ca.pem"), filepath.Join(s.dir, "cert.pem"), filepath.Join(s.dir, "key.pem")
		for _, f := range []struct {
			name string
			data []byte
		}{{caFile, ca.CertPEM}, {certFile, pair.CertPEM}, {keyFile, pair.KeyPEM}} {
			if err := os.WriteFile(f.name, f.data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s.CA = ca.Pool()
		tlsConf = fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n", caFile, certFile, keyFile)
	}
	var conf strings.Builder
	for _, sc := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&conf, "include %s/%s.schema\n", schemaDir, sc)
	}
	fmt.Fprintf(&conf, `modulepath %s
moduleload back_mdb
pidfile %s/slapd.pid
argsfile %s/slapd.args
%s
database mdb
maxsize 67108864
suffix "%s"
rootdn "%s"
rootpw %s
directory %s/db
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`, modulePath, s.dir, s.dir, tlsConf, BaseDN, AdminDN, AdminPassword, s.dir)
	s.conf = filepath.Join(s.dir, "slapd.conf")
	if err := os.WriteFile(s.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// The ports are picked free and handed to slapd, so another process may take one in
	// between: try a few times.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		s.Port, s.TLSPort = freePort(t), 0
		s.urls = fmt.Sprintf("ldap://%s:%d/", s.Host, s.Port)
		if o.TLS {
			s.TLSPort = freePort(t)
			s.urls += fmt.Sprintf(" ldaps://%s:%d/", s.Host, s.TLSPort)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	t.Cleanup(s.Stop)

	c := s.Conn(t)
	defer c.Close()
	for _, e := range []struct {
		dn    string
		attrs map[string][]string
	}{
		{BaseDN, map[string][]string{"objectClass": {"top", "dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}},
		{PeopleDN, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {"people"}}},
	} {
		req := ldap.NewAddRequest(e.dn, nil)
		for k, v := range e.attrs {
			req.Attribute(k, v)
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("ldaptest: add %s: %v", e.dn, err)
		}
	}
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs slapd and waits until an admin bind works, or slapd exits.
func (s *Server) start() error {
	out := &bytes.Buffer{}
	cmd := exec.Command(slapdPath, "-f", s.conf, "-h", s.urls, "-d", "0")
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: out, mu: &s.mu}, &lockedWriter{w: out, mu: &s.mu}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start slapd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err == nil {
			err = c.Bind(AdminDN, AdminPassword)
			c.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("slapd exited: %s", s.output())
		case <-time.After(20 * time.Millisecond): // polling until the server answers
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("slapd did not answer a bind within 20s: %v; output: %s", err, s.output())
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// URL is the plain LDAP URL, ldap://127.0.0.1:PORT.
func (s *Server) URL() string { return "ldap://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Stop stops slapd (SIGTERM, then SIGKILL after 10s) and waits for it to exit. It may be
// called more than once; Restart starts it again with the same data.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Restart starts a stopped server again on the same ports, with the same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("ldaptest: restart: %v", err)
	}
}

// Conn returns a connection bound as the admin; the caller closes it.
func (s *Server) Conn(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatalf("ldaptest: dial %s: %v", s.URL(), err)
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		c.Close()
		t.Fatalf("ldaptest: bind as admin: %v", err)
	}
	return c
}

// Person is a user entry (objectClass inetOrgPerson) under PeopleDN.
type Person struct {
	UID      string
	CN, SN   string // SN defaults to CN
	Mail     string // optional
	Password string // userPassword, stored as given (slapd compares it on bind)
}

// DN is the entry's DN.
func (p Person) DN() string { return "uid=" + ldap.EscapeDN(p.UID) + "," + PeopleDN }

// Add adds people and returns their DNs.
func (s *Server) Add(t testing.TB, people ...Person) []string {
	t.Helper()
	c := s.Conn(t)
	defer c.Close()
	var dns []string
	for _, p := range people {
		req := ldap.NewAddRequest(p.DN(), nil)
		req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
		req.Attribute("uid", []string{p.UID})
		req.Attribute("cn", []string{p.CN})
		sn := p.SN
		if sn == "" {
			sn = p.CN
		}
		req.Attribute("sn", []string{sn})
		if p.Mail != "" {
			req.Attribute("mail", []string{p.Mail})
		}
		if p.Password != "" {
			req.Attribute("userPassword", []string{p.Password})
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("ldaptest: add %s: %v", p.DN(), err)
		}
		dns = append(dns, p.DN())
	}
	return dns
}

// Modify replaces attributes of an entry.
func (s *Server) Modify(t testing.TB, dn string, attrs map[string][]string) {
	t.Helper()
	c := s.Conn(t)
	defer c.Close()
	req := ldap.NewModifyRequest(dn, nil)
	for k, v := range attrs {
		req.Replace(k, v)
	}
	if err := c.Modify(req); err != nil {
		t.Fatalf("ldaptest: modify %s: %v", dn, err)
	}
}

// SetPassword replaces an entry's userPassword.
func (s *Server) SetPassword(t testing.TB, dn, password string) {
	t.Helper()
	s.Modify(t, dn, map[string][]string{"userPassword": {password}})
}

// Delete deletes an entry.
func (s *Server) Delete(t testing.TB, dn string) {
	t.Helper()
	c := s.Conn(t)
	defer c.Close()
	if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Fatalf("ldaptest: delete %s: %v", dn, err)
	}
}
