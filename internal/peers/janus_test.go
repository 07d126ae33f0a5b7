package peers

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestJanusStarts: Janus starts from its private configuration, with the VideoRoom plugin
// and the HTTP API on loopback, and answers an info request; Stop ends it.
func TestJanusStarts(t *testing.T) {
	j := StartJanusT(t, JanusOptions{})
	if !strings.HasPrefix(j.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q, want one on 127.0.0.1", j.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := JanusInfo(ctx, j.URL)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if !strings.HasPrefix(v, "1.") {
		t.Errorf("version %q, want 1.x", v)
	}
	cfg, err := os.ReadFile(j.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), j.Dir) {
		t.Errorf("the configuration does not point at the private directory %s", j.Dir)
	}
	j.Stop()
	select {
	case <-j.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("janus still running 30s after Stop")
	}
	if _, err := JanusInfo(ctx, j.URL); err == nil {
		t.Error("janus still answers after Stop")
	}
}
