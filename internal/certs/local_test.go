package certs

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnsureLocalFirstRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "certs")
	l, err := EnsureLocal(dir, "Example.com.", []string{"cms1.example.com", "localhost", "192.0.2.10"})
	if err != nil {
		t.Fatalf("EnsureLocal: %v", err)
	}
	if !l.Created() || !l.CACreated || !l.CertIssued {
		t.Errorf("first run: Created=%v CACreated=%v CertIssued=%v, want all true", l.Created(), l.CACreated, l.CertIssued)
	}
	modes := map[string]os.FileMode{
		dir:         0o700 | os.ModeDir,
		l.CAFile:    0o644,
		l.CAKeyFile: 0o600,
		l.CertFile:  0o644,
		l.KeyFile:   0o600,
	}
	for path, want := range modes {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & (os.ModeDir | os.ModePerm); got != want {
			t.Errorf("%s mode = %v, want %v", path, got, want)
		}
	}
	for path, name := range map[string]string{l.CAFile: LocalCAFile, l.CAKeyFile: LocalCAKeyFile, l.CertFile: LocalCertFile, l.KeyFile: LocalKeyFile} {
		if path != filepath.Join(dir, name) {
			t.Errorf("path %s, want %s", path, filepath.Join(dir, name))
		}
	}

	leaf := loadLeaf(t, l.CertFile)
	if want := []string{"example.com", "cms1.example.com", "localhost"}; !slices.Equal(leaf.DNSNames, want) {
		t.Errorf("DNSNames = %q, want %q", leaf.DNSNames, want)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"192.0.2.10", "127.0.0.1", "::1"}; !slices.Equal(ips, want) {
		t.Errorf("IPAddresses = %q, want %q", ips, want)
	}

	// The files serve real TLS to a client that trusts ca.pem, under every name.
	srv, err := ServerConfig(ServerOptions{CertFile: l.CertFile, KeyFile: l.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example.com", "cms1.example.com", "localhost", "127.0.0.1", "::1"} {
		cli, err := ClientConfig(ClientOptions{CAFile: l.CAFile, ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		if r := handshake(t, srv, cli); r.client != nil || r.server != nil {
			t.Errorf("handshake as %s: client %v, server %v", name, r.client, r.server)
		}
	}
}

func TestEnsureLocalLaterRuns(t *testing.T) {
	const domain = "example.com"
	hosts := []string{"cms1.example.com", "localhost"}
	tests := []struct {
		name       string
		change     func(t *testing.T, l *Local) // after the first run
		hosts      []string                     // for the second run; nil = hosts
		wantCA     bool                         // a new CA
		wantCert   bool                         // a new server certificate
		wantReason string
		wantErr    string
	}{
		{name: "nothing changed"},
		{name: "fewer hosts", hosts: []string{"localhost"}},
		{name: "new host", hosts: []string{"cms1.example.com", "cms2.example.com"}, wantCert: true, wantReason: "lacks subjectAltName cms2.example.com"},
		{name: "new ip", hosts: []string{"cms1.example.com", "192.0.2.1"}, wantCert: true, wantReason: "192.0.2.1"},
		{name: "server cert expiring", change: func(t *testing.T, l *Local) {
			ca, err := LoadCA(l.CAFile, l.CAKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			p := issue(t, ca, Options{DNSNames: []string{domain, "cms1.example.com", "localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, NotAfter: time.Now().Add(10 * 24 * time.Hour)})
			if err := p.WriteFiles(l.CertFile, l.KeyFile); err != nil {
				t.Fatal(err)
			}
		}, wantCert: true, wantReason: "expires at"},
		{name: "server cert from another CA", change: func(t *testing.T, l *Local) {
			p := issue(t, newTestCA(t), Options{DNSNames: []string{domain, "cms1.example.com", "localhost"}})
			if err := p.WriteFiles(l.CertFile, l.KeyFile); err != nil {
				t.Fatal(err)
			}
		}, wantCert: true, wantReason: "does not verify against the CA"},
		{name: "server key missing", change: remove(LocalKeyFile), wantCert: true, wantReason: "no server certificate"},
		{name: "server key mismatched", change: func(t *testing.T, l *Local) {
			if err := os.WriteFile(l.KeyFile, mustKeyPEM(t), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantCert: true, wantReason: "unusable"},
		{name: "ca cert missing", change: remove(LocalCAFile), wantCA: true, wantCert: true, wantReason: "new CA"},
		{name: "ca expiring", change: func(t *testing.T, l *Local) {
			ca, err := NewCA("short", 10*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := ca.WriteFiles(l.CAFile, l.CAKeyFile); err != nil {
				t.Fatal(err)
			}
		}, wantCA: true, wantCert: true, wantReason: "new CA"},
		{name: "ca key missing", change: remove(LocalCAKeyFile), wantErr: "ca-key.pem is missing"},
		{name: "ca key of another CA", change: func(t *testing.T, l *Local) {
			if err := os.WriteFile(l.CAKeyFile, mustKeyPEM(t), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := EnsureLocal(dir, domain, hosts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.change != nil {
				tc.change(t, first)
			}
			before := readAll(t, first)
			second := tc.hosts
			if second == nil {
				second = hosts
			}
			l, err := EnsureLocal(dir, domain, second)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("EnsureLocal error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureLocal: %v", err)
			}
			if l.CACreated != tc.wantCA || l.CertIssued != tc.wantCert || l.Created() != (tc.wantCA || tc.wantCert) {
				t.Errorf("CACreated=%v CertIssued=%v Created()=%v, want %v %v %v", l.CACreated, l.CertIssued, l.Created(), tc.wantCA, tc.wantCert, tc.wantCA || tc.wantCert)
			}
			if !strings.Contains(l.Reason, tc.wantReason) || (tc.wantReason == "") != (l.Reason == "") {
				t.Errorf("Reason = %q, want %q", l.Reason, tc.wantReason)
			}
			after := readAll(t, l)
			for _, f := range []string{LocalCAFile, LocalCAKeyFile} {
				if changed := !bytes.Equal(before[f], after[f]); changed != tc.wantCA {
					t.Errorf("%s changed = %v, want %v", f, changed, tc.wantCA)
				}
			}
			for _, f := range []string{LocalCertFile, LocalKeyFile} {
				if changed := !bytes.Equal(before[f], after[f]); changed != tc.wantCert {
					t.Errorf("%s changed = %v, want %v", f, changed, tc.wantCert)
				}
			}
			// Whatever happened, the result is consistent: the server certificate verifies
			// against the CA for every wanted name, and the key matches it.
			if problem := serverCertProblem(l.CertFile, l.KeyFile, mustLoadCA(t, l), append([]string{domain, "localhost", "127.0.0.1", "::1"}, second...)); problem != "" {
				t.Errorf("after EnsureLocal: %s", problem)
			}
		})
	}

	if _, err := EnsureLocal(t.TempDir(), " ", nil); err == nil {
		t.Errorf("EnsureLocal with an empty domain succeeded")
	}
}

func remove(name string) func(*testing.T, *Local) {
	return func(t *testing.T, l *Local) {
		if err := os.Remove(filepath.Join(l.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func mustKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := newTestCA(t).KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustLoadCA(t *testing.T, l *Local) *CA {
	t.Helper()
	ca, err := LoadCA(l.CAFile, l.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func readAll(t *testing.T, l *Local) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	for _, f := range []string{LocalCAFile, LocalCAKeyFile, LocalCertFile, LocalKeyFile} {
		b, err := os.ReadFile(filepath.Join(l.Dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

func loadLeaf(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
