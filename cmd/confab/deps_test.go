package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBinaryLinksOnlyProductCode: the confab binary that users run links no load tool, no
// launcher of third-party test peers and no package testing (those live in cmd/confab-bench
// and in test files).
func TestBinaryLinksOnlyProductCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "confab.dev/confab/cmd/confab").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps printed %d packages: %s", len(deps), out)
	}
	banned := []string{"testing", "confab.dev/confab/internal/bench", "confab.dev/confab/internal/peers",
		"confab.dev/confab/internal/testenv", "confab.dev/confab/internal/clocktest"}
	for _, d := range deps {
		bad := strings.HasPrefix(d, "confab.dev/") && strings.HasSuffix(d, "test") // linktest, xmppdtest, …
		for _, b := range banned {
			bad = bad || d == b || strings.HasPrefix(d, b+"/")
		}
		if bad {
			t.Errorf("cmd/confab links %s", d)
		}
	}
}

// TestVersionNamesTheCommit: a binary built in the checkout says which commit it is.
func TestVersionNamesTheCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	out, err := exec.Command(builtConfab(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "commit " + strings.TrimSpace(string(head))[:12]; !strings.Contains(string(out), want) {
		t.Errorf("confab version = %q, want it to contain %q", out, want)
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// builtConfab builds cmd/confab once for the tests that run the binary (with the commit
// recorded, as `make build` does) and returns its path.
func builtConfab(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "confab-cmd-test"); buildErr != nil {
			return
		}
		buildOut, buildErr = exec.Command("go", "build", "-buildvcs=auto", "-o", filepath.Join(buildDir, "confab"), ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return filepath.Join(buildDir, "confab")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
