package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// syncBuffer is a bytes.Buffer written by a running command and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeSecret(t *testing.T, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "turn-secret")
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTURNCredentials: `confab turn credentials` prints a pair of the shared-secret scheme.
func TestTURNCredentials(t *testing.T) {
	file := writeSecret(t, "ops-secret")
	out, _, err := confab(t, "", "turn", "credentials", "-user", "ops", "-ttl", "2h", "-secret-file", file)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`username: (\d+):ops\npassword: (\S+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output %q: no username and password", out)
	}
	mac := hmac.New(sha1.New, []byte("ops-secret"))
	mac.Write([]byte(m[1] + ":ops"))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); m[2] != want {
		t.Errorf("password %q, want %q", m[2], want)
	}
	if _, _, err := confab(t, "", "turn", "credentials", "-secret-file", file); exitCode(err) != 2 {
		t.Errorf("without -user: exit %d, want 2", exitCode(err))
	}
	if _, _, err := confab(t, "", "turn", "credentials", "-user", "ops"); err == nil {
		t.Error("without a secret: no error")
	}
}

// TestTURNServe runs `confab turn` on loopback, allocates through it, reads the allocation
// from the admin listener and stops it as SIGINT would.
func TestTURNServe(t *testing.T) {
	file := writeSecret(t, "serve-secret")
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"turn", "-secret-file", file, "-realm", "cmd.test", "-data", t.TempDir(),
			"-udp", "127.0.0.1:0", "-tcp", "127.0.0.1:0", "-tls", "127.0.0.1:0", "-admin", "127.0.0.1:0",
			"-allow", "127.0.0.1/32", "-min-port", "40000", "-max-port", "40999"}, stdio{strings.NewReader(""), &out, &errOut})
	}()
	re := regexp.MustCompile(`turn:  udp (127\.0\.0\.1:\d+)[\s\S]*admin: http://(127\.0\.0\.1:\d+)/`)
	var m []string
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for m = re.FindStringSubmatch(out.String()); m == nil; m = re.FindStringSubmatch(out.String()) {
		select {
		case err := <-done:
			t.Fatalf("confab turn ended: %v\n%s%s", err, out.String(), errOut.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("confab turn printed no listeners:\n%s%s", out.String(), errOut.String())
		}
	}
	for _, want := range []string{"turn:  tcp 127.0.0.1:", "turns: tls 127.0.0.1:", "ports 40000-40999", "Generated a TLS certificate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	credOut, _, err := confab(t, "", "turn", "credentials", "-user", "cmd-user", "-secret-file", file)
	if err != nil {
		t.Fatal(err)
	}
	cm := regexp.MustCompile(`username: (\S+)\npassword: (\S+)\n`).FindStringSubmatch(credOut)
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: m[1], Username: cm[1], Password: cm[2], Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	if p := relay.LocalAddr().(*net.UDPAddr).Port; p < 40000 || p > 40999 {
		t.Errorf("relay port %d outside 40000-40999", p)
	}
	resp, err := http.Get("http://" + m[2] + "/allocations")
	if err != nil {
		t.Fatal(err)
	}
	var allocs []struct {
		UserID, Transport, Relayed string
	}
	err = json.NewDecoder(resp.Body).Decode(&allocs)
	resp.Body.Close()
	if err != nil || len(allocs) != 1 || allocs[0].UserID != "cmd-user" || allocs[0].Relayed != relay.LocalAddr().String() {
		t.Errorf("/allocations: %+v, %v", allocs, err)
	}
	resp, err = http.Get("http://" + m[2] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	_, _ = metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), `confab_turn_allocations{transport="udp"} 1`) {
		t.Errorf("/metrics lacks the allocation")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("confab turn: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("confab turn did not stop")
	}
}

// TestTURNRefusesToStart: settings that cannot work stop `confab turn` before it serves.
func TestTURNRefusesToStart(t *testing.T) {
	file := writeSecret(t, "x")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"-udp", "127.0.0.1:0", "-tcp", "off", "-tls", "off", "-admin", "off"}, "no shared secret"},
		{"wildcard UDP without relay IP", []string{"-secret-file", file, "-udp", "0.0.0.0:0", "-tcp", "off", "-tls", "off", "-admin", "off"}, "relay"},
		{"bad CIDR", []string{"-secret-file", file, "-deny", "10.0.0.0/33", "-admin", "off"}, "turn.peers.deny"},
		{"all off", []string{"-secret-file", file, "-udp", "off", "-tcp", "off", "-tls", "off", "-admin", "off"}, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := confab(t, "", append([]string{"turn"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
