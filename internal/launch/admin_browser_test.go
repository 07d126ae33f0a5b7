package launch

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/users/ldaptest"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/web/browsertest"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// TestBrowserAdminManage is the administrator's day against a real `confab up`: two
// people in a meeting (XMPP test clients), and in the web admin: the live call with its
// participants; a settings change that would end it, warned about and cancelled; one
// participant removed and the call ended, each after its confirmation, which the clients
// see; the event log showing what was done; and users imported from a real slapd through
// an LDAP server, mapping and source added in the forms and Sync now.
func TestBrowserAdminManage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	dir := t.TempDir()
	u := startUp(t, dir)
	createUser(t, u, "alice", "Alice Example", "correct horse battery")
	createUser(t, u, "bob", "Bob Example", "correct horse battery")
	admin := "https://localhost:" + port(u.CallBridge.Addrs.API)

	// http:// on the admin port is sent to https://.
	plainRedirect(t, u.CallBridge.Addrs.API, "/admin/status", admin+"/admin/status")

	// Alice and Bob join the demo space over XMPP.
	ca, err := os.ReadFile(u.Local.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	h := &xmppdtest.Harness{Domain: u.Domain, C2SAddr: u.XMPP.Addrs.C2S, Roots: roots,
		Users: map[string]string{"alice": "correct horse battery", "bob": "correct horse battery"}}
	space := u.Demo.ID + "@" + link.ComponentJID(u.CallBridge.Link.Config())
	alice, bob := h.Login(t, "alice"), h.Login(t, "bob")
	join(t, alice, space, "Alice Example")
	join(t, bob, space, "Bob Example")
	legs := u.CallBridge.Meetings.CallLegs()
	if len(legs) != 2 {
		t.Fatalf("call legs %+v, want 2", legs)
	}
	bobLeg := legs[1].ID

	b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{serverLeaf(t, u)}, Height: 1000})
	// Generous: under -race beside the other packages' tests a step can take many seconds.
	ctx := b.Context(t, 5*time.Minute)
	run(t, ctx, "sign in to the web admin",
		chromedp.Navigate(admin+"/admin/calls"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), u.AdminUser),
		chromedp.SendKeys(chromedp.CSS("#login-password"), u.AdminPassword),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-participant-id="`+bobLeg+`"]`)))
	if n := evalInt(t, ctx, `document.querySelectorAll("#calls tr[data-participant-id]").length`); n != 2 {
		t.Errorf("%d participants listed, want 2", n)
	}
	b.Screenshot(t, ctx, "admin-calls-live")

	// A new unique name would drop the link and end the call: warned, then cancelled.
	name := u.CallBridge.Link.Config().UniqueName
	run(t, ctx, "change the unique name",
		chromedp.Navigate(admin+"/admin/configuration/general"), chromedp.WaitVisible(chromedp.CSS("#xmpp-form")),
		clear("uniqueName"), chromedp.SendKeys(chromedp.CSS("#uniqueName"), "cb-renamed"),
		chromedp.Click(chromedp.CSS("#xmpp-save")), chromedp.WaitVisible(chromedp.CSS("#disrupt-warning")))
	if got := text(t, ctx, "#disrupt-title"); got != "Saving will end 1 live call with 2 participants" {
		t.Errorf("warning %q", got)
	}
	b.Screenshot(t, ctx, "admin-settings-warning")
	run(t, ctx, "cancel", chromedp.Click(chromedp.CSS("#cancel-save")), chromedp.WaitVisible(chromedp.CSS("#xmpp-form")))
	if got := u.CallBridge.Link.Config().UniqueName; got != name || len(u.CallBridge.Meetings.Calls()) != 1 {
		t.Errorf("after cancelling: unique name %q, %d calls; want %q and the call", got, len(u.CallBridge.Meetings.Calls()), name)
	}

	// Bob is removed: he is told, Alice sees him go.
	run(t, ctx, "remove Bob",
		chromedp.Navigate(admin+"/admin/calls"),
		chromedp.Click(chromedp.CSS(`tr[data-participant-id="`+bobLeg+`"] a.remove-participant`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-remove")))
	b.Screenshot(t, ctx, "admin-remove-confirm")
	run(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm-remove")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	bob.Expect(t, "Bob is told he was removed", func(e *stream.Element) bool { return leftSelf(e, space) })
	alice.Expect(t, "Alice sees Bob leave", func(e *stream.Element) bool {
		return e.Name.Local == "presence" && e.Get("type") == "unavailable" && e.Get("from") == space+"/"+bobLeg
	})
	if n := evalInt(t, ctx, `document.querySelectorAll("#calls tr[data-participant-id]").length`); n != 1 {
		t.Errorf("%d participants listed after removing Bob, want 1", n)
	}

	// The call is ended.
	run(t, ctx, "end the call",
		chromedp.Click(chromedp.CSS("a.end-call")), chromedp.WaitVisible(chromedp.CSS("#confirm-end")),
		chromedp.Click(chromedp.CSS("#confirm-end")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	alice.Expect(t, "Alice is told the call ended", func(e *stream.Element) bool { return leftSelf(e, space) })
	if calls := u.CallBridge.Meetings.Calls(); len(calls) != 0 {
		t.Errorf("calls after ending: %+v", calls)
	}
	b.Screenshot(t, ctx, "admin-call-ended")

	// The event log has what the administrator did.
	run(t, ctx, "search the event log",
		chromedp.Navigate(admin+"/admin/logs"), chromedp.WaitVisible(chromedp.CSS("#log-q")),
		chromedp.SendKeys(chromedp.CSS("#log-q"), "web admin: call ended"), chromedp.Click(chromedp.CSS("#log-search")),
		// The search is a GET of a new page: wait for that page (it has a Clear link), not
		// for the records of the page the search was typed into.
		chromedp.WaitVisible(chromedp.CSS(`#log-form a[href="/admin/logs"]`)),
		chromedp.WaitVisible(chromedp.CSS("#log-records tr[data-level]")))
	if got := text(t, ctx, "#log-total"); got != "1 record" {
		t.Errorf("event log search: %q, want 1 record", got)
	}
	b.Screenshot(t, ctx, "admin-event-log")

	// LDAP: a real slapd with two people, imported through the forms.
	ld := ldaptest.Start(t, ldaptest.Options{})
	ld.Add(t, ldaptest.Person{UID: "lena", CN: "Lena Dap", Mail: "lena@example.com", Password: "lena-pw"},
		ldaptest.Person{UID: "otto", CN: "Otto Dirk", Password: "otto-pw"})
	run(t, ctx, "add the LDAP server",
		chromedp.Navigate(admin+"/admin/ldap"), chromedp.WaitVisible(chromedp.CSS("#server-form")),
		chromedp.SendKeys(chromedp.CSS("#address"), ld.Host), clear("port"), chromedp.SendKeys(chromedp.CSS("#port"), fmt.Sprint(ld.Port)),
		chromedp.SendKeys(chromedp.CSS("#username"), ldaptest.AdminDN), chromedp.SendKeys(chromedp.CSS("#password"), ldaptest.AdminPassword),
		chromedp.Click(chromedp.CSS("#server-add")), chromedp.WaitVisible(chromedp.CSS("#ldap-servers tr[data-id]")))
	run(t, ctx, "add the mapping (the defaults)",
		clear("jid"), chromedp.SendKeys(chromedp.CSS("#jid"), "$uid$@"+u.Domain),
		chromedp.Click(chromedp.CSS("#mapping-add")), chromedp.WaitVisible(chromedp.CSS("#ldap-mappings tr[data-id]")))
	run(t, ctx, "a source without a base DN is refused beside the field",
		chromedp.Click(chromedp.CSS("#source-add")), chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field="baseDn"]`)))
	if got := evalString(t, ctx, `document.activeElement.id`); got != "baseDn" {
		t.Errorf("focus on %q, want #baseDn", got)
	}
	run(t, ctx, "add the source",
		chromedp.SendKeys(chromedp.CSS("#baseDn"), ldaptest.PeopleDN), chromedp.SendKeys(chromedp.CSS("#filter"), "(objectClass=inetOrgPerson)"),
		chromedp.Click(chromedp.CSS("#source-add")), chromedp.WaitVisible(chromedp.CSS("#ldap-sources tr[data-id]")))
	run(t, ctx, "sync now",
		chromedp.Click(chromedp.CSS("#sync-now")),
		chromedp.WaitVisible(chromedp.CSS(`#syncs tr[data-state="complete"], #syncs tr[data-state="failed"]`)))
	if got := evalString(t, ctx, `document.querySelector("#syncs tr").dataset.state + " " + document.querySelector("#syncs tr td:nth-child(4)").innerText`); got != "complete 2 / 0 / 0" {
		t.Errorf("sync: %q, want complete 2 / 0 / 0; detail %q", got, text(t, ctx, "#syncs tr"))
	}
	b.Screenshot(t, ctx, "admin-ldap-synced")
	run(t, ctx, "the imported users", chromedp.Navigate(admin+"/admin/users"),
		chromedp.WaitVisible(chromedp.CSS(`#users tr[data-jid="lena@`+u.Domain+`"]`)), chromedp.WaitVisible(chromedp.CSS(`#users tr[data-jid="otto@`+u.Domain+`"]`)))
	b.Screenshot(t, ctx, "admin-users-imported")
}

