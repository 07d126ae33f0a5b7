package media

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestMeetingsLeaveNothingBehind is the soak's CI-sized variant: three rounds of a
// three-party meeting (XMPP login, join, media both ways, leave) on one Call Bridge; after
// each round the process (server and participants, which share it here) is back to the
// goroutines and open files it had before the first, so a meeting leaks neither. The
// 30-minute soak with 20 participants is bench/media.sh SOAK=30m.
func TestMeetingsLeaveNothingBehind(t *testing.T) {
	info, target := confab(t, 3, 1)
	baseG, baseF := runtime.NumGoroutine(), openFiles(t)
	settle := func() (int, int) {
		// Closed connections' goroutines end shortly after Close returns (pion's timers,
		// the XMPP server's readers): poll, bounded.
		var g, f int
		for range 50 {
			runtime.GC()
			g, f = runtime.NumGoroutine(), openFiles(t)
			if g <= baseG+8 && f <= baseF+2 {
				break
			}
			sleep(context.Background(), 200*time.Millisecond)
		}
		return g, f
	}
	for round := range 3 {
		var ps []*XMPPParticipant
		for i := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			p, err := JoinXMPP(ctx, XMPPOptions{Target: target, User: fmt.Sprintf("user%d", i), Password: info.Password,
				Space: info.Spaces[0], Name: fmt.Sprintf("r%dp%d", round, i), Client: sfutest.Options{Audio: true, Video: Camera(30)}})
			cancel()
			if err != nil {
				t.Fatalf("round %d, participant %d: %v", round, i, err)
			}
			ps = append(ps, p)
		}
		for _, rx := range ps {
			for _, tx := range ps {
				if rx != tx {
					waitFor(t, rx.C, 30*time.Second, "video from "+tx.C.Name, func() bool {
						rt, ok := rx.C.TrackOf(tx.ID, sfu.Video, "")
						return ok && rt.Verified > 10
					})
				}
			}
		}
		for _, p := range ps {
			p.Close()
		}
		g, f := settle()
		t.Logf("round %d: %d goroutines (before: %d), %d open files (before: %d)", round, g, baseG, f, baseF)
		if g > baseG+8 || f > baseF+2 {
			t.Errorf("round %d: %d goroutines and %d open files after everyone left; before the first round %d and %d", round, g, f, baseG, baseF)
		}
	}
}
