package sfutest

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
)

// The synthetic media: frames whose bytes are a function of (source, layer, frame number,
// key, size), so that a subscriber can regenerate every frame it receives and compare it
// byte for byte. Each frame's body starts with a header: magic, source, layer, frame
// number, key flag, size, width, height, and the time the frame's first packet was sent
// (Unix nanoseconds, written just before the write: the regenerated frame takes it from the
// received header, so it is checked like the rest but does not change the filler).

var magic = []byte{'C', 'F', 0x02}

const (
	stampOffset = 3 + 4 + 1 + 4 + 1 + 2 + 2 + 2
	bodyHeader  = stampOffset + 8
)

// Codec names the payload formats the test client can produce.
type Codec string

// The codecs.
const (
	VP8  Codec = "video/VP8"
	H264 Codec = "video/H264"
	Opus Codec = "audio/opus"
)

// maxChunk is the largest RTP payload the client produces.
const maxChunk = 1000

func body(src uint32, layer uint8, no uint32, key bool, size, width, height int, stamp int64) []byte {
	b := make([]byte, bodyHeader, bodyHeader+size+8)
	copy(b, magic)
	binary.BigEndian.PutUint32(b[3:], src)
	b[7] = layer
	binary.BigEndian.PutUint32(b[8:], no)
	if key {
		b[12] = 1
	}
	binary.BigEndian.PutUint16(b[13:], uint16(size))
	binary.BigEndian.PutUint16(b[15:], uint16(width))
	binary.BigEndian.PutUint16(b[17:], uint16(height))
	binary.BigEndian.PutUint64(b[stampOffset:], uint64(stamp))
	r := rand.New(rand.NewPCG(uint64(src)<<32|uint64(no), uint64(layer)<<1|uint64(b[12])))
	for len(b) < bodyHeader+size {
		b = binary.LittleEndian.AppendUint64(b, r.Uint64())
	}
	return b[:bodyHeader+size]
}

// Frame returns the RTP payloads of one frame, stamped with the given send time.
func Frame(c Codec, src uint32, layer uint8, no uint32, key bool, size, width, height int, stamp int64) [][]byte {
	bd := body(src, layer, no, key, size, width, height, stamp)
	switch c {
	case Opus:
		return [][]byte{append([]byte{0x78}, bd...)} // TOC: CELT FB 20 ms
	case H264:
		var out [][]byte
		nal := byte(0x41) // non-IDR slice
		if key {
			out = append(out, []byte{0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02, 0x80, 0xf6}) // SPS
			nal = 0x65
		}
		data := append([]byte{nal}, bd...)
		if len(data) <= maxChunk {
			return append(out, data)
		}
		typ := nal & 0x1f
		ind := nal&0xe0 | 28
		for i := 1; i < len(data); i += maxChunk - 2 {
			end := min(i+maxChunk-2, len(data))
			h := typ
			if i == 1 {
				h |= 0x80
			}
			if end == len(data) {
				h |= 0x40
			}
			out = append(out, append([]byte{ind, h}, data[i:end]...))
		}
		return out
	}
	// VP8: a 3-byte frame tag (and, for a key frame, start code and size), then the body.
	var data []byte
	if key {
		data = []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, byte(width), byte(width >> 8), byte(height), byte(height >> 8)}
	} else {
		data = []byte{0x11, 0x02, 0x00}
	}
	data = append(data, bd...)
	var out [][]byte
	for i := 0; i < len(data); i += maxChunk - 1 {
		end := min(i+maxChunk-1, len(data))
		d := byte(0x00)
		if i == 0 {
			d = 0x10 // S, partition 0
		}
		out = append(out, append([]byte{d}, data[i:end]...))
	}
	return out
}

// frameStart reports whether a payload begins a frame.
func frameStart(c Codec, p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch c {
	case Opus:
		return true
	case H264:
		t := p[0] & 0x1f
		return t == 7 || t == 1 || (t == 28 && len(p) > 1 && p[1]&0x80 != 0 && p[1]&0x1f == 1)
	}
	return p[0]&0x10 != 0
}

// FrameID identifies a received frame.
type FrameID struct {
	Src   uint32
	Layer uint8
	No    uint32
	Key   bool
	Sent  int64 // the send time stamped in the frame, Unix nanoseconds
}

// stamp writes the send time into the first payload that carries the frame header, and
// reports whether it found one.
func stamp(payloads [][]byte, t int64) bool {
	for _, p := range payloads {
		if i := bytes.Index(p[:min(len(p), 64)], magic); i >= 0 && len(p) >= i+bodyHeader {
			binary.BigEndian.PutUint64(p[i+stampOffset:], uint64(t))
			return true
		}
	}
	return false
}

// sentAt returns the send time in a payload that carries a frame header.
func sentAt(p []byte) (int64, bool) {
	i := bytes.Index(p[:min(len(p), 64)], magic)
	if i < 0 || len(p) < i+bodyHeader {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(p[i+stampOffset:])), true
}

// verify parses a received frame's header and regenerates it: ok when every byte matches.
// The payloads are compared with the regenerated ones in place, without joining them.
func verify(c Codec, payloads [][]byte) (FrameID, bool) {
	var h []byte
	for _, p := range payloads {
		if i := bytes.Index(p[:min(len(p), 64)], magic); i >= 0 && len(p) >= i+bodyHeader {
			h = p[i:]
			break
		}
	}
	if h == nil {
		return FrameID{}, false
	}
	id := FrameID{Src: binary.BigEndian.Uint32(h[3:]), Layer: h[7], No: binary.BigEndian.Uint32(h[8:]), Key: h[12] == 1,
		Sent: int64(binary.BigEndian.Uint64(h[stampOffset:]))}
	sz, w, ht := int(binary.BigEndian.Uint16(h[13:])), int(binary.BigEndian.Uint16(h[15:])), int(binary.BigEndian.Uint16(h[17:]))
	return id, equalFlat(Frame(c, id.Src, id.Layer, id.No, id.Key, sz, w, ht, id.Sent), payloads)
}

// equalFlat reports whether a and b hold the same bytes once each is joined.
func equalFlat(a, b [][]byte) bool {
	var x, y []byte
	for {
		for len(x) == 0 && len(a) > 0 {
			x, a = a[0], a[1:]
		}
		for len(y) == 0 && len(b) > 0 {
			y, b = b[0], b[1:]
		}
		if len(x) == 0 || len(y) == 0 {
			return len(x) == 0 && len(y) == 0
		}
		n := min(len(x), len(y))
		if !bytes.Equal(x[:n], y[:n]) {
			return false
		}
		x, y = x[n:], y[n:]
	}
}

// frameSize varies a layer's frame size a little with the frame number.
func frameSize(base int, no uint32) int { return base + int(no%7)*3 }
