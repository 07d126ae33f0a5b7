package throttle

import (
	"fmt"
	"testing"
	"time"

	"confab.dev/confab/internal/clocktest"
)

func newTest(cfg Config) (*Throttle, *clocktest.Clock) {
	c := clocktest.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	return New(cfg, Config{}, c.Now), c
}

func TestBlockAndDoubling(t *testing.T) {
	th, c := newTest(Config{MaxFailures: 3, Window: time.Minute, Block: 10 * time.Second, MaxBlock: 35 * time.Second})
	// step: advance the clock, then fail (or check), and the block expected afterwards.
	steps := []struct {
		advance   time.Duration
		fail      bool
		wantBlock time.Duration // from Fail, or Blocked when !fail
	}{
		{0, true, 0},
		{time.Second, true, 0},
		{time.Second, true, 10 * time.Second}, // third failure within the window: blocked
		{4 * time.Second, false, 6 * time.Second},
		{6 * time.Second, false, 0}, // the block is over
		{0, true, 0},
		{0, true, 0},
		{0, true, 20 * time.Second}, // second block: twice as long
		{20 * time.Second, true, 0},
		{0, true, 0},
		{0, true, 35 * time.Second}, // third: 40s, capped at MaxBlock
		{35 * time.Second, false, 0},
	}
	for i, s := range steps {
		c.Advance(s.advance)
		var got time.Duration
		if s.fail {
			got = th.Fail("k")
		} else {
			got = th.Blocked("k")
		}
		if got != s.wantBlock {
			t.Fatalf("step %d (fail=%v): got %s, want %s", i, s.fail, got, s.wantBlock)
		}
	}
	if d := th.Blocked("other"); d != 0 {
		t.Errorf("another key is blocked for %s", d)
	}
}

func TestWindowAndForgiveness(t *testing.T) {
	th, c := newTest(Config{MaxFailures: 3, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute})
	th.Fail("k")
	th.Fail("k")
	c.Advance(61 * time.Second) // those two fell out of the window
	if d := th.Fail("k"); d != 0 {
		t.Fatalf("blocked for %s by failures outside the window", d)
	}
	th.Fail("k")
	if d := th.Fail("k"); d != 10*time.Second {
		t.Fatalf("block = %s, want 10s", d)
	}
	// Quiet for MaxBlock after the block: the next block is a first one again.
	c.Advance(10*time.Second + time.Minute + time.Second)
	th.Fail("k")
	th.Fail("k")
	if d := th.Fail("k"); d != 10*time.Second {
		t.Errorf("block after a quiet period = %s, want 10s (forgiven)", d)
	}
	th.Reset("k")
	if d := th.Blocked("k"); d != 0 {
		t.Errorf("blocked for %s after Reset", d)
	}
}

func TestOffAndNil(t *testing.T) {
	var nilT *Throttle
	off, _ := newTest(Config{Off: true, MaxFailures: 1})
	for name, th := range map[string]*Throttle{"nil": nilT, "off": off} {
		for i := 0; i < 10; i++ {
			if d := th.Fail("k"); d != 0 {
				t.Errorf("%s: Fail blocked for %s", name, d)
			}
		}
		if d := th.Blocked("k"); d != 0 || th.Len() != 0 {
			t.Errorf("%s: Blocked = %s, Len = %d", name, d, th.Len())
		}
	}
}

func TestDefaults(t *testing.T) {
	th := New(Config{Block: time.Minute}, Config{MaxFailures: 7}, nil)
	want := Config{MaxFailures: 7, Window: 5 * time.Minute, Block: time.Minute, MaxBlock: 10 * time.Minute}
	if got := th.Config(); got != want {
		t.Errorf("config = %+v, want %+v", got, want)
	}
}

func TestBoundedMemory(t *testing.T) {
	th, _ := newTest(Config{MaxFailures: 2})
	th.maxKeys = 100
	th.Fail("victim")
	th.Fail("victim") // blocked: kept while unblocked keys can go
	for i := 0; i < 1000; i++ {
		th.Fail(fmt.Sprint("k", i))
	}
	if n := th.Len(); n > 100 {
		t.Errorf("%d keys remembered, want at most 100", n)
	}
	if th.Blocked("victim") == 0 {
		t.Error("the blocked key was evicted before unblocked ones")
	}
}

func TestSourceKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7:5222", "ip:192.0.2.7"},
		{"192.0.2.7", "ip:192.0.2.7"},
		{"[::ffff:192.0.2.7]:1", "ip:192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "ip:2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9%eth0]:443", "ip:2001:db8:1:2::/64"},
		{"pipe", "addr:pipe"},
	}
	for _, tt := range tests {
		if got := SourceKey(tt.addr); got != tt.want {
			t.Errorf("SourceKey(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestBlocksAndReset(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := New(Config{MaxFailures: 2, Block: time.Minute}, Config{}, func() time.Time { return clock })
	th.Fail("a")
	if got := th.Blocks(); len(got) != 0 {
		t.Fatalf("Blocks after one failure = %v, want none", got)
	}
	th.Fail("a")
	got := th.Blocks()
	if len(got) != 1 || got[0].Key != "a" || !got[0].Until.Equal(clock.Add(time.Minute)) {
		t.Fatalf("Blocks = %v, want a until %s", got, clock.Add(time.Minute))
	}
	th.Reset("a")
	if got := th.Blocks(); len(got) != 0 || th.Blocked("a") != 0 {
		t.Errorf("after Reset: Blocks = %v, Blocked = %s; want none", got, th.Blocked("a"))
	}
}
