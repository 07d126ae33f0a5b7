package webadmin_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPagesRender opens every page as a signed-in administrator.
func TestPagesRender(t *testing.T) {
	e := newAdminEnv(t)
	e.login(t, e.client)
	e.b.addRecord(e.clock.Now(), slog.LevelInfo, "callbridge", "started")
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/admin/spaces", 200, `id="new-space"`},
		{"/admin/spaces/new", 200, `id="space-form"`},
		{"/admin/spaces/4f0c7e1a", 200, `id="member-form"`},
		{"/admin/spaces/4f0c7e1a/delete", 200, `A call is live in this space with 2 participants`},
		{"/admin/spaces/9b2d5c30/delete", 200, `No call is live in this space.`},
		{"/admin/spaces/nope", 404, `Page not found`},
		{"/admin/users", 200, `id="user-form"`},
		{"/admin/users/u-alice/password", 200, `id="password-form"`},
		{"/admin/users/nobody/password", 404, `Page not found`},
		{"/admin/ldap", 200, `id="server-form"`},
		{"/admin/calls", 200, `href="/admin/calls/c-1/participants/p2/remove"`},
		{"/admin/calls/c-1/end", 200, `This ends the call for 2 participants.`},
		{"/admin/calls/c-1/participants/p2/remove", 200, `Remove Ada (guest) from the call?`},
		{"/admin/calls/c-9/end", 404, `no longer there`},
		{"/admin/logs", 200, `id="log-records"`},
		{"/admin/nowhere", 404, `There is no page at`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := e.get(t, e.client, tc.path)
			if res.code != tc.code || !strings.Contains(res.body, tc.want) {
				t.Errorf("GET %s: %d, contains %q: %v; want %d and true", tc.path, res.code, tc.want, strings.Contains(res.body, tc.want), tc.code)
			}
		})
	}
}

