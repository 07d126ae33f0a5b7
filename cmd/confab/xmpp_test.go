package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"confab.dev/confab/internal/launch"
)

// TestAddSecretPromptsAtATerminal drives `confab xmpp callbridge add-secret` through a
// pseudo-terminal, as an administrator types: the secret is asked for twice, never echoed,
// and stored only when both agree.
func TestAddSecretPromptsAtATerminal(t *testing.T) {
	bin := builtConfab(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "xmpp.toml")
	if err := os.WriteFile(cfg, []byte("domain = \"example.com\"\ndata_dir = \""+dir+"/data\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		first, second string
		wantErr       bool
		wantOut       string
	}{
		{"the same twice", "typed-secret-1", "typed-secret-1", false, "secret set for cb1"},
		{"two different", "typed-secret-2", "typo-secret-2", true, "the two secrets differ; nothing changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "xmpp", "callbridge", "add-secret", "cb1", "-config", cfg)
			tty, err := pty.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer tty.Close()
			r := bufio.NewReader(tty)
			var seen strings.Builder
			// expect reads the terminal until it shows want.
			expect := func(want string) {
				t.Helper()
				for !strings.Contains(seen.String(), want) {
					b, err := r.ReadByte()
					if err != nil {
						t.Fatalf("terminal shows %q, waiting for %q: %v", seen.String(), want, err)
					}
					seen.WriteByte(b)
				}
			}
			expect("Shared secret for cb1: ")
			io.WriteString(tty, tc.first+"\r")
			expect("Again, to confirm: ")
			io.WriteString(tty, tc.second+"\r")
			rest, _ := io.ReadAll(r) // to the end: the process exits and the terminal closes
			seen.Write(rest)
			err = cmd.Wait()
			if (err != nil) != tc.wantErr {
				t.Errorf("exit: %v, want error %v\n%s", err, tc.wantErr, seen.String())
			}
			if !strings.Contains(seen.String(), tc.wantOut) {
				t.Errorf("terminal:\n%s\nwant %q", seen.String(), tc.wantOut)
			}
			if strings.Contains(seen.String(), tc.first) || strings.Contains(seen.String(), tc.second) {
				t.Errorf("the secret was echoed:\n%s", seen.String())
			}
			b, _ := os.ReadFile(filepath.Join(dir, "data", "callbridges.toml"))
			if stored := strings.Contains(string(b), tc.first); stored == tc.wantErr {
				t.Errorf("stored %v, want %v", stored, !tc.wantErr)
			}
		})
	}
}

// TestCallBridgeListNamesTheServersDomain: after `confab up` (domain example.com, no
// xmpp.toml written), `confab xmpp callbridge list -data DIR` read the default domain
// (localhost) and printed cb1.localhost, while the Call Bridge was registered as
// cb1.example.com. It now asks the running server which domain it serves.
func TestCallBridgeListNamesTheServersDomain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts confab up")
	}
	dir := t.TempDir()
	ctx := context.Background()
	u, err := launch.StartUp(ctx, launch.UpOptions{
		DataDir: dir,
		C2S:     "127.0.0.1:0", Component: "127.0.0.1:0", Web: "127.0.0.1:0", API: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Media: "127.0.0.1:0",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u.Shutdown(ctx)
	})
	admin := u.XMPP.Addrs.Admin
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var out, errOut string
	for {
		out, errOut, err = confab(t, "", "xmpp", "callbridge", "list", "-data", dir, "-admin", admin)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "connected ") || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	if !strings.Contains(out, "cb1.example.com") || strings.Contains(out, "localhost") || !strings.Contains(out, "connected") {
		t.Errorf("list:\n%s\nwant cb1.example.com, connected", out)
	}
	if !strings.Contains(errOut, "serves example.com; the configuration says localhost") {
		t.Errorf("stderr %q: want the domain difference said", errOut)
	}
}
