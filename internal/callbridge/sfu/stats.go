package sfu

import (
	"sync/atomic"
	"time"
)

// counters are the SFU-wide counters, updated per packet without locks.
type counters struct {
	participants   atomic.Int64
	received       atomic.Uint64
	receivedBytes  atomic.Uint64
	forwarded      [2]atomic.Uint64 // by Kind.index
	forwardedBytes [2]atomic.Uint64
	rateDropped    atomic.Uint64
	pli            atomic.Uint64

	// Housekeeping.
	lastBytes [2]uint64
	bitrate   [2]atomic.Int64
}

func (c *counters) measure(dt float64) {
	if dt <= 0 {
		return
	}
	for k := range c.forwardedBytes {
		b := c.forwardedBytes[k].Load()
		c.bitrate[k].Store(int64(float64(b-c.lastBytes[k]) * 8 / dt))
		c.lastBytes[k] = b
	}
}

// participantCounters are a participant's own counters.
type participantCounters struct {
	rateDropped      atomic.Uint64
	mutedDropped     atomic.Uint64
	malformed        atomic.Uint64
	keyframeRequests atomic.Uint64 // PLI/FIR from this participant as a subscriber
	// firstIn and firstOut are when the first RTP packet arrived from the participant and
	// was forwarded to it (Unix nanoseconds; 0: not yet).
	firstIn, firstOut atomic.Int64
}

// Stats are the SFU-wide counters.
type Stats struct {
	Rooms, Participants int
	// ReceivedPackets and ReceivedBytes count the media received from publishers (after
	// the flood limit).
	ReceivedPackets, ReceivedBytes uint64
	// Forwarded counts the packets and bytes sent to subscribers, by kind.
	ForwardedAudioPackets, ForwardedAudioBytes uint64
	ForwardedVideoPackets, ForwardedVideoBytes uint64
	// AudioBitRate and VideoBitRate are the forwarded bit rates (bits/s) of the last tick.
	AudioBitRate, VideoBitRate int
	// RateLimited counts the packets dropped by the per-participant flood limit.
	RateLimited uint64
	// KeyframeRequests counts the PLIs sent to publishers.
	KeyframeRequests uint64
}

// Stats returns the SFU-wide counters.
func (s *SFU) Stats() Stats {
	s.mu.Lock()
	rooms := len(s.rooms)
	s.mu.Unlock()
	c := &s.counters
	return Stats{
		Rooms: rooms, Participants: int(c.participants.Load()),
		ReceivedPackets: c.received.Load(), ReceivedBytes: c.receivedBytes.Load(),
		ForwardedAudioPackets: c.forwarded[0].Load(), ForwardedAudioBytes: c.forwardedBytes[0].Load(),
		ForwardedVideoPackets: c.forwarded[1].Load(), ForwardedVideoBytes: c.forwardedBytes[1].Load(),
		AudioBitRate: int(c.bitrate[0].Load()), VideoBitRate: int(c.bitrate[1].Load()),
		RateLimited: c.rateDropped.Load(), KeyframeRequests: c.pli.Load(),
	}
}

// MediaStats are one direction of one kind of a participant's media, as CMS shows a call
// leg's.
type MediaStats struct {
	Codec   string // MIME type
	BitRate int    // bits/s over the last tick
	Packets uint64
	Bytes   uint64
	// PacketsLost is counted by the SFU for what it receives (RFC 3550, after
	// retransmissions), and taken from the participant's receiver reports for what it
	// sends; LossFraction likewise (0..1; for receive, lost/expected since the start).
	PacketsLost  int64
	LossFraction float64
	Jitter       time.Duration
	// Width and Height: of the largest layer received (from the key frames, else what the
	// client reported), or of the largest layer forwarded.
	Width, Height int
	// RTXPackets counts the packets received as retransmissions (receive only).
	RTXPackets uint64
	// Layer is the simulcast rid forwarded (send, video).
	Layer string
}

// ParticipantStats are a participant's statistics. Rx is what the SFU receives from the
// participant, Tx what it sends to it (as a call leg's rx and tx).
type ParticipantStats struct {
	Room, Participant string
	State             string // the PeerConnection's state
	RxAudio, RxVideo  MediaStats
	RxScreen          MediaStats // a second video track whose stream id begins with "screen"
	TxAudio, TxVideo  MediaStats
	// AvailableBitrate is the bandwidth estimate for what the participant receives (bits/s).
	AvailableBitrate int
	// RateLimited, MutedDropped and Malformed count the packets from the participant that
	// were not forwarded: over the flood limit, muted, unparsable.
	RateLimited, MutedDropped, Malformed uint64
	// KeyframeRequests counts the PLI/FIR the participant sent.
	KeyframeRequests uint64
	// RetransmissionsDenied counts the packets the participant NACKed that were not
	// retransmitted: beyond its retransmission budget (nackbudget.go). RetransmissionsStale
	// counts those not retransmitted because they were sent over a second before.
	RetransmissionsDenied, RetransmissionsStale uint64
}

