package media

import (
	"context"
	"fmt"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
	"confab.dev/confab/internal/netns"
	"confab.dev/confab/internal/peers"
)

// TestJanusMeeting: three participants publish Opus and three-layer simulcast VP8 in a
// Janus VideoRoom through Janus's HTTP API and subscribe to each other's feeds (highest
// layer); each receives the two others' audio and video, every frame intact. Janus offers
// the host's addresses (and never a loopback interface's), so the test runs in a namespace
// that has only loopback and a loopback-range alias for Janus (JanusAddr).
func TestJanusMeeting(t *testing.T) {
	if !netns.InsideTest(t, "janus", func(n *netns.NS) error { return n.LoopbackAlias(JanusAddr) }) {
		return
	}
	j := peers.StartJanusT(t, peers.JanusOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api := NewJanusAPI(j.URL)
	if err := api.CreateRoom(ctx, 1001, 10); err != nil {
		t.Fatal(err)
	}
	const n = 3
	var ps []*JanusParticipant
	for i := range n {
		p, err := JoinJanus(ctx, JanusOptions{API: api, Room: 1001, Name: fmt.Sprintf("p%d", i),
			Publish: &sfutest.Options{Audio: true, Video: Camera(30)}})
		if err != nil {
			t.Fatalf("participant %d: %v", i, err)
		}
		t.Cleanup(p.Close)
		ps = append(ps, p)
	}
	for _, p := range ps {
		var feeds []uint64
		for _, o := range ps {
			if o != p {
				feeds = append(feeds, o.FeedID)
			}
		}
		if err := p.Subscribe(ctx, feeds, 2); err != nil {
			t.Fatalf("%s subscribes: %v", p.name, err)
		}
	}
	for _, p := range ps {
		want := map[uint32]bool{}
		for _, o := range ps {
			if o != p {
				want[o.Pub.Src] = true
			}
		}
		err := p.Sub.Until(30*time.Second, func() bool {
			ok := 0
			for _, id := range p.Sub.Tracks() {
				rt, _ := p.Sub.Track(id)
				if rt.Verified >= 20 && (rt.Kind == sfu.Audio || rt.Layer == 2) {
					ok++
				}
			}
			return ok == 2*(n-1)
		})
		var got []sfutest.RecvTrack
		for _, id := range p.Sub.Tracks() {
			rt, _ := p.Sub.Track(id)
			got = append(got, rt)
		}
		if err != nil {
			t.Fatalf("%s: %v; tracks %+v; errors %v", p.name, err, got, p.Sub.Errors())
		}
		for _, rt := range got {
			if rt.Verified != rt.Frames || len(rt.Sources) != 1 {
				t.Errorf("%s, track %s: %d of %d frames intact, sources %v", p.name, rt.ID, rt.Verified, rt.Frames, rt.Sources)
			}
			for src := range rt.Sources {
				if !want[src] {
					t.Errorf("%s, track %s: frames from %d, not another participant", p.name, rt.ID, src)
				}
			}
		}
	}
}
