package sfutest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// pubTrack is a track the client publishes: one TrackLocalStaticRTP per layer.
type pubTrack struct {
	c        *Client
	kind     webrtc.RTPCodecType
	spec     VideoTrack
	sender   *webrtc.RTPSender
	tr       *webrtc.RTPTransceiver
	layers   []*pubLayer
	level    atomic.Uint32 // audio level in -dBov (127 silence)
	plis     atomic.Int64
	mu       sync.Mutex // serialises writes (the ticker and Flood)
	frameNo  uint32
	quit     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

type pubLayer struct {
	spec    Layer
	track   *webrtc.TrackLocalStaticRTP
	seq     uint16
	tsBase  uint32
	keyNext atomic.Bool
	sent    atomic.Int64 // frames
}

func (c *Client) addTrack(kind webrtc.RTPCodecType, spec *VideoTrack) error {
	v := *spec
	if v.Codec == "" {
		v.Codec = VP8
	}
	if v.StreamID == "" {
		v.StreamID = "cam-" + c.Name
	}
	if len(v.Layers) == 0 {
		v.Layers = []Layer{{Width: 320, Height: 180}}
	}
	for i := range v.Layers {
		if v.Layers[i].FrameSize == 0 {
			v.Layers[i].FrameSize = 300
		}
	}
	if v.FPS == 0 {
		v.FPS = 30
	}
	if v.KeyEvery == 0 {
		v.KeyEvery = 60
	}
	clock := uint32(90000)
	mime := string(v.Codec)
	if v.Codec == Opus {
		clock = 48000
		mime = webrtc.MimeTypeOpus
	}
	pt := &pubTrack{c: c, kind: kind, spec: v, quit: make(chan struct{}), done: make(chan struct{})}
	pt.level.Store(127)
	capab := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: clock}
	if v.Codec == Opus {
		capab.Channels = 2
	}
	if v.Codec == H264 {
		capab.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	id := fmt.Sprintf("%s-%s-%d", c.Name, kind, len(c.pubs))
	for i, l := range v.Layers {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if l.RID != "" {
			opts = append(opts, webrtc.WithRTPStreamID(l.RID))
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(capab, id, v.StreamID, opts...)
		if err != nil {
			return err
		}
		pl := &pubLayer{spec: l, track: tr, seq: uint16(1000 * (i + 1)), tsBase: uint32(i+1) * 100_000}
		pt.layers = append(pt.layers, pl)
		if i == 0 {
			t, err := c.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				return err
			}
			pt.tr, pt.sender = t, t.Sender()
		} else if err := pt.sender.AddEncoding(tr); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.pubs[v.StreamID+"/"+kind.String()] = pt
	c.mu.Unlock()
	c.wg.Add(1 + len(pt.layers))
	for _, l := range pt.layers {
		go pt.readRTCP(l.spec.RID)
	}
	go pt.run()
	return nil
}

// AddVideo publishes another video track (a screen share: StreamID "screen...") and
// renegotiates.
func (c *Client) AddVideo(v VideoTrack) error {
	if err := c.addTrack(webrtc.RTPCodecTypeVideo, &v); err != nil {
		return err
	}
	return c.Negotiate()
}

// RemoveVideo stops publishing the video track of that stream id and renegotiates.
func (c *Client) RemoveVideo(streamID string) error {
	key := streamID + "/" + webrtc.RTPCodecTypeVideo.String()
	c.mu.Lock()
	pt := c.pubs[key]
	delete(c.pubs, key)
	c.mu.Unlock()
	if pt == nil {
		return fmt.Errorf("no video track %q", streamID)
	}
	pt.stop()
	if err := c.pc.RemoveTrack(pt.sender); err != nil {
		return err
	}
	return c.Negotiate()
}

func (c *Client) pubList() []*pubTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*pubTrack, 0, len(c.pubs))
	for _, p := range c.pubs {
		out = append(out, p)
	}
	return out
}

func (c *Client) pub(kind webrtc.RTPCodecType) *pubTrack {
	for _, p := range c.pubList() {
		if p.kind == kind && p.spec.StreamID == "cam-"+c.Name || p.kind == kind && kind == webrtc.RTPCodecTypeAudio {
			return p
		}
	}
	return nil
}

// SetAudioLevel sets the level (in -dBov: 0 loudest, 127 silence) the client's audio
// packets carry in the RFC 6464 header extension.
func (c *Client) SetAudioLevel(dBov uint8) {
	if p := c.pub(webrtc.RTPCodecTypeAudio); p != nil {
		p.level.Store(uint32(dBov))
	}
}

// SentPackets returns how many RTP packets the client has written (on all its tracks).
func (c *Client) SentPackets() int64 { return c.sent.Load() }

