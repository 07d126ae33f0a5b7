package sfu_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// TestMute: a self mute and an admin mute each stop the forwarding of that kind, say so in
// events, and forwarding resumes (on a key frame, without a sequence gap) at unmute.
func TestMute(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{})
	b.WaitFor(wait, "a's media", func() bool {
		return media(b, "a", sfu.Audio, "", 20) && media(b, "a", sfu.Video, "", 20)
	})
	cases := []struct {
		name      string
		kind      sfu.Kind
		mute      func(bool) error
		self, adm bool
	}{
		{"self audio", sfu.Audio, func(m bool) error { return a.P.SetSelfMute(sfu.Audio, m) }, true, false},
		{"admin audio", sfu.Audio, func(m bool) error { return s.SetMute("room", "a", sfu.Audio, m) }, false, true},
		{"self video", sfu.Video, func(m bool) error { return a.P.SetSelfMute(sfu.Video, m) }, true, false},
		{"admin video", sfu.Video, func(m bool) error { return s.SetMute("room", "a", sfu.Video, m) }, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.mute(true); err != nil {
				t.Fatalf("mute: %v", err)
			}
			b.WaitFor(wait, "the mute event", func() bool {
				return b.HasEvent(func(e sfu.Event) bool {
					return e.Type == sfu.EventMute && e.Participant == "a" && e.Kind == tc.kind && e.SelfMuted == tc.self && e.AdminMuted == tc.adm
				})
			})
			// Forwarding has stopped: wait until the publisher's muted-drop counter moves on
			// by a second's worth, then check that the subscriber got nothing meanwhile
			// (besides what was in flight when the counter was read).
			rt, _ := b.TrackOf("a", tc.kind, "")
			dropped := a.P.Stats().MutedDropped
			b.WaitFor(wait, "a second of muted packets", func() bool { return a.P.Stats().MutedDropped >= dropped+30 })
			after, _ := b.TrackOf("a", tc.kind, "")
			if got := after.Packets - rt.Packets; got > 10 {
				t.Errorf("received %d packets while muted, want (almost) none", got)
			}
			if err := tc.mute(false); err != nil {
				t.Fatalf("unmute: %v", err)
			}
			b.WaitFor(wait, "media again", func() bool {
				now, _ := b.TrackOf("a", tc.kind, "")
				return now.Verified >= after.Verified+20
			})
			now, _ := b.TrackOf("a", tc.kind, "")
			if now.Gaps != 0 || now.Verified != now.Frames {
				t.Errorf("after unmute: %d gaps, %d of %d frames intact; want no gap, all intact", now.Gaps, now.Verified, now.Frames)
			}
			self, adm := a.P.Muted(tc.kind)
			if self || adm {
				t.Errorf("Muted(%s) = %v, %v after unmute", tc.kind, self, adm)
			}
		})
	}
	if err := s.SetMute("room", "nobody", sfu.Audio, true); !errors.Is(err, sfu.ErrUnknownParticipant) {
		t.Errorf("SetMute of an unknown participant: %v, want ErrUnknownParticipant", err)
	}
	if err := a.P.SetSelfMute("smell", true); !errors.Is(err, sfu.ErrBadArgument) {
		t.Errorf("SetSelfMute of kind smell: %v, want ErrBadArgument", err)
	}
}

