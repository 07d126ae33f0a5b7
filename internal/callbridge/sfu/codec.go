package sfu

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The RFC 6464 client-to-mixer audio level header extension.
const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// codecKind is what the forwarding path needs to know of a codec.
type codecKind uint8

const (
	codecOther codecKind = iota
	codecOpus
	codecVP8
	codecVP9
	codecH264
)

func codecKindOf(mime string) codecKind {
	switch strings.ToLower(mime) {
	case "audio/opus":
		return codecOpus
	case "video/vp8":
		return codecVP8
	case "video/vp9":
		return codecVP9
	case "video/h264":
		return codecH264
	}
	return codecOther
}

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
	{Type: webrtc.TypeRTCPFBTransportCC},
}

// sfuCodecs are the codecs the SFU forwards, with the payload types it offers. Opus keeps
// in-band FEC and DTX in its fmtp; each video codec has RTX.
var sfuCodecs = func() (cs []struct {
	p   webrtc.RTPCodecParameters
	typ webrtc.RTPCodecType
}) {
	add := func(typ webrtc.RTPCodecType, pt webrtc.PayloadType, mime string, clock uint32, ch uint16, fmtp string, fb []webrtc.RTCPFeedback) {
		cs = append(cs, struct {
			p   webrtc.RTPCodecParameters
			typ webrtc.RTPCodecType
		}{webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: mime, ClockRate: clock, Channels: ch, SDPFmtpLine: fmtp, RTCPFeedback: fb}}, typ})
	}
	add(webrtc.RTPCodecTypeAudio, 111, webrtc.MimeTypeOpus, 48000, 2, "minptime=10;useinbandfec=1;usedtx=1",
		[]webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}})
	video := []struct {
		pt   webrtc.PayloadType
		mime string
		fmtp string
	}{
		{96, webrtc.MimeTypeVP8, ""},
		{98, webrtc.MimeTypeVP9, "profile-id=0"},
		{102, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},
		{106, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{127, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"},
	}
	for _, v := range video {
		add(webrtc.RTPCodecTypeVideo, v.pt, v.mime, 90000, 0, v.fmtp, videoFeedback)
		add(webrtc.RTPCodecTypeVideo, v.pt+1, webrtc.MimeTypeRTX, 90000, 0, fmt.Sprintf("apt=%d", v.pt), nil)
	}
	return cs
}()

// newMediaEngine registers the SFU's codecs and header extensions: audio level (RFC 6464)
// for audio; mid, rid and repaired-rid (simulcast) for video. Transport-wide congestion
// control is added by the interceptors.
func newMediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range sfuCodecs {
		if err := m.RegisterCodec(c.p, c.typ); err != nil {
			return nil, err
		}
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	return m, nil
}

// downstreamCodecs returns the SFU's codec matching a publisher's codec (the same fmtp if
// there is one, else the same MIME type), and its RTX, for a subscriber's transceiver.
func downstreamCodecs(c webrtc.RTPCodecParameters) []webrtc.RTPCodecParameters {
	var match *webrtc.RTPCodecParameters
	for i := range sfuCodecs {
		p := &sfuCodecs[i].p
		if !strings.EqualFold(p.MimeType, c.MimeType) {
			continue
		}
		if match == nil || (p.SDPFmtpLine == c.SDPFmtpLine) || h264Compatible(p.SDPFmtpLine, c.SDPFmtpLine) && !h264Compatible(match.SDPFmtpLine, c.SDPFmtpLine) {
			match = p
		}
	}
	if match == nil {
		return nil
	}
	out := []webrtc.RTPCodecParameters{*match}
	apt := fmt.Sprintf("apt=%d", match.PayloadType)
	for i := range sfuCodecs {
		if sfuCodecs[i].p.SDPFmtpLine == apt {
			out = append(out, sfuCodecs[i].p)
		}
	}
	return out
}

// h264Compatible says whether two H.264 fmtp lines have the same profile (first two
// bytes of profile-level-id).
func h264Compatible(a, b string) bool {
	pa, pb := fmtpParam(a, "profile-level-id"), fmtpParam(b, "profile-level-id")
	return len(pa) >= 4 && len(pb) >= 4 && strings.EqualFold(pa[:4], pb[:4])
}

func fmtpParam(line, key string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// checkOffer parses a client's offer and checks that at least one audio or video section
// offers a codec the SFU forwards.
func checkOffer(s string) error {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	media := 0
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" && m.MediaName.Media != "video" {
			continue
		}
		media++
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			_, enc, _ := strings.Cut(a.Value, " ")
			name, _, _ := strings.Cut(enc, "/")
			if codecKindOf(m.MediaName.Media+"/"+name) != codecOther {
				return nil
			}
		}
	}
	if media == 0 {
		return fmt.Errorf("%w: the offer has no audio or video section", ErrNoCommonCodec)
	}
	return fmt.Errorf("%w: the offer's %d audio/video sections have none of Opus, VP8, VP9, H.264", ErrNoCommonCodec, media)
}

