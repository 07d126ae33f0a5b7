package component

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// TestAcceptHooks: Screen refuses before the component is looked up, Admit after the digest
// has been verified and before <handshake/>, and the Call Bridge reads the refusal as the
// answer to its handshake.
func TestAcceptHooks(t *testing.T) {
	refuse := func(err error) func(string) error { return func(string) error { return err } }
	tests := []struct {
		name         string
		screen       func(string) error
		admit        func(jid, name string) error
		secret       string
		want         string // condition, or "" for accepted
		admitCalled  bool
		lookupCalled bool
	}{
		{"screen refuses", refuse(&stream.Error{Condition: stream.PolicyViolation, Text: "slow down"}), nil, testSecret, stream.PolicyViolation, false, false},
		{"screen refuses with a plain error", refuse(errors.New("no")), nil, testSecret, stream.PolicyViolation, false, false},
		{"admit refuses", nil, func(string, string) error { return &stream.Error{Condition: stream.Conflict} }, testSecret, stream.Conflict, true, true},
		{"admit is not asked about a wrong secret", nil, func(string, string) error { return nil }, "wrong", stream.NotAuthorized, false, true},
		{"both let it in", refuse(nil), func(string, string) error { return nil }, testSecret, "", true, true},
	}
	p := newTestPKI(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var admitted, looked string
			cfg := testConfig()
			cfg.Screen = tt.screen
			cfg.Lookup = func(jid string) (string, secret.Secret, bool) {
				mu.Lock()
				looked = jid
				mu.Unlock()
				return testLookup(jid)
			}
			if tt.admit != nil {
				cfg.Admit = func(jid, name string, _ bool) error {
					mu.Lock()
					admitted = jid + " " + name
					mu.Unlock()
					return tt.admit(jid, name)
				}
			}
			ln := p.listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := serveOne(ctx, ln, cfg)
			cc, err := Handshake(ctx, p.dial(t, ln.Addr().String()), "cb1.example.com", secret.New(tt.secret), stream.Limits{})
			if cc != nil {
				defer cc.Close("", "")
			}
			if got := condition(err); got != tt.want {
				t.Errorf("Handshake: %v, want condition %q", err, tt.want)
			}
			r := wait(t, res)
			if r.c != nil {
				defer r.c.Close("", "")
			}
			if got := condition(r.err); got != tt.want {
				t.Errorf("Accept: %v, want condition %q", r.err, tt.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if (admitted != "") != tt.admitCalled || tt.admitCalled && admitted != "cb1.example.com cb1" {
				t.Errorf("Admit called with %q, want called: %v", admitted, tt.admitCalled)
			}
			if (looked != "") != tt.lookupCalled {
				t.Errorf("Lookup called with %q, want called: %v", looked, tt.lookupCalled)
			}
		})
	}
}
