package users

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

const domain = "example.com"

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type fixture struct {
	st   *store.Store
	svc  *Service
	logs *lockedBuffer
	resp *loginrelay.Responder
	dir  *Directory
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newFixture opens a store with the XMPP domain set and a Service over it, and a login relay
// Responder with the Service's Directory, logging through LoginLogger.
func newFixture(t *testing.T, o Options, guests Guests) *fixture {
	t.Helper()
	ctx := ctxT(t)
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.UpdateXMPPSettings(ctx, func(c *store.XMPPSettings) error { c.Domain = domain; return nil }); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, logs: &lockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Store, o.Logger = st, logger
	f.svc = New(o)
	t.Cleanup(func() { f.svc.Close() })
	f.dir = f.svc.Directory(domain, guests)
	f.resp = &loginrelay.Responder{Domain: domain, Dir: f.dir, Logger: logger, OnLogin: LoginLogger(logger)}
	return f
}

// reply is the Responder's answer to one step.
type reply struct {
	Kind, Data, JID, Condition, Text string
}

func (f *fixture) step(t *testing.T, session, payload string) reply {
	t.Helper()
	req := `<iq type='set' id='x' from='` + domain + `' to='cb1.` + domain + `'>` + payload + `</iq>`
	el, err := stream.Parse([]byte(req), stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", req, err)
	}
	out := f.resp.HandleIQ(ctxT(t), el)
	if out == nil {
		t.Fatalf("responder ignored %s", req)
	}
	var ans struct {
		Type      string `xml:"type,attr"`
		Challenge *struct {
			Data string `xml:",chardata"`
		} `xml:"urn:confab:login:1 challenge"`
		Success *struct {
			JID  string `xml:"jid,attr"`
			Data string `xml:",chardata"`
		} `xml:"urn:confab:login:1 success"`
		Failure *struct {
			Condition string `xml:"condition,attr"`
			Text      string `xml:"urn:confab:login:1 text"`
		} `xml:"urn:confab:login:1 failure"`
	}
	if err := xml.Unmarshal(out, &ans); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	decode := func(s string) string {
		if s == "" || s == "=" {
			return ""
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("answer %s: bad base64: %v", out, err)
		}
		return string(b)
	}
	switch {
	case ans.Challenge != nil:
		return reply{Kind: "challenge", Data: decode(ans.Challenge.Data)}
	case ans.Success != nil:
		return reply{Kind: "success", Data: decode(ans.Success.Data), JID: ans.Success.JID}
	case ans.Failure != nil:
		return reply{Kind: "failure", Condition: ans.Failure.Condition, Text: ans.Failure.Text}
	}
	t.Fatalf("unexpected answer %s", out)
	return reply{}
}

var sessionSeq struct {
	sync.Mutex
	n int
}

func newSession() string {
	sessionSeq.Lock()
	defer sessionSeq.Unlock()
	sessionSeq.n++
	return fmt.Sprintf("s%d", sessionSeq.n)
}

// login runs a whole SASL exchange through the Responder as a client would (the SCRAM side
// with xdg-go/scram's client, which also checks the server's signature) and returns the
// final answer.
func (f *fixture) login(t *testing.T, mech, user, pass string) reply {
	t.Helper()
	session := newSession()
	auth := func(data string) string {
		return `<auth xmlns='urn:confab:login:1' session='` + session + `' mechanism='` + mech + `'>` +
			base64.StdEncoding.EncodeToString([]byte(data)) + `</auth>`
	}
	response := func(data string) string {
		return `<response xmlns='urn:confab:login:1' session='` + session + `'>` +
			base64.StdEncoding.EncodeToString([]byte(data)) + `</response>`
	}
	if mech == loginrelay.MechPLAIN {
		return f.step(t, session, auth("\x00"+user+"\x00"+pass))
	}
	hash := scram.SHA256
	if mech == loginrelay.MechSCRAMSHA1 {
		hash = scram.SHA1
	}
	c, err := hash.NewClient(user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := c.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	r := f.step(t, session, auth(first))
	if r.Kind != "challenge" {
		return r
	}
	final, err := conv.Step(r.Data)
	if err != nil {
		t.Fatalf("client rejected the server-first message %q: %v", r.Data, err)
	}
	r = f.step(t, session, response(final))
	if r.Kind == "success" {
		if _, err := conv.Step(r.Data); err != nil || !conv.Valid() {
			t.Errorf("client did not verify the server's signature %q: %v", r.Data, err)
		}
	}
	return r
}

var allMechs = []string{loginrelay.MechSCRAMSHA256, loginrelay.MechSCRAMSHA1, loginrelay.MechPLAIN}

func TestLocalUserLogin(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	const pw = "correct horse battery"
	alice, err := f.svc.CreateLocal(ctx, LocalUser{Username: "Alice", Name: "Alice A.", Email: "alice@example.com"}, secret.New(pw))
	if err != nil {
		t.Fatal(err)
	}
	if alice.JID != "alice@example.com" || alice.Kind != KindLocal || alice.Name != "Alice A." || alice.ID == "" {
		t.Errorf("CreateLocal = %+v", alice)
	}
	for _, mech := range allMechs {
		for _, name := range []string{"alice", "alice@example.com", "ALICE"} {
			t.Run(mech+"/"+name, func(t *testing.T) {
				r := f.login(t, mech, name, pw)
				if r.Kind != "success" || r.JID != "alice@example.com" {
					t.Errorf("login = %+v, want success as alice@example.com", r)
				}
			})
		}
	}
	if !strings.Contains(f.logs.String(), "successful login request from alice@example.com") {
		t.Errorf("log has no successful login line:\n%s", f.logs)
	}
}

func TestFailedLoginsLookAlike(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	if _, err := f.svc.CreateLocal(ctx, LocalUser{Username: "alice"}, secret.New("right password")); err != nil {
		t.Fatal(err)
	}
	for _, mech := range allMechs {
		t.Run(mech, func(t *testing.T) {
			wrong := f.login(t, mech, "alice", "wrong password")
			unknown := f.login(t, mech, "nobody", "wrong password")
			if wrong.Kind != "failure" || wrong.Condition != loginrelay.CondNotAuthorized {
				t.Errorf("wrong password: %+v, want not-authorized", wrong)
			}
			if unknown != wrong {
				t.Errorf("unknown user answered %+v, wrong password %+v: want the same", unknown, wrong)
			}
			foreign := f.login(t, mech, "alice@example.org", "right password")
			if foreign.Kind != "failure" || foreign.Condition != loginrelay.CondNotAuthorized {
				t.Errorf("alice@example.org: %+v, want not-authorized", foreign)
			}
		})
	}
	if logs := f.logs.String(); !strings.Contains(logs, "unsuccessful login request from alice@example.com: not-authorized") ||
		!strings.Contains(logs, "unsuccessful login request from nobody@example.com: not-authorized") {
		t.Errorf("log lacks the unsuccessful login lines:\n%s", logs)
	}
}

func TestUsernames(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	if _, err := f.svc.CreateLocal(ctx, LocalUser{Username: "bob"}, secret.New("pw")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		username string
		want     error
	}{
		{"bob", nil},
		{"Bob@Example.COM", nil},
		{"bob@example.org", ErrUsernameNotRecognized},
		{"bo b", ErrUsernameNotRecognized},
		{"bo/b", ErrUsernameNotRecognized},
		{"bob@example.com/res", ErrUsernameNotRecognized},
		{"@example.com", ErrUsernameNotRecognized},
		{"", ErrUsernameNotRecognized},
		{"carol", loginrelay.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.username, func(t *testing.T) {
			err := f.dir.CheckPlain(ctx, tt.username, "pw")
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("CheckPlain(%q) = %v, want %v", tt.username, err, tt.want)
			}
			_, err = f.dir.SCRAMCredentials(ctx, loginrelay.MechSCRAMSHA256, tt.username)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("SCRAMCredentials(%q) = %v, want %v", tt.username, err, tt.want)
			}
		})
	}
	if !errors.Is(ErrUsernameNotRecognized, loginrelay.ErrUnknownUser) {
		t.Error("ErrUsernameNotRecognized does not wrap loginrelay.ErrUnknownUser")
	}
	if got := f.dir.JID("Bob"); got != "bob@example.com" {
		t.Errorf("JID(Bob) = %q", got)
	}
}

