package launch

import (
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataDirOwnerOnly walks the data directory of a running `confab up` and checks that it
// and every file and directory in it are their owner's alone: the store with its journal files, the Call
// Bridge registry, private keys, the admin password. Certificates are public and may be
// readable by others.
func TestDataDirOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // made by up itself
	startUp(t, dir)
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		perm := info.Mode().Perm()
		t.Logf("%v %s", perm, rel)
		n++
		public := !d.IsDir() && strings.HasSuffix(path, ".pem") && !strings.Contains(filepath.Base(path), "key")
		if !public && perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want owner-only", rel, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("only %d entries in the data directory", n)
	}
}

// TestHTTPSlowClients holds connections to each HTTPS listener of `confab up` silent in the
// TLS handshake and in the middle of the request headers (slowloris): the server closes them
// after its header timeout (10s), and serves a well-behaved client all the while.
func TestHTTPSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10s header timeout")
	}
	u := startUp(t, filepath.Join(t.TempDir(), "data"))
	// (confab up serves XMPP over WebSocket on the web listener.)
	listeners := map[string]string{"api": u.CallBridge.Addrs.API, "web": u.CallBridge.Addrs.Web}
	client := caClient(t, u)
	type slow struct {
		name string
		nc   net.Conn
	}
	var conns []slow
	for name, addr := range listeners {
		// Silent during TLS: TCP only.
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns = append(conns, slow{name + ", silent in the TLS handshake", nc})
		// Half a request, then silence.
		tc, err := tls.Dial("tcp", addr, client.Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tc.Close() })
		if _, err := tc.Write([]byte("GET /api/v1/system/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, slow{name + ", silent in the headers", tc})
	}
	start := time.Now()
	// A well-behaved client is served meanwhile.
	resp, err := client.Get("https://" + u.CallBridge.Addrs.API + "/api/v1/system/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a request without credentials got %d, want 401", resp.StatusCode)
	}
	for _, c := range conns {
		_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.ReadAll(c.nc)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: still open after %s", c.name, time.Since(start).Round(time.Second))
			continue
		}
		if d := time.Since(start); d < 5*time.Second || d > 20*time.Second {
			t.Errorf("%s: closed after %s, want about 10s", c.name, d.Round(time.Second))
		}
	}
}
