package loginrelay

import (
	"context"
	"testing"

	"github.com/xdg-go/scram"
)

// BenchmarkRelaySCRAM is one SCRAM-SHA-256 login through the relay: the XMPP server's Client
// and a Call Bridge's Responder over an in-memory link, both SCRAM ends (the client's keys
// derived once, as the directory's are stored), the requests and answers serialised and
// parsed as on a real link. It is the relay's share of a login's CPU.
func BenchmarkRelaySCRAM(b *testing.B) {
	t := &testing.T{} // the fixture reports protocol errors on it; the benchmark checks replies
	f := newFixture(t, 0)
	sc, err := scram.SHA256.NewClient("alice", "correct horse", "")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conv := sc.NewConversation()
		first, _ := conv.Step("")
		x, r, err := f.client.Begin(ctx, MechSCRAMSHA256, []byte(first), "198.51.100.7:51234", "tcp")
		if err != nil || r.Kind != KindChallenge {
			b.Fatalf("Begin = %+v, %v", r, err)
		}
		final, err := conv.Step(string(r.Data))
		if err != nil {
			b.Fatal(err)
		}
		if r, err = x.Respond(ctx, []byte(final)); err != nil || r.Kind != KindSuccess {
			b.Fatalf("Respond = %+v, %v", r, err)
		}
	}
}
