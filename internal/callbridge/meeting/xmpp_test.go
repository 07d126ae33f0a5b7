package meeting_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// directory is the test Call Bridge's user directory: the harness's users, and the guest
// accounts of a meeting.Service (PLAIN only, as they have no stored SCRAM keys).
type directory struct {
	*loginrelay.MemoryDirectory
	svc *meeting.Service
}

func (d directory) SCRAMCredentials(ctx context.Context, mech, username string) (scram.StoredCredentials, error) {
	if _, ok := d.svc.GuestPassword(username); ok {
		return scram.StoredCredentials{}, loginrelay.ErrNoSCRAM
	}
	return d.MemoryDirectory.SCRAMCredentials(ctx, mech, username)
}

func (d directory) CheckPlain(ctx context.Context, username, password string) error {
	if p, ok := d.svc.GuestPassword(username); ok {
		if p.Reveal() != password {
			return loginrelay.ErrBadPassword
		}
		return nil
	}
	return d.MemoryDirectory.CheckPlain(ctx, username, password)
}

// callBridge connects a component to the harness's XMPP server and serves it as the Call
// Bridge does: login relay first, pings, then the meetings.
func callBridge(t *testing.T, h *xmppdtest.Harness, svc *meeting.Service) {
	t.Helper()
	s, ok := h.Registry.Lookup(xmppdtest.DefaultCallBridge)
	if !ok {
		t.Fatal("cb1 is not in the registry")
	}
	conn, err := h.DialComponent(context.Background(), "cb1."+h.Domain, s, xmppdtest.DialOptions{ClientCert: &h.ClientCert.Cert})
	if err != nil {
		t.Fatalf("dial component: %v", err)
	}
	responder := &loginrelay.Responder{
		Domain: h.Domain, Dir: directory{h.Directory, svc},
		OnLogin: svc.LoginResult, OnSessionEnd: svc.SessionEnded,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			e, err := conn.Next()
			if err != nil {
				return
			}
			if _, isErr := component.RemoteError(e); isErr {
				return
			}
			switch {
			case e.Name.Local == "iq" && e.Get("type") == "set":
				if reply := responder.HandleIQ(ctx, e); reply != nil {
					_ = conn.Write(reply)
					continue
				}
			case e.Name.Local == "message" && responder.HandleMessage(e):
				continue
			}
			svc.Handle(ctx, conn, e)
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close("", "")
		cancel()
		<-done
	})
	h.WaitLinks(t, func(l []string) bool { return len(l) == 1 })
}

func isPresence(from, typ string) func(*stream.Element) bool {
	return func(e *stream.Element) bool {
		return e.Name.Local == "presence" && e.Get("type") == typ && (from == "" || e.Get("from") == from)
	}
}

