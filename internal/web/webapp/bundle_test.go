package webapp_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"confab.dev/confab/internal/testenv"
)

// TestBundleIsCurrent rebuilds the JavaScript bundle from web/app with the locked npm
// packages and checks that the committed assets are byte for byte what the build makes:
// whoever changes web/app must run `npm run build` there and commit the result.
func TestBundleIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the JavaScript bundle")
	}
	appDir, err := filepath.Abs(filepath.Join("..", "..", "..", "web", "app"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.File(t, filepath.Join(appDir, "node_modules"), "npm packages of web/app")
	node := testenv.LookPath(t, "node")
	out := t.TempDir()
	cmd := exec.Command(node, "build.mjs", "--outdir="+out)
	cmd.Dir = appDir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	for _, name := range []string{"app.js", "licenses.txt"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("assets", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, committed) {
			t.Errorf("internal/web/webapp/assets/%s is not what web/app builds (%d bytes built, %d committed): run `npm ci && npm run build` in web/app and commit the result", name, len(got), len(committed))
		}
	}
}