// TestNotFoundSignedOut: the 404 page is friendly without a session too, and shows no menu.
func TestNotFoundSignedOut(t *testing.T) {
	e := newAdminEnv(t)
	for _, path := range []string{"/admin/nowhere", "/admin/assets/nope.js", "/admin/a/b/c"} {
		res := e.get(t, e.client, path)
		if res.code != http.StatusNotFound || !strings.Contains(res.body, "Page not found") || strings.Contains(res.body, `data-nav="status"`) {
			t.Errorf("GET %s signed out: %d; want 404 with the friendly page and no menu", path, res.code)
		}
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
}

var locationID = regexp.MustCompile(`^/admin/spaces/([^/?]+)\?done=space-created$`)

// TestSpaceLifecycle creates, edits and deletes a space through its forms, with members.
func TestSpaceLifecycle(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.login(t, e.client)
	post := func(path string, v url.Values) response {
		t.Helper()
		v.Set("csrf", tok)
		return e.post(t, e.client, path, v, nil)
	}
	// Errors come back beside their fields, with what was typed.
	for _, tc := range []struct {
		name   string
		form   url.Values
		field  string
		wanted string
	}{
		{"no name", url.Values{"name": {""}, "uri": {"x"}}, "name", "Enter a name"},
		{"call ID not digits", url.Values{"name": {"A"}, "callId": {"12a"}}, "callId", "Use digits only"},
		{"passcode not digits", url.Values{"name": {"A"}, "passcode": {"abc"}}, "passcode", "Use digits only"},
		{"URI taken (backend)", url.Values{"name": {"A"}, "uri": {"design"}}, "uri", "Another space already has this URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := post("/admin/spaces/new", tc.form)
			want := `data-field="` + tc.field + `">` + tc.wanted
			if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, want) {
				t.Errorf("%d, body has %q: %v; want 422 and true", res.code, want, strings.Contains(res.body, want))
			}
		})
	}
	res := post("/admin/spaces/new", url.Values{"name": {"Weekly sync"}, "uri": {"weekly"}, "callId": {"4242"}, "passcode": {"1234"}, "nonMemberAccess": {"1"}})
	m := locationID.FindStringSubmatch(res.header.Get("Location"))
	if res.code != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d to %q, want 303 to the new space", res.code, res.header.Get("Location"))
	}
	id := m[1]
	page := e.get(t, e.client, "/admin/spaces/"+id+"?done=space-created")
	for _, want := range []string{"Space created.", `value="Weekly sync"`, `value="weekly"`, `value="4242"`, `id="passcode-state">set<`, `name="nonMemberAccess" type="checkbox" value="1" checked`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the new space's page lacks %q", want)
		}
	}
	res = post("/admin/spaces/"+id, url.Values{"name": {"Weekly sync (Tue)"}, "uri": {"weekly"}, "callId": {"4242"}, "clearPasscode": {"1"}})
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/admin/spaces/"+id+"?done=space-saved" {
		t.Fatalf("save: %d to %q", res.code, res.header.Get("Location"))
	}
	sp, err := e.b.Space(t.Context(), id)
	if err != nil || sp.Name != "Weekly sync (Tue)" || sp.PasscodeSet || sp.NonMemberAccess {
		t.Errorf("after save: %+v %v; want the new name, no passcode, members only", sp.SpaceView, err)
	}
	// Members.
	res = post("/admin/spaces/"+id+"/members", url.Values{"jid": {"not a jid"}, "role": {"member"}})
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `data-field="jid">Not a JID`) {
		t.Errorf("bad JID: %d", res.code)
	}
	res = post("/admin/spaces/"+id+"/members", url.Values{"jid": {"Alice@example.com"}, "role": {"owner"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("add member: %d", res.code)
	}
	sp, _ = e.b.Space(t.Context(), id)
	if len(sp.MemberList) != 1 || sp.MemberList[0].JID != "alice@example.com" || sp.MemberList[0].Role != "owner" {
		t.Fatalf("members %+v, want alice as owner", sp.MemberList)
	}
	res = post("/admin/spaces/"+id+"/members/"+sp.MemberList[0].ID+"/remove", url.Values{})
	if sp, _ = e.b.Space(t.Context(), id); res.code != http.StatusSeeOther || len(sp.MemberList) != 0 {
		t.Errorf("remove member: %d, members %+v", res.code, sp.MemberList)
	}
	// Delete: the confirmation names the space; the POST deletes it.
	conf := e.get(t, e.client, "/admin/spaces/"+id+"/delete")
	if !strings.Contains(conf.body, "Delete the space “Weekly sync (Tue)”?") {
		t.Errorf("the confirmation does not name the space")
	}
	res = post("/admin/spaces/"+id+"/delete", url.Values{})
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/admin/spaces?done=space-deleted" {
		t.Errorf("delete: %d to %q", res.code, res.header.Get("Location"))
	}
	if _, err := e.b.Space(t.Context(), id); err == nil {
		t.Errorf("the space is still there")
	}
	// Every state-changing route refuses a request without the token.
	for _, path := range []string{"/admin/spaces/new", "/admin/spaces/4f0c7e1a", "/admin/spaces/4f0c7e1a/delete", "/admin/spaces/4f0c7e1a/members",
		"/admin/users", "/admin/users/u-alice/password", "/admin/ldap/servers", "/admin/ldap/sync", "/admin/calls/c-1/end", "/admin/calls/c-1/participants/p1/remove"} {
		if res := e.post(t, e.client, path, url.Values{"name": {"x"}}, nil); res.code != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d, want 403", path, res.code)
		}
	}
}

