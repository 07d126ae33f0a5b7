package sfu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// TestBadInput: each bad input gets its error (callers branch with errors.Is), and the
// participant can still negotiate afterwards.
func TestBadInput(t *testing.T) {
	s := newSFU(t, sfu.Config{MaxSDPSize: 16 << 10})
	sig := &collect{descs: make(chan sfu.Description, 8)}
	p, err := s.Join("room", "x", sig)
	if err != nil {
		t.Fatal(err)
	}
	_, pcmu := pionOffer(t, webrtc.MimeTypePCMU)
	_, opus := pionOffer(t, webrtc.MimeTypeOpus, webrtc.MimeTypeVP8)
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"malformed SDP", func() error {
			return p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: "v=0\r\nthis is not SDP\r\n"})
		}, sfu.ErrBadSDP},
		{"oversized SDP", func() error {
			return p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: opus + strings.Repeat("a=x-padding:0123456789\r\n", 1000)})
		}, sfu.ErrSDPTooLarge},
		{"no common codec", func() error { return p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: pcmu}) }, sfu.ErrNoCommonCodec},
		{"unknown type", func() error { return p.HandleDescription(sfu.Description{Type: "pranswer", SDP: opus}) }, sfu.ErrBadSDP},
		{"answer without an offer", func() error { return p.HandleDescription(sfu.Description{Type: sfu.Answer, SDP: opus}) }, sfu.ErrBadState},
		{"unknown participant", func() error { _, err := s.Participant("room", "ghost"); return err }, sfu.ErrUnknownParticipant},
		{"unknown room", func() error { _, err := s.Participant("nowhere", "x"); return err }, sfu.ErrUnknownParticipant},
		{"duplicate participant", func() error { _, err := s.Join("room", "x", sig); return err }, sfu.ErrDuplicateParticipant},
		{"empty participant id", func() error { _, err := s.Join("room", "", sig); return err }, sfu.ErrBadArgument},
		{"unknown track", func() error { return p.SetMaxResolution("t-none", 10, 10) }, sfu.ErrUnknownTrack},
		{"negative size", func() error { return p.SetMaxResolution("t-none", -1, 10) }, sfu.ErrBadArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Still usable: a good offer is answered, bad candidates are refused after it, and an
	// offer crossing a server offer is glare.
	if err := p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: opus}); err != nil {
		t.Fatalf("a good offer after the bad ones: %v", err)
	}
	if d := sig.description(t); d.Type != sfu.Answer || !strings.Contains(d.SDP, "a=ice-lite") || !strings.Contains(d.SDP, "typ host") {
		t.Errorf("answer: %s, want an ICE-lite answer with its candidates", d.Type)
	}
	if err := p.AddCandidate(sfu.Candidate{Candidate: "candidate:garbage"}); !errors.Is(err, sfu.ErrBadCandidate) {
		t.Errorf("a garbage candidate: %v, want ErrBadCandidate", err)
	}
	if err := p.RestartICE(); err != nil {
		t.Fatal(err)
	}
	if d := sig.description(t); d.Type != sfu.Offer {
		t.Fatalf("after RestartICE: a %s, want an offer", d.Type)
	}
	if err := p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: opus}); !errors.Is(err, sfu.ErrGlare) {
		t.Errorf("an offer crossing the server's: %v, want ErrGlare", err)
	}
}

// TestFlood: a participant that floods gets its excess dropped and counted, and the
// meeting goes on.
func TestFlood(t *testing.T) {
	s := newSFU(t, sfu.Config{MaxPacketRate: 300})
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
	b.WaitFor(wait, "a's media", func() bool { return media(b, "a", sfu.Audio, "", 20) && media(b, "a", sfu.Video, "", 20) })
	a.Flood(3000)
	b.WaitFor(wait, "a's flood to be limited", func() bool { return a.P.Stats().RateLimited > 0 })
	if got := s.Stats().RateLimited; got == 0 {
		t.Errorf("SFU stats: %d rate-limited packets, want some", got)
	}
	av, _ := b.TrackOf("a", sfu.Video, "")
	aa, _ := b.TrackOf("a", sfu.Audio, "")
	ba, _ := a.TrackOf("b", sfu.Audio, "")
	b.WaitFor(wait, "the meeting to go on", func() bool {
		v, _ := b.TrackOf("a", sfu.Video, "")
		au, _ := b.TrackOf("a", sfu.Audio, "")
		other, _ := a.TrackOf("b", sfu.Audio, "")
		return v.Verified > av.Verified+30 && au.Verified > aa.Verified+30 && other.Verified > ba.Verified+30
	})
	if rt, _ := b.TrackOf("a", sfu.Audio, ""); rt.Verified != rt.Frames {
		t.Errorf("a's audio: %d of %d frames intact", rt.Verified, rt.Frames)
	}
}
