package sfu_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// wait is the bound of every wait for media or events in these tests: generous, since a
// loaded CI machine running the race detector is slow to start media, and a wait ends as
// soon as its condition holds.
const wait = 60 * time.Second

func newSFU(t *testing.T, cfg sfu.Config) *sfu.SFU {
	t.Helper()
	if cfg.UDPAddr == "" {
		cfg.UDPAddr = "127.0.0.1:0"
	}
	if cfg.TCPAddr == "" {
		cfg.TCPAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := sfu.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// testLogger logs to t.Log (warnings and up, or everything with SFU_DEBUG=1) until the
// test ends.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SFU_DEBUG") != "" {
		level = slog.LevelDebug
	}
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p))
	}
	return len(p), nil
}

var _ = io.Discard

// media says whether c has received at least frames verified frames of participant's
// track of that kind, every one intact.
func media(c *sfutest.Client, participant string, kind sfu.Kind, source sfu.Source, frames int) bool {
	rt, ok := c.TrackOf(participant, kind, source)
	return ok && rt.Verified >= frames
}

func checkIntact(t *testing.T, c *sfutest.Client, participant string, kind sfu.Kind, source sfu.Source, src uint32) {
	t.Helper()
	rt, ok := c.TrackOf(participant, kind, source)
	if !ok {
		t.Fatalf("%s: no %s %s track from %s", c.Name, source, kind, participant)
	}
	if rt.Verified != rt.Frames {
		t.Errorf("%s: %s %s from %s: %d of %d frames intact, want all", c.Name, source, kind, participant, rt.Verified, rt.Frames)
	}
	if len(rt.Sources) != 1 || !rt.Sources[src] {
		t.Errorf("%s: %s %s from %s: frames from sources %v, want only %d", c.Name, source, kind, participant, rt.Sources, src)
	}
}

func TestEveryoneReceivesEveryone(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(string(rune('0'+n))+" participants", func(t *testing.T) {
			s := newSFU(t, sfu.Config{})
			names := []string{"alice", "bob", "carol"}[:n]
			clients := map[string]*sfutest.Client{}
			for _, name := range names {
				clients[name] = sfutest.New(t, s, "room1", name, sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
			}
			for _, c := range clients {
				for _, other := range names {
					if other == c.Name {
						continue
					}
					c.WaitFor(wait, other+"'s audio and video", func() bool {
						return media(c, other, sfu.Audio, sfu.SourceMicrophone, 50) && media(c, other, sfu.Video, sfu.SourceCamera, 30)
					})
					checkIntact(t, c, other, sfu.Audio, sfu.SourceMicrophone, clients[other].Src)
					checkIntact(t, c, other, sfu.Video, sfu.SourceCamera, clients[other].Src)
				}
				if got, want := len(c.Tracks()), 2*(n-1); got != want {
					t.Errorf("%s received %d tracks, want %d", c.Name, got, want)
				}
				if errs := c.Errors(); len(errs) > 0 {
					t.Errorf("%s: %v", c.Name, errs)
				}
			}
			st := s.Stats()
			if st.Participants != n || st.Rooms != 1 {
				t.Errorf("Stats: %d participants in %d rooms, want %d in 1", st.Participants, st.Rooms, n)
			}
			if st.ForwardedAudioPackets == 0 || st.ForwardedVideoPackets == 0 {
				t.Errorf("Stats: forwarded %d audio and %d video packets, want some of each", st.ForwardedAudioPackets, st.ForwardedVideoPackets)
			}
		})
	}
}
