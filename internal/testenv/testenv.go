// Package testenv lets tests that need third-party software (Debian packages, npm modules)
// find it, and decides what happens when it is missing: a skip on a developer's machine, a
// failure when CONFAB_REQUIRE_PEERS=1 (set by `make test` and CI after installing the peers),
// so that a missing install step can never pass as a skipped test.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequirePeers reports whether missing third-party software must fail the test.
func RequirePeers() bool { return os.Getenv("CONFAB_REQUIRE_PEERS") == "1" }

// Missing skips or fails t, depending on RequirePeers, with a message naming what is missing.
func Missing(t testing.TB, what string) {
	t.Helper()
	if RequirePeers() {
		t.Fatalf("%s is required (CONFAB_REQUIRE_PEERS=1) but missing; run `make test-deps`", what)
	}
	t.Skipf("%s not installed; run `make test-deps` (or `make test`) to install the test peers", what)
}

// LookPath returns the path of the named program, or calls Missing.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name)
	}
	return p
}

// File returns path if it exists, or calls Missing naming it.
func File(t testing.TB, path, what string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, what+" ("+path+")")
	}
	return path
}
