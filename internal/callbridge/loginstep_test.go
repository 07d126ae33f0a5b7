package callbridge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
)

// brokenConn is a link connection whose writes fail, as a link that dropped.
type brokenConn struct{ wrote chan struct{} }

func (c *brokenConn) Write([]byte) error {
	c.wrote <- struct{}{}
	return errors.New("write: broken pipe")
}

// TestLoginStepIsTheLinksUse: step 12 records the link's use for a login. A wrong password
// is a use that worked (the request came over the link and was answered): OK, with the
// refusal in the detail, so the Status page does not turn red for a user's typo. An answer
// that cannot be sent over the link fails the step.
func TestLoginStepIsTheLinksUse(t *testing.T) {
	b := newBridge(t)
	const wrongPassword = `<iq xmlns="jabber:component:accept" type="set" id="confab-login-1" from="example.com" to="cb1.example.com"><auth xmlns="urn:confab:login:1" session="s1" mechanism="PLAIN">AG5vYm9keQB4</auth></iq>`
	lastLogin := func() (linkstate.Event, bool) {
		var last linkstate.Event
		found := false
		for _, e := range b.Link.Trace(0) {
			if e.Step == linkstate.StepLogin {
				last, found = e, true
			}
		}
		return last, found
	}
	waitLogin := func(what string, ok func(linkstate.Event) bool) linkstate.Event {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			e, found := lastLogin()
			if found && ok(e) {
				return e
			}
			if time.Now().After(deadline) {
				t.Fatalf("no step 12 event %s within 10s; last %+v", what, e)
			}
			select {
			case <-b.Link.Changes():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	rec := newRecorder()
	b.route(context.Background(), rec, element(t, wrongPassword))
	<-rec.wrote
	e := waitLogin("for the wrong password", func(e linkstate.Event) bool { return true })
	if e.Outcome != linkstate.OK || e.Cause != "" || !strings.Contains(e.Detail, "refused (not-authorized") || !strings.Contains(e.Detail, "the link works") {
		t.Errorf("step 12 after a wrong password = %+v, want ok with the refusal in the detail", e)
	}

	bc := &brokenConn{wrote: make(chan struct{}, 1)}
	b.route(context.Background(), bc, element(t, strings.Replace(wrongPassword, `session="s1"`, `session="s2"`, 1)))
	<-bc.wrote
	e = waitLogin("failed", func(e linkstate.Event) bool { return e.Outcome == linkstate.Failed })
	if e.Cause != "relay-failed" || !strings.Contains(e.Detail, "could not be sent over the link") || e.Remedy == "" {
		t.Errorf("step 12 after a failed answer = %+v, want failed relay-failed with a remedy", e)
	}
}
