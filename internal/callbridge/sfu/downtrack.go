package sfu

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// downTrack forwards one published track to one subscriber. It is the pion TrackLocal of
// the subscriber's sender: pion binds it to the negotiated SSRC and payload type, and write
// rewrites each packet's SSRC, payload type, sequence number and timestamp so that the
// subscriber sees one continuous stream across simulcast layer switches and mutes.
type downTrack struct {
	id     string // the published track's id
	pt     *publishedTrack
	sub    *Participant
	sender *webrtc.RTPSender // sub.negMu

	binding atomic.Pointer[binding]
	removed atomic.Bool
	target  atomic.Pointer[layer] // the layer to switch to at its next key frame
	current atomic.Pointer[layer] // the layer forwarded now (a copy of cur for readers)
	maxW    atomic.Int32
	maxH    atomic.Int32

	prefMu    sync.Mutex
	preferred string

	// The forwarding state, under mu, which write holds across the write to pion.
	mu        sync.Mutex
	cur       *layer
	resyncing bool // the next packet (key frame for video) starts a new offset
	started   bool
	seqOff    uint16
	tsOff     uint32
	switchSeq uint16 // the first incoming sequence number forwarded from cur
	// guarding: packets of cur from before switchSeq are dropped (late ones of the old
	// offset). Only near the switch: once cur is guardSpan packets past it, the half of the
	// sequence space "before" it is the future, and the guard ends.
	guarding bool
	lastSeq  uint16
	lastTS   uint32
	lastAt   int64
	hdr      rtp.Header
	ext      [4]rtp.Extension
	// VP8 picture ids and TL0PICIDX, rewritten like the sequence numbers (each layer
	// numbers its pictures on its own), in a copy of the payload.
	vp8Started bool
	picDelta   uint16
	tl0Delta   uint8
	lastPic    uint16
	lastTL0    uint8
	pay        [bufSize]byte

	packets  atomic.Uint64
	bytes    atomic.Uint64
	dropped  atomic.Uint64 // waiting for a key frame or from another layer
	switches atomic.Uint64

	// Receiver reports from the subscriber.
	fractionLost atomic.Uint32 // /256
	totalLost    atomic.Int32
	jitter       atomic.Uint32 // timestamp units

	// Housekeeping only.
	lastBytes     uint64
	bitrate       atomic.Int64
	reportedLayer *layer

	// Layer choice (choose), under sub.layerMu.
	limited  bool          // the last choice was below what the size and preference allow
	upSince  int64         // since when a higher layer has fitted with the margin, or 0
	upHold   time.Duration // how long it must fit before it is taken
	lastUpAt int64         // the last switch up for bandwidth, or 0
	targetAt int64         // when the target last changed
}

type binding struct {
	ssrc    uint32
	pt      uint8
	levelID uint8
	clock   uint32
	w       webrtc.TrackLocalWriter
}

func newDownTrack(t *publishedTrack, sub *Participant) *downTrack {
	dt := &downTrack{id: t.id, pt: t, sub: sub}
	if ls := t.sortedLayers(); len(ls) > 0 {
		dt.target.Store(ls[len(ls)-1])
	}
	return dt
}

// Bind implements webrtc.TrackLocal: the codec is the publisher's.
func (dt *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var codec *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, dt.pt.codec.MimeType) {
			continue
		}
		if codec == nil || c.SDPFmtpLine == dt.pt.codec.SDPFmtpLine {
			c := c
			codec = &c
		}
	}
	if codec == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(codec.PayloadType), clock: codec.ClockRate, w: ctx.WriteStream()}
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == audioLevelURI {
			b.levelID = uint8(e.ID)
		}
	}
	dt.binding.Store(b)
	dt.pt.requestKeyframe(dt.target.Load())
	return *codec, nil
}

// Unbind implements webrtc.TrackLocal.
func (dt *downTrack) Unbind(webrtc.TrackLocalContext) error {
	dt.binding.Store(nil)
	return nil
}

// ID implements webrtc.TrackLocal: the msid track id.
func (dt *downTrack) ID() string { return dt.pt.id }

