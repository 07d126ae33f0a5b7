package peers_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"confab.dev/confab/internal/peers"
)

// restCredentials computes a time-limited credential of the scheme coturn implements with
// use-auth-secret, written out here so that the harness is tested on its own.
func restCredentials(secret, user string, expires time.Time) (string, string) {
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// TestCoturnHarness: coturn starts on loopback from its own configuration, answers on its
// UDP, TCP and TLS ports, takes credentials derived from its secret (and refuses others),
// and relays to a loopback peer.
func TestCoturnHarness(t *testing.T) {
	certFile, keyFile, roots := pki(t, "localhost")
	const realm, secret = "harness.test", "shared-secret-1"
	c := peers.StartCoturnT(t, peers.CoturnOptions{Realm: realm, Secret: secret, CertFile: certFile, KeyFile: keyFile})
	if !strings.HasPrefix(c.Version, "4.") {
		t.Errorf("coturn version %q, want 4.x", c.Version)
	}
	t.Logf("coturn %s on udp %s, tls %s", c.Version, c.UDPAddr, c.TLSAddr)
	cfg, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listening-ip=127.0.0.1", "use-auth-secret", "static-auth-secret=" + secret, "allowed-peer-ip=127.0.0.1", "no-cli"} {
		if !bytes.Contains(cfg, []byte(want+"\n")) {
			t.Errorf("configuration lacks %q:\n%s", want, cfg)
		}
	}
	if bytes.Contains(cfg, []byte("/etc/")) || bytes.Contains(cfg, []byte("/var/")) {
		t.Errorf("configuration names a system path:\n%s", cfg)
	}

	tc, err := tls.Dial("tcp", c.TLSAddr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS port: %v", err)
	}
	tc.Close()

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	tests := []struct {
		name     string
		secret   string
		expires  time.Time
		wantCode int // 0: the allocation succeeds
	}{
		{"right", secret, time.Now().Add(time.Hour), 0},
		{"wrong secret", "another-secret", time.Now().Add(time.Hour), 401},
		{"expired", secret, time.Now().Add(-time.Minute), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pass := restCredentials(tt.secret, "alice", tt.expires)
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cl, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: c.UDPAddr, Username: user, Password: pass, Conn: conn, RTO: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.Listen(); err != nil {
				t.Fatal(err)
			}
			relay, err := cl.Allocate()
			var te *stun.TurnError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("allocate: %v", err)
			case tt.wantCode != 0 && !errors.As(err, &te):
				t.Fatalf("allocate: %v, want error %d", err, tt.wantCode)
			case tt.wantCode != 0:
				if got := int(te.ErrorCodeAttr.Code); got != tt.wantCode {
					t.Fatalf("allocate: error %d, want %d", got, tt.wantCode)
				}
				return
			}
			defer relay.Close()
			msg := []byte("through coturn")
			if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := peer.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("peer read %q, %v; want %q", buf[:n], err, msg)
			}
			if from.String() != relay.LocalAddr().String() {
				t.Errorf("peer got it from %s, want the relayed address %s", from, relay.LocalAddr())
			}
		})
	}
}
