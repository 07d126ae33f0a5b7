package xmppd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/testenv"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// step is one line of an interop client's report.
type step struct {
	Step  string `json:"step"`
	JID   string `json:"jid"`
	To    string `json:"to"`
	Body  string `json:"body"`
	Error string `json:"error"`
}

// runPeer runs an interop client and returns its steps as they arrive; wait returns the
// exit error and the client's stderr.
func runPeer(t *testing.T, ctx context.Context, name string, args ...string) (<-chan step, func() (error, string)) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	steps := make(chan step, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(steps)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var s step
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				s = step{Step: "unparsed", Error: sc.Text()}
			}
			steps <- s
		}
	}()
	wait := func() (error, string) {
		<-done
		err := cmd.Wait()
		return err, stderr.String()
	}
	return steps, wait
}

// expectStep reads steps until one named want, failing on an error step.
func expectStep(t *testing.T, steps <-chan step, wait func() (error, string), want string) step {
	t.Helper()
	for s := range steps {
		switch s.Step {
		case want:
			return s
		case "error", "unparsed":
			t.Fatalf("peer: %s %s (waiting for %s)", s.Step, s.Error, want)
		}
		t.Logf("peer step: %+v", s)
	}
	err, stderr := wait()
	t.Fatalf("peer exited (%v) before step %q:\n%s", err, want, stderr)
	return step{}
}

// TestInteropSlixmpp drives the server with slixmpp (python3-slixmpp): STARTTLS,
// SCRAM-SHA-256 through the login relay, a message to a Go client and back, XEP-0199 pings
// to the component and to the server.
func TestInteropSlixmpp(t *testing.T) {
	python := testenv.File(t, "/usr/bin/python3", "python3 (Debian package python3)")
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		testenv.Missing(t, "slixmpp (Debian package python3-slixmpp)")
	}
	h := xmppdtest.Start(t, xmppdtest.Options{})
	bob := h.Login(t, "bob")
	_, port, _ := strings.Cut(h.C2SAddr, ":")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	steps, wait := runPeer(t, ctx, python, "testdata/slixmpp_client.py",
		"--jid", "alice@"+h.Domain, "--password", h.Users["alice"],
		"--port", port, "--ca", h.CAFile,
		"--peer", bob.JID, "--component", "cb1."+h.Domain)

	if s := expectStep(t, steps, wait, "bound"); s.JID != "alice@example.com/slixmpp" {
		t.Errorf("slixmpp bound %q, want alice@example.com/slixmpp", s.JID)
	}
	m := bob.Expect(t, "slixmpp's message", xmppdtest.IsKind("message", ""))
	if m.Get("from") != "alice@example.com/slixmpp" || xmppdtest.Body(m) != "hello from slixmpp" {
		t.Errorf("bob got %s", m)
	}
	expectStep(t, steps, wait, "ping") // the component
	expectStep(t, steps, wait, "ping") // the server
	bob.Send(t, `<message type="chat" to="alice@example.com/slixmpp"><body>hello from Go</body></message>`)
	if s := expectStep(t, steps, wait, "reply"); s.Body != "hello from Go" {
		t.Errorf("slixmpp got %q, want %q", s.Body, "hello from Go")
	}
	for range steps {
	}
	if err, stderr := wait(); err != nil {
		t.Fatalf("slixmpp client: %v\n%s", err, stderr)
	}
	logins := h.CallBridge.Logins()
	if len(logins) != 2 || !logins[1].OK || logins[1].JID != "alice@example.com" {
		t.Errorf("call bridge logins = %+v, want bob's and then alice's, both successful", logins)
	}
}
