package launch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/secret"
)

// startUp runs `confab up` in-process on free loopback ports, in a data directory of the
// test's, and stops it when the test ends.
func startUp(t *testing.T, dir string, edits ...func(*UpOptions)) *Up {
	t.Helper()
	ctx := context.Background()
	o := UpOptions{
		DataDir: dir,
		C2S:     "127.0.0.1:0", Component: "127.0.0.1:0", Web: "127.0.0.1:0", API: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Media: "127.0.0.1:0", TURN: "127.0.0.1:0", TURNTLS: "127.0.0.1:0",
	}
	for _, e := range edits {
		e(&o)
	}
	u, err := StartUp(ctx, o, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("StartUp: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := u.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	waitRegistered(t, u)
	return u
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitRegistered(t *testing.T, u *Up) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		ch := u.CallBridge.Link.Changes()
		if u.CallBridge.Link.Status().State == linkstate.Registered {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("the Call Bridge did not register; status %+v", u.CallBridge.Link.Status())
		}
	}
}

func caClient(t *testing.T, u *Up) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(u.Local.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestUpFirstRunAndReuse checks what the first run creates (owner-only files, an admin
// account that works, a demo space) and that a second run reuses all of it.
func TestUpFirstRunAndReuse(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	if u.AdminPassword == "" {
		t.Fatal("first run: no admin password")
	}
	for _, f := range []string{u.AdminPasswordFile, u.Local.CAKeyFile, u.Local.KeyFile, dir + "/callbridge.db", dir + "/callbridges.toml"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want owner-only", f, st.Mode().Perm())
		}
	}
	if u.Demo.CallID == "" || u.DemoPasscode == "" {
		t.Errorf("demo space = %+v, passcode %q", u.Demo, u.DemoPasscode)
	}
	// The certificate's SANs carry the domain, localhost and 127.0.0.1.
	pemBytes, _ := os.ReadFile(u.Local.CertFile)
	blk, _ := pem.Decode(pemBytes)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example.com", "localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	// The admin account works on the REST API over TLS verified with the printed CA.
	c := caClient(t, u)
	req, _ := http.NewRequest("GET", "https://"+u.CallBridge.Addrs.API+"/api/v1/system/status", nil)
	req.SetBasicAuth(u.AdminUser, u.AdminPassword)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<state>registered</state>") {
		t.Errorf("status: %d %s", resp.StatusCode, body)
	}
	demo := u.Demo

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	u2 := startUp(t, dir)
	if u2.AdminPassword != "" {
		t.Error("second run made a new admin password")
	}
	if u2.Demo.ID != demo.ID || u2.DemoPasscode == "" {
		t.Errorf("second run demo = %+v, want %s reused", u2.Demo, demo.ID)
	}
	if u2.Local.Created() {
		t.Errorf("second run re-created certificates: %s", u2.Local.Reason)
	}
}

// createUser makes a local user the way the CLI and API do.
func createUser(t *testing.T, u *Up, name, display, password string) {
	t.Helper()
	if _, err := u.CallBridge.Users.CreateLocal(context.Background(), users.LocalUser{Username: name, Name: display}, secret.New(password)); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
}