// TestRenegotiation: a third participant joins and the first two get its tracks without
// rejoining; a screen share starts (a second video track, labelled screen) and stops, and
// the others see it added and removed; a participant leaves and its tracks go.
func TestRenegotiation(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	opts := func() sfutest.Options { return sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}} }
	a := sfutest.New(t, s, "room", "a", opts())
	b := sfutest.New(t, s, "room", "b", opts())
	a.WaitFor(wait, "b's media", func() bool { return media(a, "b", sfu.Video, "", 10) })
	c := sfutest.New(t, s, "room", "c", opts())
	for _, x := range []*sfutest.Client{a, b} {
		x.WaitFor(wait, "c's media", func() bool {
			return media(x, "c", sfu.Audio, "", 20) && media(x, "c", sfu.Video, sfu.SourceCamera, 20)
		})
	}
	c.WaitFor(wait, "a's and b's media", func() bool {
		return media(c, "a", sfu.Video, "", 20) && media(c, "b", sfu.Video, "", 20)
	})

	if err := a.AddVideo(sfutest.VideoTrack{StreamID: "screen-a", Layers: []sfutest.Layer{{Width: 1920, Height: 1080, FrameSize: 800}}, FPS: 15}); err != nil {
		t.Fatalf("screen share: %v", err)
	}
	for _, x := range []*sfutest.Client{b, c} {
		x.WaitFor(wait, "a's screen share", func() bool { return media(x, "a", sfu.Video, sfu.SourceScreen, 10) })
		checkIntact(t, x, "a", sfu.Video, sfu.SourceScreen, a.Src)
		checkIntact(t, x, "a", sfu.Video, sfu.SourceCamera, a.Src)
	}
	var screen sfu.TrackInfo
	for _, ti := range b.Published("a") {
		if ti.Source == sfu.SourceScreen {
			screen = ti
		}
	}
	if screen.ClientStreamID != "screen-a" || screen.Kind != sfu.Video {
		t.Errorf("screen track %+v, want client stream screen-a, video", screen)
	}
	if st := a.P.Stats(); st.RxScreen.Width != 1920 || st.RxScreen.Height != 1080 {
		t.Errorf("a's rx screen %dx%d, want 1920x1080", st.RxScreen.Width, st.RxScreen.Height)
	}

	if err := a.RemoveVideo("screen-a"); err != nil {
		t.Fatalf("stop screen share: %v", err)
	}
	for _, x := range []*sfutest.Client{b, c} {
		x.WaitFor(wait, "the screen share's end", func() bool {
			rt, ok := x.Track(screen.ID)
			return ok && rt.Ended && x.HasEvent(func(e sfu.Event) bool {
				return e.Type == sfu.EventTrackUnpublished && e.Track.ID == screen.ID
			})
		})
		if _, ok := x.TrackOf("a", sfu.Video, sfu.SourceCamera); !ok {
			t.Errorf("%s lost a's camera with the screen share", x.Name)
		}
	}
	// The camera goes on.
	cam, _ := b.TrackOf("a", sfu.Video, sfu.SourceCamera)
	b.WaitFor(wait, "a's camera after the screen share", func() bool {
		now, _ := b.TrackOf("a", sfu.Video, sfu.SourceCamera)
		return now.Verified > cam.Verified+10
	})

	c.Close()
	for _, x := range []*sfutest.Client{a, b} {
		x.WaitFor(wait, "c's departure", func() bool {
			return x.HasEvent(func(e sfu.Event) bool { return e.Type == sfu.EventParticipantLeft && e.Participant == "c" }) &&
				len(x.Published("c")) == 0
		})
	}
	if _, err := s.Participant("room", "c"); !errors.Is(err, sfu.ErrUnknownParticipant) {
		t.Errorf("Participant(c) after leaving: %v, want ErrUnknownParticipant", err)
	}
	for _, x := range []*sfutest.Client{a, b} {
		if errs := x.Errors(); len(errs) > 0 {
			t.Errorf("%s: %v", x.Name, errs)
		}
	}
}