// ParticipantStats returns the statistics of one participant.
func (s *SFU) ParticipantStats(roomID, participantID string) (ParticipantStats, error) {
	p, err := s.Participant(roomID, participantID)
	if err != nil {
		return ParticipantStats{}, err
	}
	return p.Stats(), nil
}

// Stats returns the participant's statistics.
func (p *Participant) Stats() ParticipantStats {
	p.mu.Lock()
	st := ParticipantStats{Room: p.room.id, Participant: p.id, State: p.state}
	ts := make([]*publishedTrack, 0, len(p.published))
	for _, t := range p.published {
		ts = append(ts, t)
	}
	ds := make([]*downTrack, 0, len(p.subs))
	for _, d := range p.subs {
		ds = append(ds, d)
	}
	sizes := make(map[string][2]int, len(p.sizes))
	for k, v := range p.sizes {
		sizes[k] = v
	}
	p.mu.Unlock()
	if est, err := p.estimate(); err == nil {
		st.AvailableBitrate = est
	}
	st.RateLimited, st.MutedDropped = p.c.rateDropped.Load(), p.c.mutedDropped.Load()
	st.Malformed, st.KeyframeRequests = p.c.malformed.Load(), p.c.keyframeRequests.Load()
	if p.nack != nil {
		st.RetransmissionsDenied, st.RetransmissionsStale = p.nack.dropped.Load(), p.nack.stale.Load()
	}
	for _, t := range ts {
		m := &st.RxAudio
		switch {
		case t.kind == Video && t.source == SourceScreen:
			m = &st.RxScreen
		case t.kind == Video:
			m = &st.RxVideo
		}
		m.Codec = t.codec.MimeType
		t.mu.Lock()
		ls := append([]*layer(nil), t.layers...)
		t.mu.Unlock()
		var expected int64
		for _, l := range ls {
			m.BitRate += int(l.bitrate.Load())
			m.Packets += l.packets.Load()
			m.Bytes += l.bytes.Load()
			m.RTXPackets += l.rtx.Load()
			l.rxMu.Lock()
			lost := max(l.rx.lost(), 0)
			if l.rx.started {
				expected += int64(l.rx.maxSeq-l.rx.baseSeq) + 1
			}
			if j := jitterDuration(l.rx.jitter, t.codec.ClockRate); j > m.Jitter {
				m.Jitter = j
			}
			l.rxMu.Unlock()
			m.PacketsLost += lost
			if w, h := int(l.width.Load()), int(l.height.Load()); w*h > m.Width*m.Height {
				m.Width, m.Height = w, h
			}
		}
		if expected > 0 {
			m.LossFraction = float64(m.PacketsLost) / float64(expected)
		}
		if m.Width == 0 {
			if sz, ok := sizes[t.clientTrackID]; ok {
				m.Width, m.Height = sz[0], sz[1]
			}
		}
	}
	for _, d := range ds {
		m := &st.TxAudio
		if d.pt.kind == Video {
			m = &st.TxVideo
		}
		m.Codec = d.pt.codec.MimeType
		m.BitRate += int(d.bitrate.Load())
		m.Packets += d.packets.Load()
		m.Bytes += d.bytes.Load()
		m.PacketsLost += int64(d.totalLost.Load())
		if f := float64(d.fractionLost.Load()) / 256; f > m.LossFraction {
			m.LossFraction = f
		}
		if j := jitterDuration(float64(d.jitter.Load()), d.pt.codec.ClockRate); j > m.Jitter {
			m.Jitter = j
		}
		if l := d.current.Load(); l != nil {
			if w, h := int(l.width.Load()), int(l.height.Load()); w*h > m.Width*m.Height {
				m.Width, m.Height, m.Layer = w, h, l.rid
			} else if m.Layer == "" {
				m.Layer = l.rid
			}
		}
	}
	return st
}

func jitterDuration(units float64, clock uint32) time.Duration {
	if clock == 0 {
		return 0
	}
	return time.Duration(units / float64(clock) * float64(time.Second))
}
