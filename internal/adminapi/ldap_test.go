package adminapi

import (
	"context"
	"encoding/xml"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/callbridge/users/ldaptest"
)

type ldapServerGot struct {
	XMLName    xml.Name `xml:"ldapServer" json:"-"`
	ID         string   `xml:"id,attr" json:"id"`
	Address    string   `xml:"address" json:"address"`
	PortNumber int      `xml:"portNumber" json:"portNumber"`
	Username   string   `xml:"username" json:"username"`
	Secure     bool     `xml:"secure" json:"secure"`
}

type ldapMappingGot struct {
	XMLName       xml.Name `xml:"ldapMapping" json:"-"`
	ID            string   `xml:"id,attr" json:"id"`
	JIDMapping    string   `xml:"jidMapping" json:"jidMapping"`
	NameMapping   string   `xml:"nameMapping" json:"nameMapping"`
	EmailMapping  string   `xml:"emailMapping" json:"emailMapping"`
	CDRTagMapping string   `xml:"cdrTagMapping" json:"cdrTagMapping"`
}

type ldapSourceGot struct {
	XMLName xml.Name `xml:"ldapSource" json:"-"`
	ID      string   `xml:"id,attr" json:"id"`
	Server  string   `xml:"server" json:"server"`
	Mapping string   `xml:"mapping" json:"mapping"`
	BaseDN  string   `xml:"baseDn" json:"baseDn"`
	Filter  string   `xml:"filter" json:"filter"`
}

type ldapSyncGot struct {
	XMLName                xml.Name `xml:"ldapSync" json:"-"`
	ID                     string   `xml:"id,attr" json:"id"`
	State                  string   `xml:"state" json:"state"`
	LDAPSource             string   `xml:"ldapSource" json:"ldapSource"`
	FailureReason          string   `xml:"failureReason" json:"failureReason"`
	ClashingUserJID        string   `xml:"clashingUserJid" json:"clashingUserJid"`
	NumUsersImported       int      `xml:"numUsersImported" json:"numUsersImported"`
	NumLDAPSourcesComplete int      `xml:"numLdapSourcesComplete" json:"numLdapSourcesComplete"`
	RemoveWhenFinished     bool     `xml:"removeWhenFinished" json:"removeWhenFinished"`
	UsersCreated           int      `xml:"usersCreated" json:"usersCreated"`
	UsersUpdated           int      `xml:"usersUpdated" json:"usersUpdated"`
	UsersDeleted           int      `xml:"usersDeleted" json:"usersDeleted"`
	EntriesSkipped         int      `xml:"entriesSkipped" json:"entriesSkipped"`
	Detail                 string   `xml:"detail" json:"detail"`
	CreatedTime            string   `xml:"createdTime" json:"createdTime"`
	StartTime              string   `xml:"startTime" json:"startTime"`
	EndTime                string   `xml:"endTime" json:"endTime"`
}