// keyframe reports whether an RTP payload starts (or is part of the start of) a key frame,
// and the frame's size when the payload says it (VP8 key frames, VP9 scalability
// structures); 0 otherwise.
func keyframe(k codecKind, p []byte) (key bool, width, height int) {
	switch k {
	case codecVP8:
		return vp8Keyframe(p)
	case codecVP9:
		return vp9Keyframe(p)
	case codecH264:
		return h264Keyframe(p), 0, 0
	}
	return false, 0, 0
}

// vp8Keyframe reads the VP8 payload descriptor (RFC 7741 §4.2) and, at the start of a
// partition 0, the key frame flag and the frame size (RFC 6386 §9.1).
func vp8Keyframe(p []byte) (bool, int, int) {
	if len(p) < 1 {
		return false, 0, 0
	}
	start := p[0]&0x10 != 0 && p[0]&0x07 == 0
	i := 1
	if p[0]&0x80 != 0 { // X
		if len(p) < 2 {
			return false, 0, 0
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I
			if len(p) <= i {
				return false, 0, 0
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	if !start || len(p) <= i {
		return false, 0, 0
	}
	h := p[i:]
	if h[0]&0x01 != 0 { // P: inter frame
		return false, 0, 0
	}
	if len(h) >= 10 && h[3] == 0x9d && h[4] == 0x01 && h[5] == 0x2a {
		return true, int(binary.LittleEndian.Uint16(h[6:8]) & 0x3fff), int(binary.LittleEndian.Uint16(h[8:10]) & 0x3fff)
	}
	return true, 0, 0
}

// vp9Keyframe reads the VP9 payload descriptor (RFC 9628 §4.2): a frame without
// inter-picture prediction (P=0) at its beginning (B=1) starts a key frame; a scalability
// structure (V=1) gives the sizes, of which the largest is returned.
func vp9Keyframe(p []byte) (bool, int, int) {
	if len(p) < 1 {
		return false, 0, 0
	}
	b := p[0]
	key := b&0x40 == 0 && b&0x08 != 0
	if !key || b&0x02 == 0 { // no V
		return key, 0, 0
	}
	i := 1
	if b&0x80 != 0 { // I
		if len(p) <= i {
			return key, 0, 0
		}
		if p[i]&0x80 != 0 {
			i += 2
		} else {
			i++
		}
	}
	if b&0x20 != 0 { // L
		i++
		if b&0x10 == 0 { // not F: TL0PICIDX
			i++
		}
	}
	if len(p) <= i {
		return key, 0, 0
	}
	ss := p[i]
	n := int(ss>>5) + 1
	i++
	w, h := 0, 0
	if ss&0x10 != 0 { // Y
		for range n {
			if len(p) < i+4 {
				break
			}
			w, h = int(binary.BigEndian.Uint16(p[i:])), int(binary.BigEndian.Uint16(p[i+2:]))
			i += 4
		}
	}
	return key, w, h
}

// h264Keyframe looks for an IDR slice or a sequence parameter set (RFC 6184 §5.6–5.8).
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t == 5 || t == 7:
		return true
	case t == 24: // STAP-A
		for i := 1; i+2 < len(p); {
			size := int(binary.BigEndian.Uint16(p[i:]))
			if i+2 >= len(p) {
				break
			}
			if nt := p[i+2] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += 2 + size
		}
	case t == 28: // FU-A
		return len(p) > 1 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}
