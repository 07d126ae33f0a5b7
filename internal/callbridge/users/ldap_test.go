package users

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/users/ldaptest"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// ldapSetup creates a server (LDAPS when secure), a mapping and a source over ldaptest's
// people.
func ldapSetup(t *testing.T, f *fixture, srv *ldaptest.Server, secure bool, m LDAPMapping) LDAPSource {
	t.Helper()
	ctx := ctxT(t)
	port := srv.Port
	if secure {
		port = srv.TLSPort
	}
	s, err := f.svc.CreateLDAPServer(ctx, LDAPServer{Address: srv.Host, PortNumber: port, Secure: secure,
		Username: ldaptest.AdminDN, Password: secret.New(ldaptest.AdminPassword)})
	if err != nil {
		t.Fatal(err)
	}
	mp, err := f.svc.CreateLDAPMapping(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	src, err := f.svc.CreateLDAPSource(ctx, LDAPSource{Server: s.ID, Mapping: mp.ID, BaseDN: ldaptest.PeopleDN,
		Filter: "(objectClass=inetOrgPerson)"})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func (f *fixture) sync(t *testing.T, source string) LDAPSync {
	t.Helper()
	ctx := ctxT(t)
	v, err := f.svc.StartSync(ctx, source, false)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != store.SyncPending {
		t.Errorf("a new sync's state = %q, want pending", v.State)
	}
	done, err := f.svc.WaitSync(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// ldapUsers lists the users as "jid|name|email".
func (f *fixture) ldapUsers(t *testing.T) []string {
	t.Helper()
	us, _, err := f.svc.List(ctxT(t), "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, u := range us {
		if u.Kind == KindLDAP {
			out = append(out, u.JID+"|"+u.Name+"|"+u.Email)
		}
	}
	sort.Strings(out)
	return out
}

func TestLDAPUsers(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Options{})
	dns := srv.Add(t,
		ldaptest.Person{UID: "ada", CN: "Ada Lovelace", Mail: "ada@example.com", Password: "ada-pw"},
		ldaptest.Person{UID: "Bob", CN: "Bob Builder", Password: "bob-pw"},
		ldaptest.Person{UID: "cat", CN: "Cat Stevens", Mail: "cat@example.com", Password: "cat-pw"},
		ldaptest.Person{UID: "bad:uid", CN: "Not A Localpart", Password: "x"},
	)
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	if _, err := f.svc.CreateLocal(ctx, LocalUser{Username: "local"}, secret.New("local-pw")); err != nil {
		t.Fatal(err)
	}
	src := ldapSetup(t, f, srv, false, LDAPMapping{JIDMapping: "$uid$@example.com", NameMapping: "$cn$", CDRTagMapping: "$sn|'/ .*//'$"})

	v := f.sync(t, src.ID)
	if v.State != store.SyncComplete || v.UsersCreated != 3 || v.NumUsersImported != 3 || v.EntriesSkipped != 1 || v.NumSourcesComplete != 1 {
		t.Fatalf("first sync = %+v, want complete with 3 users created and 1 entry skipped", v)
	}
	want := []string{"ada@example.com|Ada Lovelace|ada@example.com", "bob@example.com|Bob Builder|", "cat@example.com|Cat Stevens|cat@example.com"}
	if got := f.ldapUsers(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("users after the first sync = %v, want %v", got, want)
	}
	ada, err := f.svc.GetByJID(ctx, "ada@example.com")
	if err != nil || ada.Kind != KindLDAP || ada.LDAPSource != src.ID || ada.LDAPDN != dns[0] || ada.CDRTag != "Ada" {
		t.Errorf("ada = %+v, %v", ada, err)
	}

	t.Run("login", func(t *testing.T) {
		for _, tt := range []struct {
			mech, user, pass string
			kind, cond       string
		}{
			{loginrelay.MechPLAIN, "ada", "ada-pw", "success", ""},
			{loginrelay.MechPLAIN, "bob@example.com", "bob-pw", "success", ""},
			{loginrelay.MechPLAIN, "ada", "wrong", "failure", loginrelay.CondNotAuthorized},
			{loginrelay.MechSCRAMSHA256, "ada", "ada-pw", "failure", loginrelay.CondInvalidMechanism},
			{loginrelay.MechSCRAMSHA1, "ada", "ada-pw", "failure", loginrelay.CondInvalidMechanism},
			{loginrelay.MechPLAIN, "local", "local-pw", "success", ""},
			// A directory user and a name nobody has look alike: "use PLAIN" to SCRAM, and
			// not-authorized (with the same text) to a wrong PLAIN password.
			{loginrelay.MechSCRAMSHA256, "nobody", "x", "failure", loginrelay.CondInvalidMechanism},
			{loginrelay.MechPLAIN, "nobody", "wrong", "failure", loginrelay.CondNotAuthorized},
		} {
			r := f.login(t, tt.mech, tt.user, tt.pass)
			if r.Kind != tt.kind || r.Condition != tt.cond {
				t.Errorf("%s %s/%s = %+v, want %s %s", tt.mech, tt.user, tt.pass, r, tt.kind, tt.cond)
			}
		}
	})

	t.Run("a directory user looks like nobody", func(t *testing.T) {
		for _, mech := range []string{loginrelay.MechSCRAMSHA256, loginrelay.MechSCRAMSHA1, loginrelay.MechPLAIN} {
			directory, nobody := f.login(t, mech, "cat", "wrong"), f.login(t, mech, "nobody-at-all", "wrong")
			if directory != nobody {
				t.Errorf("%s: directory user answered %+v, nobody %+v: want the same", mech, directory, nobody)
			}
		}
	})

	t.Run("a changed password works at once", func(t *testing.T) {
		srv.SetPassword(t, dns[0], "ada-new-pw")
		if r := f.login(t, loginrelay.MechPLAIN, "ada", "ada-new-pw"); r.Kind != "success" {
			t.Errorf("new password = %+v, want success", r)
		}
		if r := f.login(t, loginrelay.MechPLAIN, "ada", "ada-pw"); r.Kind != "failure" || r.Condition != loginrelay.CondNotAuthorized {
			t.Errorf("old password = %+v, want not-authorized", r)
		}
	})

	t.Run("modify and delete are refused", func(t *testing.T) {
		name := "x"
		if _, err := f.svc.Modify(ctx, ada.ID, Change{Name: &name}); !errors.Is(err, ErrNotLocal) {
			t.Errorf("Modify an LDAP user: %v, want ErrNotLocal", err)
		}
		if err := f.svc.Delete(ctx, ada.ID); !errors.Is(err, ErrNotLocal) {
			t.Errorf("Delete an LDAP user: %v, want ErrNotLocal", err)
		}
	})

	t.Run("resync", func(t *testing.T) {
		srv.Delete(t, dns[1])                                                    // bob leaves
		srv.Modify(t, dns[2], map[string][]string{"cn": {"Cat S."}, "mail": {}}) // cat changes
		srv.Add(t, ldaptest.Person{UID: "dan", CN: "Dan", Password: "dan-pw"})   // dan arrives
		v := f.sync(t, "")
		if v.State != store.SyncComplete || v.UsersCreated != 1 || v.UsersUpdated != 1 || v.UsersDeleted != 1 || v.NumUsersImported != 3 {
			t.Fatalf("resync = %+v, want 1 created, 1 updated, 1 deleted", v)
		}
		want := []string{"ada@example.com|Ada Lovelace|ada@example.com", "cat@example.com|Cat S.|", "dan@example.com|Dan|"}
		if got := f.ldapUsers(t); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("users after the resync = %v, want %v", got, want)
		}
		if got, _ := f.svc.GetByJID(ctx, "ada@example.com"); got.ID != ada.ID {
			t.Errorf("ada's ID changed across syncs: %s, was %s", got.ID, ada.ID)
		}
		if r := f.login(t, loginrelay.MechPLAIN, "bob", "bob-pw"); r.Kind != "failure" || r.Condition != loginrelay.CondNotAuthorized {
			t.Errorf("a removed user's login = %+v, want not-authorized", r)
		}
	})

	t.Run("server down", func(t *testing.T) {
		srv.Stop()
		r := f.login(t, loginrelay.MechPLAIN, "ada", "ada-new-pw")
		if r.Kind != "failure" || r.Condition != loginrelay.CondTemporaryAuthFail {
			t.Errorf("LDAP user with the server down = %+v, want temporary-auth-failure", r)
		}
		if r := f.login(t, loginrelay.MechPLAIN, "local", "local-pw"); r.Kind != "success" {
			t.Errorf("local user with the LDAP server down = %+v, want success", r)
		}
		v := f.sync(t, src.ID)
		if v.State != store.SyncFailed || v.FailureReason != SyncLDAPError || !strings.Contains(v.Detail, "connect") {
			t.Errorf("sync with the server down = %+v, want failed ldapError", v)
		}
		if got := f.ldapUsers(t); len(got) != 3 {
			t.Errorf("a failed sync changed the users: %v", got)
		}
		srv.Restart(t)
		if r := f.login(t, loginrelay.MechPLAIN, "ada", "ada-new-pw"); r.Kind != "success" {
			t.Errorf("after the server is back = %+v, want success", r)
		}
	})

	if logs := f.logs.String(); strings.Contains(logs, "ada-new-pw") || strings.Contains(logs, ldaptest.AdminPassword) {
		t.Errorf("a password reached the log:\n%s", logs)
	}
	if !strings.Contains(f.logs.String(), "successful login request from ada@example.com") {
		t.Error("no successful login line for the LDAP user")
	}
}

func TestLDAPSyncFailures(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Options{})
	srv.Add(t, ldaptest.Person{UID: "ada", CN: "Ada", Password: "pw"}, ldaptest.Person{UID: "taken", CN: "T", Password: "pw"})
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)

	t.Run("clash with a local user", func(t *testing.T) {
		if _, err := f.svc.CreateLocal(ctx, LocalUser{Username: "taken"}, secret.New("pw")); err != nil {
			t.Fatal(err)
		}
		src := ldapSetup(t, f, srv, false, LDAPMapping{JIDMapping: "$uid$@example.com"})
		v := f.sync(t, src.ID)
		if v.State != store.SyncFailed || v.FailureReason != SyncClashOccurred || v.ClashingUserJID != "taken@example.com" {
			t.Errorf("sync = %+v, want failed clashOccurred on taken@example.com", v)
		}
		if got := f.ldapUsers(t); len(got) != 0 {
			t.Errorf("a clashing sync imported %v", got)
		}
		if err := f.svc.DeleteLDAPSource(ctx, src.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong bind password", func(t *testing.T) {
		src := ldapSetup(t, f, srv, false, LDAPMapping{JIDMapping: "$cn$.$uid$@example.com"})
		if _, err := f.svc.UpdateLDAPServer(ctx, mustSource(t, f, src.ID).Server, func(v *LDAPServer) error {
			v.Password = secret.New("wrong")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		v := f.sync(t, src.ID)
		if v.State != store.SyncFailed || v.FailureReason != SyncLDAPError || !strings.Contains(v.Detail, "Invalid Credentials") {
			t.Errorf("sync = %+v, want failed ldapError with the bind's error", v)
		}
	})

	t.Run("sync of a missing source", func(t *testing.T) {
		if _, err := f.svc.StartSync(ctx, "no-such-source", false); !errors.As(err, new(*store.RefError)) {
			t.Errorf("StartSync of a missing source: %v, want a RefError", err)
		}
	})

	t.Run("cancel and forget", func(t *testing.T) {
		v := f.sync(t, "")
		if err := f.svc.CancelSync(ctx, v.ID); err != nil {
			t.Errorf("forget a finished sync: %v", err)
		}
		if _, err := f.svc.LDAPSync(ctx, v.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("a forgotten sync: %v, want ErrNotFound", err)
		}
	})
}

func mustSource(t *testing.T, f *fixture, id string) LDAPSource {
	t.Helper()
	s, err := f.svc.LDAPSource(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLDAPSecure(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Options{TLS: true})
	srv.Add(t, ldaptest.Person{UID: "ada", CN: "Ada", Password: "ada-pw"})

	t.Run("verified", func(t *testing.T) {
		f := newFixture(t, Options{LDAPRootCAs: srv.CA}, nil)
		src := ldapSetup(t, f, srv, true, LDAPMapping{JIDMapping: "$uid$@example.com"})
		if v := f.sync(t, src.ID); v.State != store.SyncComplete || v.UsersCreated != 1 {
			t.Fatalf("LDAPS sync = %+v, want complete", v)
		}
		if r := f.login(t, loginrelay.MechPLAIN, "ada", "ada-pw"); r.Kind != "success" {
			t.Errorf("login over LDAPS = %+v, want success", r)
		}
	})
	t.Run("unknown authority", func(t *testing.T) {
		f := newFixture(t, Options{LDAPRootCAs: x509.NewCertPool()}, nil)
		src := ldapSetup(t, f, srv, true, LDAPMapping{JIDMapping: "$uid$@example.com"})
		v := f.sync(t, src.ID)
		if v.State != store.SyncFailed || v.FailureReason != SyncLDAPError || !strings.Contains(v.Detail, "certificate") {
			t.Errorf("LDAPS sync with an untrusted certificate = %+v, want failed naming the certificate", v)
		}
	})
	t.Run("verified by host name", func(t *testing.T) {
		f := newFixture(t, Options{LDAPRootCAs: srv.CA}, nil)
		src := ldapSetup(t, f, srv, true, LDAPMapping{JIDMapping: "$uid$@example.com"})
		if _, err := f.svc.UpdateLDAPServer(ctxT(t), mustSource(t, f, src.ID).Server, func(v *LDAPServer) error {
			v.Address = "localhost" // also in the certificate: verification is by name too
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if v := f.sync(t, src.ID); v.State != store.SyncComplete {
			t.Errorf("LDAPS by name = %+v, want complete", v)
		}
	})
}

func TestLDAPConfigValidation(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	serverTests := []struct {
		v     LDAPServer
		field string
	}{
		{LDAPServer{PortNumber: 389}, "address"},
		{LDAPServer{Address: "ldap example", PortNumber: 389}, "address"},
		{LDAPServer{Address: "ldap.example.com"}, "portNumber"},
		{LDAPServer{Address: "ldap.example.com", PortNumber: 70000}, "portNumber"},
		{LDAPServer{Address: "ldap.example.com", PortNumber: 389, Username: "cn=a\n"}, "username"},
	}
	for _, tt := range serverTests {
		var fe *FieldError
		if _, err := f.svc.CreateLDAPServer(ctx, tt.v); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("CreateLDAPServer(%+v) = %v, want a FieldError on %s", tt.v, err, tt.field)
		}
	}
	srv, err := f.svc.CreateLDAPServer(ctx, LDAPServer{Address: "::1", PortNumber: 389})
	if err != nil {
		t.Fatalf("an IPv6 address: %v", err)
	}
	mappingTests := []struct {
		v     LDAPMapping
		field string
	}{
		{LDAPMapping{}, "jidMapping"},
		{LDAPMapping{JIDMapping: "fixed@example.com"}, "jidMapping"},
		{LDAPMapping{JIDMapping: "$uid"}, "jidMapping"},
		{LDAPMapping{JIDMapping: "$uid$@example.com", NameMapping: "$cn|'/(/x/'$"}, "nameMapping"},
		{LDAPMapping{JIDMapping: "$uid$@example.com", EmailMapping: "$$$"}, "emailMapping"},
	}
	for _, tt := range mappingTests {
		var fe *FieldError
		if _, err := f.svc.CreateLDAPMapping(ctx, tt.v); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("CreateLDAPMapping(%+v) = %v, want a FieldError on %s", tt.v, err, tt.field)
		}
	}
	m, err := f.svc.CreateLDAPMapping(ctx, LDAPMapping{JIDMapping: "$uid$@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	sourceTests := []struct {
		v     LDAPSource
		field string
		ref   string
	}{
		{LDAPSource{Mapping: m.ID, BaseDN: "dc=x"}, "server", ""},
		{LDAPSource{Server: srv.ID, Mapping: m.ID}, "baseDn", ""},
		{LDAPSource{Server: srv.ID, Mapping: m.ID, BaseDN: "not a dn"}, "baseDn", ""},
		{LDAPSource{Server: srv.ID, Mapping: m.ID, BaseDN: "dc=x", Filter: "(uid=a"}, "filter", ""},
		{LDAPSource{Server: "nope", Mapping: m.ID, BaseDN: "dc=x"}, "", "ldapServer"},
		{LDAPSource{Server: srv.ID, Mapping: "nope", BaseDN: "dc=x"}, "", "ldapMapping"},
	}
	for _, tt := range sourceTests {
		_, err := f.svc.CreateLDAPSource(ctx, tt.v)
		var fe *FieldError
		var ref *store.RefError
		switch {
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("CreateLDAPSource(%+v) = %v, want a FieldError on %s", tt.v, err, tt.field)
		case tt.ref != "" && (!errors.As(err, &ref) || ref.Kind != tt.ref):
			t.Errorf("CreateLDAPSource(%+v) = %v, want a RefError for %s", tt.v, err, tt.ref)
		}
	}
	src, err := f.svc.CreateLDAPSource(ctx, LDAPSource{Server: srv.ID, Mapping: m.ID, BaseDN: "dc=x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteLDAPServer(ctx, srv.ID); !errors.Is(err, ErrInUse) {
		t.Errorf("delete a server in use: %v, want ErrInUse", err)
	}
	// An invalid update changes nothing.
	var fe *FieldError
	if _, err := f.svc.UpdateLDAPMapping(ctx, m.ID, func(v *LDAPMapping) error { v.JIDMapping = ""; return nil }); !errors.As(err, &fe) {
		t.Errorf("unset jidMapping: %v, want a FieldError", err)
	}
	if got, _ := f.svc.LDAPMapping(ctx, m.ID); got.JIDMapping != "$uid$@example.com" {
		t.Errorf("a refused update changed the mapping to %+v", got)
	}
	_ = src
}

// The Service stops cleanly with a sync waiting on a server that does not answer.
func TestCloseDuringSync(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	ctx := ctxT(t)
	// A listener that accepts and never answers: the bind waits until Close cancels it.
	srv, err := f.svc.CreateLDAPServer(ctx, LDAPServer{Address: "127.0.0.1", PortNumber: silentPort(t), Username: "cn=x", Password: secret.New("y")})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := f.svc.CreateLDAPMapping(ctx, LDAPMapping{JIDMapping: "$uid$@example.com"})
	src, err := f.svc.CreateLDAPSource(ctx, LDAPSource{Server: srv.ID, Mapping: m.ID, BaseDN: "dc=x"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.svc.StartSync(ctx, src.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, f, v.ID, store.SyncInProgress)
	f.svc.Close()
	got, err := f.st.LDAPSync(context.Background(), v.ID)
	if err != nil || got.State != store.SyncFailed || !strings.Contains(got.Detail, "stopped") {
		t.Errorf("a sync cut short by Close = %+v, %v; want failed", got, err)
	}
}

// silentPort listens on loopback and accepts connections without ever answering.
func silentPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitState polls a sync's record until it reaches state (the worker announces only ends).
func waitState(t *testing.T, f *fixture, id, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := f.st.LDAPSync(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if v.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync %s is %s after 20s, want %s", id, v.State, state)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}