func TestLDAPConfigEndpoints(t *testing.T) {
	for _, isJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "XML", true: "JSON"}[isJSON], func(t *testing.T) {
			e := newUsersEnv(t, users.Options{})
			accept := ""
			if isJSON {
				accept = "application/json"
			}
			const bindPw = "bind-Secret-42"
			srvID := e.create(t, "ldapServers", url.Values{"address": {"ldap.example.com"}, "portNumber": {"389"},
				"username": {"cn=reader,dc=example,dc=com"}, "password": {bindPw}, "secure": {"false"}})
			var sv ldapServerGot
			body := e.get(t, "/api/v1/ldapServers/"+srvID, "ldapServer", isJSON, &sv)
			sv.XMLName = xml.Name{}
			if want := (ldapServerGot{ID: srvID, Address: "ldap.example.com", PortNumber: 389, Username: "cn=reader,dc=example,dc=com"}); sv != want {
				t.Errorf("GET ldapServer = %+v, want %+v", sv, want)
			}
			if strings.Contains(body, bindPw) || strings.Contains(body, "password") {
				t.Errorf("GET ldapServer %q shows the password", body)
			}
			// PUT: only what is given changes; the password stays.
			if resp, body := e.do(t, req{method: "PUT", path: "/api/v1/ldapServers/" + srvID, form: url.Values{"portNumber": {"636"}, "secure": {"true"}}}); resp.StatusCode != 200 {
				t.Fatalf("PUT ldapServer: %d %q", resp.StatusCode, body)
			}
			sv = ldapServerGot{}
			e.get(t, "/api/v1/ldapServers/"+srvID, "ldapServer", isJSON, &sv)
			if sv.PortNumber != 636 || !sv.Secure || sv.Address != "ldap.example.com" {
				t.Errorf("after PUT: %+v", sv)
			}
			if st, _ := e.users.LDAPServer(context.Background(), srvID); st.Password.Reveal() != bindPw {
				t.Error("a PUT without password changed the stored password")
			}

			mapID := e.create(t, "ldapMappings", url.Values{"jidMapping": {"$uid$@example.com"}, "nameMapping": {"$cn$"},
				"cdrTagMapping": {"$ou|'/ /_/g'$"}})
			var mp ldapMappingGot
			e.get(t, "/api/v1/ldapMappings/"+mapID, "ldapMapping", isJSON, &mp)
			if mp.JIDMapping != "$uid$@example.com" || mp.NameMapping != "$cn$" || mp.CDRTagMapping != "$ou|'/ /_/g'$" {
				t.Errorf("GET ldapMapping = %+v", mp)
			}

			srcID := e.create(t, "ldapSources", url.Values{"server": {srvID}, "mapping": {mapID},
				"baseDn": {"ou=people,dc=example,dc=com"}, "filter": {"(objectClass=inetOrgPerson)"}})
			var sc ldapSourceGot
			e.get(t, "/api/v1/ldapSources/"+srcID, "ldapSource", isJSON, &sc)
			if sc.Server != srvID || sc.Mapping != mapID || sc.BaseDN != "ou=people,dc=example,dc=com" || sc.Filter != "(objectClass=inetOrgPerson)" {
				t.Errorf("GET ldapSource = %+v", sc)
			}

			var list struct {
				XMLName xml.Name        `xml:"ldapSources" json:"-"`
				Total   int             `xml:"total,attr" json:"total"`
				Sources []ldapSourceGot `xml:"ldapSource" json:"ldapSource"`
			}
			e.get(t, "/api/v1/ldapSources", "ldapSources", isJSON, &list)
			if list.Total != 1 || len(list.Sources) != 1 || list.Sources[0].ID != srcID {
				t.Errorf("GET ldapSources = %+v", list)
			}

			missing := "0a2b3c4d-0000-0000-0000-000000000000"
			tests := []struct {
				name   string
				q      req
				status int
				want   failure
			}{
				{"server without address", req{method: "POST", path: "/api/v1/ldapServers", form: url.Values{"portNumber": {"389"}}},
					400, failure{"parameterError", "address", "required"}},
				{"bad port", req{method: "POST", path: "/api/v1/ldapServers", form: url.Values{"address": {"h"}, "portNumber": {"70000"}}},
					400, failure{"parameterError", "portNumber", "invalidValue"}},
				{"bad secure", req{method: "PUT", path: "/api/v1/ldapServers/" + srvID, form: url.Values{"secure": {"yes"}}},
					400, failure{"parameterError", "secure", "invalidValue"}},
				{"unterminated template", req{method: "POST", path: "/api/v1/ldapMappings", form: url.Values{"jidMapping": {"$uid@example.com"}}},
					400, failure{"parameterError", "jidMapping", "invalidValue"}},
				{"bad substitution", req{method: "PUT", path: "/api/v1/ldapMappings/" + mapID, form: url.Values{"nameMapping": {"$cn|'/(/x/'$"}}},
					400, failure{"parameterError", "nameMapping", "invalidValue"}},
				{"unset jidMapping", req{method: "PUT", path: "/api/v1/ldapMappings/" + mapID, form: url.Values{"jidMapping": {""}}},
					400, failure{"parameterError", "jidMapping", "required"}},
				{"source with a missing server", req{method: "POST", path: "/api/v1/ldapSources", form: url.Values{"server": {missing}, "mapping": {mapID}, "baseDn": {"dc=x"}}},
					400, failure{Name: "ldapServerDoesNotExist"}},
				{"source with a missing mapping", req{method: "PUT", path: "/api/v1/ldapSources/" + srcID, form: url.Values{"mapping": {missing}}},
					400, failure{Name: "ldapMappingDoesNotExist"}},
				{"bad base DN", req{method: "PUT", path: "/api/v1/ldapSources/" + srcID, form: url.Values{"baseDn": {"people"}}},
					400, failure{"parameterError", "baseDn", "invalidValue"}},
				{"bad filter", req{method: "PUT", path: "/api/v1/ldapSources/" + srcID, form: url.Values{"filter": {"(uid=x"}}},
					400, failure{"parameterError", "filter", "invalidValue"}},
				{"get a missing server", req{method: "GET", path: "/api/v1/ldapServers/" + missing},
					404, failure{Name: "ldapServerDoesNotExist"}},
				{"put a missing mapping", req{method: "PUT", path: "/api/v1/ldapMappings/" + missing, form: url.Values{"nameMapping": {"$cn$"}}},
					404, failure{Name: "ldapMappingDoesNotExist"}},
				{"delete a missing source", req{method: "DELETE", path: "/api/v1/ldapSources/" + missing},
					404, failure{Name: "ldapSourceDoesNotExist"}},
				{"delete a server in use", req{method: "DELETE", path: "/api/v1/ldapServers/" + srvID},
					400, failure{Name: "ldapServerInUse"}},
				{"delete a mapping in use", req{method: "DELETE", path: "/api/v1/ldapMappings/" + mapID},
					400, failure{Name: "ldapMappingInUse"}},
				{"sync a missing source", req{method: "POST", path: "/api/v1/ldapSyncs", form: url.Values{"ldapSource": {missing}}},
					400, failure{Name: "ldapSourceDoesNotExist"}},
				{"get a missing sync", req{method: "GET", path: "/api/v1/ldapSyncs/" + missing},
					404, failure{Name: "ldapSyncDoesNotExist"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.q.accept = accept
					e.expectFailure(t, tt.q, tt.status, tt.want)
				})
			}
			// Refused changes changed nothing.
			mp = ldapMappingGot{}
			e.get(t, "/api/v1/ldapMappings/"+mapID, "ldapMapping", isJSON, &mp)
			if mp.JIDMapping != "$uid$@example.com" || mp.NameMapping != "$cn$" {
				t.Errorf("after refused PUTs: %+v", mp)
			}

			// A source, then its server and mapping, can be deleted.
			for _, path := range []string{"ldapSources/" + srcID, "ldapServers/" + srvID, "ldapMappings/" + mapID} {
				if resp, body := e.do(t, req{method: "DELETE", path: "/api/v1/" + path}); resp.StatusCode != 200 {
					t.Errorf("DELETE %s: %d %q", path, resp.StatusCode, body)
				}
			}
			if logs := e.logs.String(); strings.Contains(logs, bindPw) {
				t.Errorf("the bind password reached the log:\n%s", logs)
			}
		})
	}
}

