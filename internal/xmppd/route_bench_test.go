package xmppd

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"strconv"
	"testing"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

type benchRegistry struct{}

func (benchRegistry) Lookup(string) (secret.Secret, bool) { return secret.Secret{}, false }

// benchServer is a Server with one component link (echo.example.com) and one bound client
// session (user0@example.com/r), whose queues the benchmark drains itself.
func benchServer(b *testing.B) (*Server, *session, *componentSession) {
	b.Helper()
	s, err := New(Config{
		Domain:   "example.com",
		TLS:      &tls.Config{Certificates: []tls.Certificate{{}}},
		Registry: benchRegistry{},
	})
	if err != nil {
		b.Fatal(err)
	}
	l := &componentSession{srv: s, name: "echo", jid: "echo.example.com",
		done: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	l.out.init()
	s.router.addComponent(l, true)
	ss := &session{srv: s, bare: "user0@example.com", resource: "r",
		full: "user0@example.com/r"}
	ss.log = sessionLog{ss}
	ss.rate.rate, ss.rate.burst = 1e12, 1e12 // the benchmark measures the work, not the limit
	ss.out.flushing = true                   // the benchmark drains the queue itself: no flusher starts
	ss.bound = true
	s.router.bind(ss)
	return s, ss, l
}

func benchMessages(n int, to string) []byte {
	var buf bytes.Buffer
	buf.WriteString(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`)
	for i := range n {
		buf.WriteString(`<message to='` + to + `' id='m` + strconv.Itoa(i) + `' type='chat'><body>` + string(bytes.Repeat([]byte("x"), 64)) + `</body></message>`)
	}
	return buf.Bytes()
}

// BenchmarkDecodeAndRoute measures what the server does for one message a client sends to
// a component: decode it from the client's stream, check and stamp 'from', look up the
// destination and queue it, serialised for the component's stream.
func BenchmarkDecodeAndRoute(b *testing.B) {
	_, ss, l := benchServer(b)
	const n = 1024
	data := benchMessages(n, "echo.example.com")
	var r *stream.Reader
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			r = stream.NewReader(bytes.NewReader(data), stream.Limits{})
			if _, err := r.ReadOpen(stream.NSClient); err != nil {
				b.Fatal(err)
			}
		}
		e, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := ss.handle(e); err != nil {
			b.Fatal(err)
		}
		l.out.written(l.out.take(nil))
	}
}

// BenchmarkRouteFromComponent measures the way back: a message from the component to a
// client's full JID, decoded from the component's stream and queued for the client.
func BenchmarkRouteFromComponent(b *testing.B) {
	s, ss, l := benchServer(b)
	const n = 1024
	var buf bytes.Buffer
	buf.WriteString(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='echo.example.com'>`)
	for i := range n {
		buf.WriteString(`<message from='echo.example.com' to='user0@example.com/r' id='m` + strconv.Itoa(i) + `'><body>` + string(bytes.Repeat([]byte("x"), 64)) + `</body></message>`)
	}
	data := buf.Bytes()
	l.lastRead.start(s.mono)
	var r *stream.Reader
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			r = stream.NewReader(bytes.NewReader(data), stream.Limits{})
			if _, err := r.ReadOpen(stream.NSComponent); err != nil {
				b.Fatal(err)
			}
		}
		e, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := l.handle(e); err != nil {
			b.Fatal(err)
		}
		if len(ss.out.take(nil)) != 1 {
			b.Fatal("nothing queued for the client")
		}
	}
}
