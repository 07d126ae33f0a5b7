package sfu

import (
	"sync"
	"sync/atomic"

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

// nackBudget is one subscriber's (one PeerConnection's) budget. Two interceptors share it:
// nackCounter, outside pion's NACK responder, counts the packets sent (not the
// retransmissions, which the responder writes further in); nackFilter, inside the
// responder, trims the NACKs read before the responder acts on them.
type nackBudget struct {
	sent    atomic.Uint64
	dropped atomic.Uint64 // NACKed packets not retransmitted for want of budget

	mu       sync.Mutex
	tokens   float64
	lastSent uint64
}

func newNACKBudget() *nackBudget { return &nackBudget{tokens: nackBurst} }

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

func (c *nackCounter) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		c.b.sent.Add(1)
		return w.Write(h, payload, a)
	})
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
			for _, pair := range nack.Nacks {
				seqs = append(seqs, pair.PacketList()...)
			}
			granted := f.b.take(len(seqs))
			if granted == len(seqs) {
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
