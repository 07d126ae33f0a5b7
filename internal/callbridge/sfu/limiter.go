package sfu

import "sync"

// limiter is a participant's budget for the media it sends: two token buckets (packets and
// bits) holding one second of the rate each.
type limiter struct {
	mu            sync.Mutex
	pps, bps      float64
	packets, bits float64
	last          int64
}

func (l *limiter) init(pps, bps int) {
	l.pps, l.bps = float64(pps), float64(bps)
	l.packets, l.bits = l.pps, l.bps
}

// allow takes one packet of size bytes at now (unix ns) from the budget, or reports that
// it does not fit.
func (l *limiter) allow(now int64, size int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last != 0 && now > l.last {
		el := float64(now-l.last) / 1e9
		l.packets = min(l.pps, l.packets+el*l.pps)
		l.bits = min(l.bps, l.bits+el*l.bps)
	}
	l.last = now
	b := float64(size * 8)
	if l.packets < 1 || l.bits < b {
		return false
	}
	l.packets--
	l.bits -= b
	return true
}
