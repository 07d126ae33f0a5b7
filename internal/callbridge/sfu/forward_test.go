package sfu

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// headerWriter stands for pion's write stream: it marshals the header, as SRTP would,
// and records what it wrote.
type headerWriter struct {
	buf  [64]byte
	seqs []uint16
	tss  []uint32
	keep bool
}

func (w *headerWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	n, err := h.MarshalTo(w.buf[:])
	if w.keep {
		w.seqs = append(w.seqs, h.SequenceNumber)
		w.tss = append(w.tss, h.Timestamp)
	}
	return n + len(p), err
}

func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }

// forwardRig is a published VP8 track with layers and n subscribers whose pion writers
// are headerWriters: the forwarding path without the network.
type forwardRig struct {
	t       *publishedTrack
	layers  []*layer
	subs    []*downTrack
	writers []*headerWriter
}

func newForwardRig(n, layers int) *forwardRig {
	s := &SFU{}
	s.cfg.setDefaults()
	s.log = s.cfg.Logger
	owner := &Participant{s: s, id: "pub"}
	owner.limit.init(1<<30, 1<<40)
	t := &publishedTrack{id: "t1", owner: owner, kind: Video, ck: codecVP8,
		codec: webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}}
	r := &forwardRig{t: t}
	for i := range layers {
		l := &layer{t: t, rid: fmt.Sprint(i), ssrc: uint32(10 + i), order: i}
		t.layers = append(t.layers, l)
		r.layers = append(r.layers, l)
	}
	for i := range n {
		dt := newDownTrack(t, &Participant{s: s, id: fmt.Sprint("sub", i)})
		w := &headerWriter{}
		dt.binding.Store(&binding{ssrc: uint32(100 + i), pt: 96, clock: 90000, w: w})
		t.addSubscriber(dt)
		r.subs = append(r.subs, dt)
		r.writers = append(r.writers, w)
	}
	return r
}

// vp8Packet marshals an RTP packet of a VP8 frame's first packet (key or not).
func vp8Packet(ssrc uint32, seq uint16, ts uint32, key bool, size int) []byte {
	payload := make([]byte, size)
	payload[0] = 0x10 // S, partition 0
	payload[1] = 0x01 // inter frame
	if key {
		copy(payload[1:], []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}) // 320x180
	}
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: true}, Payload: payload}).Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func TestForwardAllocatesNothing(t *testing.T) {
	r := newForwardRig(3, 1)
	pkt := vp8Packet(10, 1, 1000, true, 1000)
	r.t.handle(r.layers[0], pkt, false)
	seq := uint16(2)
	allocs := testing.AllocsPerRun(1000, func() {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		seq++
		r.t.handle(r.layers[0], pkt, false)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per forwarded packet, want 0", allocs)
	}
	if got := r.subs[0].packets.Load(); got != 1002 { // AllocsPerRun runs f once more to warm up
		t.Errorf("forwarded %d packets, want 1002", got)
	}
}

// TestLayerSwitchRewrite: a subscriber switched between layers whose sequence numbers and
// timestamps are unrelated sees one stream: sequence numbers +1 each packet, timestamps
// increasing; the switch waits for the target layer's key frame.
func TestLayerSwitchRewrite(t *testing.T) {
	r := newForwardRig(1, 2)
	r.writers[0].keep = true
	dt := r.subs[0]
	dt.target.Store(r.layers[0])
	now := time.Now().UnixNano()
	type in struct {
		layer int
		seq   uint16
		ts    uint32
		key   bool
	}
	steps := []in{
		{0, 65534, 4000, true}, {1, 100, 90000, true}, {0, 65535, 7000, false}, {0, 0, 10000, false},
		// target → layer 1: its delta frames are dropped, then its key frame switches.
		{1, 101, 93000, false}, {0, 1, 13000, false}, {1, 102, 96000, true}, {0, 2, 16000, false}, {1, 103, 99000, false},
		// a late packet of layer 1 from before the switch is dropped
		{1, 101, 93000, false},
		// back to layer 0 on its key frame
		{0, 3, 19000, true}, {1, 104, 102000, false}, {0, 4, 22000, false},
	}
	for i, s := range steps {
		if i == 4 {
			dt.target.Store(r.layers[1])
		}
		if i == 10 {
			dt.target.Store(r.layers[0])
		}
		now += int64(33 * time.Millisecond)
		b := vp8Packet(r.layers[s.layer].ssrc, s.seq, s.ts, s.key, 50)
		r.t.handle(r.layers[s.layer], b, false)
		_ = now
	}
	w := r.writers[0]
	if got, want := len(w.seqs), 8; got != want {
		t.Fatalf("forwarded %d packets (%v), want %d", got, w.seqs, want)
	}
	for i := 1; i < len(w.seqs); i++ {
		if w.seqs[i] != w.seqs[i-1]+1 {
			t.Errorf("sequence numbers %v: not continuous at %d", w.seqs, i)
		}
		if int32(w.tss[i]-w.tss[i-1]) < 0 {
			t.Errorf("timestamps %v: going back at %d", w.tss, i)
		}
	}
	if got := dt.switches.Load(); got != 3 {
		t.Errorf("%d switches, want 3 (start, to layer 1, back)", got)
	}
}

func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			r := newForwardRig(n, 1)
			pkt := vp8Packet(10, 1, 1000, true, 1100)
			r.t.handle(r.layers[0], pkt, false)
			seq := uint16(2)
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			b.ResetTimer()
			for b.Loop() {
				binary.BigEndian.PutUint16(pkt[2:], seq)
				seq++
				r.t.handle(r.layers[0], pkt, false)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
		})
	}
}