// TestUsersForms creates a local user and resets its password.
func TestUsersForms(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.login(t, e.client)
	for _, tc := range []struct {
		name         string
		form         url.Values
		field, wants string
	}{
		{"no username", url.Values{"password": {"longenough"}, "confirmPassword": {"longenough"}}, "username", "Enter a username"},
		{"short password", url.Values{"username": {"carol"}, "password": {"short"}, "confirmPassword": {"short"}}, "password", "Use at least 8 characters"},
		{"confirmation differs", url.Values{"username": {"carol"}, "password": {"longenough"}, "confirmPassword": {"longenougH"}}, "confirmPassword", "The two passwords differ"},
		{"exists (backend)", url.Values{"username": {"alice"}, "password": {"longenough"}, "confirmPassword": {"longenough"}}, "username", "A user alice@example.com exists already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", tok)
			res := e.post(t, e.client, "/admin/users", tc.form, nil)
			want := `data-field="` + tc.field + `">` + tc.wants
			if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, want) {
				t.Errorf("%d, has %q: %v; want 422, true", res.code, want, strings.Contains(res.body, want))
			}
			if strings.Contains(res.body, "longenough") {
				t.Errorf("the page shows the typed password")
			}
		})
	}
	res := e.post(t, e.client, "/admin/users", url.Values{"csrf": {tok}, "username": {"carol"}, "name": {"Carol Danvers"}, "email": {"carol@example.com"},
		"password": {"correct horse"}, "confirmPassword": {"correct horse"}}, nil)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/admin/users?done=user-created" {
		t.Fatalf("create: %d to %q", res.code, res.header.Get("Location"))
	}
	list := e.get(t, e.client, "/admin/users?done=user-created")
	m := regexp.MustCompile(`data-jid="carol@example.com" data-user-id="([^"]+)"`).FindStringSubmatch(list.body)
	if m == nil || !strings.Contains(list.body, "User created.") {
		t.Fatalf("the list lacks carol or the notice")
	}
	if got := e.b.password(m[1]); got != "correct horse" {
		t.Errorf("password %q", got)
	}
	res = e.post(t, e.client, "/admin/users/"+m[1]+"/password", url.Values{"csrf": {tok}, "password": {"battery staple"}, "confirmPassword": {"battery staple"}}, nil)
	if res.code != http.StatusSeeOther || e.b.password(m[1]) != "battery staple" {
		t.Errorf("reset: %d, password %q", res.code, e.b.password(m[1]))
	}
	// An LDAP user's password is the directory's.
	res = e.post(t, e.client, "/admin/users/u-bob/password", url.Values{"csrf": {tok}, "password": {"battery staple"}, "confirmPassword": {"battery staple"}}, nil)
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, "imported from LDAP") {
		t.Errorf("LDAP user's password: %d", res.code)
	}
}

// TestSettingsWarnBeforeEndingCalls: a change that drops the link while calls are live
// asks again, naming the calls and people; only the confirmation of the same session saves.
func TestSettingsWarnBeforeEndingCalls(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.login(t, e.client)
	for _, tc := range []struct {
		name string
		form url.Values
		warn bool
	}{
		{"nothing that drops the link", url.Values{"uniqueName": {"cb1"}, "domain": {"example.com"}, "serverAddressOverride": {"xmpp.example.com:5223"}}, false},
		{"unique name", url.Values{"uniqueName": {"cb2"}, "domain": {"example.com"}, "serverAddressOverride": {"xmpp.example.com:5223"}}, true},
		{"domain", url.Values{"uniqueName": {"cb1"}, "domain": {"example.org"}, "serverAddressOverride": {"xmpp.example.com:5223"}}, true},
		{"server address", url.Values{"uniqueName": {"cb1"}, "domain": {"example.com"}, "serverAddressOverride": {""}}, true},
		{"secret", url.Values{"uniqueName": {"cb1"}, "domain": {"example.com"}, "serverAddressOverride": {"xmpp.example.com:5223"}, "sharedSecret": {"n3w"}, "confirmSharedSecret": {"n3w"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.b.setCalls())
			tc.form.Set("csrf", tok)
			res := e.post(t, e.client, "/admin/configuration/general", tc.form, nil)
			saved := len(e.b.setCalls()) > before
			warned := res.code == http.StatusConflict && strings.Contains(res.body, `data-calls="1" data-participants="2"`) &&
				strings.Contains(res.body, "Saving will end 1 live call with 2 participants")
			if warned != tc.warn || saved == tc.warn {
				t.Errorf("%d: warned %v, saved %v; want warned %v, saved %v", res.code, warned, saved, tc.warn, !tc.warn)
			}
			if strings.Contains(res.body, "n3w") {
				t.Errorf("the warning page holds the new secret")
			}
		})
	}
	res := e.post(t, e.client, "/admin/configuration/general", url.Values{"csrf": {tok}, "uniqueName": {"cb3"}, "domain": {"example.com"},
		"serverAddressOverride": {"xmpp.example.com:5223"}, "sharedSecret": {"n3w-2"}, "confirmSharedSecret": {"n3w-2"}}, nil)
	confirm := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(res.body)
	if confirm == nil {
		t.Fatalf("no confirmation token on the warning page (%d)", res.code)
	}
	// Another administrator's session cannot use it.
	other := e.newClient(t)
	otherTok := e.login(t, other)
	before := len(e.b.setCalls())
	if res := e.post(t, other, "/admin/configuration/general", url.Values{"csrf": {otherTok}, "confirm": {confirm[1]}}, nil); res.code != http.StatusConflict || len(e.b.setCalls()) != before {
		t.Errorf("another session's confirmation: %d, saved %v; want 409, nothing saved", res.code, len(e.b.setCalls()) != before)
	}
	res = e.post(t, e.client, "/admin/configuration/general", url.Values{"csrf": {tok}, "confirm": {confirm[1]}}, nil)
	calls := e.b.setCalls()
	if res.code != http.StatusSeeOther || len(calls) != before+1 || calls[len(calls)-1].uniqueName != "cb3" || calls[len(calls)-1].secret == nil || *calls[len(calls)-1].secret != "n3w-2" {
		t.Errorf("confirmed: %d, last save %+v; want 303 and cb3 with the new secret", res.code, calls[len(calls)-1])
	}
	// A token works once.
	if res := e.post(t, e.client, "/admin/configuration/general", url.Values{"csrf": {tok}, "confirm": {confirm[1]}}, nil); res.code != http.StatusConflict {
		t.Errorf("second use of the token: %d, want 409", res.code)
	}
}

