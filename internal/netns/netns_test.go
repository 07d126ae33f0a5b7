package netns

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/testenv"
)

func need(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		testenv.Missing(t, err.Error())
	}
}

// pair makes two namespaces joined by a veth pair, 10.77.0.1 in a and 10.77.0.2 in b.
func pair(t *testing.T) (a, b *NS) {
	t.Helper()
	need(t)
	var err error
	if a, err = New("ta"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = New("tb"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := Veth(Link{NS: a, Dev: "va", Addr: "10.77.0.1/24"}, Link{NS: b, Dev: "vb", Addr: "10.77.0.2/24"}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// flow sends size-byte UDP datagrams from a socket in a to one in b for d (at most n), and
// returns how many were sent and received, and the bytes received per second of sending.
func flow(t *testing.T, a, b *NS, size, n int, d time.Duration, gap time.Duration) (sent, got int, bps float64) {
	t.Helper()
	var rx, tx *net.UDPConn
	if err := b.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 77, 0, 2)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := a.Do(func() (err error) {
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	type result struct {
		n           int
		first, last time.Time
	}
	done := make(chan result)
	go func() {
		buf := make([]byte, 2048)
		var r result
		for {
			_ = rx.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := rx.Read(buf); err != nil {
				done <- r
				return
			}
			r.last = time.Now()
			if r.n == 0 {
				r.first = r.last
			}
			r.n++
		}
	}()
	msg := make([]byte, size)
	start := time.Now()
	for sent < n && time.Since(start) < d {
		_, _ = tx.Write(msg) // a full queue may refuse a datagram: that is loss too
		sent++
		if gap > 0 {
			time.Sleep(gap) // pacing the sender, not synchronisation
		}
	}
	r := <-done
	if r.n > 1 {
		bps = float64((r.n-1)*size*8) / r.last.Sub(r.first).Seconds()
	}
	return sent, r.n, bps
}

// TestVethAndCommand: a veth pair joins two namespaces; a process started inside one sees
// its address; sockets opened with Do talk across the pair.
func TestVethAndCommand(t *testing.T) {
	a, b := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := a.Command(ctx, "ip", "-4", "-br", "addr").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr in %s: %v: %s", a.Name, err, out)
	}
	if !strings.Contains(string(out), "10.77.0.1") || strings.Contains(string(out), "eth0") {
		t.Errorf("inside %s: %s; want va with 10.77.0.1 and no host interface", a.Name, out)
	}
	sent, got, _ := flow(t, a, b, 200, 500, 5*time.Second, 100*time.Microsecond)
	if got != sent {
		t.Errorf("sent %d datagrams, received %d: want all on a clean link", sent, got)
	}
}

// TestBadLinks: tc and nftables make the link lossy and narrow, as asked.
func TestBadLinks(t *testing.T) {
	a, b := pair(t)
	tests := []struct {
		name           string
		setup          func() error
		undo           func() error
		lossLo, lossHi float64 // expected fraction lost
		maxBps         float64 // ceiling on the received rate (0: none)
	}{
		{"random loss 30%", func() error { return b.DropRandom(Drop{Percent: 30}) }, func() error {
			if n, err := b.Dropped(); err != nil || n == 0 {
				t.Errorf("Dropped() = %d, %v; want some", n, err)
			}
			return b.DropRandom()
		}, 0.2, 0.4, 0},
		{"tbf 1mbit", func() error { return a.Rate("va", "1mbit", 8000, 20*time.Millisecond) }, func() error { return a.Rate("va", "", 0, 0) }, 0.5, 1, 1.3e6},
		{"htb 1mbit", nil, func() error { return a.TC("qdisc", "del", "dev", "va", "root") }, 0, 1, 1.3e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup := tt.setup
			if setup == nil {
				setup = func() error { return a.Shape("va", Class{Rate: "1mbit"}) }
			}
			if err := setup(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := tt.undo(); err != nil {
					t.Error(err)
				}
			}()
			sent, got, bps := flow(t, a, b, 1000, 4000, time.Second, 100*time.Microsecond)
			loss := 1 - float64(got)/float64(sent)
			if loss < tt.lossLo || loss > tt.lossHi {
				t.Errorf("sent %d, received %d: loss %.2f, want %.2f–%.2f", sent, got, loss, tt.lossLo, tt.lossHi)
			}
			if tt.maxBps > 0 && bps > tt.maxBps {
				t.Errorf("received %.0f bit/s, want at most %.0f", bps, tt.maxBps)
			}
			t.Logf("sent %d, received %d (%.0f bit/s)", sent, got, bps)
		})
	}
}

// TestUnavailableIsTyped: without root, New says why with ErrUnavailable.
func TestUnavailableIsTyped(t *testing.T) {
	if err := Available(); err != nil && !errors.Is(err, ErrUnavailable) {
		t.Errorf("Available() = %v, want it to wrap ErrUnavailable", err)
	}
}
