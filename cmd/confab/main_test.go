package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/throttle"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// confab runs a subcommand in-process and returns what it printed.
func confab(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, stdio{strings.NewReader(stdin), &out, &errb})
	return out.String(), errb.String(), err
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestUsageAndVersion(t *testing.T) {
	if out, _, err := confab(t, "", "version"); err != nil || !strings.HasPrefix(out, "confab ") {
		t.Errorf("version: %q, %v", out, err)
	}
	if _, _, err := confab(t, ""); exitCode(err) != 2 {
		t.Errorf("no command: exit %d, want 2", exitCode(err))
	}
	if _, errOut, err := confab(t, "", "frobnicate"); exitCode(err) != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("unknown command: exit %d, stderr %q", exitCode(err), errOut)
	}
}

// TestXMPPCallBridgeRegistry drives `confab xmpp callbridge` as an administrator would.
func TestXMPPCallBridgeRegistry(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xmpp.toml")
	if err := os.WriteFile(cfg, []byte("domain = \"example.com\"\ndata_dir = \""+dir+"/data\"\n[listen]\nadmin = \"127.0.0.1:1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := confab(t, "", "xmpp", "callbridge", "add", "cb1", "-config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name:   cb1", "domain: example.com", "secret: "} {
		if !strings.Contains(out, want) {
			t.Errorf("add printed %q, want %q in it", out, want)
		}
	}
	if _, _, err := confab(t, "", "xmpp", "callbridge", "add", "cb1", "-config", cfg); err == nil {
		t.Error("adding cb1 twice succeeded")
	}
	if _, _, err := confab(t, "given-secret\n", "xmpp", "callbridge", "add-secret", "cb2", "-config", cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := confab(t, "", "xmpp", "callbridge", "add-secret", "cb3", "-config", cfg); err == nil {
		t.Error("add-secret with an empty standard input succeeded")
	}
	st, err := os.Stat(filepath.Join(dir, "data", "callbridges.toml"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("registry file: %v, %v; want mode 0600", st, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "data", "callbridges.toml"))
	if !strings.Contains(string(b), "given-secret") {
		t.Error("add-secret did not store the secret read from standard input")
	}
	out, errOut, err := confab(t, "", "xmpp", "callbridge", "list", "-config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "cb1.example.com") || !strings.Contains(out, "cb2.example.com") || !strings.Contains(out, "unknown") {
		t.Errorf("list = %q", out)
	}
	if !strings.Contains(errOut, "did not answer") {
		t.Errorf("list with no server running should say the state is unknown; stderr %q", errOut)
	}
	if _, _, err := confab(t, "", "xmpp", "callbridge", "del", "cb1", "-config", cfg); err != nil {
		t.Fatal(err)
	}
	out, _, _ = confab(t, "", "xmpp", "callbridge", "list", "-config", cfg)
	if strings.Contains(out, "cb1.example.com") {
		t.Errorf("cb1 still listed after del: %q", out)
	}
}

// TestDiagnoseExitStatus: a failing step exits 1 and names the step; a missing setting is
// reported as what is missing.
func TestDiagnoseExitStatus(t *testing.T) {
	out, _, err := confab(t, "", "diagnose", "-unique-name", "cb1", "-domain", "example.com", "-server", "127.0.0.1:1", "-timeout", "2s")
	if exitCode(err) != 1 {
		t.Errorf("exit %d, want 1", exitCode(err))
	}
	if !strings.Contains(out, "FAIL") || !strings.Contains(out, "sharedSecret") {
		t.Errorf("diagnose output does not name the missing secret:\n%s", out)
	}
	out, _, err = confab(t, "s3cret\n", "diagnose", "-unique-name", "cb1", "-domain", "example.com", "-server", "127.0.0.1:1", "-secret-stdin", "-timeout", "2s")
	if exitCode(err) != 1 || !strings.Contains(out, "connection-refused") {
		t.Errorf("exit %d, output:\n%s", exitCode(err), out)
	}
	if strings.Contains(out, "s3cret") {
		t.Error("diagnose printed the shared secret")
	}
}

func TestAPIAndLocalUsers(t *testing.T) {
	dir := t.TempDir()
	out, _, err := confab(t, "\n", "callbridge", "api-user", "add", "ops", "-data", dir)
	if err != nil || !strings.Contains(out, "password: ") {
		t.Fatalf("api-user add: %q, %v", out, err)
	}
	if out, _, _ := confab(t, "", "callbridge", "api-user", "list", "-data", dir); strings.TrimSpace(out) != "ops" {
		t.Errorf("api-user list = %q", out)
	}
	if _, _, err := confab(t, "pw\n", "callbridge", "api-user", "add", "ops", "-data", dir); err == nil {
		t.Error("adding the same API user twice succeeded")
	}
	if _, _, err := confab(t, "", "callbridge", "api-user", "del", "ops", "-data", dir); err != nil {
		t.Error(err)
	}
}

// TestXMPPCallBridgeUnblock: `confab xmpp callbridge unblock NAME` clears a running server's
// component-port block through its admin listener, and `list` shows the block first.
func TestXMPPCallBridgeUnblock(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true, Config: func(c *xmppd.Config) {
		c.ComponentThrottle = throttle.Config{MaxFailures: 1, Window: time.Minute, Block: 5 * time.Minute, MaxBlock: 5 * time.Minute}
	}})
	if c, err := h.DialComponent(context.Background(), "cb1.example.com", secret.New("wrong"), xmppdtest.DialOptions{}); err == nil {
		c.Close("", "")
		t.Fatal("a wrong secret was accepted")
	}
	xmppdtest.Eventually(t, 5*time.Second, "the block", func() bool { return len(h.Server.ComponentBlocks()) == 1 })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xmpp.toml")
	admin := strings.TrimPrefix(h.AdminURL, "http://")
	if err := os.WriteFile(cfg, []byte("domain = \"example.com\"\ndata_dir = \""+dir+"/data\"\n[listen]\nadmin = \""+admin+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := confab(t, "", "xmpp", "callbridge", "list", "-config", cfg)
	if err != nil || !strings.Contains(out, "blocked: ip:127.0.0.1") || !strings.Contains(out, "callbridge unblock cb1") {
		t.Errorf("list = %q, %v; want the block and the command to clear it", out, err)
	}
	out, _, err = confab(t, "", "xmpp", "callbridge", "unblock", "cb1", "-config", cfg)
	if err != nil || !strings.Contains(out, "unblocked cb1: ip:127.0.0.1") {
		t.Fatalf("unblock = %q, %v", out, err)
	}
	if n := len(h.Server.ComponentBlocks()); n != 0 {
		t.Errorf("%d blocks left after unblock", n)
	}
	out, _, err = confab(t, "", "xmpp", "callbridge", "unblock", "cb1", "-config", cfg)
	if err != nil || !strings.Contains(out, "nothing blocked for cb1") {
		t.Errorf("second unblock = %q, %v", out, err)
	}
}
