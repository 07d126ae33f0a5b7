package xmppd_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/testenv"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

func isPresence(typ, from string) func(*stream.Element) bool {
	return func(e *stream.Element) bool {
		return e.Name.Local == "presence" && e.Get("type") == typ && e.Get("from") == from
	}
}

// TestRosterAndSubscriptions: RFC 6121 between two users of the server. A roster set is
// stored and pushed (before: service-unavailable); a subscription request reaches the
// contact, its approval updates both rosters, and each then sees the other's presence,
// including changes and going offline. Before, presence went nowhere: clients showed every
// contact offline.
func TestRosterAndSubscriptions(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	alice := h.Login(t, "alice")
	bob := h.Login(t, "bob")
	alice.Send(t, `<presence/>`)
	bob.Send(t, `<presence/>`)

	alice.Send(t, `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="bob@example.com" name="Bob"><group>Friends</group></item></query></iq>`)
	if e := alice.Expect(t, "the roster set's result", xmppdtest.IsKind("iq", "r1")); e.Get("type") != "result" {
		t.Fatalf("roster set answered %s", e)
	}
	alice.Expect(t, "the roster push", func(e *stream.Element) bool {
		return e.Name.Local == "iq" && e.Get("type") == "set" && strings.Contains(string(e.Inner), `name="Bob"`)
	})

	// alice asks, bob approves; bob asks, alice approves.
	alice.Send(t, `<presence type="subscribe" to="bob@example.com"/>`)
	bob.Expect(t, "alice's request", isPresence("subscribe", "alice@example.com"))
	bob.Send(t, `<presence type="subscribed" to="alice@example.com"/>`)
	alice.Expect(t, "bob's approval", isPresence("subscribed", "bob@example.com"))
	alice.Expect(t, "bob's presence", isPresence("", bob.JID))
	bob.Send(t, `<presence type="subscribe" to="alice@example.com"/>`)
	alice.Expect(t, "bob's request", isPresence("subscribe", "bob@example.com"))
	alice.Send(t, `<presence type="subscribed" to="bob@example.com"/>`)
	bob.Expect(t, "alice's presence", isPresence("", alice.JID))

	alice.Send(t, `<iq type="get" id="r2"><query xmlns="jabber:iq:roster"/></iq>`)
	r := alice.Expect(t, "the roster", xmppdtest.IsKind("iq", "r2"))
	if in := string(r.Inner); !strings.Contains(in, `jid="bob@example.com"`) || !strings.Contains(in, `subscription="both"`) || !strings.Contains(in, `name="Bob"`) || !strings.Contains(in, "<group>Friends</group>") {
		t.Errorf("alice's roster = %s, want bob, both, Bob, Friends", r)
	}

	alice.Send(t, `<presence><show>away</show></presence>`)
	if p := bob.Expect(t, "alice away", isPresence("", alice.JID)); !strings.Contains(string(p.Inner), "away") {
		t.Errorf("bob got %s, want alice away", p)
	}
	// A new session of bob's is told who is online.
	bob2 := h.Login(t, "bob")
	bob2.Send(t, `<presence/>`)
	bob2.Expect(t, "alice's presence at bob's new session", isPresence("", alice.JID))
	alice.Close()
	bob.Expect(t, "alice gone", isPresence("unavailable", alice.JID))
}

// TestInteropSlixmppRoster: two slixmpp clients (python3-slixmpp), as Gajim-like clients do:
// each adds the other to its roster (a roster set, stored), subscribes, approves the other's
// request, and sees the other online.
func TestInteropSlixmppRoster(t *testing.T) {
	python := testenv.File(t, "/usr/bin/python3", "python3 (Debian package python3)")
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		testenv.Missing(t, "slixmpp (Debian package python3-slixmpp)")
	}
	h := xmppdtest.Start(t, xmppdtest.Options{})
	_, port, _ := strings.Cut(h.C2SAddr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	steps, wait := runPeer(t, ctx, python, "testdata/slixmpp_roster.py",
		"--domain", h.Domain, "--alice", h.Users["alice"], "--bob", h.Users["bob"], "--port", port, "--ca", h.CAFile)
	for _, want := range []string{"roster-set", "alice-sees-bob", "bob-sees-alice", "subscriptions", "stored"} {
		s := expectStep(t, steps, wait, want)
		t.Logf("slixmpp: %+v", s)
	}
	for range steps {
	}
	if err, stderr := wait(); err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, stderr)
	}
}
