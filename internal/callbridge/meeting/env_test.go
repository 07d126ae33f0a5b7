package meeting

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/clocktest"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

const (
	domain = "example.com"
	cbJID  = "cb1.example.com"
)

// clock is a settable time source.
// lockedBuffer collects log output.
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

// recorder is a Sender that keeps what it is given, parsed back into elements, so that a
// test can read what each address received.
type recorder struct {
	mu     sync.Mutex
	got    []*stream.Element
	writes int
	fail   error
}

func (r *recorder) Write(b []byte) error {
	els, err := parseStanzas(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if err != nil {
		return err
	}
	r.got = append(r.got, els...)
	return r.fail
}

// parseStanzas reads the elements in b as the XMPP server would: in a component stream.
func parseStanzas(b []byte) ([]*stream.Element, error) {
	doc := `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams">` + string(b) + `</stream:stream>`
	r := stream.NewReader(strings.NewReader(doc), stream.Limits{})
	if _, err := r.ReadOpen(stream.NSComponent); err != nil {
		return nil, err
	}
	var out []*stream.Element
	for {
		e, err := r.Next()
		if errors.Is(err, stream.ErrClosed) || errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// take removes and returns what was sent to the address to.
func (r *recorder) take(to string) []*stream.Element {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out, keep []*stream.Element
	for _, e := range r.got {
		if e.Get("to") == to {
			out = append(out, e)
		} else {
			keep = append(keep, e)
		}
	}
	r.got = keep
	return out
}

// all removes and returns everything.
func (r *recorder) all() []*stream.Element {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

type env struct {
	st     *store.Store
	svc    *Service
	clock  *clocktest.Clock
	logs   *lockedBuffer
	link   *recorder
	up     *linkFlag
	events *eventLog
}

// eventLog is an EventSink that keeps what it is given.
type eventLog struct {
	mu  sync.Mutex
	got []Event
}

func (l *eventLog) Record(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, e)
}

// take removes and returns the events recorded so far.
func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

type linkFlag struct {
	mu   sync.Mutex
	down bool
}

func (l *linkFlag) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.down
}

func (l *linkFlag) set(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = !up
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "confab.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetXMPPSettings(ctx, store.XMPPSettings{UniqueName: "cb1", Domain: domain}); err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, clock: clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), logs: &lockedBuffer{},
		link: &recorder{}, up: &linkFlag{}, events: &eventLog{}}
	e.svc = New(Options{
		Store: st, Now: e.clock.Now, LinkUp: e.up.Up, Events: e.events,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return e
}

// space creates a space.
func (e *env) space(t *testing.T, c store.CoSpace) store.CoSpace {
	t.Helper()
	out, err := e.svc.CreateSpace(context.Background(), c)
	if err != nil {
		t.Fatalf("CreateSpace(%+v): %v", c, err)
	}
	return out
}

// send hands raw XML (one stanza, in jabber:component:accept) to Handle and returns what
// Handle said.
func (e *env) send(t *testing.T, xml string) bool {
	t.Helper()
	els, err := parseStanzas([]byte(xml))
	if err != nil || len(els) != 1 {
		t.Fatalf("test stanza %q: %v", xml, err)
	}
	return e.svc.Handle(context.Background(), e.link, els[0])
}

// participantOf decodes the <participant/> a stanza carries.
type participantInfo struct {
	ID          string `xml:"id,attr"`
	Name        string `xml:"name,attr"`
	JID         string `xml:"jid,attr"`
	Role        string `xml:"role,attr"`
	Self        string `xml:"self,attr"`
	Reason      string `xml:"reason,attr"`
	RxAudioMute string `xml:"rxAudioMute,attr"`
	TxAudioMute string `xml:"txAudioMute,attr"`
	RxVideoMute string `xml:"rxVideoMute,attr"`
	TxVideoMute string `xml:"txVideoMute,attr"`
	Layout      string `xml:"layout,attr"`
}

func participantOf(t *testing.T, e *stream.Element) participantInfo {
	t.Helper()
	var v struct {
		P *participantInfo `xml:"urn:confab:meeting:1 participant"`
	}
	if err := e.Decode(&v); err != nil || v.P == nil {
		t.Fatalf("%s: no participant element (%v)", e, err)
	}
	return *v.P
}

// errorCondition returns the stanza error condition e carries, or "".
func errorCondition(e *stream.Element) string {
	var v struct {
		Error *struct {
			Type  string `xml:"type,attr"`
			Inner []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if err := e.Decode(&v); err != nil || v.Error == nil {
		return ""
	}
	for _, c := range v.Error.Inner {
		if c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return ""
}
