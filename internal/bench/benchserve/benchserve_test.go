package benchserve_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/bench/benchserve"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/peers"
	"confab.dev/confab/internal/testenv"
)

// TestPeersHashed starts Prosody and ejabberd as the comparison does and checks that they
// keep SCRAM-SHA-256 keys (Info says so, the password is in none of their stored files) and
// that the load tool logs in to each with SCRAM-SHA-256 and PLAIN.
func TestPeersHashed(t *testing.T) {
	const password = "bench-canary-pw-91c3"
	certDir := filepath.Join(t.TempDir(), "certs")
	if err := benchserve.MakeCerts(certDir, "bench.example", certs.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(certDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for _, server := range []string{benchserve.Prosody, benchserve.Ejabberd} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), peers.DefaultStartTimeout)
			defer cancel()
			dir := filepath.Join(t.TempDir(), server)
			r, err := benchserve.Start(ctx, benchserve.Options{
				Server: server, Dir: dir, Domain: "bench.example",
				CAFile: filepath.Join(certDir, "ca.pem"), CertFile: filepath.Join(certDir, "cert.pem"), KeyFile: filepath.Join(certDir, "key.pem"),
				Users: 2, Password: password, ComponentName: "echo", ComponentSecret: "echo-secret",
			})
			if errors.Is(err, peers.ErrNotInstalled) {
				testenv.Missing(t, err.Error())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Stop(context.Background())
			if got := r.Info.PasswordStorage; !strings.HasPrefix(got, "SCRAM-SHA-256 keys") {
				t.Errorf("Info.PasswordStorage = %q, want SCRAM-SHA-256 keys", got)
			}
			for _, mech := range []string{bench.MechSCRAMSHA256, bench.MechPLAIN} {
				res, err := bench.Run(ctx, bench.Config{
					Scenario: bench.ScenarioLogin, Label: server, Count: 4, Duration: time.Minute,
					Users: r.Info.Users, UserPrefix: r.Info.UserPrefix, Password: password,
					Target: &bench.Target{Addr: r.Info.C2S, Domain: r.Info.Domain, Mechanism: mech, Timeout: 30 * time.Second,
						TLS: &tls.Config{RootCAs: roots, ServerName: r.Info.Domain, MinVersion: tls.VersionTLS12}},
				})
				if err != nil {
					t.Fatalf("%s logins: %v", mech, err)
				}
				if res.OK != 4 || len(res.Errors) != 0 {
					t.Errorf("%s logins: %d ok, errors %v; want 4 and none", mech, res.OK, res.Errors)
				}
			}
			_ = r.Stop(context.Background())
			err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || strings.HasSuffix(path, ".log") {
					return err
				}
				data, err := os.ReadFile(path)
				if err == nil && strings.Contains(string(data), password) {
					t.Errorf("%s holds the password in plaintext", path)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
