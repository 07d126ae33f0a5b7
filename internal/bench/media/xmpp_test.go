package media

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/bench/benchserve"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
	"confab.dev/confab/internal/certs"
)

// confab starts Confab (XMPP server and Call Bridge with media on loopback, in this
// process) with users and spaces, stopped at the test's end.
func confab(t *testing.T, users, spaces int) (benchserve.Info, *bench.Target) {
	t.Helper()
	dir := t.TempDir()
	if err := benchserve.MakeCerts(filepath.Join(dir, "certs"), "bench.example", certs.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := benchserve.Start(ctx, benchserve.Options{
		Server: benchserve.Confab, Dir: filepath.Join(dir, "confab"), Domain: "bench.example",
		CAFile: filepath.Join(dir, "certs", "ca.pem"), CertFile: filepath.Join(dir, "certs", "cert.pem"), KeyFile: filepath.Join(dir, "certs", "key.pem"),
		Logger: mediaLog(t), Users: users, Password: "pw-test-1", ComponentName: "echo", ComponentSecret: "echo-secret", Spaces: spaces,
	})
	if err != nil {
		t.Fatalf("start Confab: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop Confab: %v", err)
		}
	})
	return r.Info, targetOf(t, r.Info)
}

// mediaLog is Confab's logger for the tests: discarded, unless CONFAB_MEDIA_LOG names a file
// that is to take everything at debug level (the SFU's layer choices among it).
func mediaLog(t *testing.T) *slog.Logger {
	p := os.Getenv("CONFAB_MEDIA_LOG")
	if p == "" {
		return nil
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func targetOf(t *testing.T, in benchserve.Info) *bench.Target {
	t.Helper()
	pem, err := os.ReadFile(in.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &bench.Target{Addr: in.C2S, Domain: in.Domain, TLS: &tls.Config{RootCAs: roots, ServerName: in.Domain, MinVersion: tls.VersionTLS13}}
}

// TestXMPPMeeting: three participants join one meeting through the Call Bridge's own
// signalling (XMPP login, the join presence, urn:confab:media:1), each publishing Opus and
// three-layer simulcast VP8, and each receives the other two's audio and video, every
// frame intact (regenerated and compared byte for byte) and from the right sender.
func TestXMPPMeeting(t *testing.T) {
	info, target := confab(t, 3, 1)
	const n = 3
	var ps []*XMPPParticipant
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p, err := JoinXMPP(ctx, XMPPOptions{Target: target, User: fmt.Sprintf("user%d", i), Password: info.Password,
			Space: info.Spaces[0], Name: fmt.Sprintf("p%d", i), Client: sfutest.Options{Audio: true, Video: Camera(30)}})
		cancel()
		if err != nil {
			t.Fatalf("participant %d: %v", i, err)
		}
		t.Cleanup(p.Close)
		ps = append(ps, p)
	}
	for _, rx := range ps {
		for _, tx := range ps {
			if rx == tx {
				continue
			}
			for _, kind := range []sfu.Kind{sfu.Audio, sfu.Video} {
				var got sfutest.RecvTrack
				err := rx.C.Until(30*time.Second, func() bool {
					rt, ok := rx.C.TrackOf(tx.ID, kind, "")
					got = rt
					return ok && rt.Verified >= 20
				})
				if err != nil {
					t.Fatalf("%s receiving %s's %s: %v; got %+v, errors %v", rx.C.Name, tx.C.Name, kind, err, got, rx.C.Errors())
				}
				if got.Verified != got.Frames {
					t.Errorf("%s from %s, %s: %d of %d frames intact", rx.C.Name, tx.C.Name, kind, got.Verified, got.Frames)
				}
				if len(got.Sources) != 1 || !got.Sources[tx.C.Src] {
					t.Errorf("%s from %s, %s: frames from sources %v, want only %d", rx.C.Name, tx.C.Name, kind, got.Sources, tx.C.Src)
				}
			}
		}
	}
	for _, p := range ps {
		if errs := p.C.Errors(); len(errs) > 0 {
			t.Errorf("%s: %v", p.C.Name, errs)
		}
	}
}