func TestKeyframe(t *testing.T) {
	cases := []struct {
		name string
		ck   codecKind
		p    []byte
		key  bool
		w, h int
	}{
		{"vp8 key", codecVP8, []byte{0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}, true, 640, 480},
		{"vp8 delta", codecVP8, []byte{0x10, 0x11, 0x02, 0x00}, false, 0, 0},
		{"vp8 continuation", codecVP8, []byte{0x00, 0x10, 0x02, 0x00}, false, 0, 0},
		{"vp8 key with picture id", codecVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, true, 320, 180},
		{"vp9 key", codecVP9, []byte{0x08, 0x00}, true, 0, 0},
		{"vp9 inter", codecVP9, []byte{0x48, 0x00}, false, 0, 0},
		{"vp9 key with ss", codecVP9, []byte{0x8a, 0x05, 0x10, 0x05, 0x00, 0x02, 0xd0}, true, 1280, 720},
		{"h264 idr", codecH264, []byte{0x65, 0x88}, true, 0, 0},
		{"h264 sps", codecH264, []byte{0x67, 0x42}, true, 0, 0},
		{"h264 slice", codecH264, []byte{0x41, 0x9a}, false, 0, 0},
		{"h264 stap-a with sps", codecH264, []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true, 0, 0},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85, 0x88}, true, 0, 0},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05, 0x88}, false, 0, 0},
		{"empty", codecVP8, nil, false, 0, 0},
		{"truncated", codecVP8, []byte{0x90}, false, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, w, h := keyframe(tc.ck, tc.p)
			if key != tc.key || w != tc.w || h != tc.h {
				t.Errorf("keyframe = %v %dx%d, want %v %dx%d", key, w, h, tc.key, tc.w, tc.h)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	var l limiter
	l.init(100, 1_000_000)
	now := int64(1)
	passed := 0
	for range 1000 {
		if l.allow(now, 100) {
			passed++
		}
	}
	if passed != 100 {
		t.Errorf("a burst of 1000: %d passed, want the budget of 100", passed)
	}
	now += int64(500 * time.Millisecond)
	passed = 0
	for range 1000 {
		if l.allow(now, 100) {
			passed++
		}
	}
	if passed != 50 {
		t.Errorf("after half a second: %d passed, want 50", passed)
	}
}

func TestDownstreamCodecs(t *testing.T) {
	cases := []struct {
		mime, fmtp string
		wantPT     webrtc.PayloadType
	}{
		{webrtc.MimeTypeVP8, "", 96},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 106},
		{webrtc.MimeTypeH264, "profile-level-id=4d0032;packetization-mode=1", 127},
		{webrtc.MimeTypeOpus, "minptime=10;useinbandfec=1", 111},
	}
	for _, tc := range cases {
		cs := downstreamCodecs(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: tc.mime, SDPFmtpLine: tc.fmtp}})
		if len(cs) == 0 || cs[0].PayloadType != tc.wantPT {
			t.Errorf("%s %s: %+v, want payload type %d first", tc.mime, tc.fmtp, cs, tc.wantPT)
			continue
		}
		if tc.mime != webrtc.MimeTypeOpus && (len(cs) != 2 || cs[1].MimeType != webrtc.MimeTypeRTX) {
			t.Errorf("%s: %+v, want the codec and its RTX", tc.mime, cs)
		}
		if tc.mime == webrtc.MimeTypeOpus && cs[0].SDPFmtpLine != "minptime=10;useinbandfec=1;usedtx=1" {
			t.Errorf("opus fmtp %q, want in-band FEC and DTX", cs[0].SDPFmtpLine)
		}
	}
}

