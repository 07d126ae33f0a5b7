package xmppd_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"confab.dev/confab/internal/xmppd/xmppdtest"
)

func TestLoginMechanismsTCP(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			c, err := h.Dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.StartTLS(); err != nil {
				t.Fatalf("starttls: %v", err)
			}
			if got := c.Mechanisms(); !slices.Contains(got, mech) {
				t.Fatalf("mechanisms offered = %v, want %s among them", got, mech)
			}
			if err := c.Auth(mech, "alice", h.Users["alice"]); err != nil {
				t.Fatalf("auth: %v", err)
			}
			if !c.HasFeature("urn:ietf:params:xml:ns:xmpp-bind", "bind") {
				t.Fatalf("no bind feature after authentication: %s", c.Features)
			}
			jid, err := c.Bind("laptop")
			if err != nil {
				t.Fatal(err)
			}
			if want := "alice@example.com/laptop"; jid != want {
				t.Errorf("bound jid = %q, want %q", jid, want)
			}
		})
	}
	logins := h.CallBridge.Logins()
	if len(logins) != 3 {
		t.Fatalf("call bridge decided %d logins, want 3: %+v", len(logins), logins)
	}
	for _, l := range logins {
		if !l.OK || l.JID != "alice@example.com" {
			t.Errorf("login %+v, want a success for alice@example.com", l)
		}
	}
}

func TestLoginFailures(t *testing.T) {
	tests := []struct {
		name, mech, user, pass string
		wantCond               string
	}{
		{"wrong password scram", "SCRAM-SHA-256", "alice", "nope", "not-authorized"},
		{"wrong password plain", "PLAIN", "alice", "nope", "not-authorized"},
		{"unknown user", "SCRAM-SHA-1", "mallory", "x", "not-authorized"},
	}
	h := xmppdtest.Start(t, xmppdtest.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.DialTLS(t)
			err := c.Auth(tt.mech, tt.user, tt.pass)
			var se *xmppdtest.SASLError
			if !errors.As(err, &se) || se.Condition != tt.wantCond {
				t.Fatalf("auth error = %v, want SASL failure %s", err, tt.wantCond)
			}
			// The stream stays usable: a correct retry succeeds.
			if err := c.Auth("SCRAM-SHA-256", "alice", h.Users["alice"]); err != nil {
				t.Fatalf("retry after failure: %v", err)
			}
		})
	}
}

func TestNoCallBridgeFailsAtOnce(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true})
	c := h.DialTLS(t)
	start := time.Now()
	err := c.Auth("SCRAM-SHA-256", "alice", h.Users["alice"])
	elapsed := time.Since(start)
	var se *xmppdtest.SASLError
	if !errors.As(err, &se) {
		t.Fatalf("auth error = %v, want a SASL failure", err)
	}
	if se.Condition != "temporary-auth-failure" || se.Text != "No Call Bridge is connected to the XMPP server" {
		t.Errorf("failure = %s %q, want temporary-auth-failure %q", se.Condition, se.Text, "No Call Bridge is connected to the XMPP server")
	}
	if elapsed > time.Second {
		t.Errorf("the failure took %s; it must come at once", elapsed)
	}

	// Once a Call Bridge connects, the same stream can log in.
	h.ConnectCallBridge(t, "cb1")
	if err := c.Auth("SCRAM-SHA-256", "alice", h.Users["alice"]); err != nil {
		t.Fatalf("auth after the Call Bridge connected: %v", err)
	}
}
