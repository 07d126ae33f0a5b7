package webapp_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"confab.dev/confab/internal/testenv"
)

// TestAppScripts runs the browser app's own unit tests (web/app/test, `npm test` there):
// the SDP helpers, and the media negotiation — first offer, server offers, glare in both
// orders, the screen share's stream id, ICE restart, a fresh start after <ended/> — against
// a fake RTCPeerConnection. The real browser meets the real SFU in internal/launch.
func TestAppScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node")
	}
	appDir, err := filepath.Abs(filepath.Join("..", "..", "..", "web", "app"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.File(t, filepath.Join(appDir, "node_modules"), "npm packages of web/app")
	node := testenv.LookPath(t, "node")
	cmd := exec.Command(node, "--test", "test/")
	cmd.Dir = appDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
