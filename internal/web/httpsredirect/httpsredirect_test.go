package httpsredirect_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/web/httpsredirect"
)

// start serves a handler over TLS on a wrapped listener and returns its address and a
// client that trusts it.
func start(t *testing.T) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure "+r.URL.RequestURI())
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Listener = httpsredirect.Wrap(srv.Listener)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), srv.Client()
}

// raw sends a request as written and returns the answer.
func raw(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer to %q: %v", req, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// The connection is closed after the answer.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("the connection stayed open after the answer (read %d, %v)", n, err)
	}
	return res, string(b)
}

func TestRedirect(t *testing.T) {
	addr, _ := start(t)
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		name, req string
		code      int
		location  string
		body      string
	}{
		{"GET", "GET /admin/status?x=1 HTTP/1.1\r\nHost: localhost:" + port + "\r\n\r\n", 301, "https://localhost:" + port + "/admin/status?x=1", "HTTPS only"},
		{"HEAD, HTTP/1.0", "HEAD / HTTP/1.0\r\nHost: 127.0.0.1:" + port + "\r\n\r\n", 301, "https://127.0.0.1:" + port + "/", ""},
		{"IPv6 host", "GET /admin/ HTTP/1.1\r\nHost: [::1]:" + port + "\r\n\r\n", 301, "https://[::1]:" + port + "/admin/", "HTTPS only"},
		{"POST", "POST /admin/login HTTP/1.1\r\nHost: cb.example.com:" + port + "\r\nContent-Length: 3\r\n\r\na=b", 301, "https://cb.example.com:" + port + "/admin/login", "HTTPS only"},
		{"absolute form", "GET http://evil.test/x HTTP/1.1\r\nHost: cb.example.com\r\n\r\n", 400, "", "HTTPS only"},
		{"no Host", "GET / HTTP/1.0\r\n\r\n", 400, "", "HTTPS only"},
		{"Host with a path", "GET / HTTP/1.1\r\nHost: a.example/b\r\n\r\n", 400, "", "HTTPS only"},
		{"not HTTP", "hello\r\n\r\n", 400, "", "HTTPS only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := raw(t, addr, tc.req)
			if res.StatusCode != tc.code || res.Header.Get("Location") != tc.location || !strings.Contains(body, tc.body) {
				t.Errorf("%d Location %q body %q; want %d %q containing %q", res.StatusCode, res.Header.Get("Location"), body, tc.code, tc.location, tc.body)
			}
		})
	}
}

// TestTLSPassesThrough: TLS clients are served as before.
func TestTLSPassesThrough(t *testing.T) {
	addr, client := start(t)
	for _, path := range []string{"/", "/admin/status"} {
		res, err := client.Get("https://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s over TLS: %v", path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "secure "+path {
			t.Errorf("GET %s over TLS: %d %q", path, res.StatusCode, b)
		}
	}
	// A bare TLS handshake completes too.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	c.Close()
}

// TestSlowPlainClient: a client that sends one byte and stops holds no Accept; the server
// still serves others.
func TestSlowPlainClient(t *testing.T) {
	addr, client := start(t)
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("G")); err != nil {
		t.Fatal(err)
	}
	res, err := client.Get("https://" + addr + "/ok")
	if err != nil {
		t.Fatalf("a TLS client behind a stalled plain one: %v", err)
	}
	res.Body.Close()
	// The stalled client is cut off by the server's handshake deadline.
	_ = slow.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadAll(slow)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the stalled plain client was never cut off")
	}
}
