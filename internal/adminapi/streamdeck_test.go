package adminapi

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// xmppMeeting is a real XMPP server with a Call Bridge's meeting service on its component
// link, and the REST API over that service on HTTPS: what a CMS tool drives while people
// are in a meeting.
type xmppMeeting struct {
	h     *xmppdtest.Harness
	svc   *meeting.Service
	api   *httptest.Server
	space string // the space's XMPP address
}

// guestDirectory lets the harness's users and the meeting's guest accounts log in.
type guestDirectory struct {
	*loginrelay.MemoryDirectory
	svc *meeting.Service
}

func (d guestDirectory) SCRAMCredentials(ctx context.Context, mech, username string) (scram.StoredCredentials, error) {
	if _, ok := d.svc.GuestPassword(username); ok {
		return scram.StoredCredentials{}, loginrelay.ErrNoSCRAM
	}
	return d.MemoryDirectory.SCRAMCredentials(ctx, mech, username)
}

func (d guestDirectory) CheckPlain(ctx context.Context, username, password string) error {
	if p, ok := d.svc.GuestPassword(username); ok {
		if p.Reveal() != password {
			return loginrelay.ErrBadPassword
		}
		return nil
	}
	return d.MemoryDirectory.CheckPlain(ctx, username, password)
}

func startXMPPMeeting(t *testing.T, space store.CoSpace) *xmppMeeting {
	t.Helper()
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
	hash, _ := passhash.Hash(testPassword)
	if err := st.AddAPIUser(ctx, testUser, hash); err != nil {
		t.Fatal(err)
	}
	svc := meeting.New(meeting.Options{Store: st})
	sp, err := svc.CreateSpace(ctx, space)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewTLSServer(New(Options{Store: st, Meetings: svc, AuthFailureDelay: time.Millisecond}))
	t.Cleanup(api.Close)

	// The Call Bridge's side of the link: logins, then meetings.
	sec, ok := h.Registry.Lookup(xmppdtest.DefaultCallBridge)
	if !ok {
		t.Fatal("cb1 is not in the registry")
	}
	conn, err := h.DialComponent(ctx, "cb1."+h.Domain, sec, xmppdtest.DialOptions{ClientCert: &h.ClientCert.Cert})
	if err != nil {
		t.Fatal(err)
	}
	responder := &loginrelay.Responder{Domain: h.Domain, Dir: guestDirectory{h.Directory, svc},
		OnLogin: svc.LoginResult, OnSessionEnd: svc.SessionEnded}
	lctx, cancel := context.WithCancel(ctx)
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
			if e.Payload().Space == loginrelay.NS {
				if e.Name.Local == "iq" {
					if reply := responder.HandleIQ(lctx, e); reply != nil {
						_ = conn.Write(reply)
					}
				} else {
					responder.HandleMessage(e)
				}
				continue
			}
			svc.Handle(lctx, conn, e)
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close("", "")
		cancel()
		<-done
	})
	h.WaitLinks(t, func(l []string) bool { return len(l) == 1 })
	return &xmppMeeting{h: h, svc: svc, api: api, space: sp.ID + "@cb1." + h.Domain}
}

// join logs user in over XMPP, joins the space and returns the client and its participant id.
func (m *xmppMeeting) join(t *testing.T, user string) (*xmppdtest.Client, string) {
	t.Helper()
	c := m.h.Login(t, user)
	c.Send(t, `<presence to="`+m.space+`/x"><join xmlns="urn:confab:meeting:1" name="`+user+`"/></presence>`)
	self := c.Expect(t, user+"'s own presence", func(e *stream.Element) bool {
		return e.Name.Local == "presence" && strings.Contains(e.String(), `self="true"`)
	})
	return c, strings.TrimPrefix(self.Get("from"), m.space+"/")
}

// presenceOf waits for presence about participant id that satisfies ok.
func presenceOf(t *testing.T, c *xmppdtest.Client, what, id string, ok func(e *stream.Element, a map[string]string) bool) *stream.Element {
	t.Helper()
	return c.Expect(t, what, func(e *stream.Element) bool {
		if e.Name.Local != "presence" || !strings.HasSuffix(e.Get("from"), "/"+id) {
			return false
		}
		return ok(e, participantAttrs(t, e))
	})
}

