package sfu

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// bufSize is the size of a reader's packet buffer (above pion's receive MTU of 1460).
const bufSize = 1500

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

func getBuffer() *[bufSize]byte  { return bufPool.Get().(*[bufSize]byte) }
func putBuffer(b *[bufSize]byte) { bufPool.Put(b) }

// publishedTrack is a track a participant publishes: one layer, or one per simulcast rid.
type publishedTrack struct {
	id             string
	owner          *Participant
	recv           *webrtc.RTPReceiver
	kind           Kind
	source         Source
	streamID       string
	clientStreamID string
	clientTrackID  string
	codec          webrtc.RTPCodecParameters
	ck             codecKind
	levelID        uint8 // the audio level extension's id in the publisher's packets, 0 if none

	muted atomic.Bool
	subs  atomic.Pointer[[]*downTrack] // copied on write under mu; read per packet

	mu     sync.Mutex
	layers []*layer

	// Housekeeping only.
	loudness float64
	levelSum atomic.Int64 // sum of 127-dBov since the last tick
	levelN   atomic.Int64
}

// layer is one incoming RTP stream of a track (one simulcast rid).
type layer struct {
	t      *publishedTrack
	rid    string
	ssrc   uint32
	remote *webrtc.TrackRemote
	order  int // arrival order
	pkt    rtp.Packet

	width, height atomic.Int32
	packets       atomic.Uint64
	bytes         atomic.Uint64
	rtx           atomic.Uint64
	lastAt        atomic.Int64 // unix ns of the last packet
	lastPLI       atomic.Int64
	bitrate       atomic.Int64 // bits/s over the last tick, housekeeping
	avgRate       atomic.Int64 // bits/s, smoothed (rateWeight), housekeeping
	lastBytes     uint64       // housekeeping

	rxMu sync.Mutex
	rx   rxStats
}

func newPublishedTrack(p *Participant, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver, kind Kind, source Source, streamID string) *publishedTrack {
	t := &publishedTrack{
		id: p.s.newID("t"), owner: p, recv: recv, kind: kind, source: source, streamID: streamID,
		clientStreamID: remote.StreamID(), clientTrackID: remote.ID(), codec: remote.Codec(),
		ck: codecKindOf(remote.Codec().MimeType),
	}
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == audioLevelURI {
			t.levelID = uint8(e.ID)
		}
	}
	return t
}

func (t *publishedTrack) info() TrackInfo {
	t.mu.Lock()
	var rids []string
	for _, l := range t.layers {
		if l.rid != "" {
			rids = append(rids, l.rid)
		}
	}
	t.mu.Unlock()
	return TrackInfo{
		ID: t.id, StreamID: t.streamID, Participant: t.owner.id, Kind: t.kind, Source: t.source,
		ClientStreamID: t.clientStreamID, ClientTrackID: t.clientTrackID, Codec: t.codec.MimeType, RIDs: rids,
	}
}

func (t *publishedTrack) addLayer(remote *webrtc.TrackRemote) *layer {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := &layer{t: t, rid: remote.RID(), ssrc: uint32(remote.SSRC()), remote: remote, order: len(t.layers)}
	t.layers = append(t.layers, l)
	return l
}

// removeLayer removes l and reports whether it was the last.
func (t *publishedTrack) removeLayer(l *layer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.layers = slices.DeleteFunc(t.layers, func(x *layer) bool { return x == l })
	return len(t.layers) == 0
}

// sortedLayers returns the layers from the lowest quality to the highest: by frame size
// when every layer's is known, else by rid (q<h<f, l<m<h, 0<1<2), else by arrival.
func (t *publishedTrack) sortedLayers() []*layer {
	t.mu.Lock()
	ls := slices.Clone(t.layers)
	t.mu.Unlock()
	sized := true
	for _, l := range ls {
		if l.width.Load() == 0 {
			sized = false
		}
	}
	rank := ridRanks(ls)
	slices.SortStableFunc(ls, func(a, b *layer) int {
		if sized {
			if d := int(a.width.Load()*a.height.Load()) - int(b.width.Load()*b.height.Load()); d != 0 {
				return d
			}
		}
		if rank != nil {
			return rank[a.rid] - rank[b.rid]
		}
		return a.order - b.order
	})
	return ls
}

func ridRanks(ls []*layer) map[string]int {
	for _, set := range [][]string{{"q", "h", "f"}, {"l", "m", "h"}, {"0", "1", "2"}, {"low", "mid", "high"}} {
		rank := map[string]int{}
		for i, r := range set {
			rank[r] = i
		}
		ok := true
		for _, l := range ls {
			if _, in := rank[l.rid]; !in {
				ok = false
			}
		}
		if ok {
			return rank
		}
	}
	return nil
}

func (t *publishedTrack) subscribers() []*downTrack {
	if s := t.subs.Load(); s != nil {
		return *s
	}
	return nil
}

func (t *publishedTrack) addSubscriber(dt *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := append(slices.Clone(t.subscribers()), dt)
	t.subs.Store(&next)
}

