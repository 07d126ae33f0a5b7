package link

import (
	"testing"
	"time"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

func TestBackoff(t *testing.T) {
	l := New(store.XMPPSettings{}, Options{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	for _, tc := range []struct {
		failures int
		ceiling  time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second}, // capped
		{50, time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := l.backoff(tc.failures)
			if d < tc.ceiling/2 || d > tc.ceiling {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", tc.failures, d, tc.ceiling/2, tc.ceiling)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) took only %d values in 200 draws: no jitter", tc.failures, len(seen))
		}
	}
}

func TestStanzas(t *testing.T) {
	ping := parse(t, `<iq type="get" id="p&amp;1" from="example.com" to="cb1.example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if !isPingRequest(ping) {
		t.Error("isPingRequest(ping) = false")
	}
	if isPingRequest(parse(t, `<iq type="get" id="q" from="example.com" to="cb1.example.com"><query xmlns="jabber:iq:version"/></iq>`)) {
		t.Error("isPingRequest(version query) = true")
	}
	if isPingRequest(parse(t, `<iq type="result" id="q" from="example.com" to="cb1.example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)) {
		t.Error("isPingRequest(result) = true")
	}
	p := parse(t, string(pingIQ("cb1.example.com", "example.com", 7)))
	if !isPingRequest(p) || p.Get("from") != "cb1.example.com" || p.Get("to") != "example.com" {
		t.Errorf("pingIQ = %s", p)
	}
	answer := parse(t, `<iq type="result" id="`+p.Get("id")+`" from="example.com" to="cb1.example.com"/>`)
	if !isPingResult(answer) {
		t.Errorf("isPingResult(%s) = false", answer)
	}
	if isPingResult(parse(t, `<iq type="result" id="login-1" from="example.com" to="cb1.example.com"/>`)) {
		t.Error("isPingResult(another result) = true")
	}
}

func parse(t *testing.T, s string) *stream.Element {
	t.Helper()
	e, err := stream.Parse([]byte(s), stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return e
}