// waitSyncGot polls GET /ldapSyncs/{id}, as a script would, until the sync has finished.
func (e *usersEnv) waitSyncGot(t *testing.T, id string, isJSON bool) ldapSyncGot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.users.WaitSync(ctx, id); err != nil {
		t.Fatalf("wait for sync %s: %v", id, err)
	}
	var v ldapSyncGot
	e.get(t, "/api/v1/ldapSyncs/"+id, "ldapSync", isJSON, &v)
	return v
}

func TestLDAPSyncEndpoints(t *testing.T) {
	dir := ldaptest.Start(t, ldaptest.Options{})
	dir.Add(t,
		ldaptest.Person{UID: "ada", CN: "Ada Lovelace", Mail: "ada@example.com", Password: "ada-pw"},
		ldaptest.Person{UID: "grace", CN: "Grace Hopper", Password: "grace-pw"},
	)
	for _, isJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "XML", true: "JSON"}[isJSON], func(t *testing.T) {
			e := newUsersEnv(t, users.Options{})
			srvID := e.create(t, "ldapServers", url.Values{"address": {dir.Host}, "portNumber": {strconv.Itoa(dir.Port)},
				"username": {ldaptest.AdminDN}, "password": {ldaptest.AdminPassword}})
			mapID := e.create(t, "ldapMappings", url.Values{"jidMapping": {"$uid$@example.com"}, "nameMapping": {"$cn$"}})
			srcID := e.create(t, "ldapSources", url.Values{"server": {srvID}, "mapping": {mapID}, "baseDn": {ldaptest.PeopleDN},
				"filter": {"(objectClass=inetOrgPerson)"}})

			syncID := e.create(t, "ldapSyncs", url.Values{"ldapSource": {srcID}})
			v := e.waitSyncGot(t, syncID, isJSON)
			if v.State != "complete" || v.LDAPSource != srcID || v.NumUsersImported != 2 || v.UsersCreated != 2 ||
				v.NumLDAPSourcesComplete != 1 || v.FailureReason != "" || v.CreatedTime == "" || v.EndTime == "" {
				t.Errorf("GET ldapSync = %+v, want complete with 2 users", v)
			}

			var l usersGot
			e.get(t, "/api/v1/users", "users", isJSON, &l)
			if l.jids() != "ada@example.com grace@example.com" || l.Users[0].Name != "Ada Lovelace" || l.Users[0].Kind != "ldap" || l.Users[0].Email != "ada@example.com" {
				t.Errorf("GET /users after the sync = %+v", l)
			}

			// A sync of everything, with a failure: the bind password is wrong.
			if resp, body := e.do(t, req{method: "PUT", path: "/api/v1/ldapServers/" + srvID, form: url.Values{"password": {"wrong"}}}); resp.StatusCode != 200 {
				t.Fatalf("PUT ldapServer: %d %q", resp.StatusCode, body)
			}
			failed := e.waitSyncGot(t, e.create(t, "ldapSyncs", nil), isJSON)
			if failed.State != "failed" || failed.FailureReason != "ldapError" || failed.LDAPSource != "" || !strings.Contains(failed.Detail, "Invalid Credentials") {
				t.Errorf("sync with a wrong bind password = %+v, want failed ldapError", failed)
			}

			var syncs struct {
				XMLName xml.Name      `xml:"ldapSyncs" json:"-"`
				Total   int           `xml:"total,attr" json:"total"`
				Syncs   []ldapSyncGot `xml:"ldapSync" json:"ldapSync"`
			}
			e.get(t, "/api/v1/ldapSyncs", "ldapSyncs", isJSON, &syncs)
			if syncs.Total != 2 || len(syncs.Syncs) != 2 || syncs.Syncs[0].ID != syncID || syncs.Syncs[1].State != "failed" {
				t.Errorf("GET ldapSyncs = %+v, want both syncs oldest first", syncs)
			}

			// DELETE forgets a finished sync.
			if resp, body := e.do(t, req{method: "DELETE", path: "/api/v1/ldapSyncs/" + syncID}); resp.StatusCode != 200 {
				t.Fatalf("DELETE ldapSync: %d %q", resp.StatusCode, body)
			}
			e.expectFailure(t, req{method: "GET", path: "/api/v1/ldapSyncs/" + syncID}, 404, failure{Name: "ldapSyncDoesNotExist"})

			// Deleting the source deletes its users.
			if resp, body := e.do(t, req{method: "DELETE", path: "/api/v1/ldapSources/" + srcID}); resp.StatusCode != 200 {
				t.Fatalf("DELETE ldapSource: %d %q", resp.StatusCode, body)
			}
			l = usersGot{}
			e.get(t, "/api/v1/users", "users", isJSON, &l)
			if l.Total != 0 {
				t.Errorf("users after their source was deleted: %+v", l)
			}
			if strings.Contains(e.logs.String(), ldaptest.AdminPassword) {
				t.Errorf("the bind password reached the log")
			}
		})
	}
}