// TestActiveSpeaker: the participant whose audio level says it is loud becomes the active
// speaker after the hold time, with one event per change (not per packet).
func TestActiveSpeaker(t *testing.T) {
	s := newSFU(t, sfu.Config{SpeakerHold: 400 * time.Millisecond})
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true})
	speakers := func(c *sfutest.Client) []string {
		var out []string
		for _, e := range c.Events() {
			if e.Type == sfu.EventActiveSpeaker {
				out = append(out, e.Participant)
			}
		}
		return out
	}
	var want []string
	for _, step := range []struct{ loud, quiet *sfutest.Client }{{a, b}, {b, a}, {a, b}} {
		step.loud.SetAudioLevel(20)
		step.quiet.SetAudioLevel(127)
		want = append(want, step.loud.Name)
		a.WaitFor(wait, step.loud.Name+" as the active speaker", func() bool {
			return len(speakers(a)) >= len(want) && s.ActiveSpeaker("room") == step.loud.Name
		})
		// A second of audio more (50 frames) with the same speaker.
		rt, _ := b.TrackOf(step.loud.Name, sfu.Audio, "")
		if step.loud == b {
			rt, _ = a.TrackOf("b", sfu.Audio, "")
		}
		a.WaitFor(wait, "another second of audio", func() bool {
			now, _ := b.TrackOf("a", sfu.Audio, "")
			if step.loud == b {
				now, _ = a.TrackOf("b", sfu.Audio, "")
			}
			return now.Verified >= rt.Verified+50
		})
		for _, c := range []*sfutest.Client{a, b} {
			if got := speakers(c); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: active speakers %v, want %v", c.Name, got, want)
			}
		}
	}
}

// TestDeliveryMute: muting what a participant receives (CMS's txAudioMute, txVideoMute)
// stops every track of that kind to it alone, while another subscriber and its own
// publishing carry on; at resume it gets that kind again, without a sequence gap and with
// every frame intact.
func TestDeliveryMute(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true})
	c := sfutest.New(t, s, "room", "c", sfutest.Options{})
	for _, sub := range []*sfutest.Client{b, c} {
		sub.WaitFor(wait, "a's media", func() bool {
			return media(sub, "a", sfu.Audio, "", 20) && media(sub, "a", sfu.Video, "", 20)
		})
	}
	a.WaitFor(wait, "b's audio", func() bool { return media(a, "b", sfu.Audio, "", 20) })
	for _, kind := range []sfu.Kind{sfu.Audio, sfu.Video} {
		t.Run(string(kind), func(t *testing.T) {
			if err := s.SetDeliveryMute("room", "b", kind, true); err != nil {
				t.Fatal(err)
			}
			if !b.P.DeliveryMuted(kind) {
				t.Fatalf("DeliveryMuted(%s) false after the mute", kind)
			}
			time.Sleep(300 * time.Millisecond) // what was in flight arrives
			bBefore, _ := b.TrackOf("a", kind, "")
			cBefore, _ := c.TrackOf("a", kind, "")
			aBefore, _ := a.TrackOf("b", sfu.Audio, "")
			// c goes on receiving a's kind: a second of it, during which b gets nothing.
			c.WaitFor(wait, "a second of a's media at c", func() bool {
				now, _ := c.TrackOf("a", kind, "")
				return now.Verified >= cBefore.Verified+25
			})
			a.WaitFor(wait, "b's audio still reaching a", func() bool {
				now, _ := a.TrackOf("b", sfu.Audio, "")
				return now.Verified >= aBefore.Verified+25
			})
			if now, _ := b.TrackOf("a", kind, ""); now.Packets != bBefore.Packets {
				t.Errorf("b received %d packets of a's %s while it was muted for b", now.Packets-bBefore.Packets, kind)
			}
			if err := s.SetDeliveryMute("room", "b", kind, false); err != nil {
				t.Fatal(err)
			}
			b.WaitFor(wait, "a's media at b again", func() bool {
				now, _ := b.TrackOf("a", kind, "")
				return now.Verified >= bBefore.Verified+20
			})
			if now, _ := b.TrackOf("a", kind, ""); now.Gaps != 0 || now.Verified != now.Frames {
				t.Errorf("after resume: %d gaps, %d of %d frames intact; want no gap, all intact", now.Gaps, now.Verified, now.Frames)
			}
		})
	}
	if err := s.SetDeliveryMute("room", "nobody", sfu.Audio, true); !errors.Is(err, sfu.ErrUnknownParticipant) {
		t.Errorf("SetDeliveryMute of an unknown participant: %v, want ErrUnknownParticipant", err)
	}
	if err := b.P.SetDeliveryMute("smell", true); !errors.Is(err, sfu.ErrBadArgument) {
		t.Errorf("SetDeliveryMute of kind smell: %v, want ErrBadArgument", err)
	}
}
