package turnd

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"confab.dev/confab/internal/secret"
)

// relayRoundTrip sends msg through relay to the echo peer and reads it back.
func relayRoundTrip(t *testing.T, relay net.PacketConn, peer net.Addr, msg []byte) {
	t.Helper()
	if _, err := relay.WriteTo(msg, peer); err != nil {
		t.Fatalf("write through the relay: %v", err)
	}
	buf := make([]byte, 2048)
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read through the relay: %v", err)
	}
	if !bytes.Equal(buf[:n], msg) {
		t.Errorf("got back %q, want %q", buf[:n], msg)
	}
	if from.String() != peer.String() {
		t.Errorf("from %s, want the peer %s", from, peer)
	}
}

// TestRelayEachTransport: a pion client allocates over UDP, TCP and TLS, relays to a peer on
// loopback and back, and the allocation is listed, counted and ended.
func TestRelayEachTransport(t *testing.T) {
	ts := startServer(t, nil)
	peer := echoPeer(t)
	for _, transport := range []string{TransportUDP, TransportTCP, TransportTLS} {
		t.Run(transport, func(t *testing.T) {
			user, pass := credentials(t, "alice-"+transport)
			c := ts.newClient(t, transport, user, pass)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			for i := range 3 {
				relayRoundTrip(t, relay, peer, fmt.Appendf(nil, "media %s #%d", transport, i))
			}
			// The relay counts a datagram once it is sent, which may be after the peer's
			// echo came back.
			var a Allocation
			waitFor(t, "the traffic to be counted", func() bool {
				allocs := ts.Allocations()
				if len(allocs) != 1 {
					t.Fatalf("Allocations() = %+v, want 1", allocs)
				}
				a = allocs[0]
				return a.ToPeer.Packets >= 3 && a.FromPeer.Packets >= 3
			})
			if a.UserID != "alice-"+transport || a.Username != user || a.Transport != transport {
				t.Errorf("allocation %+v: want user id alice-%s, username %s, transport %s", a, transport, user, transport)
			}
			if a.Relayed.String() != relay.LocalAddr().String() || a.Relayed.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("relayed %s, client sees %s", a.Relayed, relay.LocalAddr())
			}
			if a.Expires.IsZero() || time.Until(a.Expires) > time.Hour {
				t.Errorf("expires %v, want within the hour", a.Expires)
			}
			if a.ToPeer.Bytes < uint64(3*len("media udp #0")) || a.FromPeer.Bytes < uint64(3*len("media udp #0")) {
				t.Errorf("traffic %+v / %+v, want at least 3 messages' bytes each way", a.ToPeer, a.FromPeer)
			}
			if got := metricValue(t, ts.reg, "confab_turn_allocations", "transport", transport); got != 1 {
				t.Errorf("allocations{%s} = %v, want 1", transport, got)
			}
			relay.Close() // a Refresh with lifetime 0
			waitFor(t, "the allocation to end", func() bool { return len(ts.Allocations()) == 0 })
			if got := metricValue(t, ts.reg, "confab_turn_allocations", "transport", transport); got != 0 {
				t.Errorf("allocations{%s} = %v after the end, want 0", transport, got)
			}
			if got := metricValue(t, ts.reg, "confab_turn_allocations_created_total", "transport", transport); got != 1 {
				t.Errorf("allocations_created_total{%s} = %v, want 1", transport, got)
			}
		})
	}
	if got := metricValue(t, ts.reg, "confab_turn_relayed_bytes_total", "direction", toPeer); got < 9*float64(len("media udp #0")) {
		t.Errorf("relayed_bytes_total{to_peer} = %v", got)
	}
}

// TestStaticUser: a static user allocates; its user id is its username.
func TestStaticUser(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Users = map[string]secret.Secret{"bob": secret.New("bobs-password")} })
	relay, err := ts.newClient(t, TransportUDP, "bob", "bobs-password").Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if a := ts.Allocations(); len(a) != 1 || a[0].UserID != "bob" || !a[0].Expires.IsZero() {
		t.Errorf("Allocations() = %+v, want bob's, without expiry", a)
	}
	if _, err := ts.newClient(t, TransportUDP, "bob", "not-bobs").Allocate(); codeOf(err) != 401 {
		t.Errorf("wrong password: %v, want 401", err)
	}
}

// TestCredentialsRefused: missing, unknown, expired, forged credentials and a wrong realm get
// 401, each counted under its cause; then good credentials still work.
func TestCredentialsRefused(t *testing.T) {
	ts := startServer(t, nil)
	good, goodPass := credentials(t, "carol")
	expired, err := IssueCredentials(secret.New(testSecret), "carol", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := IssueCredentials(secret.New("not-the-secret"), "carol", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("none", func(t *testing.T) {
		c := ts.raw(t, TransportUDP, "", "")
		before := ts.refusedCount(t, CauseNoCredentials)
		res := c.roundTrip(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), udpTransport, stun.Fingerprint))
		if code(res) != 401 {
			t.Fatalf("Allocate without credentials: %d, want 401", code(res))
		}
		var realm stun.Realm
		var nonce stun.Nonce
		if realm.GetFrom(res) != nil || nonce.GetFrom(res) != nil || realm.String() != testRealm {
			t.Errorf("401 has realm %q and nonce %q, want %q and one", realm, nonce, testRealm)
		}
		if got := ts.refusedCount(t, CauseNoCredentials); got != before+1 {
			t.Errorf("refused{no_credentials} = %v, want %v", got, before+1)
		}
	})
	tests := []struct {
		name       string
		user, pass string
		realm      string // empty: the server's
		cause      Cause
	}{
		{"expired", expired.Username, expired.Password.Reveal(), "", CauseExpired},
		{"forged", forged.Username, forged.Password.Reveal(), "", CauseBadPassword},
		{"wrong password", good, "AAAA" + goodPass[4:], "", CauseBadPassword},
		{"other user id", good[:len(good)-1] + "x", goodPass, "", CauseBadPassword},
		{"later expiry", "9" + good[1:], goodPass, "", CauseBadPassword},
		{"unknown user", "mallory", "x", "", CauseUnknownUser},
		{"wrong realm", good, goodPass, "elsewhere", CauseWrongRealm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.refusedCount(t, tt.cause)
			c := ts.raw(t, TransportUDP, tt.user, tt.pass)
			c.realmOverride = tt.realm
			if got := c.allocate(); got != 401 {
				t.Fatalf("Allocate: %d, want 401", got)
			}
			if got := ts.refusedCount(t, tt.cause); got != before+1 {
				t.Errorf("refused{%s} = %v, want %v", tt.cause, got, before+1)
			}
		})
	}
	t.Run("right", func(t *testing.T) {
		if got := ts.raw(t, TransportUDP, good, goodPass).allocate(); got != 0 {
			t.Errorf("Allocate with good credentials: %d, want success", got)
		}
	})
}