// join sends the meeting join and waits for the joiner's own presence.
func join(t *testing.T, c *xmppdtest.Client, space, name string) {
	t.Helper()
	c.Send(t, `<presence to="`+space+`/x"><join xmlns="urn:confab:meeting:1" name="`+name+`"/></presence>`)
	c.Expect(t, name+" is in the meeting", func(e *stream.Element) bool {
		return e.Name.Local == "presence" && e.Get("type") == "" && strings.HasPrefix(e.Get("from"), space+"/") && strings.Contains(e.String(), `self="true"`)
	})
}

// leftSelf is the unavailable presence that tells a participant it is out of the meeting.
func leftSelf(e *stream.Element, space string) bool {
	return e.Name.Local == "presence" && e.Get("type") == "unavailable" && strings.HasPrefix(e.Get("from"), space+"/") && strings.Contains(e.String(), `self="true"`)
}

// plainRedirect sends a plain-HTTP request to a TLS-only address and checks the redirect.
func plainRedirect(t *testing.T, addr, path, want string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost:%s\r\n\r\n", path, port(addr))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("plain HTTP to %s: %v", addr, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != want {
		t.Errorf("plain HTTP to %s%s: %d to %q, want 301 to %q", addr, path, res.StatusCode, res.Header.Get("Location"), want)
	}
}

func evalInt(t *testing.T, ctx context.Context, js string) int {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func evalString(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}
