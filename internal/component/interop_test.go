package component

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/testenv"
)

// python returns a Python 3 interpreter that can import slixmpp (Debian: python3-slixmpp).
func python(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3" // the system Python, where Debian installs python3-slixmpp
	if _, err := os.Stat(py); err != nil {
		py = testenv.LookPath(t, "python3")
	}
	if out, err := exec.Command(py, "-c", "import slixmpp").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3-slixmpp ("+strings.TrimSpace(string(out))+")")
	}
	return py
}

// TestSlixmppInterop registers slixmpp's ComponentXMPP, a third-party XEP-0114
// implementation, with Accept over direct TLS.
func TestSlixmppInterop(t *testing.T) {
	py := python(t)
	p := newTestPKI(t)
	tests := []struct {
		name, secret string
		want         string // stream error condition, "" for success
	}{
		{"right secret", testSecret, ""},
		{"wrong secret", "guess", stream.NotAuthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := p.listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res := serveOne(ctx, ln, testConfig())
			_, port, err := net.SplitHostPort(ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, py, "testdata/slixmpp_component.py",
				"--jid", "cb1.example.com", "--secret", tt.secret, "--host", "localhost",
				"--port", port, "--ca", p.caFile, "--to", "example.com", "--timeout", "20")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pyDone := make(chan error, 1)
			go func() { pyDone <- cmd.Wait() }()

			a := wait(t, res)
			if tt.want != "" {
				if got := condition(a.err); got != tt.want {
					t.Errorf("Accept error = %v, want %s", a.err, tt.want)
				}
				if err := wait(t, pyDone); err != nil {
					t.Errorf("slixmpp: %v\n%s", err, stderr.String())
				}
				if !strings.Contains(stdout.String(), "STREAM-ERROR "+tt.want) || strings.Contains(stdout.String(), "SESSION") {
					t.Errorf("slixmpp saw:\n%s\nwant STREAM-ERROR %s and no session", stdout.String(), tt.want)
				}
				return
			}
			if a.err != nil {
				t.Fatalf("Accept: %v\nslixmpp stdout:\n%s\nstderr:\n%s", a.err, stdout.String(), stderr.String())
			}
			c := a.c
			defer c.Close("", "")
			// slixmpp says hello once the handshake is done.
			e, err := c.Next()
			if err != nil {
				t.Fatalf("Next: %v\n%s", err, stderr.String())
			}
			var m struct {
				Body string `xml:"body"`
			}
			if err := e.Decode(&m); err != nil || e.Name.Local != "message" || m.Body != "hello from slixmpp" || e.Get("from") != "cb1.example.com" {
				t.Errorf("got %s, want the hello message from cb1.example.com", e)
			}
			bye := &stream.Element{Name: xml.Name{Space: stream.NSComponent, Local: "message"}, Inner: []byte("<body>bye</body>")}
			bye.Set("from", "example.com")
			bye.Set("to", "cb1.example.com")
			if err := c.WriteElement(bye); err != nil {
				t.Fatal(err)
			}
			// slixmpp then closes its stream.
			for {
				_, err := c.Next()
				if err == nil {
					continue
				}
				if !errors.Is(err, stream.ErrClosed) {
					t.Errorf("Next = %v, want stream.ErrClosed", err)
				}
				break
			}
			c.Close("", "")
			if err := wait(t, pyDone); err != nil {
				t.Errorf("slixmpp: %v\n%s", err, stderr.String())
			}
			for _, want := range []string{"SESSION", "MESSAGE bye", "DISCONNECTED"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("slixmpp output lacks %q:\n%s", want, stdout.String())
				}
			}
		})
	}
}
