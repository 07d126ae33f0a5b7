package cdr_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/cdr"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// received is one record as a receiver got it.
type received struct {
	Session         string
	Type            string `xml:"type,attr"`
	Time            string `xml:"time,attr"`
	RecordIndex     int64  `xml:"recordIndex,attr"`
	CorrelatorIndex int64  `xml:"correlatorIndex,attr"`
	Missing         int64  `xml:"numPreceedingRecordsMissing,attr"`
	Call            *struct {
		ID                string `xml:"id,attr"`
		Name              string `xml:"name"`
		CoSpace           string `xml:"coSpace"`
		CallCorrelator    string `xml:"callCorrelator"`
		CallLegsCompleted int    `xml:"callLegsCompleted"`
	} `xml:"call"`
	Leg *struct {
		ID          string `xml:"id,attr"`
		DisplayName string `xml:"displayName"`
		RemoteParty string `xml:"remoteParty"`
		State       string `xml:"state"`
		Reason      string `xml:"reason"`
		RxAudioMute string `xml:"rxAudioMute"`
	} `xml:"callLeg"`
}

// receiver is a CDR receiver: a real HTTP server that keeps what it is posted, which can be
// stopped and started again on the same address.
type receiver struct {
	t    *testing.T
	addr string

	mu      sync.Mutex
	got     []received
	posts   int
	fail    int // answer this many posts with 500 first
	srv     *http.Server
	changed chan struct{} // capacity 1: a post arrived
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, changed: make(chan struct{}, 1)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/cdr" }

func (r *receiver) start() {
	r.t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.t.Fatalf("receiver listen %s: %v", addr, err)
	}
	r.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(r.serve)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

// stop kills the receiver: listener and connections closed at once.
func (r *receiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var doc struct {
		XMLName xml.Name   `xml:"records"`
		Session string     `xml:"session,attr"`
		Records []received `xml:"record"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil || req.Method != "POST" || !strings.HasPrefix(string(body), `<?xml version="1.0"?><records session="`) {
		r.t.Errorf("receiver got %s %s: %v", req.Method, body, err)
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.posts++
	if r.fail > 0 {
		r.fail--
		r.mu.Unlock()
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	for _, rec := range doc.Records {
		rec.Session = doc.Session
		r.got = append(r.got, rec)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) records() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// waitRecords waits until the receiver has n records.
func (r *receiver) waitRecords(n int) []received {
	r.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if got := r.records(); len(got) >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-deadline:
			r.t.Fatalf("the receiver has %d records, want %d", len(r.records()), n)
		}
	}
}

// bridge is what a Call Bridge does with CDRs: a meeting service whose events go to a CDR
// service over the store.
type bridge struct {
	svc       *meeting.Service
	cdr       *cdr.Service
	cancel    context.CancelFunc
	done      chan struct{}
	delivered *counter
}

// counter counts the records receivers acknowledged (cdr.Options.OnDelivered).
type counter struct {
	mu      sync.Mutex
	n       int
	changed chan struct{} // capacity 1
}

func newCounter() *counter { return &counter{changed: make(chan struct{}, 1)} }

func (c *counter) add(_ string, n int) {
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// wait returns once n records in all were acknowledged: they have left the queue.
func (c *counter) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		got := c.n
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("%d records acknowledged, want %d", got, n)
		}
	}
}

type discard struct{}

func (discard) Write([]byte) error { return nil }

func startBridge(t *testing.T, st *store.Store) *bridge {
	t.Helper()
	delivered := newCounter()
	c := cdr.New(cdr.Options{Store: st, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnDelivered: delivered.add})
	b := &bridge{cdr: c, done: make(chan struct{}), delivered: delivered,
		svc: meeting.New(meeting.Options{Store: st, Events: c})}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() {
		defer close(b.done)
		c.Run(ctx)
	}()
	t.Cleanup(b.stop)
	return b
}