// TestEventLogPage searches, filters and pages the records, newest first.
func TestEventLogPage(t *testing.T) {
	e := newAdminEnv(t)
	e.login(t, e.client)
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for i := range 120 {
		comp, level := "link", slog.LevelInfo
		if i%3 == 0 {
			comp = "media"
		}
		if i%10 == 0 {
			level = slog.LevelWarn
		}
		e.b.addRecord(t0.Add(time.Duration(i)*time.Second), level, comp, "record "+itoa3(i), "seq", itoa3(i))
	}
	e.b.addRecord(t0.Add(time.Hour), slog.LevelError, "link", "registration refused", "reason", "not-authorized", "secret", "[redacted]")
	rows := regexp.MustCompile(`<tr data-level="([a-z]+)" data-component="([a-z]+)">`)
	for _, tc := range []struct {
		query     string
		rows      int
		first     string // the first record's message
		total     string
		older     bool
		levels    string // every row's level must be one of these
		component string
	}{
		{"", 50, "registration refused", "121 records", true, "info warn error", ""},
		{"?page=3", 21, "record 020", "121 records", false, "info warn error", ""},
		{"?page=99", 21, "record 020", "121 records", false, "info warn error", ""},
		{"?level=warn", 13, "registration refused", "13 records", false, "warn error", ""},
		{"?component=media", 40, "record 117", "40 records", false, "info warn", "media"},
		{"?q=NOT-AUTHORIZED", 1, "registration refused", "1 record", false, "error", ""},
		{"?q=record+10&level=warn", 1, "record 100", "1 record", false, "warn", ""},
		{"?q=nothing+like+this", 0, "", "0 records", false, "", ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			res := e.get(t, e.client, "/admin/logs"+tc.query)
			got := rows.FindAllStringSubmatch(res.body, -1)
			if len(got) != tc.rows {
				t.Fatalf("%d rows, want %d", len(got), tc.rows)
			}
			for _, r := range got {
				if !strings.Contains(tc.levels, r[1]) || (tc.component != "" && r[2] != tc.component) {
					t.Errorf("row of level %s, component %s; want levels %q, component %q", r[1], r[2], tc.levels, tc.component)
				}
			}
			if tc.first != "" {
				i := strings.Index(res.body, `<tbody id="log-records">`)
				if j := strings.Index(res.body[i:], tc.first); j < 0 || strings.Index(res.body[i:], "record ") >= 0 && strings.Index(res.body[i:], "record ") < j && tc.first != "registration refused" {
					t.Errorf("the first record is not %q", tc.first)
				}
			}
			if !strings.Contains(res.body, `<span id="log-total">`+tc.total+`</span>`) {
				t.Errorf("total is not %q", tc.total)
			}
			if has := strings.Contains(res.body, `id="log-older"`); has != tc.older {
				t.Errorf("older link %v, want %v", has, tc.older)
			}
		})
	}
}

func itoa3(i int) string {
	return string([]byte{byte('0' + i/100), byte('0' + i/10%10), byte('0' + i%10)})
}
