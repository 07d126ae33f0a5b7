package loginrelay

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"confab.dev/confab/internal/clocktest"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/throttle"
)

// countingDir counts the questions a Responder asks its Directory.
type countingDir struct {
	Directory
	calls atomic.Int64
}

func (d *countingDir) SCRAMCredentials(ctx context.Context, mech, user string) (scram.StoredCredentials, error) {
	d.calls.Add(1)
	return d.Directory.SCRAMCredentials(ctx, mech, user)
}

func (d *countingDir) CheckPlain(ctx context.Context, user, pass string) error {
	d.calls.Add(1)
	return d.Directory.CheckPlain(ctx, user, pass)
}

// throttled returns a fixture whose Responder throttles with account and source, counts its
// directory lookups and runs on a test clock.
func throttledFixture(t *testing.T, account, source throttle.Config) (*fixture, *countingDir, *clocktest.Clock) {
	f := newFixture(t, 0)
	dir := &countingDir{Directory: f.dir}
	clock := clocktest.New(time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC))
	f.resp.Dir = dir
	f.resp.Now = clock.Now
	f.resp.AccountThrottle = account
	f.resp.SourceThrottle = source
	return f, dir, clock
}

// login tries one login of user with pass from addr and returns the outcome as a string.
func login(t *testing.T, f *fixture, mech, user, pass, addr string) string {
	t.Helper()
	var r Reply
	if mech == MechPLAIN {
		var err error
		if _, r, err = f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00"+user+"\x00"+pass), addr, "tcp"); err != nil {
			t.Fatal(err)
		}
	} else {
		// scramLogin sends from 198.51.100.7.
		r, _ = scramLogin(t, f.client, mech, user, pass, true)
	}
	if r.Kind == KindSuccess {
		return "success"
	}
	return r.Condition + ": " + r.Text
}

const (
	wrongPass = "not-authorized: " + textInvalidCredentials
	blocked10 = "temporary-auth-failure: Too many failed login attempts; try again in 10 seconds"
)

// TestThrottleSameForUnknownAndExisting: a name that exists and one that does not are
// throttled identically, and a blocked login never reaches the Directory, so neither the
// answers nor their timing tell the two apart.
func TestThrottleSameForUnknownAndExisting(t *testing.T) {
	account := throttle.Config{MaxFailures: 3, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute}
	want := []string{wrongPass, wrongPass, wrongPass, blocked10, blocked10}
	for _, mech := range []string{MechPLAIN, MechSCRAMSHA256} {
		t.Run(mech, func(t *testing.T) {
			got := map[string][]string{}
			asked := map[string]int64{}
			for _, user := range []string{"alice", "mallory"} {
				f, dir, _ := throttledFixture(t, account, throttle.Config{Off: true})
				for range want {
					got[user] = append(got[user], login(t, f, mech, user, "guess", "198.51.100.7:4000"))
				}
				asked[user] = dir.calls.Load()
			}
			for user, outcomes := range got {
				if fmt.Sprint(outcomes) != fmt.Sprint(want) {
					t.Errorf("%s: outcomes\n %q\nwant\n %q", user, outcomes, want)
				}
			}
			if asked["alice"] != asked["mallory"] || asked["alice"] != 3 {
				t.Errorf("directory asked %d times for alice, %d for mallory; want 3 each (never while blocked)", asked["alice"], asked["mallory"])
			}
		})
	}
}

func TestThrottleBlockEndsAndSuccessClears(t *testing.T) {
	account := throttle.Config{MaxFailures: 3, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute}
	f, _, clock := throttledFixture(t, account, throttle.Config{Off: true})
	steps := []struct {
		advance    time.Duration
		user, pass string
		want       string
	}{
		{0, "alice", "x", wrongPass},
		{0, "ALICE", "x", wrongPass}, // names differing in case are one
		{0, "alice@example.com", "x", wrongPass},
		{0, "alice", "correct horse", blocked10}, // blocked: even the right password waits
		{0, "bob", "pa55wörd", "success"},        // other names are not affected
		{10 * time.Second, "alice", "correct horse", "success"},
		{0, "alice", "x", wrongPass}, // the success cleared the count
		{0, "alice", "x", wrongPass},
		{0, "alice", "correct horse", "success"},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := login(t, f, MechPLAIN, s.user, s.pass, "198.51.100.7:4000"); got != s.want {
			t.Fatalf("step %d (%s): %q, want %q", i, s.user, got, s.want)
		}
	}
}

