package media

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/stream"
)

// recvOffer makes a pion PeerConnection that receives audio and returns it with its offer,
// its candidates gathered (none are trickled).
func recvOffer(t *testing.T, cfg webrtc.Configuration) (*webrtc.PeerConnection, string) {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc, pc.LocalDescription().SDP
}

// TestLadderOfFailedMedia: a participant reports its candidates and a TURN server that
// failed; its media never connects (nothing answers the SFU's checks); the SFU ends it and
// the client is told why, in words; the ladder stays readable, with the failed steps, until
// the leg ends.
func TestLadderOfFailedMedia(t *testing.T) {
	svc, _, w := newServiceTimeout(t, 500*time.Millisecond)
	get := iq(t, alice, "s1", `<session xmlns="urn:confab:media:1"/>`)
	get.Set("type", "get")
	svc.Handle(context.Background(), w, get)
	w.await(t, "session result", byID("s1"))

	rep := `<report xmlns="urn:confab:media:1" gathering="complete" ice="checking" checks-sent="12">` +
		`<candidate type="host" protocol="udp" address="192.0.2.10:50000"/>` +
		`<error url="turn:127.0.0.1:3478" code="701" text="TURN allocate request timed out."/></report>`
	svc.Handle(context.Background(), w, iq(t, alice, "r1", rep))
	if r := w.await(t, "report result", byID("r1")); r.Get("type") != "result" {
		t.Fatalf("report answered %s", r)
	}
	// An offer whose candidates no one answers from: the SFU's checks go nowhere.
	offer := "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
		"m=audio 50000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 192.0.2.10\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
		"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
		"a=setup:actpass\r\na=rtcp-mux\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n" +
		"a=candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host\r\n"
	var x stream.Builder
	x.Elem("description", offer, "xmlns", NS, "type", "offer")
	svc.Handle(context.Background(), w, iq(t, alice, "o1", string(x.B)))
	if r := w.await(t, "offer result", byID("o1")); r.Get("type") != "result" {
		t.Fatalf("offer answered %s", r)
	}
	ended := w.await(t, "the end of the media", func(e *stream.Element) bool {
		return e.Name.Local == "message" && bytes.Contains(e.Inner, []byte("<ended"))
	})
	want := `cause="` + ladder.CauseTURNFailed + `"`
	if !bytes.Contains(ended.Inner, []byte(want)) || !bytes.Contains(ended.Inner, []byte("relay server could not be reached")) {
		t.Errorf("ended message %s, want %s and its words", ended.Inner, want)
	}
	l, ok := svc.Ladder("l1")
	if !ok || l.State != ladder.StateFailed || l.Cause != ladder.CauseTURNFailed {
		t.Fatalf("ladder %+v (%v), want failed with %s", l, ok, ladder.CauseTURNFailed)
	}
	steps := map[string]ladder.Step{}
	for _, st := range l.Steps {
		steps[st.Name] = st
	}
	if st := steps["relay turn:127.0.0.1:3478"]; st.State != ladder.Failed || !strings.Contains(st.Detail, "timed out") {
		t.Errorf("relay step %+v", st)
	}
	if st := steps["checks"]; st.State != ladder.Failed || !strings.Contains(st.Detail, "the participant sent 12") {
		t.Errorf("checks step %+v", st)
	}
	if st := steps["offer"]; st.State != ladder.OK || !strings.Contains(st.Detail, "127.0.0.1") {
		t.Errorf("offer step %+v", st)
	}
	svc.LegEnded(meeting.LegEnd{CallID: "c1", LegID: "l1", Reason: "left"})
	if _, ok := svc.Ladder("l1"); ok {
		t.Error("the ladder outlives the leg")
	}
}

// TestReportRefused: a report over the limits is refused and not kept.
func TestReportRefused(t *testing.T) {
	svc, _, w := newService(t)
	big := `<report xmlns="urn:confab:media:1">` + strings.Repeat(`<candidate type="host" protocol="udp"/>`, maxReportCandidates+1) + `</report>`
	svc.Handle(context.Background(), w, iq(t, alice, "r1", big))
	if r := w.await(t, "report answer", byID("r1")); condition(r) != "bad-request" {
		t.Errorf("oversized report answered %s", r)
	}
	if _, ok := svc.Ladder("l1"); ok {
		t.Error("a ladder from a refused report")
	}
}

// TestProbe: a connection test connects a pion client alone to the SFU; its report and the
// SFU's record make a connected ladder on direct UDP; probes are bounded.
func TestProbe(t *testing.T) {
	svc, _, _ := newService(t)
	pc, offer := recvOffer(t, webrtc.Configuration{})
	id, answer, err := svc.StartProbe(offer, []sfu.ICEServer{})
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("the probe did not connect")
	}
	var l ladder.Ladder
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err = svc.ProbeReport(id, &ladder.Report{GatheringState: "complete", ICEState: "connected",
			Candidates: []ladder.Gathered{{Type: "host", Protocol: "udp", Address: "127.0.0.1:1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if l.State == ladder.StateConnected || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the SFU's record, not synchronising
	}
	if l.State != ladder.StateConnected || l.Path != "direct UDP" {
		t.Errorf("probe ladder %+v", l)
	}
	if err := svc.EndProbe(id); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ProbeLadder("probe-nope"); !errors.Is(err, ErrUnknownProbe) {
		t.Errorf("unknown probe: %v", err)
	}
	for i := range MaxProbes + 1 {
		_, offer := recvOffer(t, webrtc.Configuration{})
		_, _, err := svc.StartProbe(offer, nil)
		if i < MaxProbes && err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
		if i == MaxProbes && !errors.Is(err, ErrTooManyProbes) {
			t.Errorf("probe %d: %v, want ErrTooManyProbes", i, err)
		}
	}
}
