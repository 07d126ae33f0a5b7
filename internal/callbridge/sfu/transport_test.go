package sfu_test

import (
	"errors"
	"strings"
	"testing"
	"time"

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

// TestTransportRecord: the SFU records each step of a participant's connection — the
// offer and answer, the client's candidates, the checks that reached it, the selected
// pair (UDP or ICE-TCP), DTLS, the first media each way — and keeps the record of one that
// never connected, with why it ended.
func TestTransportRecord(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			s := newSFU(t, sfu.Config{})
			a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Network: network})
			sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true})
			a.WaitFor(wait, "b's audio", func() bool { return media(a, "b", sfu.Audio, "", 10) })
			var tr sfu.Transport
			a.WaitFor(wait, "the record to be complete", func() bool {
				tr = a.P.Transport()
				return tr.Selected != nil && !tr.FirstMediaIn.IsZero() && !tr.FirstMediaOut.IsZero() && tr.Checks > 0
			})
			// Each step happens no earlier than the one it depends on (ICE's state callback
			// and the selected pair's come in either order).
			at := map[string]time.Time{"joined": tr.Joined, "offer": tr.Offer, "answer": tr.Answer, "ICE connected": tr.ICEConnected,
				"selected": tr.SelectedAt, "DTLS connected": tr.DTLSConnected, "first media in": tr.FirstMediaIn}
			for _, dep := range [][2]string{{"joined", "offer"}, {"offer", "answer"}, {"answer", "ICE connected"}, {"answer", "selected"},
				{"ICE connected", "DTLS connected"}, {"selected", "DTLS connected"}, {"DTLS connected", "first media in"}} {
				before, after := at[dep[0]], at[dep[1]]
				if before.IsZero() || after.IsZero() {
					t.Errorf("%s at %v, %s at %v: want both", dep[0], before, dep[1], after)
				} else if after.Before(before.Add(-time.Millisecond)) {
					t.Errorf("%s at %v, before %s at %v", dep[1], after, dep[0], before)
				}
			}
			if tr.Selected.Local.Protocol != network || tr.Selected.Remote.Protocol != network || tr.Selected.Remote.Type == "" {
				t.Errorf("selected pair %+v, want %s", tr.Selected, network)
			}
			if tr.ICEState != "connected" && tr.ICEState != "completed" || tr.DTLSState != "connected" {
				t.Errorf("ICE %s, DTLS %s", tr.ICEState, tr.DTLSState)
			}
			var host bool
			for _, c := range tr.RemoteCandidates {
				host = host || c.Type == "host" && c.Protocol == network
			}
			if !host || len(tr.LocalCandidates) == 0 {
				t.Errorf("remote candidates %+v, local %+v: want a %s host candidate and the SFU's own", tr.RemoteCandidates, tr.LocalCandidates, network)
			}
			if tr.FirstCheck.IsZero() || tr.Responses == 0 {
				t.Errorf("checks %d (first %v), responses %d", tr.Checks, tr.FirstCheck, tr.Responses)
			}
		})
	}
	t.Run("never connected", func(t *testing.T) {
		s := newSFU(t, sfu.Config{ConnectTimeout: 500 * time.Millisecond})
		sig := &collect{descs: make(chan sfu.Description, 4)}
		p, err := s.Join("room", "x", sig)
		if err != nil {
			t.Fatal(err)
		}
		_, offer := pionOffer(t, "audio/opus")
		if err := p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: offer}); err != nil {
			t.Fatal(err)
		}
		if err := p.AddCandidate(sfu.Candidate{Candidate: "candidate:1 1 udp 2122260223 192.0.2.9 50000 typ host", SDPMid: "0"}); err != nil {
			t.Fatal(err)
		}
		sig.description(t)
		select {
		case <-p.Closed():
		case <-time.After(wait):
			t.Fatal("the participant was not removed")
		}
		tr := p.Transport()
		if !errors.Is(tr.EndReason, sfu.ErrConnectTimeout) || tr.Ended.IsZero() || tr.Checks != 0 || tr.Selected != nil || tr.Answer.IsZero() {
			t.Errorf("record %+v: want ended by the connect timeout, answered, no checks, no pair", tr)
		}
		if len(tr.RemoteCandidates) != 1 || tr.RemoteCandidates[0].Address != "192.0.2.9:50000" || tr.RemoteCandidates[0].Type != "host" {
			t.Errorf("remote candidates %+v", tr.RemoteCandidates)
		}
	})
}
