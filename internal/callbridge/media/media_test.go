package media

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/stream"
)

const (
	space = "sp1@cb1.example.com"
	alice = "alice@example.com/web"
)

// legs is the one participant alice, in call c1 as leg l1.
type legs struct{}

func (legs) Leg(spaceID, full string) (meeting.CallLeg, bool) {
	if spaceID == "sp1" && full == alice {
		return meeting.CallLeg{ID: "l1", CallID: "c1", FullJID: alice}, true
	}
	return meeting.CallLeg{}, false
}

// wire keeps what the service writes.
type wire struct {
	mu    sync.Mutex
	out   []*stream.Element
	wrote chan struct{}
}

func (w *wire) Write(b []byte) error {
	r := stream.NewReader(bytes.NewReader(b), stream.Limits{})
	w.mu.Lock()
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		w.out = append(w.out, e)
	}
	w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return nil
}

// await returns the first element written that matches f, waiting up to 10 s.
func (w *wire) await(t *testing.T, what string, f func(*stream.Element) bool) *stream.Element {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		for _, e := range w.out {
			if f(e) {
				w.mu.Unlock()
				return e
			}
		}
		w.mu.Unlock()
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatalf("no %s within 10s; got %v", what, w.out)
		}
	}
}

func newService(t *testing.T) (*Service, *sfu.SFU, *wire) {
	t.Helper()
	return newServiceTimeout(t, 5*time.Second)
}

func newServiceTimeout(t *testing.T, connect time.Duration) (*Service, *sfu.SFU, *wire) {
	t.Helper()
	s, err := sfu.New(sfu.Config{UDPAddr: "127.0.0.1:0", ConnectTimeout: connect})
	if err != nil {
		t.Fatal(err)
	}
	svc := New(Options{SFU: s, Legs: legs{}, ICEServers: func(string, time.Duration) []sfu.ICEServer {
		return []sfu.ICEServer{{URLs: []string{"turn:127.0.0.1:3478"}, Username: "u", Credential: "p"}}
	}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return svc, s, &wire{wrote: make(chan struct{}, 1)}
}

func iq(t *testing.T, from, id, payload string) *stream.Element {
	t.Helper()
	e, err := stream.NewReader(strings.NewReader(`<iq xmlns="jabber:component:accept" type="set" id="`+id+`" from="`+from+`" to="`+space+`">`+payload+`</iq>`), stream.Limits{}).Next()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func condition(e *stream.Element) string {
	var v struct {
		Error struct {
			Conds []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if e.Decode(&v) != nil || len(v.Error.Conds) == 0 {
		return ""
	}
	return v.Error.Conds[0].XMLName.Local
}

func byID(id string) func(*stream.Element) bool {
	return func(e *stream.Element) bool { return e.Get("id") == id }
}

// TestRefusals: each bad request gets its stanza error and leaves no media behind.
func TestRefusals(t *testing.T) {
	svc, s, w := newService(t)
	big := "v=0\r\n" + strings.Repeat("a=x\r\n", 20000)
	tests := []struct {
		name, from, payload, want string
	}{
		{"not joined", "bob@example.com/web", `<description xmlns="urn:confab:media:1" type="offer">v=0</description>`, "not-acceptable"},
		{"candidate before any offer", alice, `<candidate xmlns="urn:confab:media:1" mid="0" mline="0">candidate:1 1 udp 1 127.0.0.1 9 typ host</candidate>`, "item-not-found"},
		{"answer first", alice, `<description xmlns="urn:confab:media:1" type="answer">v=0</description>`, "unexpected-request"},
		{"malformed offer", alice, `<description xmlns="urn:confab:media:1" type="offer">this is not SDP</description>`, "bad-request"},
		{"oversized offer", alice, `<description xmlns="urn:confab:media:1" type="offer">` + big + `</description>`, "policy-violation"},
		{"no common codec", alice, `<description xmlns="urn:confab:media:1" type="offer">` + noCommonCodec + `</description>`, "not-acceptable"},
		{"unknown request", alice, `<frobnicate xmlns="urn:confab:media:1"/>`, "service-unavailable"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "r" + string(rune('a'+i))
			if !svc.Handle(context.Background(), w, iq(t, tt.from, id, tt.payload)) {
				t.Fatal("Handle = false")
			}
			got := w.await(t, "answer to "+id, byID(id))
			if got.Get("type") != "error" || condition(got) != tt.want {
				t.Errorf("answer %s, want a %s error", got, tt.want)
			}
			if n := s.Stats().Participants; n != 0 {
				t.Errorf("%d SFU participants after a refused request", n)
			}
		})
	}
}

// TestSessionOfferAndEnd: <session/> gives the ICE servers; an offer from a joined
// participant is answered by a description message; the leg's end ends its media.
func TestSessionOfferAndEnd(t *testing.T) {
	svc, s, w := newService(t)
	get := iq(t, alice, "s1", `<session xmlns="urn:confab:media:1"/>`)
	get.Set("type", "get")
	svc.Handle(context.Background(), w, get)
	res := w.await(t, "session result", byID("s1"))
	if res.Get("type") != "result" || !bytes.Contains(res.Inner, []byte("turn:127.0.0.1:3478")) || !bytes.Contains(res.Inner, []byte(`leg="l1"`)) {
		t.Fatalf("session answer %s", res)
	}

	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	var x stream.Builder
	x.Elem("description", offer.SDP, "xmlns", NS, "type", "offer")
	svc.Handle(context.Background(), w, iq(t, alice, "o1", string(x.B)))
	if r := w.await(t, "offer result", byID("o1")); r.Get("type") != "result" {
		t.Fatalf("offer answered %s", r)
	}
	ans := w.await(t, "answer description", func(e *stream.Element) bool {
		return e.Name.Local == "message" && bytes.Contains(e.Inner, []byte(`type="answer"`))
	})
	if ans.Get("from") != space || ans.Get("to") != alice || !bytes.Contains(ans.Inner, []byte("a=ice-lite")) {
		t.Errorf("answer message %s", ans)
	}
	if n := s.Stats().Participants; n != 1 {
		t.Fatalf("%d SFU participants, want 1", n)
	}
	svc.LegEnded(meeting.LegEnd{CallID: "c1", LegID: "l1", Reason: "left"})
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Participants != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the SFU releases the participant on a goroutine of the service's
	}
	if n := s.Stats().Participants; n != 0 {
		t.Errorf("%d SFU participants after the leg ended", n)
	}
	cand := iq(t, alice, "c9", `<candidate xmlns="urn:confab:media:1" mid="0" mline="0">candidate:1 1 udp 1 127.0.0.1 9 typ host</candidate>`)
	svc.Handle(context.Background(), w, cand)
	if r := w.await(t, "candidate answer", byID("c9")); condition(r) != "item-not-found" {
		t.Errorf("candidate after the end: %s", r)
	}
}

// noCommonCodec offers only a video codec the SFU does not forward.
const noCommonCodec = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=rtcp-mux\r\na=recvonly\r\na=rtpmap:120 THEORA/90000\r\n"
