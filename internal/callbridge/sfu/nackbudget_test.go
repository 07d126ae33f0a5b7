package sfu

import (
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// rtcpFeed is an RTCP reader that returns its packets one compound packet at a time.
type rtcpFeed struct{ packets [][]rtcp.Packet }

func (f *rtcpFeed) Read(b []byte, _ interceptor.Attributes) (int, interceptor.Attributes, error) {
	p := f.packets[0]
	f.packets = f.packets[1:]
	raw, err := rtcp.Marshal(p)
	if err != nil {
		return 0, nil, err
	}
	return copy(b, raw), nil, nil
}

func nackOf(seqs ...uint16) *rtcp.TransportLayerNack {
	return &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
}

func seqsOf(t *testing.T, b []byte) []uint16 {
	t.Helper()
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint16
	for _, p := range pkts {
		if n, ok := p.(*rtcp.TransportLayerNack); ok {
			for _, pair := range n.Nacks {
				out = append(out, pair.PacketList()...)
			}
		}
	}
	return out
}

// TestNACKBudget: a subscriber may have up to nackShare of what it was sent retransmitted,
// with a burst of nackBurst; the NACKs past that are trimmed (newest kept) before pion's
// responder reads them, a NACK with nothing left is skipped, and other RTCP passes.
func TestNACKBudget(t *testing.T) {
	b := newNACKBudget()
	many := make([]uint16, nackBurst+50)
	for i := range many {
		many[i] = uint16(1000 + i)
	}
	feed := &rtcpFeed{packets: [][]rtcp.Packet{
		{nackOf(many...)},
		{nackOf(7), &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}},
		{nackOf(8)},
	}}
	r := (&nackFilter{b: b}).BindRTCPReader(feed)
	buf := make([]byte, 1500)

	n, _, err := r.Read(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := seqsOf(t, buf[:n])
	if len(got) != nackBurst || got[0] != many[50] || got[len(got)-1] != many[len(many)-1] {
		t.Errorf("first NACK of %d packets let %d through (%d…%d), want the newest %d", len(many), len(got), got[0], got[len(got)-1], nackBurst)
	}
	if d := b.dropped.Load(); d != 50 {
		t.Errorf("dropped %d, want 50", d)
	}
	// The budget is spent: the NACK of 7 goes, the PLI beside it stays.
	n, _, err = r.Read(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	pkts, _ := rtcp.Unmarshal(buf[:n])
	if len(pkts) != 1 {
		t.Fatalf("second read: %v, want only the PLI", pkts)
	}
	if _, ok := pkts[0].(*rtcp.PictureLossIndication); !ok {
		t.Errorf("second read: %T, want the PLI", pkts[0])
	}
	// Media sent refills it: 10 packets sent are 2 retransmissions.
	b.sent.Add(10)
	n, _, _ = r.Read(buf, nil)
	if got := seqsOf(t, buf[:n]); len(got) != 1 || got[0] != 8 {
		t.Errorf("after 10 packets sent: NACK %v, want [8]", got)
	}
}

func TestHasNACK(t *testing.T) {
	for _, tt := range []struct {
		p    []rtcp.Packet
		want bool
	}{
		{[]rtcp.Packet{nackOf(1)}, true},
		{[]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, nackOf(1)}, true},
		{[]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, &rtcp.PictureLossIndication{MediaSSRC: 1}}, false},
	} {
		b, err := rtcp.Marshal(tt.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := hasNACK(b); got != tt.want {
			t.Errorf("hasNACK(%v) = %v", tt.p, got)
		}
	}
	if hasNACK([]byte{0x81, 205, 0xff, 0xff}) {
		t.Error("a truncated packet is not a NACK")
	}
}

// TestNACKStale: NACKs of packets sent over nackMaxAge ago, or not among the last
// nackHistory sent, or of an SSRC never sent, are dropped and cost no budget; NACKs of
// streams the budget does not know pass.
func TestNACKStale(t *testing.T) {
	b := newNACKBudget()
	now := time.Now()
	l := &sentLog{base: now.Add(-time.Minute)}
	b.logs[2] = l
	l.record(7, now.Add(-2*time.Second))
	l.record(8, now)
	l.record(9+nackHistory, now) // 9's slot, taken by a newer packet
	feed := &rtcpFeed{packets: [][]rtcp.Packet{
		{nackOf(7, 8, 9, 10)},
		{&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 3, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{5})}},
	}}
	r := (&nackFilter{b: b}).BindRTCPReader(feed)
	buf := make([]byte, 1500)
	n, _, err := r.Read(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(t, buf[:n]); len(got) != 1 || got[0] != 8 {
		t.Errorf("NACK of 7, 8, 9, 10 let %v through, want [8]", got)
	}
	if s, d := b.stale.Load(), b.dropped.Load(); s != 3 || d != 0 {
		t.Errorf("stale %d, denied %d; want 3 and 0", s, d)
	}
	if b.tokens != nackBurst-1 {
		t.Errorf("budget %v left, want %d", b.tokens, nackBurst-1)
	}
	n, _, _ = r.Read(buf, nil)
	if got := seqsOf(t, buf[:n]); len(got) != 1 || got[0] != 5 {
		t.Errorf("NACK of an unknown stream: %v through, want [5]", got)
	}
}
