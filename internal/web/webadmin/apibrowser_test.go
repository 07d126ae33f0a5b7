package webadmin_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/web/webadmin"
)

var location = regexp.MustCompile(`path=(%2F[^&]+)`)

// TestAPIBrowser: Configuration > API lists, shows, creates, changes and deletes objects
// through the real REST API, sending only what was changed, and shows the API's refusals.
func TestAPIBrowser(t *testing.T) {
	e := newAdminEnv(t)
	st := withAPI(t, e.b)
	csrf := e.login(t, e.client)
	ctx := context.Background()

	// The index and an empty collection.
	res := e.get(t, e.client, "/admin/configuration/api")
	for _, w := range []string{`id="api-collections"`, `data-path="/coSpaces"`, `data-path="/callLegProfiles"`, `data-path="/system/cdrReceivers"`, `data-subnav="api"`} {
		if !strings.Contains(res.body, w) {
			t.Errorf("the index lacks %s", w)
		}
	}
	if res := e.get(t, e.client, "/admin/configuration/api?path=/coSpaces"); res.code != 200 || !strings.Contains(res.body, "None.") || !strings.Contains(res.body, `id="api-create"`) {
		t.Fatalf("an empty list: %d", res.code)
	}

	// Create a space with the form: what is empty is not sent.
	res = e.post(t, e.client, "/admin/configuration/api", url.Values{"csrf": {csrf}, "path": {"/coSpaces"}, "op": {"create"},
		"p.name": {"Board room"}, "p.uri": {"board"}, "p.passcode": {"2468"}, "p.nonMemberAccess": {"true"}, "p.defaultLayout": {""}}, nil)
	m := location.FindStringSubmatch(res.header.Get("Location"))
	if res.code != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d %q\n%s", res.code, res.header.Get("Location"), res.body)
	}
	objPath, _ := url.QueryUnescape(m[1])
	id := objPath[strings.LastIndexByte(objPath, '/')+1:]
	sp, err := st.CoSpace(ctx, id)
	if err != nil || sp.Name != "Board room" || sp.Passcode.Reveal() != "2468" || !sp.NonMemberAccess || sp.DefaultLayout != "" {
		t.Fatalf("created %+v, %v", sp, err)
	}

	// The object: its fields, its sub-collections, an edit form without the passcode.
	res = e.get(t, e.client, "/admin/configuration/api?path="+objPath+"&done=created")
	for _, w := range []string{`id="api-notice"`, `data-field="name"`, "Board room", `data-child="accessMethods"`, `id="api-delete-form"`, `name="p.passcode"`} {
		if !strings.Contains(res.body, w) {
			t.Errorf("the object page lacks %s", w)
		}
	}
	if strings.Contains(res.body, "2468") {
		t.Error("the object page shows the passcode")
	}

	// Save: only the changed name is sent; the URI stays although someone changed it meanwhile
	// (a form that sent everything would put the old one back).
	if _, err := st.UpdateCoSpace(ctx, id, func(c *store.CoSpace) error { c.URI = "board.new"; return nil }); err != nil {
		t.Fatal(err)
	}
	res = e.post(t, e.client, "/admin/configuration/api", url.Values{"csrf": {csrf}, "path": {objPath}, "op": {"save"},
		"p.name": {"Boardroom"}, "o.name": {"Board room"}, "p.uri": {"board"}, "o.uri": {"board"}, "p.passcode": {""}, "o.passcode": {""}}, nil)
	if res.code != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", res.code, res.body)
	}
	if sp, _ := st.CoSpace(ctx, id); sp.Name != "Boardroom" || sp.URI != "board.new" || sp.Passcode.Reveal() != "2468" {
		t.Errorf("after save: %+v (passcode %q)", sp, sp.Passcode.Reveal())
	}

	// A refusal is shown with the API's words, what was typed kept, a 4xx status.
	res = e.post(t, e.client, "/admin/configuration/api", url.Values{"csrf": {csrf}, "path": {objPath}, "op": {"save"},
		"p.callId": {"12ab"}, "o.callId": {""}}, nil)
	if res.code != http.StatusBadRequest || !strings.Contains(res.body, `id="api-error"`) || !strings.Contains(res.body, "parameter callId (invalidValue)") ||
		!strings.Contains(res.body, `value="12ab"`) {
		t.Errorf("a refused save: %d\n%s", res.code, res.body)
	}

	// A sub-collection, created from the object.
	res = e.post(t, e.client, "/admin/configuration/api", url.Values{"csrf": {csrf}, "path": {objPath + "/accessMethods"}, "op": {"create"},
		"p.callId": {"9001"}, "p.passcode": {"1357"}, "p.scope": {"private"}}, nil)
	if res.code != http.StatusSeeOther {
		t.Fatalf("create an access method: %d\n%s", res.code, res.body)
	}
	if res := e.get(t, e.client, "/admin/configuration/api?path="+objPath+"/accessMethods"); !strings.Contains(res.body, "9001") || !strings.Contains(res.body, `id="api-range"`) {
		t.Errorf("the access methods list: %s", res.body)
	}

	// Delete needs its confirmation, and a CSRF token.
	res = e.post(t, e.client, "/admin/configuration/api", url.Values{"csrf": {csrf}, "path": {objPath}, "op": {"delete"}}, nil)
	if res.code != http.StatusBadRequest {
		t.Errorf("delete without confirm: %d", res.code)
	}
	res = e.post(t, e.client, "/admin/configuration/api", url.Values{"path": {objPath}, "op": {"delete"}, "confirm": {"1"}}, nil)
	if res.code != http.StatusForbidden {
		t.Errorf("delete without a CSRF token: %d", res.code)
	}
	res = e.post(t, e.client, "/admin/configuration/api", url.Values{"csrf": {csrf}, "path": {objPath}, "op": {"delete"}, "confirm": {"1"}}, nil)
	if res.code != http.StatusSeeOther || !strings.Contains(res.header.Get("Location"), "deleted") {
		t.Fatalf("delete: %d %s", res.code, res.header.Get("Location"))
	}
	if _, err := st.CoSpace(ctx, id); err == nil {
		t.Error("the space outlived its delete")
	}
	// Paths the catalogue does not know are refused before the API is asked.
	for _, p := range []string{"/nothing", "/coSpaces/../system", "/coSpaces/a/b/c/d"} {
		if res := e.get(t, e.client, "/admin/configuration/api?path="+url.QueryEscape(p)); res.code != http.StatusNotFound {
			t.Errorf("path %s: %d", p, res.code)
		}
	}
	// Singletons: shown, and editable where the API takes a PUT.
	res = e.get(t, e.client, "/admin/configuration/api?path=/system/configuration/xmpp")
	if !strings.Contains(res.body, `data-field="domain"`) || !strings.Contains(res.body, `name="p.sharedSecret"`) {
		t.Errorf("the XMPP settings: %s", res.body)
	}
}

// TestAPICatalogServed: every collection and singleton of the catalogue is one the REST API
// serves (GET answers 200), so the page never offers a path that does not exist.
func TestAPICatalogServed(t *testing.T) {
	b := newFakeBackend()
	withAPI(t, b)
	ctx := context.Background()
	space := b.API(ctx, "admin", "POST", "/coSpaces", url.Values{"name": {"x"}})
	spaceID := space.Location[strings.LastIndexByte(space.Location, '/')+1:]
	call := b.API(ctx, "admin", "POST", "/calls", url.Values{"coSpace": {spaceID}})
	callID := call.Location[strings.LastIndexByte(call.Location, '/')+1:]
	for _, k := range webadmin.APICatalog {
		if k.Path == "/users" || strings.HasPrefix(k.Path, "/ldap") || strings.HasPrefix(k.Path, "/participants/") {
			continue // served when the Call Bridge has its users service; a participant needs a meeting
		}
		path := strings.Replace(k.Path, "/coSpaces/{id}", "/coSpaces/"+spaceID, 1)
		path = strings.Replace(path, "/calls/{id}", "/calls/"+callID, 1)
		if r := b.API(ctx, "admin", "GET", path, nil); r.Status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
}