func TestCredentialsAtRest(t *testing.T) {
	f := newFixture(t, Options{SCRAMIterations: 5000}, nil)
	ctx := ctxT(t)
	const pw = "s3cret-Passw0rd"
	u, err := f.svc.CreateLocal(ctx, LocalUser{Username: "dora"}, secret.New(pw))
	if err != nil {
		t.Fatal(err)
	}
	su, err := f.st.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(su.PasswordHash, "$argon2id$") {
		t.Errorf("password hash %q: want an Argon2id PHC string", su.PasswordHash)
	}
	for _, enc := range []string{su.SCRAMSHA1, su.SCRAMSHA256} {
		k, err := decodeSCRAM(enc)
		if err != nil || k.Iters != 5000 || len(k.Salt) < 16 {
			t.Errorf("stored SCRAM keys %q: %+v, %v; want 5000 iterations and a 16-byte salt", enc, k, err)
		}
	}
	all := fmt.Sprintf("%+v", su)
	b64 := base64.StdEncoding.EncodeToString([]byte(pw))
	if strings.Contains(all, pw) || strings.Contains(all, b64) || strings.Contains(f.logs.String(), pw) {
		t.Error("the password appears in the stored record or the log")
	}
	// Two users with the same password get different salts.
	v, err := f.svc.CreateLocal(ctx, LocalUser{Username: "eve"}, secret.New(pw))
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := f.st.User(ctx, v.ID)
	if sv.SCRAMSHA256 == su.SCRAMSHA256 || sv.PasswordHash == su.PasswordHash {
		t.Error("two users with one password have the same stored credentials")
	}
}

