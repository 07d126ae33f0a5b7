package callbridge

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
)

// TestTURNServerICE: each kind of turnServer becomes the ICE server a browser gets: URLs
// from clientAddress (else serverAddress) and the ports, credentials issued for the
// participant from a shared secret or the static pair, STUN only without credentials, and
// nothing for a server browsers cannot use.
func TestTURNServerICE(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		fields   map[string]string
		wantURLs []string
		wantUser string
		wantPass string
		wantOK   bool
	}{
		{"static, default port", map[string]string{"serverAddress": "turn.example.com", "username": "u", "password": "p"},
			[]string{"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp"}, "u", "p", true},
		{"client address wins, TCP override, TLS", map[string]string{"serverAddress": "10.0.0.5:3478", "clientAddress": "turn.example.com:3479",
			"tcpPortNumberOverride": "443", "tlsPortNumber": "5349", "username": "u", "password": "p"},
			[]string{"turn:turn.example.com:3479?transport=udp", "turn:turn.example.com:443?transport=tcp", "turns:turn.example.com:5349?transport=tcp"}, "u", "p", true},
		{"IPv6, no UDP", map[string]string{"serverAddress": "[2001:db8::5]:3478", "udpDisabled": "true", "username": "u", "password": "p"},
			[]string{"turn:[2001:db8::5]:3478?transport=tcp"}, "u", "p", true},
		{"no TCP", map[string]string{"serverAddress": "turn.example.com", "tcpDisabled": "true", "tlsPortNumber": "443", "username": "u", "password": "p"},
			[]string{"turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"}, "u", "p", true},
		{"no credentials: STUN", map[string]string{"serverAddress": "stun.example.com:3478"},
			[]string{"stun:stun.example.com:3478"}, "", "", true},
		{"Lync Edge", map[string]string{"serverAddress": "edge.example.com", "type": "lyncEdge", "username": "u", "password": "p"}, nil, "", "", false},
		{"no address", map[string]string{"username": "u", "password": "p"}, nil, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is, ok := TURNServerICE(store.Object{ID: "t1", Fields: tt.fields}, "leg-1", now.Add(CredentialLifetime))
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tt.wantOK, is)
			}
			if !ok {
				return
			}
			if !reflect.DeepEqual(is.URLs, tt.wantURLs) || is.Username != tt.wantUser || is.Credential != tt.wantPass || is.ID != "t1" {
				t.Errorf("got %+v, want URLs %v user %q password %q", is, tt.wantURLs, tt.wantUser, tt.wantPass)
			}
		})
	}

	// A shared secret: credentials for this participant, valid for CredentialLifetime, that
	// the TURN server's own check accepts.
	is, ok := TURNServerICE(store.Object{ID: "t2", Fields: map[string]string{"serverAddress": "127.0.0.1:3478", "sharedSecret": "s3"}}, "leg-7", now.Add(CredentialLifetime))
	if !ok {
		t.Fatal("shared-secret server not offered")
	}
	want, err := turnd.IssueCredentials(secret.New("s3"), "leg-7", now.Add(CredentialLifetime))
	if err != nil {
		t.Fatal(err)
	}
	if is.Username != want.Username || is.Credential != want.Password.Reveal() || !strings.HasSuffix(is.Username, ":leg-7") {
		t.Errorf("credentials %s / %s, want %s / %s", is.Username, is.Credential, want.Username, want.Password.Reveal())
	}
}
