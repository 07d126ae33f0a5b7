package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"confab.dev/confab/internal/testenv"
)

// TestSystemdUnits: each role's unit passes `systemd-analyze verify` without a warning and
// carries the hardening operators expect.
func TestSystemdUnits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	analyze := testenv.LookPath(t, "systemd-analyze")
	dir, bin := t.TempDir(), builtConfab(t)
	units, err := filepath.Glob("../../dist/systemd/*.service")
	if err != nil || len(units) != 3 {
		t.Fatalf("units %v (%v), want 3", units, err)
	}
	for _, u := range units {
		t.Run(filepath.Base(u), func(t *testing.T) {
			b, err := os.ReadFile(u)
			if err != nil {
				t.Fatal(err)
			}
			unit := string(b)
			for _, want := range []string{"User=confab", "ProtectSystem=strict", "StateDirectory=confab", "NoNewPrivileges=yes",
				"\nCapabilityBoundingSet=\n", "\nAmbientCapabilities=\n", "ExecStart=/usr/local/bin/confab "} {
				if !strings.Contains(unit, want) {
					t.Errorf("no %q", strings.TrimSpace(want))
				}
			}
			// verify checks that ExecStart's program exists: point it at the binary just built.
			local := filepath.Join(dir, filepath.Base(u))
			if err := os.WriteFile(local, []byte(strings.ReplaceAll(unit, "/usr/local/bin/confab", bin)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", "--man=no", local).CombinedOutput()
			if err != nil || strings.Contains(string(out), filepath.Base(u)) {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}
}

// TestStaticBinary: the container's build command makes a binary that needs no shared
// library (no ELF interpreter), so it runs on a distroless static image.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "confab")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "confab ") {
		t.Errorf("static binary: version = %q, %v", out, err)
	}
}