// TestOverXMPP runs a meeting through the real XMPP server: a user and a guest (who logs in
// with the account JoinAsGuest made) join, see each other, chat, and leave by disconnecting.
func TestOverXMPP(t *testing.T) {
	ctx := context.Background()
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true})
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetXMPPSettings(ctx, store.XMPPSettings{UniqueName: "cb1", Domain: h.Domain}); err != nil {
		t.Fatal(err)
	}
	svc := meeting.New(meeting.Options{Store: st})
	sp, err := svc.CreateSpace(ctx, store.CoSpace{Name: "Demo", CallID: "4242", Passcode: secret.New("1234"), OwnerJID: "alice@" + h.Domain})
	if err != nil {
		t.Fatal(err)
	}
	callBridge(t, h, svc)
	space := sp.ID + "@cb1." + h.Domain

	alice := h.Login(t, "alice")
	alice.Send(t, `<iq type="get" id="sp1" to="cb1.`+h.Domain+`"><spaces xmlns="urn:confab:meeting:1"/></iq>`)
	if r := alice.Expect(t, "spaces", xmppdtest.IsKind("iq", "sp1")); r.Get("type") != "result" || !strings.Contains(r.String(), space) {
		t.Errorf("spaces = %s, want a result naming %s", r, space)
	}
	alice.Send(t, `<presence to="`+space+`/alice"><join xmlns="urn:confab:meeting:1" name="Alice"/></presence>`)
	self := alice.Expect(t, "alice's own presence", isPresence("", ""))
	if !strings.Contains(self.String(), `self="true"`) || !strings.Contains(self.String(), `role="owner"`) {
		t.Fatalf("alice's own presence = %s", self)
	}
	aliceOccupant := self.Get("from")

	// A wrong passcode gets nothing; the right one an account that can log in once.
	if _, err := svc.JoinAsGuest(ctx, "4242", "0000", "Ada", "192.0.2.1:1"); !errors.Is(err, meeting.ErrInvalidCallID) {
		t.Fatalf("wrong passcode: %v", err)
	}
	grant, err := svc.JoinAsGuest(ctx, "4242", "1234", "Ada", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	guest, err := h.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(guest.Close)
	if err := guest.StartTLS(); err != nil {
		t.Fatal(err)
	}
	username := strings.TrimSuffix(grant.JID, "@"+h.Domain)
	if err := guest.Auth("PLAIN", username, grant.Password.Reveal()); err != nil {
		t.Fatalf("guest login: %v", err)
	}
	if _, err := guest.Bind(""); err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.GuestPassword(username); ok {
		t.Error("the guest's password still works after its login")
	}

	guest.Send(t, `<presence to="`+space+`/ada"><join xmlns="urn:confab:meeting:1" name="Ada"/></presence>`)
	if p := guest.Expect(t, "alice in the roster", isPresence("", "")); p.Get("from") != aliceOccupant {
		t.Errorf("the guest's first presence is from %s, want alice (%s)", p.Get("from"), aliceOccupant)
	}
	gself := guest.Expect(t, "the guest's own presence", isPresence("", ""))
	if !strings.Contains(gself.String(), `role="guest"`) || !strings.Contains(gself.String(), `self="true"`) {
		t.Errorf("the guest's own presence = %s", gself)
	}
	guestOccupant := gself.Get("from")
	if p := alice.Expect(t, "the guest joining", isPresence("", "")); p.Get("from") != guestOccupant {
		t.Errorf("alice was told of %s, want the guest %s", p.Get("from"), guestOccupant)
	}

	guest.Send(t, `<message type="groupchat" id="c1" to="`+space+`"><body>hello from Ada</body></message>`)
	for name, c := range map[string]*xmppdtest.Client{"alice": alice, "guest": guest} {
		m := c.Expect(t, "chat", xmppdtest.IsKind("message", "c1"))
		if xmppdtest.Body(m) != "hello from Ada" || m.Get("from") != guestOccupant {
			t.Errorf("%s got %s, want the guest's message from %s", name, m, guestOccupant)
		}
	}
	if legs := svc.CallLegs(); len(legs) != 2 {
		t.Errorf("%d call legs, want 2", len(legs))
	}

	// The guest disconnects: alice sees it leave, its account goes.
	guest.Close()
	if p := alice.Expect(t, "the guest leaving", isPresence(guestOccupant, "unavailable")); p == nil {
		t.Fatal("no unavailable presence")
	}
	xmppdtest.Eventually(t, 5*time.Second, "the guest account to go", func() bool { return svc.Guests() == 0 })
	if legs := svc.CallLegs(); len(legs) != 1 || legs[0].RemoteParty != "alice@"+h.Domain {
		t.Errorf("call legs after the guest left = %+v, want alice's", legs)
	}

	// Alice leaves: the last one out ends the call.
	alice.Send(t, `<presence type="unavailable" to="`+space+`/alice"/>`)
	alice.Expect(t, "alice's own unavailable presence", isPresence(aliceOccupant, "unavailable"))
	if calls := svc.Calls(); len(calls) != 0 {
		t.Errorf("calls after everyone left = %+v", calls)
	}
}
