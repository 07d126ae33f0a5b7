package sfu

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// layerRig is a published track with three simulcast layers of known smoothed rates, all
// sending, and a subscription to it.
func layerRig(now int64) *downTrack {
	t := &publishedTrack{kind: Video}
	for i, r := range []struct {
		rid  string
		rate int64
		w, h int32
	}{{"q", 150_000, 320, 180}, {"h", 500_000, 640, 360}, {"f", 1_500_000, 1280, 720}} {
		l := &layer{t: t, rid: r.rid, order: i}
		l.avgRate.Store(r.rate)
		l.width.Store(r.w)
		l.height.Store(r.h)
		l.lastAt.Store(now)
		t.layers = append(t.layers, l)
	}
	dt := &downTrack{pt: t}
	dt.target.Store(t.layers[2])
	return dt
}

// TestLayerHysteresis: the layer follows a budget down at once and up only when a higher
// layer has fitted it with a margin for the hold, which each failed attempt doubles; a
// change of the size rendered applies at once.
func TestLayerHysteresis(t *testing.T) {
	type step struct {
		at     time.Duration
		budget int
		maxW   int32 // the width the subscriber renders; -1 leaves it
		want   string
	}
	s := func(at time.Duration, budget int, want string) step { return step{at, budget, -1, want} }
	sec := time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{"down at once", []step{s(0, 1_000_000, "h"), s(200*time.Millisecond, 100_000, "q")}},
		{"up after the hold", []step{
			s(0, 1_000_000, "h"), s(sec, 2_000_000, "h"), s(3*sec, 2_000_000, "h"), s(4*sec, 2_000_000, "f")}},
		{"up needs the margin", []step{
			s(0, 1_000_000, "h"), s(sec, 1_600_000, "h"), s(5*sec, 1_600_000, "h"), s(30*sec, 1_600_000, "h")}},
		{"a dip restarts the hold", []step{
			s(0, 1_000_000, "h"), s(sec, 2_000_000, "h"), s(3*sec, 1_600_000, "h"), s(3200*time.Millisecond, 2_000_000, "h"),
			s(6*sec, 2_000_000, "h"), s(6200*time.Millisecond, 2_000_000, "f")}},
		{"a failed attempt doubles the hold", []step{
			s(0, 1_000_000, "h"), s(sec, 2_000_000, "h"), s(4*sec, 2_000_000, "f"),
			s(5*sec, 1_000_000, "h"), // failed within 10 s: the hold is 6 s now
			s(6*sec, 2_000_000, "h"), s(11*sec, 2_000_000, "h"), s(12*sec, 2_000_000, "f"),
			s(13*sec, 1_000_000, "h"), // failed again: 12 s
			s(14*sec, 2_000_000, "h"), s(25*sec, 2_000_000, "h"), s(26*sec, 2_000_000, "f"),
			s(60*sec, 1_000_000, "h"), // long after: back to 3 s
			s(61*sec, 2_000_000, "h"), s(64*sec, 2_000_000, "f")}},
		{"the size rendered applies at once", []step{
			{0, 2_000_000, 320, "q"}, {200 * time.Millisecond, 2_000_000, 0, "f"}, {400 * time.Millisecond, 2_000_000, 640, "h"}}},
		{"nothing fits: the lowest", []step{s(0, 10_000, "q"), s(10*sec, 10_000, "q")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now().UnixNano()
			dt := layerRig(start)
			for i, st := range tt.steps {
				now := start + int64(st.at)
				for _, l := range dt.pt.layers {
					l.lastAt.Store(now)
				}
				if st.maxW >= 0 {
					dt.maxW.Store(st.maxW)
					dt.maxH.Store(st.maxW * 9 / 16)
				}
				got := dt.choose(st.budget, now)
				dt.target.Store(got)
				if got.rid != st.want {
					t.Fatalf("step %d (%v, budget %d): layer %s, want %s", i, st.at, st.budget, got.rid, st.want)
				}
			}
		})
	}
}

// TestLayerRateSmoothing: a key frame's burst (one tick at one and a half times the rate)
// moves a layer's smoothed rate, which the choice uses, by a quarter of the excess; the
// last tick's rate (the statistics') shows all of it.
func TestLayerRateSmoothing(t *testing.T) {
	tr := &publishedTrack{kind: Video}
	l := &layer{t: tr, rid: "f"}
	tr.layers = []*layer{l}
	p := &Participant{published: map[*webrtc.RTPReceiver]*publishedTrack{nil: tr}}
	const tick = 1_500_000 / 8 / 5 // bytes in 200 ms at 1.5 Mbit/s
	for range 20 {
		l.bytes.Add(tick)
		p.measure(0.2)
	}
	if got := l.avgRate.Load(); got != 1_500_000 {
		t.Fatalf("steady: smoothed rate %d, want 1500000", got)
	}
	l.bytes.Add(tick * 3 / 2)
	p.measure(0.2)
	if got, want := l.bitrate.Load(), int64(2_250_000); got != want {
		t.Errorf("key frame tick: rate %d, want %d", got, want)
	}
	if got, want := l.avgRate.Load(), int64(1_687_500); got != want {
		t.Errorf("key frame tick: smoothed rate %d, want %d", got, want)
	}
}
