package meeting

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

var guestJID = regexp.MustCompile(`^guest[0-9]{8,}@example\.com$`)

func TestJoinAsGuest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sp := e.space(t, store.CoSpace{Name: "Demo space", CallID: "4242", Passcode: secret.New("1234")})
	open := e.space(t, store.CoSpace{Name: "No passcode", CallID: "777"})

	g, err := e.svc.JoinAsGuest(ctx, " 42 42 ", "1234", "  Ada\u0007  Lovelace ", "198.51.100.7:5000")
	if err != nil {
		t.Fatalf("JoinAsGuest: %v", err)
	}
	if !guestJID.MatchString(g.JID) {
		t.Errorf("guest JID %q, want guest<digits>@example.com", g.JID)
	}
	if want := sp.ID + "@" + cbJID; g.SpaceJID != want || g.SpaceName != "Demo space" || g.Name != "Ada Lovelace" {
		t.Errorf("grant = %+v, want space %s, name Demo space, display name Ada Lovelace", g, want)
	}
	if len(g.Password.Reveal()) < 20 {
		t.Errorf("password %d characters long, want a long random one", len(g.Password.Reveal()))
	}
	username := strings.TrimSuffix(g.JID, "@"+domain)
	if p, ok := e.svc.GuestPassword(username); !ok || p != g.Password {
		t.Errorf("GuestPassword(%s) = %v, %v; want the grant's password", username, ok, p == g.Password)
	}
	if p, ok := e.svc.GuestPassword(g.JID); !ok || p != g.Password {
		t.Errorf("GuestPassword(bare JID) = %v; want the password", ok)
	}
	if _, ok := e.svc.GuestPassword("guest0000000000"); ok {
		t.Error("GuestPassword of an unknown guest succeeded")
	}
	if strings.Contains(e.logs.String(), g.Password.Reveal()) {
		t.Error("the guest's password is in the log")
	}

	g2, err := e.svc.JoinAsGuest(ctx, "777", "", "", "198.51.100.7:5001")
	if err != nil || g2.Name != "Guest" || g2.SpaceJID != open.ID+"@"+cbJID || g2.JID == g.JID {
		t.Errorf("JoinAsGuest to a space without passcode = %+v, %v; want a second, distinct guest named Guest", g2, err)
	}
	if got := e.svc.Guests(); got != 2 {
		t.Errorf("Guests() = %d, want 2", got)
	}
}

func TestJoinAsGuestRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.space(t, store.CoSpace{Name: "Demo", CallID: "4242", Passcode: secret.New("1234")})
	tests := []struct {
		name             string
		callID, passcode string
		want             error
		log              string
	}{
		{"wrong passcode", "4242", "9999", ErrInvalidCallID, "wrong passcode"},
		{"empty passcode", "4242", "", ErrInvalidCallID, "wrong passcode"},
		{"unknown call ID", "5555", "1234", ErrInvalidCallID, "unknown call ID"},
		{"empty call ID", "", "", ErrInvalidCallID, "unknown call ID"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh source each time, so that the throttle stays out of it.
			addr := "203.0.113." + string(rune('1'+i)) + ":4000"
			_, err := e.svc.JoinAsGuest(ctx, tt.callID, tt.passcode, "Eve", addr)
			if !errors.Is(err, tt.want) {
				t.Fatalf("JoinAsGuest = %v, want %v", err, tt.want)
			}
			if err.Error() != ErrInvalidCallID.Error() {
				t.Errorf("error text %q: unknown call ID and wrong passcode must read the same", err)
			}
			if !strings.Contains(e.logs.String(), "guest join refused: "+tt.log) {
				t.Errorf("log lacks the refusal %q:\n%s", tt.log, e.logs)
			}
		})
	}
	if got := e.svc.Guests(); got != 0 {
		t.Errorf("Guests() = %d after refusals, want 0", got)
	}

	t.Run("link down", func(t *testing.T) {
		e.up.set(false)
		defer e.up.set(true)
		if _, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "Ada", "192.0.2.1:1"); !errors.Is(err, ErrNoCallBridge) {
			t.Errorf("JoinAsGuest with the link down = %v, want ErrNoCallBridge", err)
		}
	})
	t.Run("xmpp settings incomplete", func(t *testing.T) {
		if err := e.st.SetXMPPSettings(ctx, store.XMPPSettings{Domain: domain}); err != nil {
			t.Fatal(err)
		}
		defer e.st.SetXMPPSettings(ctx, store.XMPPSettings{UniqueName: "cb1", Domain: domain})
		if _, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "Ada", "192.0.2.1:1"); !errors.Is(err, ErrNoCallBridge) {
			t.Errorf("JoinAsGuest without a unique name = %v, want ErrNoCallBridge", err)
		}
	})
}

