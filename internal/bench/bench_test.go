package bench_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/bench/benchserve"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// The benchmarks here measure the floor of a login: the server's CPU cost of a TLS
// handshake and of the SCRAM server steps, which no XMPP server can go below. The server's
// side runs on a goroutine locked to its OS thread, whose CPU time (RUSAGE_THREAD) is
// reported as server-cpu-ns/op; the client's side runs elsewhere and is not counted. GC work
// done by the runtime's background workers is not counted either.

const rusageThread = 1 // RUSAGE_THREAD on Linux

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU runs server(n) on a locked thread while client(n) runs on another goroutine,
// and reports the server's thread CPU time per operation.
func serverCPU(b *testing.B, client, server func(n int) error) {
	b.Helper()
	n := b.N
	cerr := make(chan error, 1)
	go func() { cerr <- client(n) }()
	serr := make(chan error, 1)
	var spent time.Duration
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := threadCPU()
		err := server(n)
		spent = threadCPU() - t0
		serr <- err
	}()
	if err := <-serr; err != nil {
		b.Fatal(err)
	}
	if err := <-cerr; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(n), "server-cpu-ns/op")
}

type pki struct {
	server *tls.Config
	client *tls.Config
}

func newPKI(b *testing.B, alg string) pki {
	b.Helper()
	ca, err := certs.NewCA("bench CA", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	p, err := ca.Issue(certs.Options{CommonName: "bench.example", DNSNames: []string{"bench.example"}, Server: true, Algorithm: alg})
	if err != nil {
		b.Fatal(err)
	}
	return pki{
		server: &tls.Config{Certificates: []tls.Certificate{p.Cert}, MinVersion: tls.VersionTLS12},
		// X25519 only: the key exchange every server in the comparison supports.
		client: &tls.Config{RootCAs: ca.Pool(), ServerName: "bench.example", CurvePreferences: []tls.CurveID{tls.X25519}},
	}
}

// tlsPair runs n TLS handshakes over loopback TCP; server handles the server's side of each.
func tlsPair(b *testing.B, p pki, server func(*tls.Conn) error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client := func(n int) error {
		for range n {
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			tc := tls.Client(nc, p.client)
			if err := tc.Handshake(); err != nil {
				return err
			}
			_ = tc.Close()
		}
		return nil
	}
	srv := func(n int) error {
		for range n {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			tc := tls.Server(nc, p.server)
			if err := tc.Handshake(); err != nil {
				return err
			}
			if err := server(tc); err != nil {
				return err
			}
			_ = tc.Close()
		}
		return nil
	}
	serverCPU(b, client, srv)
}

// BenchmarkTLSHandshake measures a full TLS 1.3 handshake (X25519, no resumption) with an
// ECDSA P-256 certificate, the one the comparison uses, and with RSA-2048 for reference.
func BenchmarkTLSHandshake(b *testing.B) {
	for _, alg := range []string{certs.ECDSAP256, certs.RSA2048} {
		b.Run(alg, func(b *testing.B) {
			p := newPKI(b, alg)
			tlsPair(b, p, func(*tls.Conn) error { return nil })
		})
	}
}

const (
	benchDomain   = "bench.example"
	benchPassword = "bench-password-1"
)

// directory returns the Call Bridge's real user directory (SQLite store, SCRAM keys and
// Argon2id hash made by users.Service) with one user, user0.
func directory(b *testing.B) *users.Directory {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(b.TempDir(), "cb.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc := users.New(users.Options{Store: st, Domain: func(context.Context) (string, error) { return benchDomain, nil }})
	b.Cleanup(func() { svc.Close() })
	if _, err := svc.CreateLocal(ctx, users.LocalUser{Username: "user0"}, secret.New(benchPassword)); err != nil {
		b.Fatal(err)
	}
	return svc.Directory(benchDomain, nil)
}

// scramExchange is one SCRAM-SHA-256 login relayed to a Responder: the client's messages are
// made by client (off the server's thread), the Responder's steps by server.
type scramExchange struct {
	resp   *loginrelay.Responder
	client *scram.Client
	toSrv  chan []byte
	toCli  chan []byte
}

func newSCRAM(b *testing.B) *scramExchange {
	c, err := scram.SHA256.NewClient("user0", benchPassword, "")
	if err != nil {
		b.Fatal(err)
	}
	return &scramExchange{
		resp:   &loginrelay.Responder{Domain: benchDomain, Dir: directory(b)},
		client: c, toSrv: make(chan []byte), toCli: make(chan []byte),
	}
}

func relayIQ(id, payload string) []byte {
	return []byte(`<iq type="set" id="` + id + `" from="` + benchDomain + `" to="cb1.` + benchDomain + `">` + payload + `</iq>`)
}

// sessions distinguishes exchanges.
func sessionID(i int) string { return fmt.Sprintf("s%d", i) }

func (x *scramExchange) clientSide(i int) error {
	conv := x.client.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return err
	}
	x.toSrv <- relayIQ("a", `<auth xmlns="urn:confab:login:1" session="`+sessionID(i)+`" mechanism="SCRAM-SHA-256">`+base64.StdEncoding.EncodeToString([]byte(first))+`</auth>`)
	challenge, err := payloadData(<-x.toCli, "challenge")
	if err != nil {
		return err
	}
	final, err := conv.Step(challenge)
	if err != nil {
		return err
	}
	x.toSrv <- relayIQ("b", `<response xmlns="urn:confab:login:1" session="`+sessionID(i)+`">`+base64.StdEncoding.EncodeToString([]byte(final))+`</response>`)
	ok, err := payloadData(<-x.toCli, "success")
	if err != nil {
		return err
	}
	if _, err := conv.Step(ok); err != nil || !conv.Valid() {
		return fmt.Errorf("server signature does not verify: %v", err)
	}
	return nil
}

// serverSide runs both Responder steps of one exchange.
func (x *scramExchange) serverSide(ctx context.Context) error {
	for range 2 {
		e, err := stream.Parse(<-x.toSrv, stream.NSComponent, stream.Limits{})
		if err != nil {
			return err
		}
		reply := x.resp.HandleIQ(ctx, e)
		if reply == nil {
			return fmt.Errorf("no answer to %s", e)
		}
		x.toCli <- reply
	}
	return nil
}

// payloadData returns the decoded SASL data of the answer's <kind/> payload.
func payloadData(reply []byte, kind string) (string, error) {
	e, err := stream.Parse(reply, stream.NSComponent, stream.Limits{})
	if err != nil {
		return "", err
	}
	s := string(e.Inner)
	if !strings.Contains(s, "<"+kind+" ") {
		return "", fmt.Errorf("expected %s, got %s", kind, s)
	}
	i := strings.Index(s, ">")
	j := strings.LastIndex(s, "</")
	data, err := base64.StdEncoding.DecodeString(s[i+1 : j])
	return string(data), err
}

// BenchmarkSCRAMServer measures the Call Bridge's side of a SCRAM-SHA-256 login: both
// Responder steps, with the credential lookup in the real store (stored keys, 4096
// iterations), parsing the relay IQs and writing the answers.
func BenchmarkSCRAMServer(b *testing.B) {
	x := newSCRAM(b)
	ctx := context.Background()
	serverCPU(b, func(n int) error {
		for i := range n {
			if err := x.clientSide(i); err != nil {
				return err
			}
		}
		return nil
	}, func(n int) error {
		for range n {
			if err := x.serverSide(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkFloor is the floor of a login's server CPU: one TLS handshake (ECDSA P-256,
// X25519) and the SCRAM-SHA-256 server steps, on the same thread.
func BenchmarkFloor(b *testing.B) {
	p := newPKI(b, certs.ECDSAP256)
	x := newSCRAM(b)
	ctx := context.Background()
	n := b.N
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := x.clientSide(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	tlsPair(b, p, func(*tls.Conn) error { return x.serverSide(ctx) })
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLogin measures a full login over loopback against Confab as `confab bench serve`
// runs it: TCP, STARTTLS (ECDSA P-256), SCRAM-SHA-256 relayed over the component link to a
// Call Bridge that checks the real user directory, resource binding, close. Client and
// server share the process: process-cpu-ns/op is both; compare.sh measures the server alone.
func BenchmarkLogin(b *testing.B) {
	dir := b.TempDir()
	if err := benchserve.MakeCerts(filepath.Join(dir, "certs"), benchDomain, certs.ECDSAP256); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r, err := benchserve.Start(ctx, benchserve.Options{
		Server: benchserve.Confab, Dir: filepath.Join(dir, "confab"), Domain: benchDomain,
		CAFile: filepath.Join(dir, "certs", "ca.pem"), CertFile: filepath.Join(dir, "certs", "cert.pem"), KeyFile: filepath.Join(dir, "certs", "key.pem"),
		Users: 1, Password: benchPassword, ComponentName: "echo", ComponentSecret: "echo-secret",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Stop(context.Background()) })
	tcfg := newPKIFromFile(b, filepath.Join(dir, "certs", "ca.pem"))
	t := &bench.Target{Addr: r.Info.C2S, Domain: benchDomain, TLS: tcfg}
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for b.Loop() {
		c, _, err := t.Login(ctx, "user0", benchPassword, "")
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := (ru1.Utime.Nano() + ru1.Stime.Nano()) - (ru0.Utime.Nano() + ru0.Stime.Nano())
	b.ReportMetric(float64(cpu)/float64(b.N), "process-cpu-ns/op")
}

func newPKIFromFile(b *testing.B, caFile string) *tls.Config {
	b.Helper()
	pool, err := loadPool(caFile)
	if err != nil {
		b.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: benchDomain, CurvePreferences: []tls.CurveID{tls.X25519}}
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", file)
	}
	return p, nil
}