func TestThrottleBySource(t *testing.T) {
	source := throttle.Config{MaxFailures: 3, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute}
	f, _, _ := throttledFixture(t, throttle.Config{Off: true}, source)
	const attacker = "[2001:db8:0:1::7]:5000"
	for _, user := range []string{"u1", "u2", "alice"} {
		if got := login(t, f, MechPLAIN, user, "guess", attacker); got != wrongPass {
			t.Fatalf("%s: %q, want %q", user, got, wrongPass)
		}
	}
	tests := []struct{ addr, want string }{
		{attacker, blocked10},
		{"[2001:db8:0:1::99]:6000", blocked10}, // the same /64
		{"[2001:db8:0:2::7]:5000", "success"},
		{"203.0.113.9:5000", "success"},
		{"", "success"}, // an XMPP server that relays no address is not throttled by address
	}
	for _, tt := range tests {
		if got := login(t, f, MechPLAIN, "alice", "correct horse", tt.addr); got != tt.want {
			t.Errorf("from %q: %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestThrottleSharedByCallBridges: the XMPP server's Client counts failures over every Call
// Bridge it relays to. Guessing spread round robin over two Call Bridges, each of which
// counts only its own share and would not block yet, is blocked at the XMPP server, which
// answers itself without asking either Call Bridge; the block ends on time; a login without
// an initial response is caught at its first message, and the Call Bridge that already
// answered it is told to drop the exchange.
func TestThrottleSharedByCallBridges(t *testing.T) {
	clock := clocktest.New(time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC))
	f := newFixture(t, 0)
	f.client.SetThrottle(throttle.Config{MaxFailures: 4, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute},
		throttle.Config{Off: true}, clock.Now)
	// Each Call Bridge would block a name only after 3 failures of its own.
	perBridge := throttle.Config{MaxFailures: 3, Window: time.Minute, Block: 10 * time.Second, MaxBlock: time.Minute}
	dir1, dir2 := &countingDir{Directory: f.dir}, &countingDir{Directory: f.dir}
	f.resp.Dir, f.resp.Now, f.resp.AccountThrottle, f.resp.SourceThrottle = dir1, clock.Now, perBridge, throttle.Config{Off: true}
	resp2 := &Responder{Domain: domain, Dir: dir2, Now: clock.Now, AccountThrottle: perBridge, SourceThrottle: throttle.Config{Off: true}}
	l2 := &pipeLink{t: t, jid: "cb2." + domain, client: f.client, resp: resp2}
	f.client.Attach(l2)

	const addr = "198.51.100.7:4000"
	var got []string
	for range 4 {
		got = append(got, login(t, f, MechPLAIN, "alice", "guess", addr))
	}
	for i, g := range got {
		if g != wrongPass {
			t.Fatalf("guess %d: %q, want %q (outcomes %q)", i, g, wrongPass, got)
		}
	}
	if a, b := dir1.calls.Load(), dir2.calls.Load(); a != 2 || b != 2 {
		t.Fatalf("directory calls %d and %d; want 2 on each Call Bridge (round robin)", a, b)
	}
	writes1, writes2 := len(f.bridge.written()), len(l2.written())

	for _, mech := range []string{MechPLAIN, MechSCRAMSHA256} {
		if g := login(t, f, mech, "alice", "correct horse", addr); g != blocked10 {
			t.Errorf("%s login after 4 failures over two Call Bridges: %q, want %q", mech, g, blocked10)
		}
	}
	if g := login(t, f, MechPLAIN, "ALICE@example.com", "correct horse", addr); g != blocked10 {
		t.Errorf("the same name in another form: %q, want %q", g, blocked10)
	}
	if w1, w2 := len(f.bridge.written()), len(l2.written()); w1 != writes1 || w2 != writes2 {
		t.Errorf("blocked logins reached the Call Bridges: %d and %d more writes", w1-writes1, w2-writes2)
	}
	if g := login(t, f, MechPLAIN, "bob", "pa55wörd", addr); g != "success" {
		t.Errorf("another name from the same address: %q, want success", g)
	}

	// SCRAM without an initial response: the name arrives with the second step.
	x, r, err := f.client.Begin(ctxT(t), MechSCRAMSHA256, nil, addr, "websocket")
	if err != nil || r.Kind != KindChallenge {
		t.Fatalf("Begin without initial response = %+v, %v; want an empty challenge", r, err)
	}
	before := len(x.Bridge().(*pipeLink).written())
	r, err = x.Respond(ctxT(t), []byte("n,,n=alice,r=abcdefghijklmnop"))
	if err != nil || r.Condition+": "+r.Text != blocked10 {
		t.Errorf("first message of a blocked name = %+v, %v; want %q", r, err, blocked10)
	}
	if w := x.Bridge().(*pipeLink).written(); len(w) != before+1 || !strings.Contains(w[len(w)-1], "<abort") {
		t.Errorf("after the block the Call Bridge got %q; want one abort", w[before:])
	}

	clock.Advance(10 * time.Second)
	if g := login(t, f, MechPLAIN, "alice", "correct horse", addr); g != "success" {
		t.Errorf("after the block: %q, want success", g)
	}
}

func TestSASLUsername(t *testing.T) {
	tests := []struct {
		mech, msg, want string
	}{
		{MechPLAIN, "\x00alice\x00pw", "alice"},
		{MechPLAIN, "admin\x00alice@example.com\x00pw", "alice"},
		{MechPLAIN, "\x00alice@example.org\x00pw", "alice@example.org"},
		{MechPLAIN, "alice\x00pw", ""},
		{MechSCRAMSHA256, "n,,n=alice,r=abc", "alice"},
		{MechSCRAMSHA1, "y,a=bob,n=b=2Co=3Db,r=abc", "b,o=b"},
		{MechSCRAMSHA256, "p=tls-exporter,,n=alice@example.com,r=x", "alice"},
		{MechSCRAMSHA256, "n,,r=abc", ""},
		{MechSCRAMSHA256, "garbage", ""},
		{"DIGEST-MD5", "\x00alice\x00pw", ""},
	}
	for _, tt := range tests {
		if got := saslUsername(tt.mech, []byte(tt.msg), domain); got != tt.want {
			t.Errorf("saslUsername(%s, %q) = %q, want %q", tt.mech, tt.msg, got, tt.want)
		}
	}
}
