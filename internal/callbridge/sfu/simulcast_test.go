package sfu_test

import (
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

var threeLayers = []sfutest.Layer{
	{RID: "q", Width: 320, Height: 180, FrameSize: 200},
	{RID: "h", Width: 640, Height: 360, FrameSize: 500},
	{RID: "f", Width: 1280, Height: 720, FrameSize: 1400},
}

// TestSimulcast: a publisher sends three rids; a subscriber gets the best layer, then the
// low one when it limits the size it renders or its bandwidth, switching on a key frame
// requested from the publisher, with no gap in the sequence numbers it sees.
func TestSimulcast(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	pub := sfutest.New(t, s, "room", "pub", sfutest.Options{Video: &sfutest.VideoTrack{Layers: threeLayers}})
	sub := sfutest.New(t, s, "room", "sub", sfutest.Options{})

	var trackID string
	sub.WaitFor(wait, "the top layer", func() bool {
		rt, ok := sub.TrackOf("pub", sfu.Video, sfu.SourceCamera)
		trackID = rt.ID
		return ok && rt.Layer == 2 && rt.Verified >= 10
	})
	if ti := pub.Published("pub"); len(ti) != 1 || len(ti[0].RIDs) == 0 {
		t.Errorf("published %+v, want one track with rids", ti)
	}

	steps := []struct {
		name  string
		apply func() error
		layer uint8
	}{
		{"max resolution 320x180", func() error { return sub.P.SetMaxResolution(trackID, 320, 180) }, 0},
		{"max resolution 640x360", func() error { return sub.P.SetMaxResolution(trackID, 640, 360) }, 1},
		{"no limit", func() error { return sub.P.SetMaxResolution(trackID, 0, 0) }, 2},
		{"preferred h", func() error { return sub.P.SetPreferredLayer(trackID, "h") }, 1},
		{"no preference", func() error { return sub.P.SetPreferredLayer(trackID, "") }, 2},
		{"bandwidth 100 kbit/s", func() error { return sub.P.SetMaxBitrate(100_000) }, 0},
		{"bandwidth 10 Mbit/s", func() error { return sub.P.SetMaxBitrate(10_000_000) }, 2},
	}
	for _, step := range steps {
		before, _ := sub.Track(trackID)
		plis := pub.PLIs()
		if err := step.apply(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		sub.WaitFor(wait, step.name+": layer switch", func() bool {
			rt, _ := sub.Track(trackID)
			return len(rt.Switches) > len(before.Switches) && rt.Layer == step.layer && rt.Verified > before.Verified+5
		})
		rt, _ := sub.Track(trackID)
		sw := rt.Switches[len(before.Switches)]
		if !sw.Key || sw.To != step.layer {
			t.Errorf("%s: switch %+v, want to layer %d on a key frame", step.name, sw, step.layer)
		}
		if len(rt.Switches) != len(before.Switches)+1 {
			t.Errorf("%s: switches %+v, want one", step.name, rt.Switches[len(before.Switches):])
		}
		if got := pub.PLIs(); got <= plis {
			t.Errorf("%s: publisher got %d PLIs, had %d: want a key frame request", step.name, got, plis)
		}
		if rt.Gaps != 0 {
			t.Errorf("%s: %d gaps in the sequence numbers, want none", step.name, rt.Gaps)
		}
		if rt.Verified != rt.Frames {
			t.Errorf("%s: %d of %d frames intact", step.name, rt.Verified, rt.Frames)
		}
		if !sub.HasEvent(func(e sfu.Event) bool { return e.Type == sfu.EventLayerChanged && e.Track.ID == trackID }) {
			t.Errorf("%s: no layer-changed event", step.name)
		}
	}
	st := sub.P.Stats()
	if st.TxVideo.Width != 1280 || st.TxVideo.Layer != "f" {
		t.Errorf("subscriber's tx video %dx%d layer %q, want 1280x720 f", st.TxVideo.Width, st.TxVideo.Height, st.TxVideo.Layer)
	}
	pst := pub.P.Stats()
	if pst.RxVideo.Width != 1280 || pst.RxVideo.Height != 720 || pst.RxVideo.Codec != "video/VP8" || pst.RxVideo.BitRate == 0 {
		t.Errorf("publisher's rx video %+v, want VP8 1280x720 with a bit rate", pst.RxVideo)
	}
}

// TestSimulcastBandwidthEstimate: a subscriber behind a narrow downlink (a relay that
// polices the SFU's RTP to 150 kbit/s) gets a low layer from the send-side estimate (GCC
// over its transport-cc feedback), without any cap set through the API; when the link
// widens, the estimate climbs and the layer with it.
func TestSimulcastBandwidthEstimate(t *testing.T) {
	s := newSFU(t, sfu.Config{InitialBitrate: 2_000_000})
	down := sfutest.NewRelay(t, s.UDPAddr(), 0, 4)
	pub := sfutest.New(t, s, "room", "pub", sfutest.Options{Video: &sfutest.VideoTrack{Layers: threeLayers}})
	sub := sfutest.New(t, s, "room", "sub", sfutest.Options{RewriteSDP: down.RewriteSDP})
	sub.WaitFor(wait, "the top layer", func() bool {
		rt, ok := sub.TrackOf("pub", sfu.Video, "")
		return ok && rt.Layer == 2 && rt.Verified >= 10
	})
	if pub.PLIs() == 0 {
		t.Error("the publisher got no key frame request")
	}
	down.DownRate.Store(150_000)
	sub.WaitFor(30*time.Second, "a lower layer", func() bool {
		rt, _ := sub.TrackOf("pub", sfu.Video, "")
		return rt.Layer < 2 && sub.P.Stats().AvailableBitrate < 400_000
	})
	t.Logf("estimate %d bit/s behind 150 kbit/s", sub.P.Stats().AvailableBitrate)
	down.DownRate.Store(0)
	sub.WaitFor(60*time.Second, "the top layer again", func() bool {
		rt, _ := sub.TrackOf("pub", sfu.Video, "")
		return rt.Layer == 2
	})
	t.Logf("estimate %d bit/s unpoliced", sub.P.Stats().AvailableBitrate)
}

// cameraLayers are a browser camera's simulcast layers at 30 frames/s: 150, 500 and 1500
// kbit/s.
var cameraLayers = []sfutest.Layer{
	{RID: "q", Width: 320, Height: 180, FrameSize: 600, KeyFrameSize: 2400},
	{RID: "h", Width: 640, Height: 360, FrameSize: 2050, KeyFrameSize: 8200},
	{RID: "f", Width: 1280, Height: 720, FrameSize: 6200, KeyFrameSize: 24800},
}

// TestNarrowSubscriber: beside an unconstrained subscriber, one whose downlink is shaped
// to 500 kbit/s (a queue of half a second) and loses 3 % of its packets settles on the
// low layer and stays there,
// at the publisher's frame rate, its losses repaired within its retransmission budget,
// while the other keeps the high layer; the narrow one never switches once settled. (TestBadNetwork in
// internal/bench/media does the same over XMPP with tc and nftables.)
func TestNarrowSubscriber(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	down := sfutest.NewRelay(t, s.UDPAddr(), 0.03, 5)
	down.DownRate.Store(500_000)
	down.DownQueue.Store(int64(500 * time.Millisecond))
	pub := sfutest.New(t, s, "room", "pub", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{Layers: cameraLayers, KeyEvery: 300}})
	narrow := sfutest.New(t, s, "room", "narrow", sfutest.Options{RewriteSDP: down.RewriteSDP})
	wide := sfutest.New(t, s, "room", "wide", sfutest.Options{})
	on := func(c *sfutest.Client, layer uint8) func() bool {
		return func() bool {
			rt, ok := c.TrackOf("pub", sfu.Video, "")
			return ok && rt.Layer == layer && rt.Verified > 30
		}
	}
	narrow.WaitFor(wait, "the low layer", on(narrow, 0))
	wide.WaitFor(wait, "the high layer", on(wide, 2))
	n0, _ := narrow.TrackOf("pub", sfu.Video, "")
	w0, _ := wide.TrackOf("pub", sfu.Video, "")
	sent0 := pub.SentFrames(0)
	denied0 := narrow.P.Stats().RetransmissionsDenied
	time.Sleep(10 * time.Second) // the window measured, not a synchronisation
	n1, _ := narrow.TrackOf("pub", sfu.Video, "")
	w1, _ := wide.TrackOf("pub", sfu.Video, "")
	sent := pub.SentFrames(0) - sent0
	st := narrow.P.Stats()
	t.Logf("in %d frames sent: narrow %d frames (%d late), %d switches, %d repaired, %d RTX, %d retransmissions denied, estimate %d bit/s; wide %d frames, %d switches; relay dropped %d",
		sent, n1.Verified-n0.Verified, n1.Late-n0.Late, len(n1.Switches)-len(n0.Switches), n1.Repaired-n0.Repaired, n1.RTX-n0.RTX,
		st.RetransmissionsDenied-denied0, st.AvailableBitrate, w1.Verified-w0.Verified, len(w1.Switches)-len(w0.Switches), down.Dropped.Load())
	// The wide subscriber may go down and back once: its estimate is pion's delay-based
	// GCC, which reads the CPU scheduling delay of a loaded machine (CI runs every
	// package's tests at once, under -race) as congestion. It happened once in CI-like
	// runs (f -> h -> f, every frame delivered); the narrow one never moved.
	for _, c := range []struct {
		name        string
		a, b        sfutest.RecvTrack
		layer       uint8
		minPct      float64
		maxSwitches int
	}{{"narrow", n0, n1, 0, 0.9, 0}, {"wide", w0, w1, 2, 0.97, 2}} {
		if c.b.Layer != c.layer || len(c.b.Switches)-len(c.a.Switches) > c.maxSwitches {
			t.Errorf("%s: on layer %d after switches %+v, want layer %d with at most %d switches", c.name, c.b.Layer, c.b.Switches[len(c.a.Switches):], c.layer, c.maxSwitches)
		}
		if got := float64(c.b.Verified - c.a.Verified); got < c.minPct*float64(sent) {
			t.Errorf("%s: %.0f frames of %d sent, want %.0f %%", c.name, got, sent, 100*c.minPct)
		}
	}
	// pion's NACK generator asks again every 100 ms until the packet comes, and behind a
	// queue of half a second the responder resends each ask: a lost packet costs ~5
	// retransmissions, which at 3 % loss nears the budget's fifth. On a quiet machine none
	// is denied; on a loaded one a few dozen are (21 seen). A budget that starves the
	// repair, as before the stale NACKs were dropped free, denies thousands.
	if d := st.RetransmissionsDenied - denied0; d > 100 {
		t.Errorf("narrow: %d retransmissions denied in 10 s, want at most 100 at 3 %% loss", d)
	}
}