func TestJoinAsGuestThrottle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.space(t, store.CoSpace{Name: "Demo", CallID: "4242", Passcode: secret.New("1234")})
	const attacker = "198.51.100.9:1234"
	fail := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := e.svc.JoinAsGuest(ctx, "4242", "0000", "x", attacker); !errors.Is(err, ErrInvalidCallID) {
				t.Fatalf("failure %d: %v, want ErrInvalidCallID", i+1, err)
			}
			e.clock.Advance(time.Second)
		}
	}
	throttled := func(want time.Duration) {
		t.Helper()
		// Even the right passcode is refused while blocked.
		_, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "x", "198.51.100.9:999")
		var te *ThrottledError
		if !errors.As(err, &te) {
			t.Fatalf("JoinAsGuest while blocked = %v, want *ThrottledError", err)
		}
		if te.RetryAfter != want {
			t.Errorf("RetryAfter = %v, want %v", te.RetryAfter, want)
		}
	}

	fail(DefaultMaxFailures)
	e.clock.Advance(-time.Second) // the block started at the last failure
	throttled(DefaultBlock)
	if !strings.Contains(e.logs.String(), "too many failed attempts") {
		t.Errorf("the throttled refusal is not logged")
	}

	// Others are not affected.
	if _, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "x", "192.0.2.50:1"); err != nil {
		t.Errorf("another address while the attacker is blocked: %v", err)
	}
	// The same IPv6 /64 counts as one source.
	for i := 0; i < DefaultMaxFailures; i++ {
		e.svc.JoinAsGuest(ctx, "4242", "0000", "x", "[2001:db8:1:2::"+string(rune('a'+i))+"]:443")
	}
	if _, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "x", "[2001:db8:1:2:ffff::1]:443"); err == nil {
		t.Error("another address of a blocked IPv6 /64 was let through")
	}

	// After the block, the next round of failures blocks for twice as long.
	e.clock.Advance(DefaultBlock)
	fail(DefaultMaxFailures)
	e.clock.Advance(-time.Second)
	throttled(2 * DefaultBlock)
	e.clock.Advance(2 * DefaultBlock)
	fail(DefaultMaxFailures)
	e.clock.Advance(-time.Second)
	throttled(4 * DefaultBlock)

	// A success, once allowed, forgives.
	e.clock.Advance(4 * DefaultBlock)
	if _, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "x", attacker); err != nil {
		t.Fatalf("the right passcode after the block: %v", err)
	}
	fail(DefaultMaxFailures)
	e.clock.Advance(-time.Second)
	throttled(DefaultBlock)
}

func TestPendingGuestsBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.space(t, store.CoSpace{Name: "Demo", CallID: "4242"})
	for i := 0; i < maxPendingGuests; i++ {
		if _, err := e.svc.JoinAsGuest(ctx, "4242", "", "x", "192.0.2.1:1"); err != nil {
			t.Fatalf("guest %d: %v", i, err)
		}
		e.clock.Advance(time.Second)
	}
	_, err := e.svc.JoinAsGuest(ctx, "4242", "", "x", "192.0.2.1:1")
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != DefaultGuestTTL-maxPendingGuests*time.Second {
		t.Fatalf("guest %d from one source = %v, want ThrottledError until the oldest expires", maxPendingGuests+1, err)
	}
	if _, err := e.svc.JoinAsGuest(ctx, "4242", "", "x", "192.0.2.2:1"); err != nil {
		t.Errorf("another source: %v", err)
	}
	e.clock.Advance(te.RetryAfter)
	if _, err := e.svc.JoinAsGuest(ctx, "4242", "", "x", "192.0.2.1:1"); err != nil {
		t.Errorf("after the oldest expired: %v", err)
	}
}

func TestGuestExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.space(t, store.CoSpace{Name: "Demo", CallID: "4242"})
	join := func() string {
		t.Helper()
		g, err := e.svc.JoinAsGuest(ctx, "4242", "", "Ada", "192.0.2.1:1")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(g.JID, "@"+domain)
	}

	t.Run("not logged in within two minutes", func(t *testing.T) {
		u := join()
		e.clock.Advance(DefaultGuestTTL - time.Second)
		if _, ok := e.svc.GuestPassword(u); !ok {
			t.Fatal("the account expired early")
		}
		e.clock.Advance(time.Second)
		if _, ok := e.svc.GuestPassword(u); ok {
			t.Error("the account outlived its two minutes")
		}
		if !strings.Contains(e.logs.String(), "guest account removed") {
			t.Error("the expiry is not logged")
		}
	})
	t.Run("logged in: one-time password, no expiry", func(t *testing.T) {
		u := join()
		e.svc.LoginResult(u+"@"+domain, false, "not-authorized")
		if _, ok := e.svc.GuestPassword(u); !ok {
			t.Fatal("a failed login used up the password")
		}
		e.svc.LoginResult(u+"@"+domain, true, "")
		if _, ok := e.svc.GuestPassword(u); ok {
			t.Error("the password still works after a successful login")
		}
		e.clock.Advance(time.Hour)
		if e.svc.Guests() != 1 {
			t.Error("a logged-in guest account expired")
		}
		e.svc.SessionEnded(u+"@"+domain+"/web-1", "closed")
		if e.svc.Guests() != 0 {
			t.Error("the guest account outlived its session")
		}
	})
	t.Run("session end of another user", func(t *testing.T) {
		u := join()
		e.svc.SessionEnded("alice@example.com/x", "closed")
		if _, ok := e.svc.GuestPassword(u); !ok {
			t.Error("someone else's session end removed the guest")
		}
		e.svc.SessionEnded(u+"@"+domain+"/x", "timeout")
		if _, ok := e.svc.GuestPassword(u); ok {
			t.Error("the guest account outlived its session")
		}
	})
}

func TestIsGuestUsername(t *testing.T) {
	for s, want := range map[string]bool{
		"guest12345678": true, "GUEST0123456789": true, "guest1234567": false, "guest": false,
		"guest1234567a": false, "alice": false, "guests12345678": false,
	} {
		if got := IsGuestUsername(s); got != want {
			t.Errorf("IsGuestUsername(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"  Ada  ":                   "Ada",
		"Ada\n\tLovelace":           "Ada Lovelace",
		"A\u200bda":                 "Ada",
		"\x00\x01":                  "",
		strings.Repeat("é", 100):    strings.Repeat("é", MaxNameLength),
		"Grace \u202eHopper\u202c ": "Grace Hopper",
	} {
		if got := CleanName(in); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", in, got, want)
		}
	}
}