// WriteErrors returns how many of the client's RTP writes pion refused.
func (c *Client) WriteErrors() int64 { return c.writeErrs.Load() }

// NACKs returns how many NACK packets the client received about what it sends.
func (c *Client) NACKs() int64 { return c.nacks.Load() }

// PLIs returns how many key frame requests (PLI/FIR) the client's camera received.
func (c *Client) PLIs() int64 {
	var n int64
	for _, p := range c.pubList() {
		n += p.plis.Load()
	}
	return n
}

// SentFrames returns how many frames the client sent on its camera's layer i.
func (c *Client) SentFrames(i int) int64 {
	if p := c.pub(webrtc.RTPCodecTypeVideo); p != nil && i < len(p.layers) {
		return p.layers[i].sent.Load()
	}
	return 0
}

// Flood sends n audio frames back to back (as fast as the socket takes them).
func (c *Client) Flood(n int) {
	p := c.pub(webrtc.RTPCodecTypeAudio)
	if p == nil {
		panic("sfutest: Flood needs audio")
	}
	for range n {
		p.frame()
	}
}

func (p *pubTrack) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}

// run sends a frame per layer every 1/FPS until stopped.
func (p *pubTrack) run() {
	defer p.c.wg.Done()
	defer close(p.done)
	t := time.NewTicker(time.Second / time.Duration(p.spec.FPS))
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-p.c.quit:
			return
		case <-t.C:
			p.frame()
		}
	}
}

func (p *pubTrack) frame() {
	p.mu.Lock()
	defer p.mu.Unlock()
	no := p.frameNo
	p.frameNo++
	mid := p.tr.Mid()
	midID, ridID, levelID := extID(p.sender, sdp.SDESMidURI), extID(p.sender, sdp.SDESRTPStreamIDURI), extID(p.sender, audioLevelURI)
	clock := uint32(90000)
	if p.spec.Codec == Opus {
		clock = 48000
	}
	for i, l := range p.layers {
		key := no%uint32(p.spec.KeyEvery) == 0
		if l.keyNext.Swap(false) {
			key = true
		}
		size := l.spec.FrameSize
		if key && l.spec.KeyFrameSize > 0 {
			size = l.spec.KeyFrameSize
		}
		payloads := Frame(p.spec.Codec, p.c.Src, uint8(i), no, key, frameSize(size, no), l.spec.Width, l.spec.Height, 0)
		stamp(payloads, time.Now().UnixNano())
		for j, pl := range payloads {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.seq,
				Timestamp: l.tsBase + no*clock/uint32(p.spec.FPS), Marker: j == len(payloads)-1 && p.kind == webrtc.RTPCodecTypeVideo}, Payload: pl}
			l.seq++
			if l.spec.RID != "" && midID != 0 && ridID != 0 {
				_ = pkt.Header.SetExtension(midID, []byte(mid))
				_ = pkt.Header.SetExtension(ridID, []byte(l.spec.RID))
			}
			if levelID != 0 {
				lv := byte(p.level.Load())
				if lv < 127 {
					lv |= 0x80 // voice activity
				}
				_ = pkt.Header.SetExtension(levelID, []byte{lv})
			}
			if err := l.track.WriteRTP(pkt); err != nil {
				p.c.writeErrs.Add(1)
			}
			p.c.sent.Add(1)
		}
		l.sent.Add(1)
	}
}

// readRTCP counts key frame requests about one layer and asks the layer concerned for a
// key frame.
func (p *pubTrack) readRTCP(rid string) {
	defer p.c.wg.Done()
	buf := make([]byte, 1500)
	for {
		var n int
		var err error
		if rid == "" {
			n, _, err = p.sender.Read(buf)
		} else {
			n, _, err = p.sender.ReadSimulcast(buf, rid)
		}
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pk := range pkts {
			var ssrc uint32
			switch r := pk.(type) {
			case *rtcp.TransportLayerNack:
				p.c.nacks.Add(1)
				continue
			case *rtcp.PictureLossIndication:
				ssrc = r.MediaSSRC
			case *rtcp.FullIntraRequest:
				if len(r.FIR) > 0 {
					ssrc = r.FIR[0].SSRC
				}
			default:
				continue
			}
			p.plis.Add(1)
			found := false
			for _, e := range p.sender.GetParameters().Encodings {
				if uint32(e.SSRC) != ssrc {
					continue
				}
				for _, l := range p.layers {
					if l.spec.RID == e.RID {
						l.keyNext.Store(true)
						found = true
					}
				}
			}
			if !found {
				for _, l := range p.layers {
					l.keyNext.Store(true)
				}
			}
		}
	}
}
