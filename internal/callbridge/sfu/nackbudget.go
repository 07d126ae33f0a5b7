package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Retransmissions are bounded per subscriber: pion's NACK responder answers every NACK (on a
// goroutine of its own), and a subscriber that falls behind — a slow machine, a lossy link —
// NACKs more as it falls further, so the retransmissions crowd out the media and the
// meeting collapses (seen at 25 participants on two cores: 75 % of the SFU's CPU in
// retransmissions, media a minute late). A subscriber may ask for retransmissions up to
// nackShare of the packets it was sent, with a burst of nackBurst; NACKed sequence numbers
// past that are dropped from its NACKs before the responder sees them, and counted.
const (
	nackShare = 0.2
	nackBurst = 200
)

// nackMaxAge: a packet sent longer ago than this is not retransmitted, and a NACK of it
// costs no budget. No player waits that long for a packet (WebRTC jitter buffers hold well
// under a second), and a client may keep asking long after it could use one: pion's NACK
// generator asks again every 100 ms for every packet missing from its last 512. A
// subscriber that lost hundreds of packets while its estimate came down (the high layer
// on a 500 kbit/s link) went on NACKing them for seconds: 7 000 NACKed packets in 10 s
// beyond the budget, starving the repair of its new losses.
const nackMaxAge = time.Second

// nackBudget is one subscriber's (one PeerConnection's) budget. Two interceptors share it:
// nackCounter, outside pion's NACK responder, counts the packets sent (not the
// retransmissions, which the responder writes further in); nackFilter, inside the
// responder, trims the NACKs read before the responder acts on them.
type nackBudget struct {
	sent    atomic.Uint64
	dropped atomic.Uint64 // NACKed packets not retransmitted for want of budget
	stale   atomic.Uint64 // NACKed packets not retransmitted: older than nackMaxAge

	mu       sync.Mutex
	tokens   float64
	lastSent uint64

	logsMu sync.RWMutex
	logs   map[uint32]*sentLog // by SSRC
}

func newNACKBudget() *nackBudget {
	return &nackBudget{tokens: nackBurst, logs: map[uint32]*sentLog{}}
}

// sentLog is when each of a stream's last nackHistory packets was sent: entries of the
// sequence number (high 16 bits) and the milliseconds since base (the rest), written per
// packet without locks.
type sentLog struct {
	base time.Time
	ring [nackHistory]atomic.Uint64
}

func (l *sentLog) record(seq uint16, now time.Time) {
	l.ring[int(seq)%nackHistory].Store(uint64(seq)<<48 | uint64(now.Sub(l.base).Milliseconds())&(1<<48-1))
}

// fresh reports whether seq was among the last nackHistory packets sent, within maxAge.
func (l *sentLog) fresh(seq uint16, now time.Time, maxAge time.Duration) bool {
	e := l.ring[int(seq)%nackHistory].Load()
	if e == 0 || uint16(e>>48) != seq {
		return false
	}
	sent := l.base.Add(time.Duration(e&(1<<48-1)) * time.Millisecond)
	return now.Sub(sent) <= maxAge
}

func (b *nackBudget) log(ssrc uint32) *sentLog {
	b.logsMu.RLock()
	defer b.logsMu.RUnlock()
	return b.logs[ssrc]
}

// take grants up to want retransmissions and returns how many.
func (b *nackBudget) take(want int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	sent := b.sent.Load()
	b.tokens = min(b.tokens+nackShare*float64(sent-b.lastSent), nackBurst)
	b.lastSent = sent
	n := min(want, int(b.tokens))
	b.tokens -= float64(n)
	return n
}

// nackCounter counts the RTP packets written to the subscriber.
type nackCounter struct {
	interceptor.NoOp
	b *nackBudget
}

func (c *nackCounter) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	l := &sentLog{base: time.Now()}
	c.b.logsMu.Lock()
	c.b.logs[info.SSRC] = l
	c.b.logsMu.Unlock()
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		c.b.sent.Add(1)
		if h.SSRC == ssrc {
			l.record(h.SequenceNumber, time.Now())
		}
		return w.Write(h, payload, a)
	})
}

func (c *nackCounter) UnbindLocalStream(info *interceptor.StreamInfo) {
	c.b.logsMu.Lock()
	delete(c.b.logs, info.SSRC)
	c.b.logsMu.Unlock()
}

// nackFilter trims the subscriber's NACKs to its budget.
type nackFilter struct {
	interceptor.NoOp
	b *nackBudget
}

func (f *nackFilter) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, again, err := f.read(r, buf, a)
			if !again {
				return n, attr, err
			}
		}
	})
}

// read reads one compound packet and trims its NACKs; again is set when nothing was left of
// it (it consisted of NACKs beyond the budget), so that the caller reads the next.
func (f *nackFilter) read(r interceptor.RTCPReader, buf []byte, a interceptor.Attributes) (int, interceptor.Attributes, bool, error) {
	{
		n, attr, err := r.Read(buf, a)
		if err != nil || n == 0 || !hasNACK(buf[:n]) {
			return n, attr, false, err
		}
		pkts, perr := rtcp.Unmarshal(buf[:n])
		if perr != nil {
			return n, attr, false, err // the responder reports what it cannot parse
		}
		changed := false
		out := pkts[:0]
		for _, p := range pkts {
			nack, ok := p.(*rtcp.TransportLayerNack)
			if !ok {
				out = append(out, p)
				continue
			}
			var seqs []uint16
			stale := 0
			l, now := f.b.log(nack.MediaSSRC), time.Now()
			for _, pair := range nack.Nacks {
				for _, seq := range pair.PacketList() {
					if l != nil && !l.fresh(seq, now, nackMaxAge) {
						stale++
						continue
					}
					seqs = append(seqs, seq)
				}
			}
			f.b.stale.Add(uint64(stale))
			granted := f.b.take(len(seqs))
			if granted == len(seqs) && stale == 0 {
				out = append(out, p)
				continue
			}
			changed = true
			f.b.dropped.Add(uint64(len(seqs) - granted))
			if granted > 0 {
				// The newest are worth most: the oldest may be past use already.
				nack.Nacks = rtcp.NackPairsFromSequenceNumbers(seqs[len(seqs)-granted:])
				out = append(out, nack)
			}
		}
		if !changed {
			return n, attr, false, err
		}
		if len(out) == 0 {
			return 0, nil, true, nil // nothing left of this compound packet: read the next
		}
		b, merr := rtcp.Marshal(out)
		if merr != nil || len(b) > len(buf) {
			return n, attr, false, err
		}
		// Fresh attributes: an inner reader's parse of the untrimmed packet must not reach
		// the responder.
		return copy(buf, b), nil, false, err
	}
}

// hasNACK reports whether a compound RTCP packet holds a generic NACK (RTPFB, FMT 1)
// without parsing it all.
func hasNACK(b []byte) bool {
	for len(b) >= 4 {
		l := (int(b[2])<<8 | int(b[3]) + 1) * 4
		if l > len(b) {
			return false
		}
		if b[1] == 205 && b[0]&0x1f == 1 {
			return true
		}
		b = b[l:]
	}
	return false
}

// factory returns an interceptor factory that always yields it: the registry of each
// PeerConnection is its own (see newPeerConnection).
type fixedFactory struct{ i interceptor.Interceptor }

func (f fixedFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.i, nil }
