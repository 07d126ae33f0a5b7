package sfutest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Relay is a lossy UDP relay on loopback between clients and the SFU: it drops a seeded
// fraction of the RTP packets (not STUN, DTLS or RTCP) in both directions. A client uses it
// with Options.RewriteSDP = relay.RewriteSDP, which points the SFU's UDP candidate at the
// relay.
type Relay struct {
	conn   *net.UDPConn
	target *net.UDPAddr
	loss   float64

	rngMu sync.Mutex
	rng   *rand.Rand

	mu       sync.Mutex
	closed   bool
	upstream map[string]*net.UDPConn // by client address
	wg       sync.WaitGroup

	// Replay, when set, makes the relay send every RTP packet from a client to the SFU
	// twice: the second copy is a replayed SRTP packet.
	Replay atomic.Bool

	// DownRate, when above 0, polices the RTP from the SFU to the client at that many
	// bits/s (a token bucket of a quarter second): a narrow downlink.
	DownRate atomic.Int64
	bucket   float64
	bucketAt time.Time
	// DownQueue, when above 0 with DownRate, makes the relay shape instead of police: the
	// RTP and RTCP from the SFU wait in a queue drained at DownRate, and are dropped when
	// they would wait longer than DownQueue (nanoseconds): a router's queue, which delays
	// before it drops, as tc's htb does.
	DownQueue atomic.Int64
	queueFree time.Time // when the queue is empty

	// Delay, when above 0, holds every packet (in both directions) that long before
	// passing it on: a long path, in user space because the kernel may lack netem. It
	// applies to packets that arrive after it is set.
	Delay atomic.Int64 // nanoseconds

	// Dropped counts the RTP packets dropped, Replayed those sent twice, Relayed all
	// packets passed on.
	Dropped, Replayed, Relayed atomic.Int64

	up, down *delayLine
	lineWG   sync.WaitGroup
}

// delayLine passes packets on after a delay, in order, from one goroutine.
type delayLine struct {
	ch chan delayed
}

type delayed struct {
	due  time.Time
	b    []byte
	send func([]byte)
}

// maxDelayed bounds the packets held by a delay line; beyond it packets are dropped, as a
// full router queue drops them.
const maxDelayed = 4096

func newDelayLine(r *Relay) *delayLine {
	d := &delayLine{ch: make(chan delayed, maxDelayed)}
	r.lineWG.Add(1)
	go func() {
		defer r.lineWG.Done()
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		for p := range d.ch {
			if w := time.Until(p.due); w > 0 {
				t.Reset(w)
				<-t.C
			}
			p.send(p.b)
		}
	}()
	return d
}

// pass sends b now, or after the relay's delay and wait.
func (r *Relay) pass(line *delayLine, b []byte, wait time.Duration, send func([]byte)) {
	d := time.Duration(r.Delay.Load()) + wait
	if d <= 0 {
		send(b)
		return
	}
	select {
	case line.ch <- delayed{due: time.Now().Add(d), b: append([]byte(nil), b...), send: send}:
	default:
		r.Dropped.Add(1)
	}
}

// NewRelay relays to target (the SFU's UDP address), dropping loss (0..1) of the RTP
// packets as a PCG seeded with seed decides. It is closed at the test's end.
func NewRelay(tb testing.TB, target *net.UDPAddr, loss float64, seed uint64) *Relay {
	tb.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("relay: %v", err)
	}
	r := &Relay{conn: conn, target: target, loss: loss, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		upstream: map[string]*net.UDPConn{}}
	r.up, r.down = newDelayLine(r), newDelayLine(r)
	r.wg.Add(1)
	go r.fromClients()
	tb.Cleanup(r.Close)
	return r
}

// Addr is the address clients send to.
func (r *Relay) Addr() *net.UDPAddr { return r.conn.LocalAddr().(*net.UDPAddr) }

// RewriteSDP replaces the SFU's UDP candidate port with the relay's.
func (r *Relay) RewriteSDP(s string) string {
	return strings.ReplaceAll(s, fmt.Sprintf(" %s %d typ host", r.target.IP, r.target.Port),
		fmt.Sprintf(" %s %d typ host", r.Addr().IP, r.Addr().Port))
}

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.conn.Close()
	for _, u := range r.upstream {
		u.Close()
	}
	r.mu.Unlock()
	r.wg.Wait() // the readers; then the delay lines, which only they feed
	close(r.up.ch)
	close(r.down.ch)
	r.lineWG.Wait()
}

// drop decides whether to drop a packet: RTP only (RFC 7983: first byte 128–191, and not
// an RTCP packet type 192–223).
func (r *Relay) drop(b []byte) bool {
	if !isRTP(b) {
		return false
	}
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	if r.rng.Float64() < r.loss {
		r.Dropped.Add(1)
		return true
	}
	return false
}

func (r *Relay) fromClients() {
	defer r.wg.Done()
	buf := make([]byte, 1600)
	for {
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		u := r.upstream[from.String()]
		if u == nil && !r.closed {
			u, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, r.target)
			if err != nil {
				r.mu.Unlock()
				continue
			}
			r.upstream[from.String()] = u
			r.wg.Add(1)
			go r.fromSFU(u, from)
		}
		r.mu.Unlock()
		if u == nil || r.drop(buf[:n]) {
			continue
		}
		r.Relayed.Add(1)
		send := func(b []byte) { _, _ = u.Write(b) }
		r.pass(r.up, buf[:n], 0, send)
		if r.Replay.Load() && isRTP(buf[:n]) {
			r.Replayed.Add(1)
			r.pass(r.up, buf[:n], 0, send)
		}
	}
}

func (r *Relay) fromSFU(u *net.UDPConn, client *net.UDPAddr) {
	defer r.wg.Done()
	buf := make([]byte, 1600)
	for {
		n, err := u.Read(buf)
		if err != nil {
			return
		}
		if r.drop(buf[:n]) {
			continue
		}
		drop, wait := r.police(buf[:n])
		if drop {
			continue
		}
		r.Relayed.Add(1)
		r.pass(r.down, buf[:n], wait, func(b []byte) { _, _ = r.conn.WriteToUDP(b, client) })
	}
}

// isRTP tells RTP from STUN, DTLS and RTCP (RFC 7983, RFC 5761).
func isRTP(b []byte) bool {
	return len(b) >= 2 && b[0] >= 128 && b[0] <= 191 && (b[1] < 192 || b[1] > 223)
}

// police applies DownRate to a packet from the SFU: it drops it, or says how long it waits
// in the queue (DownQueue).
func (r *Relay) police(b []byte) (drop bool, wait time.Duration) {
	rate := float64(r.DownRate.Load())
	if rate <= 0 || len(b) < 2 || b[0] < 128 || b[0] > 191 { // neither RTP nor RTCP
		return false, 0
	}
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	now := time.Now()
	if q := time.Duration(r.DownQueue.Load()); q > 0 {
		start := r.queueFree
		if start.Before(now) {
			start = now
		}
		if start.Sub(now) > q {
			r.Dropped.Add(1)
			return true, 0
		}
		r.queueFree = start.Add(time.Duration(float64(len(b)*8) / rate * float64(time.Second)))
		return false, r.queueFree.Sub(now)
	}
	if !isRTP(b) {
		return false, 0
	}
	if !r.bucketAt.IsZero() {
		r.bucket = min(rate/4, r.bucket+now.Sub(r.bucketAt).Seconds()*rate)
	}
	r.bucketAt = now
	bits := float64(len(b) * 8)
	if r.bucket < bits {
		r.Dropped.Add(1)
		return true, 0
	}
	r.bucket -= bits
	return false, 0
}