// stop stops the Call Bridge as Bridge.Shutdown does: its calls end, then the CDR service.
func (b *bridge) stop() {
	if b.cancel == nil {
		return
	}
	b.svc.Reset("shutting down")
	b.cancel()
	<-b.done
	b.cancel = nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (b *bridge) stanza(t *testing.T, s string) {
	t.Helper()
	e, err := stream.Parse([]byte(s), stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.Handle(context.Background(), discard{}, e)
}

func (b *bridge) join(t *testing.T, who, space string) {
	b.stanza(t, `<presence xmlns="jabber:component:accept" from="`+who+`@example.com/web" to="`+space+`@cb1.example.com/x"><join xmlns="urn:confab:meeting:1" name="`+who+`"/></presence>`)
}

func (b *bridge) leave(t *testing.T, who, space string) {
	b.stanza(t, `<presence xmlns="jabber:component:accept" type="unavailable" from="`+who+`@example.com/web" to="`+space+`@cb1.example.com/x"/>`)
}

func openStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetXMPPSettings(ctx, store.XMPPSettings{UniqueName: "cb1", Domain: "example.com"}); err != nil {
		t.Fatal(err)
	}
	sp, err := meeting.New(meeting.Options{Store: st}).CreateSpace(ctx, store.CoSpace{Name: "Demo", NonMemberAccess: true})
	if err != nil {
		t.Fatal(err)
	}
	return st, sp.ID
}

// TestDeliveryThroughOutages: records reach a receiver once each and in order, although it
// is killed in the middle of a meeting and the Call Bridge restarts (a new CDR service on the
// same store) before it comes back.
func TestDeliveryThroughOutages(t *testing.T) {
	st, space := openStore(t)
	recv := newReceiver(t)
	a := startBridge(t, st)
	rc, err := a.cdr.CreateReceiver(context.Background(), recv.url())
	if err != nil {
		t.Fatal(err)
	}
	a.join(t, "alice", space)
	a.join(t, "bob", space)
	recv.waitRecords(5)    // callStart, then a start and an update per leg
	a.delivered.wait(t, 5) // acknowledged: killing the receiver now cannot make a duplicate

	recv.stop()
	a.leave(t, "bob", space)
	a.join(t, "carol", space)
	sessionA := a.cdr.Session()
	a.stop() // alice's and carol's legs and the call end with it

	b := startBridge(t, st)
	if b.cdr.Session() == sessionA {
		t.Fatal("a new Call Bridge has the old session")
	}
	b.join(t, "dave", space)
	b.leave(t, "dave", space)
	recv.start()

	want := []string{
		"A callStart", "A callLegStart alice", "A callLegUpdate alice", "A callLegStart bob", "A callLegUpdate bob",
		"A callLegEnd bob", "A callLegStart carol", "A callLegUpdate carol", "A callLegEnd alice", "A callLegEnd carol", "A callEnd",
		"B callStart", "B callLegStart dave", "B callLegUpdate dave", "B callLegEnd dave", "B callEnd",
	}
	got := recv.waitRecords(len(want))
	b.delivered.wait(t, len(want)-5)
	if n, _ := st.CountPendingCDRs(context.Background(), rc.ID); n != 0 {
		t.Errorf("%d records still queued", n)
	}
	legNames := map[string]string{}
	var seen []string
	next := map[string]int64{sessionA: 1, b.cdr.Session(): 1}
	for _, r := range got {
		tag := map[string]string{sessionA: "A", b.cdr.Session(): "B"}[r.Session]
		if tag == "" {
			t.Fatalf("a record of an unknown session %q", r.Session)
		}
		if r.RecordIndex != next[r.Session] {
			t.Errorf("%s record %s has recordIndex %d, want %d (each once, in order)", tag, r.Type, r.RecordIndex, next[r.Session])
		}
		next[r.Session] = r.RecordIndex + 1
		s := tag + " " + r.Type
		if r.Leg != nil {
			if r.Leg.DisplayName != "" {
				legNames[r.Leg.ID] = r.Leg.DisplayName
			}
			s += " " + legNames[r.Leg.ID]
		}
		seen = append(seen, s)
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	if len(got) != len(want) {
		t.Errorf("%d records, want %d", len(got), len(want))
	}
}

// TestRetryAndShapes: a receiver answering 500 gets the records again; the records carry
// CMS's fields.
func TestRetryAndShapes(t *testing.T) {
	st, space := openStore(t)
	recv := newReceiver(t)
	recv.mu.Lock()
	recv.fail = 2
	recv.mu.Unlock()
	a := startBridge(t, st)
	if _, err := a.cdr.CreateReceiver(context.Background(), recv.url()); err != nil {
		t.Fatal(err)
	}
	a.join(t, "alice", space)
	a.leave(t, "alice", space)
	got := recv.waitRecords(5)
	recv.mu.Lock()
	posts := recv.posts
	recv.mu.Unlock()
	if posts < 3 {
		t.Errorf("%d posts, want the refused ones sent again", posts)
	}
	start, legStart, update, legEnd, end := got[0], got[1], got[2], got[3], got[4]
	if start.Type != "callStart" || start.Call == nil || start.Call.Name != "Demo" || start.Call.CoSpace != space || start.Call.CallCorrelator == "" || start.CorrelatorIndex != 0 {
		t.Errorf("callStart = %+v %+v", start, start.Call)
	}
	if _, err := time.Parse(time.RFC3339, start.Time); err != nil {
		t.Errorf("time %q: %v", start.Time, err)
	}
	if legStart.Leg == nil || legStart.Leg.DisplayName != "alice" || legStart.Leg.RemoteParty != "alice@example.com" {
		t.Errorf("callLegStart = %+v", legStart.Leg)
	}
	if update.Leg == nil || update.Leg.State != "connected" || update.Leg.RxAudioMute != "false" {
		t.Errorf("callLegUpdate = %+v", update.Leg)
	}
	if legEnd.Leg == nil || legEnd.Leg.Reason != "remoteTeardown" || legEnd.CorrelatorIndex != 3 {
		t.Errorf("callLegEnd = %+v", legEnd.Leg)
	}
	if end.Type != "callEnd" || end.Call.CallLegsCompleted != 1 {
		t.Errorf("callEnd = %+v", end.Call)
	}
}

// TestQueueBound: a receiver down long enough loses its oldest records, and the first record
// it then gets says how many.
func TestQueueBound(t *testing.T) {
	st, space := openStore(t)
	recv := newReceiver(t)
	recv.stop()
	c := cdr.New(cdr.Options{Store: st, MaxQueued: 3, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	svc := meeting.New(meeting.Options{Store: st, Events: c})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := c.CreateReceiver(context.Background(), recv.url()); err != nil {
		t.Fatal(err)
	}
	b := &bridge{svc: svc}
	b.join(t, "alice", space)  // 3 records
	b.leave(t, "alice", space) // 2 more: the first 2 are dropped
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := c.Receivers(context.Background(), 0, 0); recs[0].Queued != 3 {
		t.Fatalf("%d records queued, want 3", recs[0].Queued)
	}
	recv.start()
	got := recv.waitRecords(3)
	if got[0].Missing != 2 || got[0].RecordIndex != 3 || got[0].Type != "callLegUpdate" || got[1].Missing != 0 {
		t.Errorf("after the drop got %+v, want recordIndex 3 first, 2 missing before it", got)
	}
}

// TestReceivers: the receivers' management.
func TestReceivers(t *testing.T) {
	st, _ := openStore(t)
	c := cdr.New(cdr.Options{Store: st})
	ctx := context.Background()
	for _, bad := range []string{"ftp://x/", "http://", "/relative", "http://x/#frag", "http://a b/"} {
		var ie *cdr.InvalidURIError
		if _, err := c.CreateReceiver(ctx, bad); !errors.As(err, &ie) {
			t.Errorf("CreateReceiver(%q) = %v, want an InvalidURIError", bad, err)
		}
	}
	for i := 0; i < cdr.MaxReceivers; i++ {
		if _, err := c.CreateReceiver(ctx, fmt.Sprintf("http://r%d.example.com/", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateReceiver(ctx, "http://more.example.com/"); !errors.Is(err, cdr.ErrTooManyReceivers) {
		t.Errorf("one receiver too many: %v", err)
	}
	if err := c.SetLegacyReceiver(ctx, "http://legacy.example.com/"); !errors.Is(err, cdr.ErrTooManyReceivers) {
		t.Errorf("the legacy receiver beyond the maximum: %v", err)
	}
	rs, total, err := c.Receivers(ctx, 0, 0)
	if err != nil || total != cdr.MaxReceivers {
		t.Fatalf("Receivers = %d, %v", total, err)
	}
	if err := c.DeleteReceiver(ctx, rs[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLegacyReceiver(ctx, "http://legacy.example.com/"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.LegacyReceiver(ctx); err != nil || l.URI != "http://legacy.example.com/" {
		t.Errorf("LegacyReceiver = %+v, %v", l, err)
	}
	if err := c.SetLegacyReceiver(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LegacyReceiver(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after unsetting: %v", err)
	}
}
