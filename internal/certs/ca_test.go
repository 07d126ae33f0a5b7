package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test CA", time.Hour*24)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func issue(t *testing.T, ca *CA, o Options) *Pair {
	t.Helper()
	p, err := ca.Issue(o)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", o, err)
	}
	return p
}

func TestNewCA(t *testing.T) {
	before := time.Now()
	ca := newTestCA(t)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("KeyUsage %b lacks CertSign", c.KeyUsage)
	}
	if got, want := c.Subject.CommonName, "test CA"; got != want {
		t.Errorf("CommonName = %q, want %q", got, want)
	}
	if k, ok := ca.Key.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", ca.Key)
	}
	if !c.NotBefore.Before(before) {
		t.Errorf("NotBefore %v is not before creation %v (clock skew margin)", c.NotBefore, before)
	}
	if d := c.NotAfter.Sub(before); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("NotAfter - now = %v, want about 24h", d)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if !strings.Contains(string(ca.CertPEM), "BEGIN CERTIFICATE") {
		t.Errorf("CertPEM is not a PEM certificate: %q", ca.CertPEM)
	}

	def, err := NewCA("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := def.Cert.Subject.CommonName; got != "Confab local CA" {
		t.Errorf("default CommonName = %q", got)
	}
	if d := time.Until(def.Cert.NotAfter); d < DefaultCAValidity-time.Hour {
		t.Errorf("default validity %v, want about %v", d, DefaultCAValidity)
	}
	if ca.Cert.SerialNumber.Cmp(def.Cert.SerialNumber) == 0 {
		t.Errorf("two CAs share serial number %v", ca.Cert.SerialNumber)
	}
}

func TestLoadCA(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	dir := t.TempDir()
	caFile, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := ca.WriteFiles(caFile, caKey); err != nil {
		t.Fatal(err)
	}
	otherKeyPEM, err := other.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(otherKey, otherKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	leaf := issue(t, ca, Options{DNSNames: []string{"leaf.example"}})
	leafFile, leafKey := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem")
	if err := leaf.WriteFiles(leafFile, leafKey); err != nil {
		t.Fatal(err)
	}

	loaded, err := LoadCA(caFile, caKey)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Errorf("loaded a different certificate")
	}
	// The loaded CA must be able to issue certificates that verify against the original.
	p := issue(t, loaded, Options{DNSNames: []string{"x.example"}})
	if _, err := p.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "x.example"}); err != nil {
		t.Errorf("certificate issued by the loaded CA does not verify: %v", err)
	}

	for _, tc := range []struct {
		name, cert, key, wantErr string
	}{
		{"key of another CA", caFile, otherKey, "does not match"},
		{"leaf is not a CA", leafFile, leafKey, "not a CA"},
		{"missing cert", filepath.Join(dir, "nope.pem"), caKey, "no such file"},
		{"missing key", caFile, filepath.Join(dir, "nope.pem"), "no such file"},
		{"key file holds a cert", caFile, caFile, "no PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCA(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("LoadCA error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t)
	notBefore := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	notAfter := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	tests := []struct {
		name    string
		opts    Options
		wantExt []x509.ExtKeyUsage
		wantRSA bool
	}{
		{"default is an ECDSA server cert", Options{CommonName: "xmpp.example.com", DNSNames: []string{"xmpp.example.com"}}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, false},
		{"server", Options{DNSNames: []string{"a.example"}, Server: true}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, false},
		{"client", Options{CommonName: "cb1", Client: true}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false},
		{"both", Options{DNSNames: []string{"a.example"}, Server: true, Client: true}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, false},
		{"rsa", Options{DNSNames: []string{"a.example"}, Algorithm: RSA2048}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, true},
		{"ip and explicit validity", Options{IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, NotBefore: notBefore, NotAfter: notAfter}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := issue(t, ca, tc.opts)
			if !slices.Equal(p.Leaf.ExtKeyUsage, tc.wantExt) {
				t.Errorf("ExtKeyUsage = %v, want %v", p.Leaf.ExtKeyUsage, tc.wantExt)
			}
			switch k := p.Cert.PrivateKey.(type) {
			case *rsa.PrivateKey:
				if !tc.wantRSA || k.N.BitLen() != 2048 {
					t.Errorf("got RSA-%d key, wantRSA=%v", k.N.BitLen(), tc.wantRSA)
				}
				if p.Leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
					t.Errorf("RSA certificate lacks KeyEncipherment")
				}
			case *ecdsa.PrivateKey:
				if tc.wantRSA || k.Curve != elliptic.P256() {
					t.Errorf("got ECDSA %s key, wantRSA=%v", k.Curve.Params().Name, tc.wantRSA)
				}
			default:
				t.Errorf("key type %T", k)
			}
			if p.Leaf.IsCA {
				t.Errorf("leaf is a CA")
			}
			if !slices.Equal(p.Leaf.DNSNames, tc.opts.DNSNames) {
				t.Errorf("DNSNames = %v, want %v", p.Leaf.DNSNames, tc.opts.DNSNames)
			}
			if len(p.Leaf.IPAddresses) != len(tc.opts.IPs) {
				t.Errorf("IPAddresses = %v, want %v", p.Leaf.IPAddresses, tc.opts.IPs)
			}
			if !tc.opts.NotAfter.IsZero() && (!p.Leaf.NotAfter.Equal(tc.opts.NotAfter) || !p.Leaf.NotBefore.Equal(tc.opts.NotBefore)) {
				t.Errorf("validity %v..%v, want %v..%v", p.Leaf.NotBefore, p.Leaf.NotAfter, tc.opts.NotBefore, tc.opts.NotAfter)
			}
			if tc.opts.NotAfter.IsZero() {
				if d := time.Until(p.Leaf.NotAfter); d < 364*24*time.Hour || d > 367*24*time.Hour {
					t.Errorf("default validity ends in %v, want about a year", d)
				}
			}
			if _, err := p.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: tc.wantExt}); err != nil {
				t.Errorf("leaf does not verify against its CA: %v", err)
			}
			if p.Cert.Leaf != p.Leaf || len(p.Cert.Certificate) != 1 {
				t.Errorf("tls.Certificate has Leaf %p (want %p) and %d DER certs (want 1)", p.Cert.Leaf, p.Leaf, len(p.Cert.Certificate))
			}
		})
	}

	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no names", Options{Server: true}, "no common name"},
		{"unknown algorithm", Options{CommonName: "x", Algorithm: "dsa-1024"}, `unknown key algorithm "dsa-1024"`},
		{"inverted validity", Options{CommonName: "x", NotBefore: notAfter, NotAfter: notBefore}, "is not after NotBefore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.Issue(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Issue error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestWriteFilesModes(t *testing.T) {
	ca := newTestCA(t)
	p := issue(t, ca, Options{DNSNames: []string{"a.example"}})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	// Overwriting a world-readable file must still leave the key private.
	if err := os.WriteFile(keyFile, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
		data []byte
	}{{certFile, 0o644, p.CertPEM}, {keyFile, 0o600, p.KeyPEM}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != f.mode {
			t.Errorf("%s mode = %v, want %v", filepath.Base(f.path), got, f.mode)
		}
		got, _ := os.ReadFile(f.path)
		if string(got) != string(f.data) {
			t.Errorf("%s content differs from the pair", filepath.Base(f.path))
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want 2 (no temporary files left)", len(entries))
	}
	if err := p.WriteFiles(filepath.Join(dir, "missing", "c.pem"), filepath.Join(dir, "missing", "k.pem")); err == nil {
		t.Errorf("WriteFiles into a missing directory succeeded")
	}
}
