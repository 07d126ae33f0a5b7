package meeting

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// TestSelfPing: a participant's ping to its own address is answered while the Call Bridge
// has it in the meeting, and refused with not-acceptable once it does not (it left, the
// meeting was reset as when the link is lost), or for someone else's address.
func TestSelfPing(t *testing.T) {
	e := newEnv(t)
	sp := e.space(t, store.CoSpace{Name: "Demo", CallID: "1", OwnerJID: "alice@example.com"})
	space := sp.ID + "@" + cbJID
	e.send(t, joinXML(aliceFull, space, "Alice"))
	alice := participantOf(t, expectOne(t, e.link, aliceFull, "alice joins"))
	ping := func(from, to string) (typ, condition string) {
		t.Helper()
		e.send(t, `<iq type="get" id="sp1" from="`+from+`" to="`+to+`"><ping xmlns="urn:confab:meeting:1"/></iq>`)
		r := expectOne(t, e.link, from, "ping to "+to)
		if r.Name.Local != "iq" || r.Get("id") != "sp1" || r.Get("from") != to {
			t.Fatalf("answer %s, want an iq sp1 from %s", r, to)
		}
		return r.Get("type"), errorCondition(r)
	}
	tests := []struct {
		name, from, to string
		reset          bool
		typ, condition string
	}{
		{"in the meeting", aliceFull, space + "/" + alice.ID, false, "result", ""},
		{"another participant's address", bobFull, space + "/" + alice.ID, false, "error", "not-acceptable"},
		{"an unknown participant id", aliceFull, space + "/nobody", false, "error", "not-acceptable"},
		{"after the meeting was reset", aliceFull, space + "/" + alice.ID, true, "error", "not-acceptable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reset {
				e.svc.Reset("the link to the XMPP server was lost")
			}
			typ, cond := ping(tt.from, tt.to)
			if typ != tt.typ || cond != tt.condition {
				t.Errorf("ping answered %s %q, want %s %q", typ, cond, tt.typ, tt.condition)
			}
		})
	}
}

// TestJoinNames: a user who names itself is shown with that name; one who gives none, with
// its account's name; a guest keeps the name it gave at the call ID.
func TestJoinNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.st.AddUser(ctx, store.User{JID: "alice@example.com", Name: "Alice Example", Kind: store.UserLocal}); err != nil {
		t.Fatal(err)
	}
	sp := e.space(t, store.CoSpace{Name: "Demo", CallID: "4242", NonMemberAccess: true})
	space := sp.ID + "@" + cbJID
	grant, err := e.svc.JoinAsGuest(ctx, "4242", "", "Ada", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ from, given, want string }{
		{aliceFull, "Alice at home", "Alice at home"},
		{"alice@example.com/web-9", "  ", "Alice Example"},
		{bobFull, "", "bob"},
		{grant.JID + "/web", "Someone else", "Ada"},
	}
	for _, tt := range tests {
		e.send(t, joinXML(tt.from, space, tt.given))
		got := e.link.take(tt.from)
		if len(got) == 0 {
			t.Fatalf("%s: no answer to the join", tt.from)
		}
		if p := participantOf(t, got[len(got)-1]); p.Name != tt.want {
			t.Errorf("%s joining as %q is shown as %q, want %q", tt.from, tt.given, p.Name, tt.want)
		}
		e.link.all()
	}
}

