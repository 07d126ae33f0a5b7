package callbridge

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

func newBridge(t *testing.T) *Bridge {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateXMPPSettings(ctx, func(c *store.XMPPSettings) error {
		c.UniqueName, c.Domain, c.ServerAddressOverride, c.SharedSecret = "cb1", "example.com", "127.0.0.1:1", secret.New("s")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Store: st, Media: MediaConfig{UDP: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Accounts.Add(ctx, "admin", "correct horse"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	return b
}

// recorder is a link connection that keeps what is written to it.
type recorder struct {
	mu    sync.Mutex
	out   [][]byte
	wrote chan struct{}
}

func newRecorder() *recorder { return &recorder{wrote: make(chan struct{}, 64)} }

func (r *recorder) Write(b []byte) error {
	r.mu.Lock()
	r.out = append(r.out, bytes.Clone(b))
	r.mu.Unlock()
	r.wrote <- struct{}{}
	return nil
}

func (r *recorder) taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, b := range r.out {
		s = append(s, string(b))
	}
	r.out = nil
	return s
}

func element(t *testing.T, s string) *stream.Element {
	t.Helper()
	e, err := stream.NewReader(strings.NewReader(s), stream.Limits{}).Next()
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return e
}

// TestDispatchByPayload: what arrives over the link goes to its owner by the namespace of
// its payload, not by what its bytes contain.
func TestDispatchByPayload(t *testing.T) {
	b := newBridge(t)
	const alice = "alice@example.com/web"
	tests := []struct {
		name string
		in   string
		want string // a substring of the one answer, "" for none
	}{
		{"login relay request → login worker",
			`<iq xmlns="jabber:component:accept" type="set" id="confab-login-1" from="example.com" to="cb1.example.com"><auth xmlns="urn:confab:login:1" session="s1" mechanism="PLAIN">AG5vYm9keQB4</auth></iq>`,
			`<failure xmlns="urn:confab:login:1" session="s1" condition="not-authorized"`},
		{"login relay session-end → responder, no answer",
			`<message xmlns="jabber:component:accept" from="example.com" to="cb1.example.com"><session-end xmlns="urn:confab:login:1" jid="` + alice + `"/></message>`, ""},
		{"the relay's namespace as text → meeting service",
			`<message xmlns="jabber:component:accept" from="` + alice + `" to="cb1.example.com"><body>urn:confab:login:1 &lt;auth/&gt;</body></message>`,
			"service-unavailable"},
		{"an iq whose text names the relay → meeting service",
			`<iq xmlns="jabber:component:accept" type="get" id="v1" from="` + alice + `" to="cb1.example.com"><query xmlns="jabber:iq:version">urn:confab:login:1</query></iq>`,
			"service-unavailable"},
		{"meeting protocol → meeting service",
			`<iq xmlns="jabber:component:accept" type="get" id="sp1" from="` + alice + `" to="cb1.example.com"><spaces xmlns="urn:confab:meeting:1"/></iq>`,
			`type="result"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			b.route(context.Background(), rec, element(t, tt.in))
			want := tt.want
			if want == "" {
				// Inline handling is in order: a probe answered after it shows that the element
				// itself got no answer.
				b.route(context.Background(), rec, element(t, `<iq xmlns="jabber:component:accept" type="get" id="probe" from="`+alice+`" to="cb1.example.com"><spaces xmlns="urn:confab:meeting:1"/></iq>`))
				want = `id="probe"`
			}
			select {
			case <-rec.wrote:
			case <-time.After(10 * time.Second):
				t.Fatal("no answer within 10s")
			}
			got := rec.taken()
			if len(got) != 1 || !strings.Contains(got[0], want) {
				t.Errorf("answered %q, want one answer containing %q", got, want)
			}
		})
	}
}

// TestOneSettingsWriter: the REST API and the web admin save the XMPP settings at the same
// time, many times; the link ends on the settings stored last.
func TestOneSettingsWriter(t *testing.T) {
	b := newBridge(t)
	api := httptest.NewServer(b.APIHandler())
	t.Cleanup(api.Close)
	admin := adminBackend{b}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", api.URL+"/api/v1/system/configuration/xmpp",
				strings.NewReader(url.Values{"domain": {fmt.Sprintf("api%d.example", i)}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("admin", "correct horse")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("PUT: %s", resp.Status)
			}
		}()
		go func() {
			defer wg.Done()
			if err := admin.SetXMPPSettings(context.Background(), "cb1", fmt.Sprintf("web%d.example", i), "127.0.0.1:1", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	stored, err := b.Store.XMPPSettings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Link.Config(); got != stored {
		t.Errorf("link has %+v, store has %+v", got, stored)
	}
	// An invalid value from the web admin names its field and changes nothing.
	err = admin.SetXMPPSettings(context.Background(), "cb 1", "example.com", "", nil)
	if err == nil || !strings.Contains(err.Error(), "uniqueName") {
		t.Errorf("invalid unique name: %v, want an error naming uniqueName", err)
	}
	if after, _ := b.Store.XMPPSettings(context.Background()); after != stored {
		t.Errorf("a refused change was stored: %+v", after)
	}
}

// TestMetricsNeedAnAccount: /metrics on the API handler answers only an API account.
func TestMetricsNeedAnAccount(t *testing.T) {
	b := newBridge(t)
	b.cfg.Gatherer = nil
	h := b.requireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metrics")) }))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"admin", "wrong", 401}, {"admin", "correct horse", 200}} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if tt.user != "" {
			req.SetBasicAuth(tt.user, tt.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%q/%q: %d, want %d", tt.user, tt.pass, resp.StatusCode, tt.want)
		}
	}
}

// TestEventLogKeepsRecords: what is logged through Logger, by the Bridge or beside it, is in
// the web admin's event log, under the component that logged it.
func TestEventLogKeepsRecords(t *testing.T) {
	b := newBridge(t)
	b.Logger().Info("beside the bridge", "n", 1)
	b.Logger().With("component", "turn").Warn("from the TURN server")
	found := map[string]string{} // message → component
	for _, r := range (adminBackend{b}).LogRecords() {
		found[r.Message] = r.Component
	}
	if found["beside the bridge"] != "callbridge" || found["from the TURN server"] != "turn" {
		t.Errorf("event log: %v; want both records, under callbridge and turn", found)
	}
}
