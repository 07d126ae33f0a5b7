package sfu

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Layer choice hysteresis. Without it a subscriber whose estimate sat near a layer's rate
// switched on every tick: the switch's key frame (four times a delta frame) raised the new
// layer's measured rate over the budget, the next tick switched back, and so on (the bad
// network test saw 28 switches in 17 s and a key frame request on every one).
const (
	// upMargin: a higher layer is taken only if it fits the budget with this much to spare.
	upMargin = 0.15
	// upHoldBase: ... and only after it has fitted so for this long. A lower layer is taken
	// at once, when the one forwarded no longer fits.
	upHoldBase = 3 * time.Second
	// upHoldMax and upFailWindow: a switch down within upFailWindow of a switch up (the
	// higher layer did not fit after all) doubles the hold, up to upHoldMax; a switch down
	// later resets it.
	upHoldMax    = 48 * time.Second
	upFailWindow = 10 * time.Second
	// rateWeight is the weight of the last tick in a layer's smoothed bit rate (about a
	// second's memory at 200 ms ticks), so that a key frame's burst does not count as the
	// layer's rate.
	rateWeight = 0.25
)

// chooseLayers picks, for each video track the participant receives, the simulcast layer
// to forward: the best layer that fits the size the subscriber renders (SetMaxResolution),
// not above its preferred layer (SetPreferredLayer), and within the bandwidth estimate
// (GCC over transport-cc feedback, capped by SetMaxBitrate) left after audio and the
// tracks before it (screen shares first). When nothing fits, the lowest layer. A layer
// that no longer fits is left at once; a higher one is taken when the size or preference
// allows it, or when the bandwidth has allowed it with a margin for a while (see choose).
// A changed choice asks the publisher for a key frame on the new layer, again every tick
// (at most one per Config.KeyframeMinGap per layer) until the switch happens on one.
func (p *Participant) chooseLayers() {
	p.layerMu.Lock()
	defer p.layerMu.Unlock()
	est, err := p.estimate()
	budget := est
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
		l := dt.choose(budget, now)
		if l == nil {
			continue
		}
		budget -= int(l.avgRate.Load())
		if prev := dt.target.Swap(l); prev != l {
			dt.targetAt = now
			p.log.Debug("layer target", "track", dt.id, "rid", l.rid, "from", ridOf(prev), "estimate", est,
				"rate", l.avgRate.Load(), "hold", dt.upHold)
		}
		cur := dt.current.Load()
		if cur != l || dt.awaitingKeyframe() && !p.deliveryMute[Video.index()].Load() {
			// Until the key frame comes: the one asked for when forwarding resumed (an
			// unmute, SetDeliveryMute) may be lost, and nothing else would ask again.
			dt.pt.requestKeyframe(l)
		}
		if cur != nil && cur != dt.reportedLayer {
			if cur == l && dt.targetAt != 0 {
				p.log.Debug("layer switched", "track", dt.id, "rid", cur.rid, "after", time.Duration(now-dt.targetAt))
			}
			dt.reportedLayer = cur
			if cur.rid != "" {
				p.enqueueEvent(Event{Type: EventLayerChanged, Room: p.room.id, Participant: dt.pt.owner.id,
					Track: dt.pt.info(), Layer: cur.rid, Time: time.Now()})
			}
		}
	}
}

func ridOf(l *layer) string {
	if l == nil {
		return ""
	}
	return l.rid
}

// choose picks dt's layer for a budget in bits/s, from the layers that sent within the
// last second (a publisher may pause one), with hysteresis: down at once when the layer
// forwarded no longer fits the budget; up at once when the size or preference allowed
// no more before; up for bandwidth only once a higher layer has fitted the budget with
// upMargin to spare for the hold (upHoldBase, doubled by each failed attempt). p.layerMu
// held.
func (dt *downTrack) choose(budget int, now int64) *layer {
	all := dt.pt.sortedLayers()
	if len(all) == 0 {
		return nil
	}
	ls := make([]*layer, 0, len(all))
	for _, l := range all {
		if now-l.lastAt.Load() < int64(time.Second) {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		ls = all
	}
	if dt.upHold == 0 {
		dt.upHold = upHoldBase
	}
	cur := dt.target.Load()
	ci := slices.Index(ls, cur)
	fit := dt.best(ls, budget)
	fi := slices.Index(ls, fit)
	next := fit
	switch {
	case ci < 0: // the first choice, or the layer forwarded has stopped
		dt.upSince = 0
	case fi < ci: // it no longer fits: down at once
		if dt.lastUpAt != 0 && now-dt.lastUpAt < int64(upFailWindow) {
			dt.upHold = min(2*dt.upHold, upHoldMax)
		} else {
			dt.upHold = upHoldBase
		}
		dt.lastUpAt, dt.upSince = 0, 0
	case fi == ci:
		dt.upSince = 0
	default: // a higher layer fits
		up := dt.best(ls, int(float64(budget)/(1+upMargin)))
		ui := slices.Index(ls, up)
		switch {
		case ui <= ci: // but not with the margin
			next, dt.upSince = cur, 0
		case !dt.limited: // the size or preference held it, not the bandwidth
			dt.upSince = 0
			next = up
		default:
			if dt.upSince == 0 {
				dt.upSince = now
			}
			if now-dt.upSince < int64(dt.upHold) {
				next = cur
			} else {
				next, dt.upSince, dt.lastUpAt = up, 0, now
			}
		}
	}
	dt.limited = slices.Index(ls, next) < slices.Index(ls, dt.best(ls, math.MaxInt))
	return next
}

// best is the best of ls (sorted from the lowest layer) that fits the size the subscriber
// renders, its preference and budget (by the layers' smoothed rates); the lowest when none
// does.
func (dt *downTrack) best(ls []*layer, budget int) *layer {
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
		if int(l.avgRate.Load()) > budget {
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
			r := int64(float64(b-l.lastBytes) * 8 / dt)
			l.bitrate.Store(r)
			l.lastBytes = b
			if avg := l.avgRate.Load(); avg == 0 {
				l.avgRate.Store(r)
			} else {
				l.avgRate.Store(avg + int64(rateWeight*float64(r-avg)))
			}
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