// TestSpacesPasscodeForOwner: the spaces list tells the owner the passcode, to invite others,
// and nobody else.
func TestSpacesPasscodeForOwner(t *testing.T) {
	e := newEnv(t)
	e.space(t, store.CoSpace{Name: "Mine", CallID: "1", Passcode: secret.New("2468"), OwnerJID: "alice@example.com", NonMemberAccess: true})
	for _, tt := range []struct{ from, want string }{{aliceFull, "2468"}, {bobFull, ""}} {
		e.send(t, `<iq type="get" id="s1" from="`+tt.from+`" to="`+cbJID+`"><spaces xmlns="urn:confab:meeting:1"/></iq>`)
		r := expectOne(t, e.link, tt.from, "spaces")
		var v struct {
			Spaces []struct {
				Passcode string `xml:"passcode,attr"`
			} `xml:"urn:confab:meeting:1 spaces>space"`
		}
		if err := r.Decode(&v); err != nil || len(v.Spaces) != 1 {
			t.Fatalf("%s: spaces %s (%v)", tt.from, r, err)
		}
		if v.Spaces[0].Passcode != tt.want {
			t.Errorf("%s is told passcode %q, want %q", tt.from, v.Spaces[0].Passcode, tt.want)
		}
	}
}

// TestRejoinGuest: the rejoin credential of a guest brings it back: with a new one-time
// password for the same account while the account lives, with a new account for the same
// space and name after the Call Bridge restarted (a new Service on the same store), and
// never after it expired, when the passcode changed, or when it was tampered with.
func TestRejoinGuest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sp := e.space(t, store.CoSpace{Name: "Demo", CallID: "4242", Passcode: secret.New("1234")})
	space := sp.ID + "@" + cbJID
	const addr = "192.0.2.1:1"
	g, err := e.svc.JoinAsGuest(ctx, "4242", "1234", "Ada", addr)
	if err != nil {
		t.Fatal(err)
	}
	if g.Rejoin.IsZero() || !g.RejoinExpires.Equal(e.clock.Now().Add(DefaultRejoinTTL).Truncate(time.Second)) {
		t.Fatalf("grant's rejoin credential %v until %v, want one for %v", !g.Rejoin.IsZero(), g.RejoinExpires, DefaultRejoinTTL)
	}
	if strings.Contains(g.Rejoin.Reveal(), "1234") || strings.Contains(e.logs.String(), g.Rejoin.Reveal()) {
		t.Error("the credential shows the passcode, or is in the log")
	}
	user := strings.TrimSuffix(g.JID, "@"+domain)
	e.svc.LoginResult(g.JID+"/web", true, "")
	e.send(t, joinXML(g.JID+"/web", space, ""))
	e.link.all()

	// Its session was lost for a moment: the same account, a new one-time password.
	e.clock.Advance(10 * time.Minute)
	r, err := e.svc.RejoinGuest(ctx, g.Rejoin.Reveal(), addr)
	if err != nil {
		t.Fatalf("RejoinGuest: %v", err)
	}
	if r.JID != g.JID || r.Name != "Ada" || r.SpaceJID != space || r.Password == g.Password || r.Password.IsZero() {
		t.Errorf("rejoin of a live account = %+v, want %s again with a new password", r, g.JID)
	}
	if p, ok := e.svc.GuestPassword(user); !ok || p != r.Password {
		t.Errorf("GuestPassword after the rejoin = %v; want the new password", ok)
	}
	e.svc.LoginResult(g.JID+"/web2", true, "")
	if _, ok := e.svc.GuestPassword(user); ok {
		t.Error("the new password works twice")
	}
	if !r.RejoinExpires.Equal(g.RejoinExpires) {
		t.Errorf("a rejoin moved the credential's end to %v, want %v", r.RejoinExpires, g.RejoinExpires)
	}

	// The Call Bridge restarts: a new Service on the same store knows no guests.
	restarted := New(Options{Store: e.st, Now: e.clock.Now, LinkUp: e.up.Up, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	r2, err := restarted.RejoinGuest(ctx, g.Rejoin.Reveal(), addr)
	if err != nil {
		t.Fatalf("RejoinGuest after a restart: %v", err)
	}
	if r2.JID == g.JID || !guestJID.MatchString(r2.JID) || r2.Name != "Ada" || r2.SpaceJID != space {
		t.Errorf("rejoin after a restart = %+v, want a new guest account named Ada in %s", r2, space)
	}
	if p, ok := restarted.GuestPassword(r2.JID); !ok || p != r2.Password {
		t.Error("the new account's password does not work")
	}
	// Its credential names the new account and ends when the first one does.
	if r2.Rejoin.IsZero() || r2.Rejoin == g.Rejoin || !r2.RejoinExpires.Equal(g.RejoinExpires) {
		t.Errorf("the new account's credential: %v until %v", !r2.Rejoin.IsZero(), r2.RejoinExpires)
	}
	r3, err := restarted.RejoinGuest(ctx, r2.Rejoin.Reveal(), addr)
	if err != nil || r3.JID != r2.JID {
		t.Errorf("rejoin with the new credential = %s, %v; want %s again", r3.JID, err, r2.JID)
	}

	refusals := []struct {
		name  string
		setup func(t *testing.T) string // returns the credential to try
		want  error
	}{
		{"tampered", func(*testing.T) string {
			tok := g.Rejoin.Reveal()
			return strings.Replace(tok, tok[3:4], string(rune(tok[3]^1)), 1)
		}, ErrRejoinInvalid},
		{"not a credential", func(*testing.T) string { return "hello" }, ErrRejoinInvalid},
		{"expired", func(*testing.T) string {
			// Issued two hours and a second ago.
			tok, _, err := e.svc.rejoinCredential(ctx, rejoinClaims{User: user, Space: sp.ID, Name: "Ada"}, "1234", e.clock.Now().Add(-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return tok.Reveal()
		}, ErrRejoinExpired},
		{"passcode changed", func(t *testing.T) string {
			if _, err := e.st.UpdateCoSpace(ctx, sp.ID, func(c *store.CoSpace) error { c.Passcode = secret.New("9999"); return nil }); err != nil {
				t.Fatal(err)
			}
			return g.Rejoin.Reveal()
		}, ErrRejoinChanged},
		{"space deleted", func(t *testing.T) string {
			if err := e.svc.DeleteSpace(ctx, sp.ID); err != nil {
				t.Fatal(err)
			}
			return g.Rejoin.Reveal()
		}, ErrRejoinChanged},
	}
	for i, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.setup(t)
			src := "203.0.113." + string(rune('1'+i)) + ":9"
			if _, err := restarted.RejoinGuest(ctx, tok, src); !errors.Is(err, tt.want) {
				t.Errorf("RejoinGuest = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestRejoinGuestThrottledAndLinkDown: wrong credentials count against the source as wrong
// passcodes do; with the link down there is no Call Bridge to rejoin.
func TestRejoinGuestThrottledAndLinkDown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.space(t, store.CoSpace{Name: "Demo", CallID: "4242"})
	g, err := e.svc.JoinAsGuest(ctx, "4242", "", "Ada", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	const attacker = "198.51.100.9:1"
	for i := 0; i < DefaultMaxFailures; i++ {
		if _, err := e.svc.RejoinGuest(ctx, "forged.credential", attacker); !errors.Is(err, ErrRejoinInvalid) {
			t.Fatalf("attempt %d: %v, want ErrRejoinInvalid", i, err)
		}
	}
	var te *ThrottledError
	if _, err := e.svc.RejoinGuest(ctx, g.Rejoin.Reveal(), attacker); !errors.As(err, &te) {
		t.Errorf("after %d forgeries: %v, want a *ThrottledError even for a good credential", DefaultMaxFailures, err)
	}
	if _, err := e.svc.JoinAsGuest(ctx, "4242", "", "Eve", attacker); !errors.As(err, &te) {
		t.Errorf("a guest join from the throttled source: %v, want a *ThrottledError", err)
	}
	e.up.set(false)
	if _, err := e.svc.RejoinGuest(ctx, g.Rejoin.Reveal(), "192.0.2.1:1"); !errors.Is(err, ErrNoCallBridge) {
		t.Errorf("with the link down: %v, want ErrNoCallBridge", err)
	}
}