// RID implements webrtc.TrackLocal: a subscriber gets one layer, no rid.
func (dt *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the msid stream id.
func (dt *downTrack) StreamID() string { return dt.pt.streamID }

// Kind implements webrtc.TrackLocal.
func (dt *downTrack) Kind() webrtc.RTPCodecType {
	if dt.pt.kind == Video {
		return webrtc.RTPCodecTypeVideo
	}
	return webrtc.RTPCodecTypeAudio
}

// resync makes the next packet (a key frame, for video) start a new offset, so that the
// subscriber sees no gap where packets were not forwarded (mute).
func (dt *downTrack) resync() {
	dt.mu.Lock()
	dt.resyncing = true
	dt.mu.Unlock()
}

// guardSpan is how many packets after a switch its guard against late packets lasts: far
// more than any reordering or retransmission history (nackHistory), far less than the
// 2^15 after which a 16-bit sequence number compares as before the switch again.
const guardSpan = 4096

// awaitingKeyframe reports whether dt waits for a key frame to resume (resync).
func (dt *downTrack) awaitingKeyframe() bool {
	dt.mu.Lock()
	defer dt.mu.Unlock()
	return dt.resyncing
}

// write forwards one packet of layer l. Video switches to the target layer at its key
// frame; packets of other layers are dropped. It allocates nothing.
func (dt *downTrack) write(l *layer, pkt *rtp.Packet, key bool, now int64) {
	b := dt.binding.Load()
	if b == nil || dt.sub.deliveryMute[dt.pt.kind.index()].Load() {
		return
	}
	dt.mu.Lock()
	defer dt.mu.Unlock()
	switched := false
	if l != dt.cur || dt.resyncing {
		if !key || (l != dt.cur && l != dt.target.Load()) {
			dt.dropped.Add(1)
			return
		}
		if dt.started {
			dt.seqOff = dt.lastSeq + 1 - pkt.SequenceNumber
			step := uint32(uint64(now-dt.lastAt) * uint64(b.clock) / 1e9)
			if step == 0 {
				step = 1
			}
			dt.tsOff = dt.lastTS + step - pkt.Timestamp
		}
		if l != dt.cur {
			dt.switches.Add(1)
		}
		dt.cur, dt.resyncing, dt.switchSeq, dt.guarding = l, false, pkt.SequenceNumber, true
		dt.current.Store(l)
		switched = true
	}
	if dt.guarding {
		switch d := int16(pkt.SequenceNumber - dt.switchSeq); {
		case d < 0:
			dt.dropped.Add(1) // from before the switch
			return
		case d >= guardSpan:
			dt.guarding = false
		}
	}
	seq := pkt.SequenceNumber + dt.seqOff
	if len(pkt.Payload) == 0 && dt.started && seq == dt.lastSeq+1 {
		dt.seqOff-- // padding only: not forwarded, and no gap either
		return
	}
	ts := pkt.Timestamp + dt.tsOff
	if !dt.started || int16(seq-dt.lastSeq) > 0 {
		dt.lastSeq, dt.lastTS, dt.lastAt, dt.started = seq, ts, now, true
	}
	h := &dt.hdr
	*h = rtp.Header{Version: 2, Marker: pkt.Marker, PayloadType: b.pt, SequenceNumber: seq, Timestamp: ts, SSRC: b.ssrc, Extensions: dt.ext[:0]}
	if b.levelID != 0 && dt.pt.levelID != 0 {
		if v := pkt.GetExtension(dt.pt.levelID); v != nil {
			_ = h.SetExtension(b.levelID, v)
		}
	}
	payload := pkt.Payload
	if dt.pt.ck == codecVP8 {
		payload = dt.rewriteVP8(payload, switched)
	}
	if _, err := b.w.WriteRTP(h, payload); err != nil {
		return
	}
	n := uint64(h.MarshalSize() + len(payload))
	dt.packets.Add(1)
	dt.bytes.Add(n)
	if fo := &dt.sub.c.firstOut; fo.Load() == 0 {
		fo.CompareAndSwap(0, now)
	}
	c := &dt.sub.s.counters
	k := dt.pt.kind.index()
	c.forwarded[k].Add(1)
	c.forwardedBytes[k].Add(n)
}

// report records a receiver report block about this track.
func (dt *downTrack) report(r rtcp.ReceptionReport) {
	if b := dt.binding.Load(); b == nil || b.ssrc != r.SSRC {
		return
	}
	dt.fractionLost.Store(uint32(r.FractionLost))
	dt.totalLost.Store(int32(r.TotalLost))
	dt.jitter.Store(r.Jitter)
}

// rewriteVP8 returns the payload with its picture id and TL0PICIDX continuing those the
// subscriber saw (a copy in dt.pay), or the payload itself when it has neither (dt.mu
// held).
func (dt *downTrack) rewriteVP8(p []byte, switched bool) []byte {
	po, pl, pic, to := vp8Descriptor(p)
	if pl == 0 && to == 0 {
		return p
	}
	var tl0 uint8
	if to > 0 {
		tl0 = p[to]
	}
	if switched {
		if dt.vp8Started {
			dt.picDelta, dt.tl0Delta = dt.lastPic+1-pic, dt.lastTL0+1-tl0
		} else {
			dt.picDelta, dt.tl0Delta = 0, 0
		}
	}
	out := dt.pay[:copy(dt.pay[:], p)]
	v := (pic + dt.picDelta) & 0x7fff
	switch pl {
	case 2:
		binary.BigEndian.PutUint16(out[po:], 0x8000|v)
	case 1:
		v &= 0x7f
		out[po] = byte(v)
	}
	if !dt.vp8Started || (v-dt.lastPic)&0x7fff < 0x4000 {
		dt.lastPic = v
	}
	if to > 0 {
		t := tl0 + dt.tl0Delta
		out[to] = t
		if !dt.vp8Started || int8(t-dt.lastTL0) >= 0 {
			dt.lastTL0 = t
		}
	}
	dt.vp8Started = true
	return out
}

// vp8Descriptor finds the picture id of a VP8 payload descriptor (RFC 7741 §4.2): its
// offset, its length (1 or 2 bytes; 0 when absent) and value; and the offset of
// TL0PICIDX (0 when absent).
func vp8Descriptor(p []byte) (picOff, picLen int, pic uint16, tl0Off int) {
	if len(p) < 2 || p[0]&0x80 == 0 {
		return 0, 0, 0, 0
	}
	x, i := p[1], 2
	if x&0x80 != 0 {
		switch {
		case len(p) <= i:
			return 0, 0, 0, 0
		case p[i]&0x80 != 0:
			if len(p) < i+2 {
				return 0, 0, 0, 0
			}
			picOff, picLen, pic = i, 2, binary.BigEndian.Uint16(p[i:])&0x7fff
			i += 2
		default:
			picOff, picLen, pic = i, 1, uint16(p[i]&0x7f)
			i++
		}
	}
	if x&0x40 != 0 {
		if len(p) <= i {
			return 0, 0, 0, 0
		}
		tl0Off = i
	}
	return picOff, picLen, pic, tl0Off
}
