package loginrelay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/stream"
)

const domain = "example.com"

// pipeLink stands for a component link: what the Client writes is handed to a Responder, and
// the Responder's answer goes back to the Client's HandleIQ, as the two read loops would do.
type pipeLink struct {
	t      *testing.T
	jid    string
	client *Client
	resp   *Responder

	mu     sync.Mutex
	hold   bool     // swallow requests instead of answering
	refuse bool     // answer every request with an IQ error, as a component that is no Call Bridge
	failW  error    // Write fails with this
	writes []string // everything written
}

func (l *pipeLink) JID() string { return l.jid }

func (l *pipeLink) Write(b []byte) error {
	l.mu.Lock()
	l.writes = append(l.writes, string(b))
	hold, failW, refuse := l.hold, l.failW, l.refuse
	l.mu.Unlock()
	if failW != nil {
		return failW
	}
	el, err := stream.Parse(b, stream.NSComponent, stream.Limits{})
	if err != nil {
		l.t.Errorf("client wrote unparseable XML %q: %v", b, err)
		return nil
	}
	if el.Name.Local == "message" {
		if !l.resp.HandleMessage(el) {
			l.t.Errorf("responder did not take message %s", b)
		}
		return nil
	}
	if hold {
		return nil
	}
	if refuse {
		go func() {
			ans := stream.ErrorReply(el, stream.StanzaError{Type: stream.ErrCancel, Condition: "service-unavailable"})
			ael, err := stream.Parse(ans, stream.NSComponent, stream.Limits{})
			if err != nil {
				l.t.Errorf("unparseable error reply %q: %v", ans, err)
				return
			}
			l.client.HandleIQ(l, ael)
		}()
		return nil
	}
	go func() { // the Call Bridge answers from its own read loop
		ans := l.resp.HandleIQ(context.Background(), el)
		if ans == nil {
			l.t.Errorf("responder ignored %s", b)
			return
		}
		ael, err := stream.Parse(ans, stream.NSComponent, stream.Limits{})
		if err != nil {
			l.t.Errorf("responder wrote unparseable XML %q: %v", ans, err)
			return
		}
		if !l.client.HandleIQ(l, ael) {
			l.t.Errorf("client did not take answer %s", ans)
		}
	}()
	return nil
}

func (l *pipeLink) written() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

