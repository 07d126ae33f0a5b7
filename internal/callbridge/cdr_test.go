package callbridge

import (
	"context"
	"encoding/xml"
	"io"
	"net"
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
)

// cdrReceiver keeps the records posted to it, as "<session> <recordIndex> <type>".
type cdrReceiver struct {
	mu      sync.Mutex
	got     []string
	changed chan struct{}
}

func (r *cdrReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var doc struct {
		Session string `xml:"session,attr"`
		Records []struct {
			Type  string `xml:"type,attr"`
			Index string `xml:"recordIndex,attr"`
		} `xml:"record"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rec := range doc.Records {
		r.got = append(r.got, doc.Session+" "+rec.Index+" "+rec.Type)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *cdrReceiver) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("the receiver has %d records, want %d: %v", len(got), n, got)
		}
	}
}

// TestCDRsAcrossRestart: a Call Bridge restarts (a new one on the same store) while its CDR
// receiver is down; when the receiver is back it gets every record of both, once, in order.
func TestCDRsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetXMPPSettings(ctx, store.XMPPSettings{UniqueName: "cb1", Domain: "example.com",
		ServerAddressOverride: "127.0.0.1:1", SharedSecret: secret.New("s")}); err != nil {
		t.Fatal(err)
	}
	start := func() (*Bridge, func()) {
		b, err := New(Config{Store: st, CDRRetryMin: 5 * time.Millisecond, CDRRetryMax: 50 * time.Millisecond,
			BackoffMin: time.Second, BackoffMax: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); b.Run(ctx) }()
		return b, func() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := b.Shutdown(sctx); err != nil {
				t.Error(err)
			}
			<-done
		}
	}
	a, stopA := start()
	if err := a.Accounts.Add(ctx, "admin", "correct horse"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the receiver is down from the start
	api := httptest.NewServer(a.APIHandler())
	defer api.Close()
	sp, err := a.Meetings.CreateSpace(ctx, store.CoSpace{Name: "Demo", NonMemberAccess: true})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", api.URL+"/api/v1/system/cdrReceivers", strings.NewReader(url.Values{"uri": {"http://" + addr + "/cdr"}}.Encode()))
	req.SetBasicAuth("admin", "correct horse")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /system/cdrReceivers: %v %v", resp, err)
	}
	resp.Body.Close()

	join := func(b *Bridge, who string) {
		b.route(ctx, newRecorder(), element(t, `<presence xmlns="jabber:component:accept" from="`+who+`@example.com/web" to="`+sp.ID+`@cb1.example.com/x"><join xmlns="urn:confab:meeting:1"/></presence>`))
	}
	join(a, "alice")
	stopA() // the call ends with the Call Bridge
	b, stopB := start()
	defer stopB()
	join(b, "bob")

	recv := &cdrReceiver{changed: make(chan struct{}, 1)}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the receiver's address is taken: %v", err)
	}
	srv := &http.Server{Handler: recv}
	go srv.Serve(ln)
	defer srv.Close()

	sa, sb := a.CDR.Session(), b.CDR.Session()
	want := []string{sa + " 1 callStart", sa + " 2 callLegStart", sa + " 3 callLegUpdate", sa + " 4 callLegEnd", sa + " 5 callEnd",
		sb + " 1 callStart", sb + " 2 callLegStart", sb + " 3 callLegUpdate"}
	if got := recv.wait(t, len(want)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
