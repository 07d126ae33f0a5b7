package sfu

import (
	"math"
	"slices"
	"strings"
	"time"
)

// chooseLayers picks, for each video track the participant receives, the simulcast layer
// to forward: the best layer that fits the size the subscriber renders (SetMaxResolution),
// not above its preferred layer (SetPreferredLayer), and within the bandwidth estimate
// (GCC over transport-cc feedback, capped by SetMaxBitrate) left after audio and the
// tracks before it (screen shares first). When nothing fits, the lowest layer. A changed
// choice asks the publisher for a key frame on the new layer; the switch happens on it.
func (p *Participant) chooseLayers() {
	p.layerMu.Lock()
	defer p.layerMu.Unlock()
	budget, err := p.estimate()
	if err != nil {
		budget = math.MaxInt
	}
	p.mu.Lock()
	dts := make([]*downTrack, 0, len(p.subs))
	for _, dt := range p.subs {
		dts = append(dts, dt)
	}
	p.mu.Unlock()
	slices.SortFunc(dts, func(a, b *downTrack) int {
		if (a.pt.source == SourceScreen) != (b.pt.source == SourceScreen) {
			if a.pt.source == SourceScreen {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	for _, dt := range dts {
		if dt.pt.kind == Audio && !dt.pt.muted.Load() {
			budget -= int(dt.bitrate.Load())
		}
	}
	now := time.Now().UnixNano()
	for _, dt := range dts {
		if dt.pt.kind != Video {
			continue
		}
		l := dt.pick(budget, now)
		if l == nil {
			continue
		}
		budget -= int(l.bitrate.Load())
		if dt.target.Swap(l) != l {
			p.log.Debug("layer target", "track", dt.id, "rid", l.rid)
		}
		if dt.current.Load() != l {
			dt.pt.requestKeyframe(l)
		}
		if cur := dt.current.Load(); cur != nil && cur != dt.reportedLayer {
			dt.reportedLayer = cur
			if cur.rid != "" {
				p.enqueueEvent(Event{Type: EventLayerChanged, Room: p.room.id, Participant: dt.pt.owner.id,
					Track: dt.pt.info(), Layer: cur.rid, Time: time.Now()})
			}
		}
	}
}

// pick chooses dt's layer for a budget in bits/s.
func (dt *downTrack) pick(budget int, now int64) *layer {
	all := dt.pt.sortedLayers()
	if len(all) == 0 {
		return nil
	}
	// Layers that sent within the last second (a publisher may pause one).
	ls := make([]*layer, 0, len(all))
	for _, l := range all {
		if now-l.lastAt.Load() < int64(time.Second) {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		ls = all
	}
	maxW, maxH := int(dt.maxW.Load()), int(dt.maxH.Load())
	dt.prefMu.Lock()
	pref := dt.preferred
	dt.prefMu.Unlock()
	best := ls[0]
	for _, l := range ls[1:] {
		w, h := int(l.width.Load()), int(l.height.Load())
		if (maxW > 0 || maxH > 0) && w > 0 && (w > maxW || h > maxH) {
			break
		}
		if int(l.bitrate.Load()) > budget {
			break
		}
		best = l
		if pref != "" && l.rid == pref {
			break
		}
	}
	return best
}

// measure computes bit rates over the last dt seconds (housekeeping).
func (p *Participant) measure(dt float64) {
	if dt <= 0 {
		return
	}
	p.mu.Lock()
	ts := make([]*publishedTrack, 0, len(p.published))
	for _, t := range p.published {
		ts = append(ts, t)
	}
	ds := make([]*downTrack, 0, len(p.subs))
	for _, d := range p.subs {
		ds = append(ds, d)
	}
	p.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		ls := slices.Clone(t.layers)
		t.mu.Unlock()
		for _, l := range ls {
			b := l.bytes.Load()
			l.bitrate.Store(int64(float64(b-l.lastBytes) * 8 / dt))
			l.lastBytes = b
		}
	}
	for _, d := range ds {
		b := d.bytes.Load()
		d.bitrate.Store(int64(float64(b-d.lastBytes) * 8 / dt))
		d.lastBytes = b
	}
}

// speakerState is a room's active speaker detection, used by housekeeping only.
type speakerState struct {
	current   string
	candidate string
	since     time.Time
}

// detectSpeaker finds the loudest participant from the RFC 6464 audio levels of the last
// tick (smoothed), and makes it the active speaker once it has stayed the loudest for
// SpeakerHold. Silence (DTX, or levels under the threshold) keeps the last speaker.
func (r *room) detectSpeaker(ps []*Participant, now time.Time) {
	best, bestLoud := "", float64(DefaultSpeakerMinLevel)
	present := false
	for _, p := range ps {
		if p.id == r.speaker.current {
			present = true
		}
		p.mu.Lock()
		var ts []*publishedTrack
		for _, t := range p.published {
			if t.kind == Audio {
				ts = append(ts, t)
			}
		}
		p.mu.Unlock()
		for _, t := range ts {
			sum, n := t.levelSum.Swap(0), t.levelN.Swap(0)
			loud := 0.0
			if n > 0 {
				loud = float64(sum) / float64(n)
			}
			t.loudness = 0.5*t.loudness + 0.5*loud
			if !t.muted.Load() && t.loudness >= bestLoud {
				best, bestLoud = p.id, t.loudness
			}
		}
	}
	if !present {
		r.speaker.current = ""
	}
	switch {
	case best == "" || best == r.speaker.current:
		r.speaker.candidate = ""
	case best != r.speaker.candidate:
		r.speaker.candidate, r.speaker.since = best, now
	case now.Sub(r.speaker.since) >= r.s.cfg.SpeakerHold:
		r.speaker.current, r.speaker.candidate = best, ""
		r.mu.Lock()
		r.broadcast(Event{Type: EventActiveSpeaker, Participant: best, Time: now})
		r.mu.Unlock()
	}
}

// ActiveSpeaker returns the room's active speaker ("" before anyone spoke).
func (s *SFU) ActiveSpeaker(roomID string) string {
	s.mu.Lock()
	r := s.rooms[roomID]
	s.mu.Unlock()
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.speaker.current
}