// TestVP8PictureIDRewrite: layers number their pictures on their own; the subscriber sees
// picture ids and TL0PICIDX that go on by one across a switch, and the publisher's
// payloads are not touched (other subscribers share them).
func TestVP8PictureIDRewrite(t *testing.T) {
	r := newForwardRig(1, 2)
	var got [][2]int
	w := r.writers[0]
	dt := r.subs[0]
	dt.binding.Store(&binding{ssrc: 100, pt: 96, clock: 90000, w: writerFunc(func(h *rtp.Header, p []byte) {
		_, _, pic, to := vp8Descriptor(p)
		got = append(got, [2]int{int(pic), int(p[to])})
		_, _ = w.WriteRTP(h, p)
	})})
	dt.target.Store(r.layers[0])
	pkt := func(layer int, seq uint16, pic uint16, tl0 uint8, key bool) []byte {
		b := vp8Packet(r.layers[layer].ssrc, seq, uint32(seq)*3000, key, 60)
		// X with I (15-bit picture id) and L (TL0PICIDX); the key frame header moves on.
		hdr := 12
		payload := append([]byte{0x90, 0xc0, byte(0x80 | pic>>8), byte(pic), tl0}, b[hdr+1:]...)
		return append(b[:hdr:hdr], payload...)
	}
	steps := []struct {
		layer  int
		seq    uint16
		pic    uint16
		tl0    uint8
		key    bool
		target int
	}{
		{0, 1, 32766, 250, true, 0}, {0, 2, 32767, 251, false, 0}, {0, 3, 0, 252, false, 1},
		{1, 50, 9000, 10, true, 1}, {1, 51, 9001, 11, false, 1}, {0, 4, 1, 253, true, 0}, {0, 5, 2, 254, false, 0},
	}
	for _, s := range steps {
		dt.target.Store(r.layers[s.target])
		b := pkt(s.layer, s.seq, s.pic, s.tl0, s.key)
		in := append([]byte(nil), b...)
		r.t.handle(r.layers[s.layer], b, false)
		if string(b) != string(in) {
			t.Fatalf("the publisher's packet was modified")
		}
	}
	want := [][2]int{{32766, 250}, {32767, 251}, {0, 252}, {1, 253}, {2, 254}, {3, 255}, {4, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("picture ids, TL0PICIDX: %v, want %v", got, want)
	}
}

type writerFunc func(*rtp.Header, []byte)

func (f writerFunc) WriteRTP(h *rtp.Header, p []byte) (int, error) { f(h, p); return len(p), nil }
func (f writerFunc) Write(b []byte) (int, error)                   { return len(b), nil }

// TestLongStream: a stream that never switches is forwarded whole past 2^15 and 2^16
// packets (a microphone's 50 packets/s pass 32 768 in 11 minutes): the check that drops
// packets from before a switch must not take the later half of the sequence space for the
// past.
func TestLongStream(t *testing.T) {
	r := newForwardRig(1, 1)
	r.writers[0].keep = true
	const n = 140_000 // more than two cycles of the 16-bit sequence number
	seq, ts := uint16(61_000), uint32(1000)
	r.t.handle(r.layers[0], vp8Packet(10, seq, ts, true, 50), false)
	pkt := vp8Packet(10, seq, ts, false, 50)
	for range n {
		seq++
		ts += 3000
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		r.t.handle(r.layers[0], pkt, false)
	}
	w := r.writers[0]
	if got := len(w.seqs); got != n+1 {
		t.Fatalf("forwarded %d of %d packets (%d dropped)", got, n+1, r.subs[0].dropped.Load())
	}
	for i := 1; i < len(w.seqs); i++ {
		if w.seqs[i] != w.seqs[i-1]+1 {
			t.Fatalf("sequence numbers not continuous at %d: %d then %d", i, w.seqs[i-1], w.seqs[i])
		}
	}
}