func TestLDAPSyncCancel(t *testing.T) {
	e := newUsersEnv(t, users.Options{})
	// A server that accepts and never answers keeps the first sync running.
	ln := silentListener(t)
	srvID := e.create(t, "ldapServers", url.Values{"address": {"127.0.0.1"}, "portNumber": {strconv.Itoa(ln)}, "username": {"cn=x"}, "password": {"y"}})
	mapID := e.create(t, "ldapMappings", url.Values{"jidMapping": {"$uid$@example.com"}})
	srcID := e.create(t, "ldapSources", url.Values{"server": {srvID}, "mapping": {mapID}, "baseDn": {"dc=x"}})
	running := e.create(t, "ldapSyncs", url.Values{"ldapSource": {srcID}})
	waitSyncState(t, e, running, "inProgress")
	pending := e.create(t, "ldapSyncs", url.Values{"ldapSource": {srcID}})

	var v ldapSyncGot
	e.get(t, "/api/v1/ldapSyncs/"+pending, "ldapSync", false, &v)
	if v.State != "pending" {
		t.Errorf("the second sync is %q, want pending", v.State)
	}
	e.expectFailure(t, req{method: "DELETE", path: "/api/v1/ldapSyncs/" + running}, 400, failure{Name: "ldapSyncCannotBeCancelled"})
	if resp, body := e.do(t, req{method: "DELETE", path: "/api/v1/ldapSyncs/" + pending}); resp.StatusCode != 200 {
		t.Errorf("cancel a pending sync: %d %q", resp.StatusCode, body)
	}
	e.expectFailure(t, req{method: "GET", path: "/api/v1/ldapSyncs/" + pending}, 404, failure{Name: "ldapSyncDoesNotExist"})
}

func waitSyncState(t *testing.T, e *usersEnv, id, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := e.users.LDAPSync(context.Background(), id)
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

// silentListener accepts connections on loopback and never answers; it returns the port.
func silentListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var held []interface{ Close() error }
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
