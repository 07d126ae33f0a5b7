package turnd_test

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/peers"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/turnd"
)

// TestCredentialsAgainstCoturn: credentials issued by IssueCredentials are accepted by
// coturn configured with the same secret and realm (use-auth-secret, static-auth-secret) —
// the scheme is coturn's — and refused by it when expired or issued from another secret.
func TestCredentialsAgainstCoturn(t *testing.T) {
	const realm, sharedSecret = "coturn.test", "a-secret-shared-with-coturn"
	ca, err := certs.NewCA("turnd coturn test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(certs.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pair.WriteFiles(dir+"/cert.pem", dir+"/key.pem"); err != nil {
		t.Fatal(err)
	}
	ct := peers.StartCoturnT(t, peers.CoturnOptions{Realm: realm, Secret: sharedSecret, CertFile: dir + "/cert.pem", KeyFile: dir + "/key.pem"})
	t.Logf("coturn %s", ct.Version)

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	tests := []struct {
		name     string
		secret   string
		expires  time.Time
		wantCode int
	}{
		{"issued by Confab", sharedSecret, time.Now().Add(time.Hour), 0},
		{"expired", sharedSecret, time.Now().Add(-time.Minute), 401},
		{"another secret", "not-the-shared-secret", time.Now().Add(time.Hour), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := turnd.IssueCredentials(secret.New(tt.secret), "participant-7", tt.expires)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: ct.UDPAddr, Username: cred.Username,
				Password: cred.Password.Reveal(), Conn: conn, RTO: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Listen(); err != nil {
				t.Fatal(err)
			}
			relay, err := c.Allocate()
			if tt.wantCode != 0 {
				var te *stun.TurnError
				if !errors.As(err, &te) || int(te.ErrorCodeAttr.Code) != tt.wantCode {
					t.Fatalf("allocate: %v, want error %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("allocate at coturn with Confab's credentials: %v", err)
			}
			defer relay.Close()
			msg := []byte("relayed by coturn, authorised by Confab")
			if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := peer.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("peer read %q, %v", buf[:n], err)
			}
			if _, err := peer.WriteTo([]byte("and back"), from); err != nil {
				t.Fatal(err)
			}
			_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err = relay.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "and back" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}
		})
	}
}