func (l *pipeLink) set(f func(l *pipeLink)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

// waitWrites polls until the link has seen n writes.
func (l *pipeLink) waitWrites(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(l.written()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("link saw %d writes, want %d", len(l.written()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type fixture struct {
	client *Client
	resp   *Responder
	dir    *MemoryDirectory
	bridge *pipeLink

	mu     sync.Mutex
	logins []string
	ends   []string
}

func newFixture(t *testing.T, timeout time.Duration) *fixture {
	t.Helper()
	f := &fixture{client: NewClient(domain, timeout, nil), dir: NewMemoryDirectory(domain)}
	for _, u := range []struct{ name, pass string }{{"alice", "correct horse"}, {"bob", "pa55wörd"}} {
		if err := f.dir.Add(u.name, u.pass); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.dir.AddPlainOnly("lara", "ldap-secret"); err != nil {
		t.Fatal(err)
	}
	f.resp = &Responder{
		Domain: domain,
		Dir:    f.dir,
		OnLogin: func(jid string, ok bool, reason string) {
			f.mu.Lock()
			f.logins = append(f.logins, fmt.Sprintf("%s %v %s", jid, ok, reason))
			f.mu.Unlock()
		},
		OnSessionEnd: func(jid, reason string) {
			f.mu.Lock()
			f.ends = append(f.ends, jid+" "+reason)
			f.mu.Unlock()
		},
	}
	f.bridge = f.newLink(t, "cb1."+domain)
	return f
}

func (f *fixture) newLink(t *testing.T, jid string) *pipeLink {
	l := &pipeLink{t: t, jid: jid, client: f.client, resp: f.resp}
	f.client.Attach(l)
	return l
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// scramLogin runs a whole SCRAM exchange through the relay with xdg-go/scram's client.
func scramLogin(t *testing.T, c *Client, mech, user, pass string, initial bool) (Reply, *scram.ClientConversation) {
	t.Helper()
	ctx := ctxT(t)
	hash := scram.SHA256
	if mech == MechSCRAMSHA1 {
		hash = scram.SHA1
	}
	sc, err := hash.NewClient(user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := sc.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	var (
		x *Exchange
		r Reply
	)
	if initial {
		x, r, err = c.Begin(ctx, mech, []byte(first), "198.51.100.7:51234", "tcp")
	} else {
		x, r, err = c.Begin(ctx, mech, nil, "198.51.100.7:51234", "websocket")
		if err == nil {
			if r.Kind != KindChallenge || r.Data == nil || len(r.Data) != 0 {
				t.Fatalf("answer to an auth without initial response = %+v, want an empty challenge", r)
			}
			r, err = x.Respond(ctx, []byte(first))
		}
	}
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if r.Kind != KindChallenge {
		return r, conv
	}
	final, err := conv.Step(string(r.Data))
	if err != nil {
		t.Fatalf("client-final: %v", err)
	}
	r, err = x.Respond(ctx, []byte(final))
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	if r.Kind == KindSuccess {
		if _, err := conv.Step(string(r.Data)); err != nil {
			t.Errorf("the server's signature did not verify: %v", err)
		}
	}
	return r, conv
}

// sameReply compares replies but for their data.
func sameReply(a, b Reply) bool {
	return a.Kind == b.Kind && a.JID == b.JID && a.Condition == b.Condition && a.Text == b.Text
}

func TestSCRAM(t *testing.T) {
	tests := []struct {
		name, mech, user, pass string
		initial                bool
		want                   Reply // Data not compared
	}{
		{"sha-256", MechSCRAMSHA256, "alice", "correct horse", true, Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"sha-1", MechSCRAMSHA1, "alice", "correct horse", true, Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"sha-256 non-ascii password", MechSCRAMSHA256, "bob", "pa55wörd", true, Reply{Kind: KindSuccess, JID: "bob@example.com"}},
		{"no initial response", MechSCRAMSHA256, "alice", "correct horse", false, Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"bare JID as username", MechSCRAMSHA256, "alice@example.com", "correct horse", true, Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"wrong password", MechSCRAMSHA256, "alice", "wrong", true, Reply{Kind: KindFailure, Condition: CondNotAuthorized, Text: textInvalidCredentials}},
		{"unknown user", MechSCRAMSHA256, "mallory", "wrong", true, Reply{Kind: KindFailure, Condition: CondNotAuthorized, Text: textInvalidCredentials}},
		{"sha-1 unknown user", MechSCRAMSHA1, "mallory", "wrong", true, Reply{Kind: KindFailure, Condition: CondNotAuthorized, Text: textInvalidCredentials}},
		{"user without SCRAM keys", MechSCRAMSHA256, "lara", "ldap-secret", true, Reply{Kind: KindFailure, Condition: CondInvalidMechanism, Text: "use PLAIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)
			got, conv := scramLogin(t, f.client, tt.mech, tt.user, tt.pass, tt.initial)
			if !sameReply(got, tt.want) {
				t.Errorf("reply = %+v, want %+v", got, tt.want)
			}
			if tt.want.Kind == KindSuccess && !conv.Valid() {
				t.Error("the client did not validate the server")
			}
			if n := f.resp.Sessions(); n != 0 {
				t.Errorf("responder holds %d sessions after the exchange, want 0", n)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.logins) != 1 || !strings.Contains(f.logins[0], fmt.Sprintf(" %v ", tt.want.Kind == KindSuccess)) {
				t.Errorf("OnLogin calls = %q", f.logins)
			}
		})
	}
}

// An unknown user must be indistinguishable from a wrong password, at every step.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	f := newFixture(t, 0)
	ctx := ctxT(t)
	first := func(user string) (Reply, *Exchange) {
		sc, _ := scram.SHA256.NewClient(user, "wrong", "")
		msg, _ := sc.NewConversation().Step("")
		x, r, err := f.client.Begin(ctx, MechSCRAMSHA256, []byte(msg), "", "tcp")
		if err != nil {
			t.Fatal(err)
		}
		x.Abort()
		return r, x
	}
	// Both get a challenge with a stable salt and the same iteration count.
	for _, user := range []string{"alice", "mallory"} {
		r1, _ := first(user)
		r2, _ := first(user)
		salt := func(r Reply) string {
			for _, f := range strings.Split(string(r.Data), ",") {
				if strings.HasPrefix(f, "s=") || strings.HasPrefix(f, "i=") {
					return f
				}
			}
			return ""
		}
		if r1.Kind != KindChallenge || !strings.Contains(string(r1.Data), ",i=4096") {
			t.Errorf("%s: first answer %q, want a challenge with i=4096", user, r1.Data)
		}
		if salt(r1) != salt(r2) || salt(r1) == "" {
			t.Errorf("%s: salt changes between attempts: %q vs %q", user, r1.Data, r2.Data)
		}
	}
	plain := func(user, pass string) Reply {
		_, r, err := f.client.Begin(ctx, MechPLAIN, []byte("\x00"+user+"\x00"+pass), "", "tcp")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if a, b := plain("alice", "wrong"), plain("mallory", "wrong"); a.Kind != KindFailure || a.Condition != b.Condition || a.Text != b.Text {
		t.Errorf("PLAIN: wrong password %+v, unknown user %+v; want identical failures", a, b)
	}
}

func TestPLAIN(t *testing.T) {
	invalid := Reply{Kind: KindFailure, Condition: CondNotAuthorized, Text: textInvalidCredentials}
	tests := []struct {
		name string
		msg  string
		want Reply
	}{
		{"good", "\x00alice\x00correct horse", Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"good with own authzid", "alice@example.com\x00alice\x00correct horse", Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"case-insensitive username", "\x00Alice\x00correct horse", Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"bare JID as authcid", "\x00alice@example.com\x00correct horse", Reply{Kind: KindSuccess, JID: "alice@example.com"}},
		{"plain-only user", "\x00lara\x00ldap-secret", Reply{Kind: KindSuccess, JID: "lara@example.com"}},
		{"wrong password", "\x00alice\x00correct horsE", invalid},
		{"unknown user", "\x00mallory\x00correct horse", invalid},
		{"empty password", "\x00alice\x00", invalid},
		{"someone else's authzid", "bob@example.com\x00alice\x00correct horse", Reply{Kind: KindFailure, Condition: CondInvalidAuthzid, Text: "You may only log in as yourself"}},
		{"two fields", "alice\x00correct horse", Reply{Kind: KindFailure, Condition: CondMalformedRequest, Text: "Not a PLAIN message"}},
		{"four fields", "\x00alice\x00correct horse\x00x", Reply{Kind: KindFailure, Condition: CondMalformedRequest, Text: "Not a PLAIN message"}},
		{"empty authcid", "\x00\x00correct horse", Reply{Kind: KindFailure, Condition: CondMalformedRequest, Text: "Not a PLAIN message"}},
		{"invalid UTF-8", "\x00alice\x00\xff\xfe", Reply{Kind: KindFailure, Condition: CondMalformedRequest, Text: "Not a PLAIN message"}},
	}
	f := newFixture(t, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := f.client.Begin(ctxT(t), MechPLAIN, []byte(tt.msg), "192.0.2.1:4000", "tcp")
			if err != nil {
				t.Fatal(err)
			}
			if got.Data != nil {
				t.Errorf("PLAIN answer carries data %q", got.Data)
			}
			if !sameReply(got, tt.want) {
				t.Errorf("reply = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPLAINWithoutInitialResponse(t *testing.T) {
	f := newFixture(t, 0)
	ctx := ctxT(t)
	x, r, err := f.client.Begin(ctx, MechPLAIN, nil, "", "websocket")
	if err != nil || r.Kind != KindChallenge || len(r.Data) != 0 {
		t.Fatalf("Begin = %+v, %v; want an empty challenge", r, err)
	}
	r, err = x.Respond(ctx, []byte("\x00alice\x00correct horse"))
	if err != nil || r.Kind != KindSuccess || r.JID != "alice@example.com" {
		t.Fatalf("Respond = %+v, %v; want success", r, err)
	}
	if _, err := x.Respond(ctx, []byte("again")); err == nil {
		t.Error("Respond after success succeeded")
	}
}

func TestUnsupportedMechanism(t *testing.T) {
	f := newFixture(t, 0)
	_, r, err := f.client.Begin(ctxT(t), "DIGEST-MD5", nil, "", "tcp")
	if err != nil || r.Kind != KindFailure || r.Condition != CondInvalidMechanism {
		t.Errorf("Begin = %+v, %v; want invalid-mechanism", r, err)
	}
}

// failingDir is a directory that is down.
type failingDir struct{ *MemoryDirectory }

var errDown = errors.New("ldap: connection refused")

func (failingDir) SCRAMCredentials(context.Context, string, string) (scram.StoredCredentials, error) {
	return scram.StoredCredentials{}, errDown
}
func (failingDir) CheckPlain(context.Context, string, string) error { return errDown }

func TestDirectoryDown(t *testing.T) {
	f := newFixture(t, 0)
	f.resp.Dir = failingDir{f.dir}
	ctx := ctxT(t)
	sc, _ := scram.SHA256.NewClient("alice", "correct horse", "")
	first, _ := sc.NewConversation().Step("")
	for mech, msg := range map[string]string{MechSCRAMSHA256: first, MechPLAIN: "\x00alice\x00correct horse"} {
		_, r, err := f.client.Begin(ctx, mech, []byte(msg), "", "tcp")
		if err != nil || r.Kind != KindFailure || r.Condition != CondTemporaryAuthFail {
			t.Errorf("%s: %+v, %v; want temporary-auth-failure", mech, r, err)
		}
	}
}

// foreignDir refuses every username as one that cannot belong to the domain.
type foreignDir struct{ *MemoryDirectory }

func (foreignDir) SCRAMCredentials(context.Context, string, string) (scram.StoredCredentials, error) {
	return scram.StoredCredentials{}, ErrUsernameNotRecognized
}
func (foreignDir) CheckPlain(context.Context, string, string) error { return ErrUsernameNotRecognized }

func TestUsernameNotRecognized(t *testing.T) {
	f := newFixture(t, 0)
	f.resp.Dir = foreignDir{f.dir}
	ctx := ctxT(t)
	sc, _ := scram.SHA256.NewClient("alice@elsewhere.org", "correct horse", "")
	first, _ := sc.NewConversation().Step("")
	for mech, msg := range map[string]string{MechSCRAMSHA256: first, MechPLAIN: "\x00alice@elsewhere.org\x00correct horse"} {
		_, r, err := f.client.Begin(ctx, mech, []byte(msg), "", "tcp")
		if err != nil || r.Kind != KindFailure || r.Condition != CondNotAuthorized || r.Text != "Username is not recognized" {
			t.Errorf("%s: %+v, %v; want not-authorized with the text Username is not recognized", mech, r, err)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	f := newFixture(t, 0)
	l2 := f.newLink(t, "cb2."+domain)
	f.client.Attach(l2) // twice: no effect
	if got := f.client.Bridges(); got != 2 {
		t.Fatalf("Links = %d, want 2", got)
	}
	var got []string
	for range 4 {
		x, r, err := f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00alice\x00correct horse"), "", "tcp")
		if err != nil || r.Kind != KindSuccess {
			t.Fatalf("Begin = %+v, %v", r, err)
		}
		got = append(got, x.Bridge().JID())
	}
	if want := "cb1.example.com cb2.example.com cb1.example.com cb2.example.com"; strings.Join(got, " ") != want {
		t.Errorf("links used: %v, want %s", got, want)
	}
	f.client.Detach(f.bridge)
	x, _, err := f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00alice\x00correct horse"), "", "tcp")
	if err != nil || x.Bridge() != l2 {
		t.Errorf("after detaching cb1: link %v, err %v; want cb2", x.Bridge(), err)
	}
}

func TestNoCallBridge(t *testing.T) {
	c := NewClient(domain, 0, nil)
	start := time.Now()
	x, _, err := c.Begin(ctxT(t), MechPLAIN, []byte("\x00a\x00b"), "", "tcp")
	if !errors.Is(err, ErrNoCallBridge) || x != nil {
		t.Fatalf("Begin = %v, %v; want ErrNoCallBridge", x, err)
	}
	if time.Since(start) > time.Second {
		t.Error("Begin without links did not fail at once")
	}
	r := FailureReply(err)
	if r.Kind != KindFailure || r.Condition != CondTemporaryAuthFail || r.Text != "No Call Bridge is connected to the XMPP server" {
		t.Errorf("FailureReply = %+v", r)
	}
}

func TestDetachMidExchange(t *testing.T) {
	t.Run("pending step", func(t *testing.T) {
		f := newFixture(t, 0)
		f.bridge.set(func(l *pipeLink) { l.hold = true })
		done := make(chan error, 1)
		go func() {
			_, _, err := f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00alice\x00x"), "", "tcp")
			done <- err
		}()
		f.bridge.waitWrites(t, 1)
		f.client.Detach(f.bridge)
		select {
		case err := <-done:
			if !errors.Is(err, ErrBridgeLost) {
				t.Errorf("Begin = %v, want ErrBridgeLost", err)
			}
			if r := FailureReply(err); r.Condition != CondTemporaryAuthFail || r.Text != "The Call Bridge handling this login disconnected" {
				t.Errorf("FailureReply = %+v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Begin still waiting after Detach")
		}
	})
	t.Run("next step", func(t *testing.T) {
		f := newFixture(t, 0)
		l2 := f.newLink(t, "cb2."+domain)
		x, r, err := f.client.Begin(ctxT(t), MechPLAIN, nil, "", "tcp")
		if err != nil || r.Kind != KindChallenge {
			t.Fatal(r, err)
		}
		f.client.Detach(x.Bridge())
		// The exchange is pinned: it does not move to the other link.
		if _, err := x.Respond(ctxT(t), []byte("\x00alice\x00correct horse")); !errors.Is(err, ErrBridgeLost) {
			t.Errorf("Respond = %v, want ErrBridgeLost", err)
		}
		if n := len(l2.written()); n != 0 {
			t.Errorf("the other link saw %d writes", n)
		}
	})
	t.Run("write fails", func(t *testing.T) {
		f := newFixture(t, 0)
		f.bridge.set(func(l *pipeLink) { l.failW = errors.New("broken pipe") })
		if _, _, err := f.client.Begin(ctxT(t), MechPLAIN, nil, "", "tcp"); !errors.Is(err, ErrBridgeLost) {
			t.Errorf("Begin = %v, want ErrBridgeLost", err)
		}
	})
}

// TestFirstStepMovesToAnotherCallBridge: a Call Bridge lost before it answered a login's
// first step costs that login nothing while another is attached.
func TestFirstStepMovesToAnotherCallBridge(t *testing.T) {
	// A component that answers the relay with an IQ error (an IRC gateway attached by
	// mistake, or a Call Bridge that cannot now): the first step goes to the next one.
	// Before, the login failed with temporary-auth-failure.
	t.Run("relay error", func(t *testing.T) {
		f := newFixture(t, 0)
		l2 := f.newLink(t, "cb2."+domain)
		f.bridge.set(func(l *pipeLink) { l.refuse = true })
		for i := range 3 {
			x, r, err := f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00alice\x00correct horse"), "", "tcp")
			if err != nil || r.Kind != KindSuccess || x.Bridge() != l2 {
				t.Fatalf("login %d: %+v, %v on %v; want success on cb2", i, r, err, bridgeJID(x.Bridge()))
			}
		}
	})
	t.Run("write fails", func(t *testing.T) {
		f := newFixture(t, 0)
		l2 := f.newLink(t, "cb2."+domain)
		f.bridge.set(func(l *pipeLink) { l.failW = errors.New("broken pipe") })
		for i := range 3 { // whichever link round robin starts with
			x, r, err := f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00alice\x00correct horse"), "", "tcp")
			if err != nil || r.Kind != KindSuccess || x.Bridge() != l2 {
				t.Fatalf("login %d: %+v, %v on %v; want success on cb2", i, r, err, bridgeJID(x.Bridge()))
			}
		}
	})
	t.Run("lost while pending", func(t *testing.T) {
		f := newFixture(t, 0)
		l2 := f.newLink(t, "cb2."+domain)
		f.bridge.set(func(l *pipeLink) { l.hold = true })
		type result struct {
			x   *Exchange
			r   Reply
			err error
		}
		done := make(chan result, 1)
		go func() {
			x, r, err := f.client.Begin(ctxT(t), MechSCRAMSHA256, nil, "", "tcp")
			done <- result{x, r, err}
		}()
		f.bridge.waitWrites(t, 1) // round robin starts with cb1, which swallows the request
		f.client.Detach(f.bridge)
		select {
		case res := <-done:
			if res.err != nil || res.r.Kind != KindChallenge || res.x.Bridge() != l2 {
				t.Fatalf("Begin = %+v, %v on %v; want the empty challenge from cb2", res.r, res.err, bridgeJID(res.x.Bridge()))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Begin still waiting after cb1 was detached")
		}
	})
	t.Run("all lost", func(t *testing.T) {
		f := newFixture(t, 0)
		l2 := f.newLink(t, "cb2."+domain)
		for _, l := range []*pipeLink{f.bridge, l2} {
			l.set(func(l *pipeLink) { l.failW = errors.New("broken pipe") })
		}
		if _, _, err := f.client.Begin(ctxT(t), MechPLAIN, nil, "", "tcp"); !errors.Is(err, ErrBridgeLost) {
			t.Errorf("Begin = %v, want ErrBridgeLost", err)
		}
		if n1, n2 := len(f.bridge.written()), len(l2.written()); n1 != 1 || n2 != 1 {
			t.Errorf("writes %d and %d; want one try on each link", n1, n2)
		}
	})
}

func TestTimeout(t *testing.T) {
	f := newFixture(t, 100*time.Millisecond)
	f.bridge.set(func(l *pipeLink) { l.hold = true })
	start := time.Now()
	x, _, err := f.client.Begin(ctxT(t), MechSCRAMSHA256, nil, "", "tcp")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Begin = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("timed out after %v, want about 100ms", d)
	}
	// The Call Bridge is told to drop the session.
	w := f.bridge.written()
	if len(w) != 2 || !strings.Contains(w[1], "<abort") || !strings.Contains(w[1], x.Session()) {
		t.Errorf("writes after the timeout: %q, want the auth then an abort", w)
	}
	if _, err := x.Respond(ctxT(t), nil); err == nil {
		t.Error("Respond after a timeout succeeded")
	}
}

func TestContextCancelled(t *testing.T) {
	f := newFixture(t, 0)
	f.bridge.set(func(l *pipeLink) { l.hold = true })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := f.client.Begin(ctx, MechPLAIN, nil, "", "tcp")
		done <- err
	}()
	f.bridge.waitWrites(t, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Begin = %v, want context.Canceled", err)
	}
}

func TestAbort(t *testing.T) {
	f := newFixture(t, 0)
	x, _, err := f.client.Begin(ctxT(t), MechSCRAMSHA256, nil, "", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.resp.Sessions(); n != 1 {
		t.Fatalf("responder holds %d sessions, want 1", n)
	}
	x.Abort()
	x.Abort() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	for f.resp.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the responder kept the aborted session")
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(f.bridge.written()); n != 2 {
		t.Errorf("link saw %d writes, want auth + one abort", n)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, 0)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.resp.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	x, _, err := f.client.Begin(ctxT(t), MechPLAIN, nil, "", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(DefaultSessionTTL + time.Second)
	mu.Unlock()
	r, err := x.Respond(ctxT(t), []byte("\x00alice\x00correct horse"))
	if err != nil || r.Kind != KindFailure || r.Condition != CondTemporaryAuthFail {
		t.Errorf("Respond after expiry = %+v, %v; want temporary-auth-failure", r, err)
	}
	if n := f.resp.Sessions(); n != 0 {
		t.Errorf("responder holds %d sessions, want 0", n)
	}
}

func TestSessionEnd(t *testing.T) {
	f := newFixture(t, 0)
	x, r, err := f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00alice\x00correct horse"), "", "tcp")
	if err != nil || r.Kind != KindSuccess {
		t.Fatal(r, err)
	}
	f.client.SessionEnded(x.Bridge(), "alice@example.com/web-1", "closed")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ends) != 1 || f.ends[0] != "alice@example.com/web-1 closed" {
		t.Errorf("OnSessionEnd calls = %q", f.ends)
	}
}

// elem parses one stanza for the tests below.
func elem(t *testing.T, s string) *stream.Element {
	t.Helper()
	e, err := stream.Parse([]byte(s), stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestResponderRequests(t *testing.T) {
	f := newFixture(t, 0)
	tests := []struct {
		name, in string
		want     []string // substrings of the answer; nil for no answer
	}{
		{"malformed base64", `<iq type='set' id='1' from='example.com' to='cb1.example.com'><auth xmlns='urn:confab:login:1' session='s1' mechanism='PLAIN'>!!notbase64</auth></iq>`,
			[]string{`type="result"`, `id="1"`, `from="cb1.example.com"`, `to="example.com"`, `condition="malformed-request"`, `session="s1"`}},
		{"from a client", `<iq type='set' id='2' from='mallory@example.com/x' to='cb1.example.com'><auth xmlns='urn:confab:login:1' session='s2' mechanism='PLAIN'>AGFsaWNlAGNvcnJlY3QgaG9yc2U=</auth></iq>`,
			[]string{`type="error"`, `<forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"`}},
		{"abort", `<iq type='set' id='3' from='example.com' to='cb1.example.com'><abort xmlns='urn:confab:login:1' session='s3'/></iq>`,
			[]string{`condition="aborted"`, `session="s3"`}},
		{"no session", `<iq type='set' id='4' from='example.com' to='cb1.example.com'><auth xmlns='urn:confab:login:1' mechanism='PLAIN'>=</auth></iq>`,
			[]string{`condition="malformed-request"`}},
		{"unknown session", `<iq type='set' id='5' from='example.com' to='cb1.example.com'><response xmlns='urn:confab:login:1' session='nope'>=</response></iq>`,
			[]string{`condition="temporary-auth-failure"`}},
		{"another namespace", `<iq type='set' id='6' from='example.com' to='cb1.example.com'><query xmlns='jabber:iq:version'/></iq>`, nil},
		{"mentions the namespace elsewhere", `<iq type='set' id='7' from='example.com' to='cb1.example.com'><query xmlns='urn:x'><x>urn:confab:login:1</x></query></iq>`, nil},
		{"a get", `<iq type='get' id='8' from='example.com' to='cb1.example.com'><auth xmlns='urn:confab:login:1' session='s8' mechanism='PLAIN'/></iq>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.resp.HandleIQ(context.Background(), elem(t, tt.in))
			if tt.want == nil {
				if got != nil {
					t.Errorf("answered %s, want nil", got)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("answer %s lacks %s", got, w)
				}
			}
		})
	}
	if f.resp.HandleMessage(elem(t, `<message from='example.com'><body>hi</body></message>`)) {
		t.Error("HandleMessage took a chat message")
	}
}

func TestClientAnswers(t *testing.T) {
	f := newFixture(t, 0)
	f.bridge.set(func(l *pipeLink) { l.hold = true })
	begin := func() (<-chan error, string) {
		errc := make(chan error, 1)
		n := len(f.bridge.written())
		go func() {
			_, _, err := f.client.Begin(ctxT(t), MechPLAIN, nil, "", "tcp")
			errc <- err
		}()
		f.bridge.waitWrites(t, n+1)
		req := elem(t, f.bridge.written()[n])
		var v struct {
			Auth *authPayload
		}
		if err := req.Decode(&v); err != nil || v.Auth == nil {
			t.Fatalf("request %s: %v", req, err)
		}
		return errc, req.Get("id") + " " + v.Auth.Session
	}
	tests := []struct {
		name   string
		answer string // %[1]s is the iq id, %[2]s the session
		want   string // error substring
	}{
		{"malformed base64", `<iq type='result' id='%[1]s'><challenge xmlns='urn:confab:login:1' session='%[2]s'>$$$</challenge></iq>`, "invalid base64"},
		{"iq error", `<iq type='error' id='%[1]s'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, "service-unavailable"},
		{"wrong session", `<iq type='result' id='%[1]s'><challenge xmlns='urn:confab:login:1' session='other'>=</challenge></iq>`, "session"},
		{"empty result", `<iq type='result' id='%[1]s'/>`, "no challenge"},
		{"success without jid", `<iq type='result' id='%[1]s'><success xmlns='urn:confab:login:1' session='%[2]s'/></iq>`, "jid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errc, ids := begin()
			id, session, _ := strings.Cut(ids, " ")
			if !f.client.HandleIQ(f.bridge, elem(t, fmt.Sprintf(tt.answer, id, session))) {
				t.Fatal("HandleIQ did not take the answer")
			}
			if err := <-errc; err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Begin = %v, want an error about %s", err, tt.want)
			}
		})
	}
	t.Run("answer on the wrong link", func(t *testing.T) {
		errc, ids := begin()
		id, session, _ := strings.Cut(ids, " ")
		other := &pipeLink{t: t, jid: "cb2.example.com"}
		ans := elem(t, fmt.Sprintf(`<iq type='result' id='%s'><success xmlns='urn:confab:login:1' session='%s' jid='alice@example.com'/></iq>`, id, session))
		if !f.client.HandleIQ(other, ans) {
			t.Error("HandleIQ did not recognise the relay answer")
		}
		select {
		case err := <-errc:
			t.Fatalf("an answer from another link ended the exchange: %v", err)
		default:
		}
		f.client.HandleIQ(f.bridge, ans)
		if err := <-errc; err != nil {
			t.Errorf("Begin = %v", err)
		}
	})
	if !f.client.HandleIQ(f.bridge, elem(t, `<iq type='result' id='confab-login-late'/>`)) {
		t.Error("a late relay answer was not recognised")
	}
	if f.client.HandleIQ(f.bridge, elem(t, `<iq type='result' id='disco1'/>`)) {
		t.Error("an unrelated IQ was taken")
	}
}

// The request on the wire, as docs/protocol.md shows it.
func TestWireFormat(t *testing.T) {
	f := newFixture(t, 0)
	f.bridge.set(func(l *pipeLink) { l.hold = true })
	go func() {
		_, _, _ = f.client.Begin(context.Background(), MechPLAIN, []byte{}, "198.51.100.7:51234", "websocket")
	}()
	f.bridge.waitWrites(t, 1)
	req := elem(t, f.bridge.written()[0])
	if req.Name.Local != "iq" || req.Get("type") != "set" || req.Get("from") != domain || req.Get("to") != "cb1.example.com" || !strings.HasPrefix(req.Get("id"), idPrefix) {
		t.Errorf("envelope: %s", req)
	}
	var v struct{ Auth *authPayload }
	if err := req.Decode(&v); err != nil || v.Auth == nil {
		t.Fatalf("%s: %v", req, err)
	}
	a := v.Auth
	if a.Mechanism != "PLAIN" || a.Addr != "198.51.100.7:51234" || a.Transport != "websocket" || a.Data != "=" || len(a.Session) != 32 {
		t.Errorf("auth = %+v (empty initial response must be '=')", a)
	}
	f.client.Detach(f.bridge)
}

// TestSuccessSaysGuest: a guest account's success carries guest='true', which the XMPP
// server reads as Reply.Guest; a user's, even one named guest-something, does not.
func TestSuccessSaysGuest(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	for _, u := range []struct {
		name  string
		guest bool
	}{{"guest4829130571", true}, {"guestbook", false}, {"guest123", false}, {"alice", false}} {
		if u.name != "alice" {
			if err := f.dir.Add(u.name, "pw-"+u.name); err != nil {
				t.Fatal(err)
			}
		}
		pass := "pw-" + u.name
		if u.name == "alice" {
			pass = "correct horse"
		}
		_, r, err := f.client.Begin(context.Background(), MechPLAIN, []byte("\x00"+u.name+"\x00"+pass), "", "tcp")
		if err != nil || r.Kind != KindSuccess {
			t.Fatalf("%s: %+v, %v; want a success", u.name, r, err)
		}
		if r.Guest != u.guest {
			t.Errorf("%s: Guest = %v, want %v", u.name, r.Guest, u.guest)
		}
	}
}

// TestProbe: a component is asked, as it connects, whether it speaks the login relay; only a
// Responder says yes. A component that answers with an IQ error, or not at all, is
// ErrNotABridge and is never attached, so it takes no logins.
func TestProbe(t *testing.T) {
	f := newFixture(t, 300*time.Millisecond)
	for _, tt := range []struct {
		name string
		set  func(l *pipeLink)
		want error
	}{
		{"a Call Bridge", func(*pipeLink) {}, nil},
		{"an IQ error", func(l *pipeLink) { l.refuse = true }, ErrNotABridge},
		{"no answer", func(l *pipeLink) { l.hold = true }, ErrNotABridge},
		{"write fails", func(l *pipeLink) { l.failW = errors.New("broken pipe") }, ErrBridgeLost},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &pipeLink{t: t, jid: "comp." + domain, client: f.client, resp: f.resp}
			l.set(tt.set)
			err := f.client.Probe(ctxT(t), l)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Probe = %v, want %v", err, tt.want)
			}
		})
	}
}
