package sfu_test

import (
	"testing"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// TestLoss: both the publisher's and the subscriber's paths lose 5 % of their RTP packets
// (a seeded relay); NACK and RTX recover them in both directions, so (nearly) every video
// frame arrives intact; a PLI from the subscriber brings a key frame from the publisher.
func TestLoss(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	up := sfutest.NewRelay(t, s.UDPAddr(), 0.05, 1)
	down := sfutest.NewRelay(t, s.UDPAddr(), 0.05, 2)
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{
		Layers: []sfutest.Layer{{Width: 640, Height: 360, FrameSize: 2500}}, KeyEvery: 1000}, RewriteSDP: up.RewriteSDP})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{RewriteSDP: down.RewriteSDP})

	b.WaitFor(wait, "200 frames of a's video", func() bool { return media(b, "a", sfu.Video, "", 200) })
	rt, _ := b.TrackOf("a", sfu.Video, "")
	if up.Dropped.Load() == 0 || down.Dropped.Load() == 0 {
		t.Fatalf("the relays dropped %d and %d packets, want some each", up.Dropped.Load(), down.Dropped.Load())
	}
	if rt.RTX == 0 {
		t.Errorf("the subscriber got no retransmission (%d packets dropped on its path)", down.Dropped.Load())
	}
	st := a.P.Stats()
	if st.RxVideo.RTXPackets == 0 {
		t.Errorf("the SFU got no retransmission from the publisher (%d packets dropped on its path)", up.Dropped.Load())
	}
	// A frame is lost only if a packet and its retransmissions all were.
	span := int(rt.Last.No-rt.First.No) + 1
	if float64(rt.Verified) < 0.97*float64(span) {
		t.Errorf("%d frames intact of the %d sent from the first received to the last, want 97 %%", rt.Verified, span)
	}
	if rt.Verified != rt.Frames {
		t.Errorf("%d of %d complete frames intact", rt.Verified, rt.Frames)
	}
	t.Logf("dropped up %d, down %d; retransmitted up %d, down %d; %d frames intact of %d; rx loss %d (%.3f), jitter %v",
		up.Dropped.Load(), down.Dropped.Load(), st.RxVideo.RTXPackets, rt.RTX, rt.Verified, span,
		st.RxVideo.PacketsLost, st.RxVideo.LossFraction, st.RxVideo.Jitter)

	keys, plis := rt.Keyframes, a.PLIs()
	if err := b.SendPLI(rt.ID); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(wait, "a key frame after the PLI", func() bool {
		now, _ := b.Track(rt.ID)
		return now.Keyframes > keys && a.PLIs() > plis
	})
	if got := b.P.Stats().KeyframeRequests; got == 0 {
		t.Errorf("the subscriber's stats count %d key frame requests, want at least 1", got)
	}
}

// TestReplay: every SRTP packet a publisher sends reaches the SFU twice; pion's SRTP replay
// protection drops the copies, so the SFU counts and forwards each packet once.
func TestReplay(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	up := sfutest.NewRelay(t, s.UDPAddr(), 0, 3)
	up.Replay.Store(true)
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}, RewriteSDP: up.RewriteSDP})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{})
	b.WaitFor(wait, "a's media", func() bool { return media(b, "a", sfu.Video, "", 100) && media(b, "a", sfu.Audio, "", 100) })
	if up.Replayed.Load() < 200 {
		t.Fatalf("the relay replayed %d packets, want hundreds", up.Replayed.Load())
	}
	for _, kind := range []sfu.Kind{sfu.Audio, sfu.Video} {
		rt, _ := b.TrackOf("a", kind, "")
		if rt.Gaps != 0 || rt.Verified != rt.Frames {
			t.Errorf("%s: %d sequence gaps (a replayed packet forwarded shows as one), %d of %d frames intact", kind, rt.Gaps, rt.Verified, rt.Frames)
		}
	}
	st := a.P.Stats()
	if got, sent := st.RxAudio.Packets+st.RxVideo.Packets, uint64(a.SentPackets()); got > sent {
		t.Errorf("the SFU counted %d packets of the %d the publisher sent, want each once at most", got, sent)
	}
}

// TestICERestart: a restart started by the server (RestartICE) and one by the client
// (an offer with new credentials) each change the ICE credentials, and media goes on.
func TestICERestart(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true})
	b.WaitFor(wait, "a's media", func() bool { return media(b, "a", sfu.Video, "", 20) })
	for _, tc := range []struct {
		name    string
		restart func() error
	}{
		{"server", a.P.RestartICE},
		{"client", a.RestartICE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.RemoteUfrag()
			rt, _ := b.TrackOf("a", sfu.Video, "")
			if err := tc.restart(); err != nil {
				t.Fatal(err)
			}
			a.WaitFor(wait, "new credentials", func() bool { return a.RemoteUfrag() != before && a.RemoteUfrag() != "" })
			b.WaitFor(wait, "media after the restart", func() bool {
				now, _ := b.TrackOf("a", sfu.Video, "")
				return now.Verified > rt.Verified+30
			})
			if errs := a.Errors(); len(errs) > 0 {
				t.Errorf("a: %v", errs)
			}
		})
	}
}

// TestRetransmissionBudget: a subscriber that NACKs far more than it lost gets no more
// retransmissions than its budget (a burst of 200, then a fifth of what it is sent); NACKs
// of packets sent over a second ago, or no longer in the history, are dropped free; the
// rest of its NACK beyond the budget is dropped before pion's responder sees it. Both are
// counted.
func TestRetransmissionBudget(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	// 15 packets a frame: the history of 256 packets is the last 0.6 s.
	sfutest.New(t, s, "room", "a", sfutest.Options{Video: &sfutest.VideoTrack{Layers: []sfutest.Layer{{Width: 640, Height: 360, FrameSize: 15000}}}})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{})
	b.WaitFor(wait, "a's video", func() bool { return media(b, "a", sfu.Video, "", 60) })
	rt, _ := b.TrackOf("a", sfu.Video, "")
	const asked = 1000
	if err := b.SendNACK(rt.ID, asked); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(wait, "the NACK trimmed", func() bool {
		st := b.P.Stats()
		return st.RetransmissionsDenied > 0 && st.RetransmissionsStale > 0
	})
	st := b.P.Stats()
	// Of the 1000, the last 256 are in the history and fresh; the budget grants 200 of them
	// (and a few more for what was sent meanwhile).
	if st.RetransmissionsStale < asked-256 || st.RetransmissionsStale > asked-200 {
		t.Errorf("%d of %d NACKed packets stale, want %d or a few more", st.RetransmissionsStale, asked, asked-256)
	}
	if st.RetransmissionsDenied == 0 || st.RetransmissionsDenied > 56 {
		t.Errorf("%d of the fresh ones denied, want at most 56", st.RetransmissionsDenied)
	}
	b.WaitFor(wait, "the granted retransmissions", func() bool {
		now, _ := b.Track(rt.ID)
		return now.RTX > 0
	})
	now, _ := b.Track(rt.ID)
	if now.RTX > 256 {
		t.Errorf("%d retransmissions for a NACK of %d, want at most the budget's ~200", now.RTX, asked)
	}
	t.Logf("NACK of %d: %d stale, %d denied, %d retransmitted so far", asked, st.RetransmissionsStale, st.RetransmissionsDenied, now.RTX)
}
