package sfu_test

import (
	"errors"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// settle waits (bounded) until f() <= want, and returns f's last value.
func settle(f func() int, want int) int {
	deadline := time.Now().Add(10 * time.Second)
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	got := f()
	for got > want && time.Now().Before(deadline) {
		<-tk.C
		got = f()
	}
	return got
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// TestLeaveFreesEverything: participants publish and receive, then leave; the goroutines
// and file descriptors come back to what they were before they joined.
func TestLeaveFreesEverything(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	goroutines, fds := runtime.NumGoroutine(), openFDs()
	for round := range 2 {
		a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{Layers: threeLayers}})
		b := sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
		a.WaitFor(wait, "b's media", func() bool { return media(a, "b", sfu.Video, "", 20) && media(a, "b", sfu.Audio, "", 20) })
		b.WaitFor(wait, "a's media", func() bool { return media(b, "a", sfu.Video, "", 20) && media(b, "a", sfu.Audio, "", 20) })
		a.Close()
		if err := a.P.Leave(); !errors.Is(err, sfu.ErrParticipantGone) {
			t.Errorf("round %d: a second Leave: %v, want ErrParticipantGone", round, err)
		}
		b.WaitFor(wait, "a's departure", func() bool { return len(b.Published("a")) == 0 })
		b.Close()
		if st := s.Stats(); st.Participants != 0 || st.Rooms != 0 {
			t.Errorf("round %d: %d participants in %d rooms after everyone left", round, st.Participants, st.Rooms)
		}
		if got := settle(runtime.NumGoroutine, goroutines); got > goroutines {
			buf := make([]byte, 1<<20)
			t.Fatalf("round %d: %d goroutines, %d before the participants joined\n%s", round, got, goroutines, buf[:runtime.Stack(buf, true)])
		}
		if got := settle(openFDs, fds); got > fds {
			t.Errorf("round %d: %d open files, %d before", round, got, fds)
		}
	}
}

// TestConnectTimeout: a participant that never completes ICE, or whose peer stops in the
// middle of DTLS, is removed after ConnectTimeout.
func TestConnectTimeout(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *sfu.SFU, p *sfu.Participant, sig *collect)
	}{
		{"no offer", func(*testing.T, *sfu.SFU, *sfu.Participant, *collect) {}},
		{"no ICE", func(t *testing.T, s *sfu.SFU, p *sfu.Participant, sig *collect) {
			pc, offer := pionOffer(t, webrtc.MimeTypeOpus)
			defer pc.Close()
			if err := p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: offer}); err != nil {
				t.Fatalf("offer: %v", err)
			}
		}},
		{"stops mid-DTLS", func(t *testing.T, s *sfu.SFU, p *sfu.Participant, sig *collect) {
			pc, offer := pionOffer(t, webrtc.MimeTypeOpus)
			defer pc.Close()
			if err := p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: offer}); err != nil {
				t.Fatalf("offer: %v", err)
			}
			answer := sig.description(t)
			stallDTLS(t, s.UDPAddr(), offer, answer)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSFU(t, sfu.Config{ConnectTimeout: 700 * time.Millisecond})
			sig := &collect{descs: make(chan sfu.Description, 8)}
			start := time.Now()
			p, err := s.Join("room", "x", sig)
			if err != nil {
				t.Fatal(err)
			}
			tc.run(t, s, p, sig)
			select {
			case <-p.Done():
			case <-time.After(wait):
				t.Fatalf("still there after %v", wait)
			}
			if el := time.Since(start); el < 700*time.Millisecond {
				t.Errorf("removed after %v, before the timeout", el)
			}
			if _, err := s.Participant("room", "x"); !errors.Is(err, sfu.ErrUnknownParticipant) {
				t.Errorf("Participant after the timeout: %v, want ErrUnknownParticipant", err)
			}
			if err := p.AddCandidate(sfu.Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}); !errors.Is(err, sfu.ErrParticipantGone) {
				t.Errorf("AddCandidate after the timeout: %v, want ErrParticipantGone", err)
			}
		})
	}
}

// collect is a Signal that keeps descriptions.
type collect struct{ descs chan sfu.Description }

func (c *collect) Description(d sfu.Description) {
	select {
	case c.descs <- d:
	default:
	}
}
func (c *collect) Event(sfu.Event) {}

func (c *collect) description(t *testing.T) sfu.Description {
	t.Helper()
	select {
	case d := <-c.descs:
		return d
	case <-time.After(wait):
		t.Fatal("no description from the SFU")
	}
	return sfu.Description{}
}

// pionOffer makes an offer with one sendonly track of each codec given (a PeerConnection
// that knows only those codecs).
func pionOffer(t *testing.T, mimes ...string) (*webrtc.PeerConnection, string) {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for i, m := range mimes {
		typ, clock, ch := webrtc.RTPCodecTypeVideo, uint32(90000), uint16(0)
		switch m {
		case webrtc.MimeTypeOpus:
			typ, clock, ch = webrtc.RTPCodecTypeAudio, 48000, 2
		case webrtc.MimeTypePCMU, webrtc.MimeTypePCMA:
			typ, clock = webrtc.RTPCodecTypeAudio, 8000
		}
		c := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(96 + i), RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: m, ClockRate: clock, Channels: ch}}
		if err := me.RegisterCodec(c, typ); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range mimes {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: m}, "t"+strconv.Itoa(i), "s")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	return pc, offer.SDP
}

var ufragRE, pwdRE = regexp.MustCompile(`a=ice-ufrag:(\S+)`), regexp.MustCompile(`a=ice-pwd:(\S+)`)

// stallDTLS completes ICE with the SFU by hand (one binding request with USE-CANDIDATE
// from a plain UDP socket) and then reads the SFU's DTLS ClientHello without ever
// answering it.
func stallDTLS(t *testing.T, sfuAddr *net.UDPAddr, offer string, answer sfu.Description) {
	t.Helper()
	lu, su, sp := ufragRE.FindStringSubmatch(offer), ufragRE.FindStringSubmatch(answer.SDP), pwdRE.FindStringSubmatch(answer.SDP)
	if lu == nil || su == nil || sp == nil {
		t.Fatalf("no ICE credentials in the offer or the answer:\n%s", answer.SDP)
	}
	conn, err := net.DialUDP("udp4", nil, sfuAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg, err := stun.Build(stun.BindingRequest, stun.TransactionID, stun.NewUsername(su[1]+":"+lu[1]),
		ice.UseCandidate(), ice.AttrControlling(1), ice.PriorityAttr(1<<24),
		stun.NewShortTermIntegrity(sp[1]), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	sawSTUN, sawDTLS := false, false
	deadline := time.Now().Add(wait)
	for !(sawSTUN && sawDTLS) && time.Now().Before(deadline) {
		if !sawSTUN {
			if _, err := conn.Write(msg.Raw); err != nil {
				t.Fatal(err)
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		switch {
		case n > 0 && buf[0] < 4:
			sawSTUN = sawSTUN || stun.IsMessage(buf[:n])
		case n > 13 && buf[0] == 22 && buf[13] == 1: // handshake, ClientHello
			sawDTLS = true
		}
	}
	if !sawSTUN || !sawDTLS {
		t.Fatalf("ICE answered: %v; DTLS ClientHello seen: %v", sawSTUN, sawDTLS)
	}
}
