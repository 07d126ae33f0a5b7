package main

import (
	"os/exec"
	"strings"
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
