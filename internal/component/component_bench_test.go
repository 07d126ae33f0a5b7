package component

import (
	"context"
	"net"
	"testing"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// BenchmarkHandshake measures one XEP-0114 negotiation, both sides (stream headers, the
// SHA-1 digest, the registry lookup and its constant-time comparison), over loopback TCP
// without TLS, which BenchmarkTLSHandshake in internal/bench measures on its own.
func BenchmarkHandshake(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	sec := secret.New("bench-secret")
	cfg := AcceptConfig{
		Domain: "example.com",
		Lookup: func(jid string) (string, secret.Secret, bool) { return "cb1", sec, jid == "cb1.example.com" },
	}
	errs := make(chan error, 1)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				errs <- nil
				return
			}
			c, err := Accept(context.Background(), nc, cfg)
			if err != nil {
				errs <- err
				return
			}
			_ = c.Close("", "")
		}
	}()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c, err := Handshake(ctx, nc, "cb1.example.com", sec, stream.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close("", "")
	}
	ln.Close()
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