func TestCreateLocalValidation(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	if _, err := f.svc.CreateLocal(ctx, LocalUser{Username: "taken"}, secret.New("pw")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		u     LocalUser
		pw    string
		field string // the FieldError expected, or ""
		want  error
	}{
		{"empty password", LocalUser{Username: "a"}, "", "password", nil},
		{"long password", LocalUser{Username: "a"}, strings.Repeat("x", 256), "password", nil},
		{"prohibited character", LocalUser{Username: "a"}, "pass\u0007word", "password", nil},
		{"no username", LocalUser{}, "pw", "username", nil},
		{"bad localpart", LocalUser{Username: "a:b"}, "pw", "username", nil},
		{"other domain", LocalUser{Username: "a@example.org"}, "pw", "username", nil},
		{"guest name", LocalUser{Username: "guest123"}, "pw", "username", nil},
		{"bad email", LocalUser{Username: "a", Email: "no-at-sign"}, "pw", "email", nil},
		{"control in name", LocalUser{Username: "a", Name: "a\nb"}, "pw", "name", nil},
		{"taken", LocalUser{Username: "TAKEN"}, "pw", "", ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.CreateLocal(ctx, tt.u, secret.New(tt.pw))
			var fe *FieldError
			switch {
			case tt.field != "":
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Errorf("err = %v, want a FieldError on %s", err, tt.field)
				}
			case !errors.Is(err, tt.want):
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// "guest" alone and "guestbook" are ordinary names.
	for _, n := range []string{"guest", "guestbook"} {
		if _, err := f.svc.CreateLocal(ctx, LocalUser{Username: n}, secret.New("pw")); err != nil {
			t.Errorf("CreateLocal(%s): %v", n, err)
		}
	}
}

func TestCreateLocalWithoutDomain(t *testing.T) {
	f := newFixture(t, Options{Domain: func(context.Context) (string, error) { return "", nil }}, nil)
	ctx := ctxT(t)
	var fe *FieldError
	if _, err := f.svc.CreateLocal(ctx, LocalUser{Username: "a"}, secret.New("pw")); !errors.As(err, &fe) {
		t.Errorf("a bare username with no XMPP domain set: err = %v, want a FieldError", err)
	}
	u, err := f.svc.CreateLocal(ctx, LocalUser{Username: "a@Example.NET"}, secret.New("pw"))
	if err != nil || u.JID != "a@example.net" {
		t.Errorf("a full JID with no XMPP domain set = %+v, %v", u, err)
	}
}

func TestModifyAndDelete(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	u, err := f.svc.CreateLocal(ctx, LocalUser{Username: "frank", Name: "Frank"}, secret.New("old password"))
	if err != nil {
		t.Fatal(err)
	}
	name := "Frank F."
	got, err := f.svc.Modify(ctx, u.ID, Change{Name: &name})
	if err != nil || got.Name != name || got.JID != u.JID {
		t.Errorf("Modify name = %+v, %v", got, err)
	}
	if err := f.svc.SetPassword(ctx, u.ID, secret.New("new password")); err != nil {
		t.Fatal(err)
	}
	for _, mech := range allMechs {
		if r := f.login(t, mech, "frank", "old password"); r.Kind != "failure" {
			t.Errorf("%s with the old password: %+v, want failure", mech, r)
		}
		if r := f.login(t, mech, "frank", "new password"); r.Kind != "success" {
			t.Errorf("%s with the new password: %+v, want success", mech, r)
		}
	}
	if got, _ := f.svc.Get(ctx, u.ID); got.Name != name {
		t.Errorf("after SetPassword, name = %q, want it kept", got.Name)
	}
	us, total, err := f.svc.List(ctx, "FRANK", 0, 10)
	if err != nil || total != 1 || len(us) != 1 || us[0].ID != u.ID {
		t.Errorf("List(FRANK) = %+v, %d, %v", us, total, err)
	}
	if err := f.svc.Delete(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if r := f.login(t, loginrelay.MechPLAIN, "frank", "new password"); r.Kind != "failure" || r.Condition != loginrelay.CondNotAuthorized {
		t.Errorf("login of a deleted user: %+v, want not-authorized", r)
	}
	if _, err := f.svc.Get(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a deleted user: %v, want ErrNotFound", err)
	}
	if err := f.svc.Delete(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
}

// guestMap is a Guests for tests.
type guestMap struct {
	mu sync.Mutex
	m  map[string]string
}

func (g *guestMap) GuestPassword(username string) (secret.Secret, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pw, ok := g.m[username]
	return secret.New(pw), ok
}

func (g *guestMap) remove(username string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, username)
}

func TestGuests(t *testing.T) {
	guests := &guestMap{m: map[string]string{"guest482913": "one-time-Pw9"}}
	f := newFixture(t, Options{}, guests)
	for _, mech := range allMechs {
		t.Run(mech, func(t *testing.T) {
			if r := f.login(t, mech, "guest482913", "one-time-Pw9"); r.Kind != "success" || r.JID != "guest482913@example.com" {
				t.Errorf("guest login = %+v, want success", r)
			}
			if r := f.login(t, mech, "guest482913@example.com", "one-time-pw9"); r.Kind != "failure" || r.Condition != loginrelay.CondNotAuthorized {
				t.Errorf("guest with a wrong password = %+v, want not-authorized", r)
			}
			if r := f.login(t, mech, "guest111", "one-time-Pw9"); r.Kind != "failure" || r.Condition != loginrelay.CondNotAuthorized {
				t.Errorf("unknown guest = %+v, want not-authorized", r)
			}
		})
	}
	guests.remove("guest482913")
	if r := f.login(t, loginrelay.MechPLAIN, "guest482913", "one-time-Pw9"); r.Kind != "failure" {
		t.Errorf("guest after the account is gone = %+v, want failure", r)
	}
}

func TestLoginLogger(t *testing.T) {
	var buf lockedBuffer
	log := LoginLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	log("alice@example.com", true, "")
	log("bob@example.com", false, "not-authorized")
	log("", false, "malformed-request")
	for _, want := range []string{
		`msg="successful login request from alice@example.com" jid=alice@example.com`,
		`msg="unsuccessful login request from bob@example.com: not-authorized" jid=bob@example.com reason=not-authorized`,
		`msg="unsuccessful login request from (no username): malformed-request"`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestSCRAMEncoding(t *testing.T) {
	k, err := deriveSCRAM(scram.SHA256, "pencil", []byte("0123456789abcdef"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSCRAM(encodeSCRAM(k))
	if err != nil || got.Iters != k.Iters || got.Salt != k.Salt || !bytes.Equal(got.StoredKey, k.StoredKey) || !bytes.Equal(got.ServerKey, k.ServerKey) {
		t.Errorf("round trip = %+v, %v; want %+v", got, err, k)
	}
	for _, bad := range []string{"", "4096$a$b", "x$YQ$YQ$YQ", "0$YQ$YQ$YQ", "4096$$YQ$YQ", "4096$YQ$Y!$YQ"} {
		if _, err := decodeSCRAM(bad); err == nil {
			t.Errorf("decodeSCRAM(%q) succeeded", bad)
		}
	}
}
