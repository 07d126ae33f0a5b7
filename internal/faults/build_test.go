package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// builder builds the confab binary at most once per test run, on first use, so that -short
// runs build nothing.
type builder struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// binary is the confab binary under test. TestMain removes its directory.
var binary builder

// path returns the built binary, building it on first call; a build failure fails t.
func (b *builder) get(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = err
			return
		}
		b.dir, b.err = os.MkdirTemp("", "confab-faults-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "confab")
		start := time.Now()
		cmd := exec.Command(goTool, "build", "-o", b.path, "confab.dev/confab/cmd/confab")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = &buildError{err: err, out: string(out)}
			return
		}
		t.Logf("built %s in %s", b.path, time.Since(start).Round(time.Millisecond))
	})
	if b.err != nil {
		t.Fatalf("build confab: %v", b.err)
	}
	return b.path
}

func (b *builder) remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	binary.remove()
	os.Exit(code)
}