// companion sends requests as bitfocus companion's cisco-cms module (a Stream Deck's CMS
// buttons) does: "Authorization: Basic<base64>" without the space, the form content type on
// every request, a DELETE included, and certificates unchecked.
func companion(t *testing.T, base, method, path string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, base+"/api/v1"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic"+base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStreamDeckPoller: a Stream Deck panel polls the calls and their legs, mutes a
// participant, changes everyone's layout, drops a participant and ends the meeting; the
// people in the meeting, connected over XMPP, see each change as it is made and are told why
// they were taken out.
func TestStreamDeckPoller(t *testing.T) {
	m := startXMPPMeeting(t, store.CoSpace{Name: "Town hall", NonMemberAccess: true})
	alice, aliceID := m.join(t, "alice")
	bob, bobID := m.join(t, "bob")
	presenceOf(t, alice, "bob joining", bobID, func(e *stream.Element, a map[string]string) bool { return e.Get("type") == "" })

	// Poll: the calls, then the call's legs.
	code, body := companion(t, m.api.URL, "GET", "/calls", nil)
	var calls struct {
		Call []struct {
			ID string `xml:"id,attr"`
		} `xml:"call"`
	}
	if err := xml.Unmarshal([]byte(body), &calls); err != nil || code != 200 || len(calls.Call) != 1 {
		t.Fatalf("GET /calls: %d %s", code, body)
	}
	call := calls.Call[0].ID
	_, body = companion(t, m.api.URL, "GET", "/calls/"+call+"/callLegs", nil)
	if !strings.Contains(body, `<callLegs total="2">`) || !strings.Contains(body, bobID) {
		t.Fatalf("GET /calls/{id}/callLegs: %s", body)
	}

	// The audio button: bob is muted, and both see it at once.
	if code, body := companion(t, m.api.URL, "PUT", "/callLegs/"+bobID, url.Values{"rxAudioMute": {"true"}}); code != 200 {
		t.Fatalf("mute: %d %s", code, body)
	}
	for name, c := range map[string]*xmppdtest.Client{"alice": alice, "bob": bob} {
		presenceOf(t, c, name+" sees bob muted", bobID, func(e *stream.Element, a map[string]string) bool { return a["rxAudioMute"] == "true" })
	}
	// The video button and the layout of the whole call.
	companion(t, m.api.URL, "PUT", "/callLegs/"+bobID, url.Values{"rxVideoMute": {"true"}})
	presenceOf(t, alice, "alice sees bob's video muted", bobID, func(e *stream.Element, a map[string]string) bool { return a["rxVideoMute"] == "true" })
	if code, body := companion(t, m.api.URL, "PUT", "/calls/"+call+"/participants/*", url.Values{"layout": {"speakerOnly"}}); code != 200 {
		t.Fatalf("layout: %d %s", code, body)
	}
	presenceOf(t, bob, "bob's own layout", bobID, func(e *stream.Element, a map[string]string) bool {
		return a["layout"] == "speakerOnly" && a["self"] == "true"
	})
	// The add-participant button: no SIP, a clear refusal.
	if code, body := companion(t, m.api.URL, "POST", "/calls/"+call+"/participants", url.Values{"remoteParty": {"room@video.example.com"}}); code != 400 || !strings.Contains(body, "<unknownDestination />") {
		t.Errorf("add participant: %d %s", code, body)
	}
	// The drop button: bob is told he was removed; alice sees him go.
	if code, body := companion(t, m.api.URL, "DELETE", "/callLegs/"+bobID, nil); code != 200 {
		t.Fatalf("drop: %d %s", code, body)
	}
	gone := presenceOf(t, bob, "bob removed", bobID, func(e *stream.Element, a map[string]string) bool { return e.Get("type") == "unavailable" })
	if a := participantAttrs(t, gone); a["reason"] != "removed" || a["self"] != "true" || !strings.Contains(gone.String(), "<status>You were removed from the meeting</status>") {
		t.Errorf("bob's removal: %s", gone)
	}
	if a := participantAttrs(t, presenceOf(t, alice, "alice sees bob removed", bobID, func(e *stream.Element, a map[string]string) bool {
		return e.Get("type") == "unavailable"
	})); a["reason"] != "removed" {
		t.Errorf("alice saw bob go with %v", a)
	}
	// The end-meeting button.
	if code, body := companion(t, m.api.URL, "DELETE", "/calls/"+call, nil); code != 200 {
		t.Fatalf("end: %d %s", code, body)
	}
	end := presenceOf(t, alice, "the meeting ended", aliceID, func(e *stream.Element, a map[string]string) bool { return e.Get("type") == "unavailable" })
	if a := participantAttrs(t, end); a["reason"] != "ended" || !strings.Contains(end.String(), "The meeting was ended by the organiser") {
		t.Errorf("alice was told %s", end)
	}
	if _, body := companion(t, m.api.URL, "GET", "/calls", nil); !strings.Contains(body, `<calls total="0">`) {
		t.Errorf("calls after the end: %s", body)
	}
}

// TestPowerShellChallenge: PowerShell's Invoke-RestMethod -Credential (and .NET's
// HttpClient with a credential cache) sends each request without credentials, waits for the
// 401 challenge and sends it again with them. The challenge must come at once, whatever the
// delay for wrong credentials, and the answer be XML that [xml] reads.
func TestPowerShellChallenge(t *testing.T) {
	e := newEnv(t)
	e.srv.auth.failDelay = time.Minute // a challenge that waited for it would fail the test
	ts := httptest.NewTLSServer(e.srv)
	t.Cleanup(ts.Close)
	client := ts.Client()
	client.Timeout = 10 * time.Second
	invoke := func(method, path, body string) (int, string) {
		t.Helper()
		send := func(auth bool) *http.Response {
			req, _ := http.NewRequest(method, ts.URL+"/api/v1"+path, strings.NewReader(body))
			req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.1")
			if body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Expect", "100-continue") // .NET Framework's default for a POST
			}
			if auth {
				req.SetBasicAuth(testUser, testPassword)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			return resp
		}
		resp := send(false)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("%s %s without credentials: %d %q, want the Basic challenge", method, path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		resp = send(true)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := invoke("POST", "/coSpaces", url.Values{"name": {"From PowerShell"}, "uri": {"ps.room"}}.Encode())
	if code != 200 {
		t.Fatalf("New-CmsSpace: %d", code)
	}
	code, body := invoke("GET", "/coSpaces?filter=PowerShell", "")
	var doc struct {
		XMLName xml.Name `xml:"coSpaces"`
		Total   int      `xml:"total,attr"`
		Spaces  []struct {
			Name string `xml:"name"`
		} `xml:"coSpace"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil || code != 200 || doc.Total != 1 || doc.Spaces[0].Name != "From PowerShell" {
		t.Errorf("Get-CmsSpaces: %d %s (%v)", code, body, err)
	}
}
