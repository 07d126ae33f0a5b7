package diagnose_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/link/linktest"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/diagnose"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/discover/dnstest"
	"confab.dev/confab/internal/peers"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// These tests diagnose the link to third-party XMPP servers (Debian's Prosody and
// ejabberd), through their component ports with TLS from the first byte.

const peerSecret = "s3cret-of-cb1"

// peerSettings starts a server of kind with a certificate for the domain and localhost and
// returns settings that reach its direct-TLS component port as localhost (resolved by a
// DNS server of the test's own, to 127.0.0.1 only).
func peerSettings(t *testing.T, kind peers.Kind) diagnose.Settings {
	t.Helper()
	pki := linktest.NewPKI(t, "Interop CA")
	pair := pki.Issue(t, certs.Options{Server: true}, domain, "localhost")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pair.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pair.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s := peers.StartT(t, kind, peers.Options{
		Domain: domain, CertFile: certFile, KeyFile: keyFile,
		Components: map[string]string{"cb1." + domain: peerSecret},
	})
	_, port, err := net.SplitHostPort(s.ComponentTLSAddr)
	if err != nil {
		t.Fatal(err)
	}
	dns := dnstest.Start(t, dnstest.Zone{"localhost": {A: []string{"127.0.0.1"}}})
	// Generous timeouts: the servers share two cores with the other tests.
	return diagnose.Settings{
		XMPPSettings: store.XMPPSettings{UniqueName: "cb1", Domain: domain, ServerAddressOverride: "localhost:" + port, SharedSecret: secret.New(peerSecret)},
		Resolver:     discover.NewResolver(dns.Addr, 2*time.Second), RootCAs: pki.Pool(),
		DNSTimeout: 5 * time.Second, ConnectTimeout: 10 * time.Second, TLSTimeout: 20 * time.Second, HandshakeTimeout: 20 * time.Second,
	}
}

// runPeer is run with a deadline for a busy machine.
func runPeer(t *testing.T, s diagnose.Settings) (diagnose.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := diagnose.Run(ctx, s)
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	return r, b.String()
}

func TestDiagnosePeers(t *testing.T) {
	for _, kind := range peers.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			good := peerSettings(t, kind)

			t.Run("pass", func(t *testing.T) {
				r, table := runPeer(t, good)
				if !r.Passed() {
					t.Fatalf("diagnosis failed:\n%s", table)
				}
				for _, want := range []*regexp.Regexp{
					rowRE(2, "PASS"), rowRE(3, "PASS"), rowRE(4, "SKIP"), rowRE(5, "PASS"), rowRE(6, "PASS"),
					rowRE(7, "PASS"), rowRE(8, "PASS"), rowRE(9, "PASS"), rowRE(10, "PASS"), rowRE(11, "PASS"),
					regexp.MustCompile(`(?m)^RESULT: PASS`),
					regexp.MustCompile(`subjectAltNames: DNS:example.com, DNS:localhost`),
					regexp.MustCompile(`registered as cb1.example.com on localhost:\d+`),
					regexp.MustCompile(`XEP-0199 ping to example.com answered`),
				} {
					if !want.MatchString(table) {
						t.Errorf("table does not match %s:\n%s", want, table)
					}
				}
				if strings.Contains(table, "FAIL") {
					t.Errorf("a passing table says FAIL:\n%s", table)
				}
			})

			t.Run("wrong secret", func(t *testing.T) {
				s := good
				s.SharedSecret = secret.New("not-the-secret")
				r, table := runPeer(t, s)
				if r.Passed() {
					t.Fatalf("diagnosis passed with a wrong secret:\n%s", table)
				}
				f := r.Failure
				if f.Step != 10 || f.FailureReason != "authenticationFailure" || f.Cause != "not-authorized" {
					t.Errorf("failure = step %d %s %s, want step 10 authenticationFailure not-authorized", f.Step, f.FailureReason, f.Cause)
				}
				for _, want := range []*regexp.Regexp{
					rowRE(9, "PASS"), rowRE(10, "FAIL"), rowRE(11, "SKIP"),
					regexp.MustCompile(`(?m)^\s+cause:\s+not-authorized$`),
					regexp.MustCompile(`(?m)^\s+remedy: make sharedSecret match .*confab xmpp callbridge add-secret cb1`),
					regexp.MustCompile(`(?m)^RESULT: FAIL at step 10 \(verdict\): authenticationFailure, cause not-authorized`),
				} {
					if !want.MatchString(table) {
						t.Errorf("table does not match %s:\n%s", want, table)
					}
				}
				if strings.Contains(table, "not-the-secret") {
					t.Errorf("the table reveals the secret:\n%s", table)
				}
			})
		})
	}
}
