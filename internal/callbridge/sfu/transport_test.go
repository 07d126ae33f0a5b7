package sfu_test

import (
	"strings"
	"testing"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// TestTransports: media flows with a client on ICE-TCP (the SFU's one TCP port), with
// H.264, and the server's candidates name the configured public address.
func TestTransports(t *testing.T) {
	t.Run("ICE-TCP", func(t *testing.T) {
		s := newSFU(t, sfu.Config{})
		a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}, Network: "tcp"})
		b := sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
		a.WaitFor(wait, "b's media over TCP", func() bool { return media(a, "b", sfu.Video, "", 30) && media(a, "b", sfu.Audio, "", 30) })
		b.WaitFor(wait, "a's media from TCP", func() bool { return media(b, "a", sfu.Video, "", 30) && media(b, "a", sfu.Audio, "", 30) })
		checkIntact(t, a, "b", sfu.Video, "", b.Src)
		checkIntact(t, b, "a", sfu.Video, "", a.Src)
	})
	t.Run("H.264", func(t *testing.T) {
		s := newSFU(t, sfu.Config{})
		a := sfutest.New(t, s, "room", "a", sfutest.Options{Video: &sfutest.VideoTrack{Codec: sfutest.H264,
			Layers: []sfutest.Layer{{Width: 640, Height: 360, FrameSize: 2500}}}})
		b := sfutest.New(t, s, "room", "b", sfutest.Options{})
		b.WaitFor(wait, "a's H.264", func() bool { return media(b, "a", sfu.Video, "", 30) })
		checkIntact(t, b, "a", sfu.Video, "", a.Src)
		if rt, _ := b.TrackOf("a", sfu.Video, ""); rt.Codec != sfutest.H264 {
			t.Errorf("received %s, want H.264", rt.Codec)
		}
		if err := a.P.ReportVideoSize(b.Published("a")[0].ClientTrackID, 640, 360); err != nil {
			t.Fatal(err)
		}
		if st := a.P.Stats(); st.RxVideo.Codec != "video/H264" || st.RxVideo.Width != 640 {
			t.Errorf("rx video %+v, want H.264 640 wide (as reported)", st.RxVideo)
		}
	})
	t.Run("public address", func(t *testing.T) {
		s := newSFU(t, sfu.Config{PublicIPs: []string{"203.0.113.7"}})
		sig := &collect{descs: make(chan sfu.Description, 4)}
		p, err := s.Join("room", "x", sig)
		if err != nil {
			t.Fatal(err)
		}
		_, offer := pionOffer(t, "audio/opus")
		if err := p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: offer}); err != nil {
			t.Fatal(err)
		}
		d := sig.description(t)
		if !strings.Contains(d.SDP, "203.0.113.7") || strings.Contains(d.SDP, " 127.0.0.1 ") {
			t.Errorf("answer's candidates:\n%s\nwant 203.0.113.7 and not 127.0.0.1", d.SDP)
		}
	})
}