func (t *publishedTrack) removeSubscriber(dt *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(t.subscribers()), func(x *downTrack) bool { return x == dt })
	t.subs.Store(&next)
}

// handle takes one packet read from l: the flood budget, parsing, statistics, the audio
// level, key frame detection, mute, and forwarding to every subscriber. It allocates
// nothing.
func (t *publishedTrack) handle(l *layer, b []byte, rtx bool) {
	p := t.owner
	now := time.Now().UnixNano()
	if !p.limit.allow(now, len(b)) {
		p.c.rateDropped.Add(1)
		p.s.counters.rateDropped.Add(1)
		return
	}
	if err := l.pkt.Unmarshal(b); err != nil {
		p.c.malformed.Add(1)
		return
	}
	l.packets.Add(1)
	l.bytes.Add(uint64(len(b)))
	l.lastAt.Store(now)
	if p.c.firstIn.Load() == 0 {
		p.c.firstIn.CompareAndSwap(0, now)
	}
	if rtx {
		l.rtx.Add(1)
	}
	p.s.counters.received.Add(1)
	p.s.counters.receivedBytes.Add(uint64(len(b)))
	l.rxMu.Lock()
	l.rx.update(&l.pkt.Header, now, t.codec.ClockRate)
	l.rxMu.Unlock()
	key := true
	if t.kind == Audio {
		if t.levelID != 0 {
			if v := l.pkt.GetExtension(t.levelID); len(v) > 0 {
				t.levelSum.Add(int64(127 - v[0]&0x7f))
				t.levelN.Add(1)
			}
		}
	} else {
		var w, h int
		key, w, h = keyframe(t.ck, l.pkt.Payload)
		if key && w > 0 && h > 0 {
			l.width.Store(int32(w))
			l.height.Store(int32(h))
		}
	}
	if t.muted.Load() {
		p.c.mutedDropped.Add(1)
		return
	}
	t.forward(l, &l.pkt, key, now)
}

// forward writes pkt to every subscriber.
func (t *publishedTrack) forward(l *layer, pkt *rtp.Packet, key bool, now int64) {
	s := t.subs.Load()
	if s == nil {
		return
	}
	for _, dt := range *s {
		dt.write(l, pkt, key, now)
	}
}

// requestKeyframe sends a PLI for l to the publisher, at most one per KeyframeMinGap.
func (t *publishedTrack) requestKeyframe(l *layer) { t.pli(l, false) }

// pli sends a PLI for l; unless now, not within KeyframeMinGap of the last. A subscriber
// whose forwarding resumes (SetDeliveryMute) cannot wait: the key frame of a PLI sent just
// before, for another subscriber or by its own client, was not forwarded to it.
func (t *publishedTrack) pli(l *layer, now bool) {
	if t.kind != Video || l == nil {
		return
	}
	at := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if !now && at-last < int64(t.owner.s.cfg.KeyframeMinGap) || !l.lastPLI.CompareAndSwap(last, at) {
		return
	}
	if err := t.owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}}); err == nil {
		t.owner.s.counters.pli.Add(1)
	}
}

// requestKeyframes asks for a key frame on every layer, and makes every subscriber resume
// on one (after unmute).
func (t *publishedTrack) requestKeyframes() {
	for _, dt := range t.subscribers() {
		dt.resync()
	}
	t.mu.Lock()
	ls := slices.Clone(t.layers)
	t.mu.Unlock()
	for _, l := range ls {
		t.pli(l, true) // every subscriber waits for it: not to be skipped for a recent PLI
	}
}

// rxStats are RFC 3550 reception statistics of one incoming stream.
type rxStats struct {
	started     bool
	baseSeq     uint32
	maxSeq      uint32 // extended
	received    uint64
	jitter      float64 // in timestamp units
	lastTransit int64
}

func (r *rxStats) update(h *rtp.Header, now int64, clock uint32) {
	seq := uint32(h.SequenceNumber)
	if !r.started {
		r.started, r.baseSeq, r.maxSeq = true, seq, seq
	} else {
		cycles := r.maxSeq &^ 0xffff
		ext := cycles | seq
		if d := int16(h.SequenceNumber - uint16(r.maxSeq)); d > 0 {
			if uint16(r.maxSeq) > h.SequenceNumber {
				ext += 1 << 16
			}
			r.maxSeq = ext
		}
	}
	r.received++
	if clock == 0 {
		return
	}
	arrival := now / 1000 * int64(clock) / 1_000_000
	transit := arrival - int64(h.Timestamp)
	if r.lastTransit != 0 {
		d := transit - r.lastTransit
		if d < 0 {
			d = -d
		}
		if d < int64(clock)*10 { // ignore timestamp jumps (switches, DTX)
			r.jitter += (float64(d) - r.jitter) / 16
		}
	}
	r.lastTransit = transit
}

func (r *rxStats) lost() int64 {
	if !r.started {
		return 0
	}
	return int64(r.maxSeq-r.baseSeq+1) - int64(r.received)
}
