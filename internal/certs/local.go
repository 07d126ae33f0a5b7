package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names EnsureLocal uses inside its directory.
const (
	LocalCAFile    = "ca.pem"
	LocalCAKeyFile = "ca-key.pem"
	LocalCertFile  = "server.pem"
	LocalKeyFile   = "server-key.pem"
)

// renewBefore is how close to expiry EnsureLocal replaces a certificate.
const renewBefore = 30 * 24 * time.Hour

// Local is the result of EnsureLocal: where the files are and what this call changed.
type Local struct {
	Dir       string
	CAFile    string // the CA certificate: what clients (and browsers) trust
	CAKeyFile string
	CertFile  string // the server certificate, signed by the CA
	KeyFile   string
	// CACreated is true if this call made a new CA.
	CACreated bool
	// CertIssued is true if this call issued a new server certificate, and Reason says why
	// (for the log of `confab up`).
	CertIssued bool
	Reason     string
}

// Created reports whether this call wrote anything.
func (l *Local) Created() bool { return l.CACreated || l.CertIssued }

// EnsureLocal makes sure dir holds a CA and a server certificate for `confab up`. The server
// certificate's subjectAltNames are domain, each of hosts, "localhost", 127.0.0.1 and ::1
// (hosts that are IP addresses become IP SANs). The first run creates dir (mode 0700) and
// all four files, keys with mode 0600. Later runs reuse them, issuing a new server
// certificate only if it no longer covers those names, is not signed by the CA, or expires
// within 30 days, and a new CA only if its certificate is missing or expires within 30 days.
func EnsureLocal(dir, domain string, hosts []string) (*Local, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if domain == "" {
		return nil, errors.New("local certificates: empty domain")
	}
	if dir == "" {
		return nil, errors.New("local certificates: empty directory")
	}
	dnsNames, ips := localNames(domain, hosts)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local certificates: %w", err)
	}
	l := &Local{
		Dir:       dir,
		CAFile:    filepath.Join(dir, LocalCAFile),
		CAKeyFile: filepath.Join(dir, LocalCAKeyFile),
		CertFile:  filepath.Join(dir, LocalCertFile),
		KeyFile:   filepath.Join(dir, LocalKeyFile),
	}
	ca, err := l.ensureCA(domain)
	if err != nil {
		return nil, fmt.Errorf("local certificates in %s: %w", dir, err)
	}
	if l.CACreated {
		l.Reason = "new CA"
	} else {
		l.Reason = serverCertProblem(l.CertFile, l.KeyFile, ca, append(append([]string(nil), dnsNames...), ipStrings(ips)...))
	}
	if l.Reason == "" {
		return l, nil
	}
	p, err := ca.Issue(Options{CommonName: domain, DNSNames: dnsNames, IPs: ips, Server: true})
	if err != nil {
		return nil, fmt.Errorf("local certificates: %w", err)
	}
	if err := p.WriteFiles(l.CertFile, l.KeyFile); err != nil {
		return nil, fmt.Errorf("local certificates: %w", err)
	}
	l.CertIssued = true
	return l, nil
}

// ensureCA loads the CA in l.Dir, or makes one when its certificate is missing or expiring.
func (l *Local) ensureCA(domain string) (*CA, error) {
	_, certErr := os.Stat(l.CAFile)
	_, keyErr := os.Stat(l.CAKeyFile)
	switch {
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		// Clients may already trust this CA; making a new one behind their back would break
		// them, so say what to do instead.
		return nil, fmt.Errorf("%s exists but its key %s is missing; restore the key, or remove %s to make a new CA (clients must then trust the new one)",
			LocalCAFile, LocalCAKeyFile, LocalCAFile)
	case certErr == nil:
		ca, err := LoadCA(l.CAFile, l.CAKeyFile)
		if err != nil {
			return nil, err
		}
		if time.Until(ca.Cert.NotAfter) > renewBefore {
			return ca, nil
		}
	case !errors.Is(certErr, fs.ErrNotExist):
		return nil, certErr
	}
	ca, err := NewCA("Confab local CA for "+domain, 0)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(l.CAFile, l.CAKeyFile); err != nil {
		return nil, err
	}
	l.CACreated = true
	return ca, nil
}

// serverCertProblem says why the server certificate must be issued again, or "" if it is fine.
func serverCertProblem(certFile, keyFile string, ca *CA, names []string) string {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "no server certificate"
	}
	if err != nil {
		return fmt.Sprintf("server certificate unusable: %v", err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Sprintf("server certificate unusable: %v", err)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Sprintf("server certificate does not verify against the CA: %v", err)
	}
	if left := time.Until(leaf.NotAfter); left < renewBefore {
		return fmt.Sprintf("server certificate expires at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := CheckSANs(leaf, names...); err != nil {
		return err.Error()
	}
	return ""
}

func localNames(domain string, hosts []string) (dnsNames []string, ips []net.IP) {
	seen := make(map[string]bool)
	add := func(h string) {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		ip := net.ParseIP(strings.Trim(h, "[]"))
		if ip != nil {
			h = ip.String() // one spelling per address
		}
		if h == "" || seen[h] {
			return
		}
		seen[h] = true
		if ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, h)
		}
	}
	add(domain)
	for _, h := range hosts {
		add(h)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		add(h)
	}
	return dnsNames, ips
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
