package xmppd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
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
	return runPeerEnv(t, ctx, nil, name, args...)
}

// runPeerEnv is runPeer with extra environment variables.
func runPeerEnv(t *testing.T, ctx context.Context, env []string, name string, args ...string) (<-chan step, func() (error, string)) {
	t.Helper()
	return runPeerIO(t, ctx, env, nil, name, args...)
}

// runPeerIO is runPeerEnv with the client's standard input.
func runPeerIO(t *testing.T, ctx context.Context, env []string, stdin io.Reader, name string, args ...string) (<-chan step, func() (error, string)) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
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

// nodeArgs returns the node flags that give it a global WebSocket (Node 20 needs
// --experimental-websocket; later versions have it by default).
func nodeArgs(t *testing.T, node string) []string {
	t.Helper()
	check := "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
	if exec.Command(node, "-e", check).Run() == nil {
		return nil
	}
	if exec.Command(node, "--experimental-websocket", "-e", check).Run() == nil {
		return []string{"--experimental-websocket"}
	}
	testenv.Missing(t, "a Node.js with a global WebSocket (Node 20.10 or later)")
	return nil
}

// TestInteropXMPPJS drives the server with @xmpp/client (xmpp.js) over WebSocket: SASL
// through the login relay, a message to a Go client and back, XEP-0199 pings to the
// component and to the server.
func TestInteropXMPPJS(t *testing.T) {
	node := testenv.LookPath(t, "node")
	testenv.File(t, "testdata/node/node_modules/@xmpp/client/package.json", "npm packages of internal/xmppd/testdata/node (npm ci)")
	args := nodeArgs(t, node)
	h := xmppdtest.Start(t, xmppdtest.Options{})
	bob := h.Login(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(args, "testdata/node/client.js", h.WebSocketURL, h.Domain, "alice", h.Users["alice"], bob.JID, "cb1."+h.Domain)
	steps, wait := runPeerEnv(t, ctx, []string{"NODE_EXTRA_CA_CERTS=" + h.CAFile}, node, args...)

	if s := expectStep(t, steps, wait, "bound"); s.JID != "alice@example.com/xmppjs" {
		t.Errorf("xmpp.js bound %q, want alice@example.com/xmppjs", s.JID)
	}
	m := bob.Expect(t, "xmpp.js's message", xmppdtest.IsKind("message", ""))
	if m.Get("from") != "alice@example.com/xmppjs" || xmppdtest.Body(m) != "hello from xmpp.js" {
		t.Errorf("bob got %s", m)
	}
	expectStep(t, steps, wait, "ping") // the component
	expectStep(t, steps, wait, "ping") // the server
	bob.Send(t, `<message type="chat" to="alice@example.com/xmppjs"><body>hello from Go</body></message>`)
	if s := expectStep(t, steps, wait, "reply"); s.Body != "hello from Go" {
		t.Errorf("xmpp.js got %q, want %q", s.Body, "hello from Go")
	}
	for range steps {
	}
	if err, stderr := wait(); err != nil {
		t.Fatalf("xmpp.js client: %v\n%s", err, stderr)
	}
	if got := metricValue(t, h, `confab_xmpp_logins_total{outcome="success"}`); got != 2 {
		t.Errorf("successful logins = %v, want 2", got)
	}
}

// TestInteropXMPPJSResume: @xmpp/client, which enables stream management with resumption
// on its own, loses its WebSocket; messages are sent to it meanwhile; it reconnects,
// resumes (XEP-0198) and gets each of them once, in order.
func TestInteropXMPPJSResume(t *testing.T) {
	node := testenv.LookPath(t, "node")
	testenv.File(t, "testdata/node/node_modules/@xmpp/client/package.json", "npm packages of internal/xmppd/testdata/node (npm ci)")
	args := nodeArgs(t, node)
	h := xmppdtest.Start(t, xmppdtest.Options{})
	bob := h.Login(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmds, cmdw := io.Pipe()
	defer cmdw.Close()
	args = append(args, "testdata/node/resume.js", h.WebSocketURL, h.Domain, "alice", h.Users["alice"])
	steps, wait := runPeerIO(t, ctx, []string{"NODE_EXTRA_CA_CERTS=" + h.CAFile}, cmds, node, args...)

	testResumeInterop(t, h, bob, steps, wait, cmdw)
}

// TestInteropSlixmppResume: slixmpp with its xep_0198 plugin loses its TCP connection;
// messages are sent to it meanwhile; it connects again, resumes (XEP-0198) and gets each
// of them once, in order.
func TestInteropSlixmppResume(t *testing.T) {
	python := testenv.File(t, "/usr/bin/python3", "python3 (Debian package python3)")
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		testenv.Missing(t, "slixmpp (Debian package python3-slixmpp)")
	}
	h := xmppdtest.Start(t, xmppdtest.Options{})
	bob := h.Login(t, "bob")
	_, port, _ := strings.Cut(h.C2SAddr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmds, cmdw := io.Pipe()
	defer cmdw.Close()
	steps, wait := runPeerIO(t, ctx, nil, cmds, python, "testdata/slixmpp_resume.py",
		"--jid", "alice@"+h.Domain, "--password", h.Users["alice"], "--port", port, "--ca", h.CAFile)
	testResumeInterop(t, h, bob, steps, wait, cmdw)
}

// testResumeInterop drives a resume interop client (see testdata/node/resume.js and
// testdata/slixmpp_resume.py) through a lost connection and a resumption.
func testResumeInterop(t *testing.T, h *xmppdtest.Harness, bob *xmppdtest.Client, steps <-chan step, wait func() (error, string), cmdw io.WriteCloser) {
	t.Helper()
	command := func(c string) {
		t.Helper()
		if _, err := io.WriteString(cmdw, c+"\n"); err != nil {
			t.Fatalf("command %s: %v", c, err)
		}
	}
	on := expectStep(t, steps, wait, "online")
	if on.Body == "" {
		t.Fatal("the client has no resumption id")
	}
	message := func(body string) {
		t.Helper()
		if s := expectStep(t, steps, wait, "message"); s.Body != body {
			t.Errorf("the client got message %q, want %q", s.Body, body)
		}
	}
	send := func(body string) {
		bob.Send(t, `<message type="chat" to="`+on.JID+`" id="`+body+`"><body>`+body+`</body></message>`)
	}
	send("before")
	message("before")

	command("drop")
	expectStep(t, steps, wait, "disconnected")
	waitDetached(t, h, 1)
	send("while-away-1")
	send("while-away-2")
	ping(t, bob, "sent")

	command("resume")
	expectStep(t, steps, wait, "resumed")
	message("while-away-1")
	message("while-away-2")
	send("after")
	message("after") // and nothing twice before it
	command("quit")
	expectStep(t, steps, wait, "stopped")
	cmdw.Close() // the command's stdin copier ends, so Wait can return
	for range steps {
	}
	if err, stderr := wait(); err != nil {
		t.Fatalf("client: %v\n%s", err, stderr)
	}
	if got := metricValue(t, h, `confab_xmpp_resumptions_total`); got != 1 {
		t.Errorf("resumptions = %v, want 1", got)
	}
}
