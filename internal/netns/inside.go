package netns

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/testenv"
)

// InsideEnv is set in the environment of a process that RunInside or InsideTest started in
// a namespace, to the namespace's name.
const InsideEnv = "CONFAB_NETNS"

// Inside returns the namespace this process was started in by RunInside or InsideTest, if
// any.
func Inside() (string, bool) {
	v := os.Getenv(InsideEnv)
	return v, v != ""
}

// InsideTest runs the top-level test t again, alone, inside a fresh namespace that has only
// its loopback (so that every address a server there offers is 127.0.0.1), after the setup
// functions ran on it (LoopbackAlias, say), and reports
// whether the caller is that run. The outer run returns false after the inner one ended,
// and fails if it failed; it skips (or, with CONFAB_REQUIRE_PEERS=1, fails) without root.
//
//	if !netns.InsideTest(t, "janus") { return }
func InsideTest(t *testing.T, prefix string, setup ...func(*NS) error) bool {
	t.Helper()
	if _, ok := Inside(); ok {
		return true
	}
	if err := Available(); err != nil {
		testenv.Missing(t, err.Error())
	}
	n, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, f := range setup {
		if err := f(n); err != nil {
			t.Fatal(err)
		}
	}
	timeout := 5 * time.Minute
	if d, ok := t.Deadline(); ok {
		timeout = time.Until(d) - 5*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"-test.run", "^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1", "-test.v"}
	cmd := n.Command(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), InsideEnv+"="+n.Name)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("the run inside namespace %s failed: %v", n.Name, err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the run inside namespace %s did not pass %s", n.Name, t.Name())
	}
	return false
}
