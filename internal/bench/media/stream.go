package media

import "confab.dev/confab/internal/callbridge/sfu/sfutest"

// The media every participant sends: synthetic frames of the sizes a browser's encoders
// produce at these bit rates (the frames must be regenerable for the byte-for-byte check,
// so they are not real VP8 and Opus bitstreams; the RTP packetisation, VP8 payload
// descriptors and key-frame headers are real, so servers can parse and switch them).
const (
	// LowKbps, MidKbps and HighKbps are the simulcast layers' bit rates (rids q, h, f).
	LowKbps, MidKbps, HighKbps = 150, 500, 1500
	// AudioBytes is an Opus frame of 20 ms at ~32 kbit/s, with its TOC byte.
	AudioBytes = 80
	// KeyEvery is the key-frame interval in frames (10 s at 30 frames/s) besides the key
	// frames asked for by PLI; a key frame is KeyScale times a delta frame.
	KeyEvery = 300
	KeyScale = 4
)

// bodyOverhead is what the synthetic frame header takes beyond the filler.
const bodyOverhead = 30

// frameBytes is the size of a delta frame of a layer of kbps at fps.
func frameBytes(kbps, fps int) int { return max(kbps*1000/8/fps-bodyOverhead, 100) }

// Camera is a 3-layer simulcast camera at fps: 320×180, 640×360 and 1280×720 at
// LowKbps, MidKbps and HighKbps.
func Camera(fps int) *sfutest.VideoTrack {
	layer := func(rid string, w, h, kbps int) sfutest.Layer {
		fb := frameBytes(kbps, fps)
		return sfutest.Layer{RID: rid, Width: w, Height: h, FrameSize: fb, KeyFrameSize: fb * KeyScale}
	}
	return &sfutest.VideoTrack{Codec: sfutest.VP8, FPS: fps, KeyEvery: KeyEvery, Layers: []sfutest.Layer{
		layer("q", 320, 180, LowKbps), layer("h", 640, 360, MidKbps), layer("f", 1280, 720, HighKbps)}}
}
