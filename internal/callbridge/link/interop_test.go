package link_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/link/linktest"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/discover/dnstest"
	"confab.dev/confab/internal/peers"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// These tests run the real link against third-party XMPP servers (Debian's Prosody and
// ejabberd), registering on their component ports with TLS from the first byte.

// startPeer starts a server of kind whose certificate, issued by pki, names names, and
// that knows the component cb1.example.com with secret1.
func startPeer(t *testing.T, kind peers.Kind, pki *linktest.PKI, names ...string) *peers.Server {
	t.Helper()
	pair := pki.Issue(t, certs.Options{Server: true}, names...)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pair.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pair.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return peers.StartT(t, kind, peers.Options{
		Domain: domain, CertFile: certFile, KeyFile: keyFile,
		Components: map[string]string{name + "." + domain: secret1},
	})
}

// peerLink returns a link to s's direct-TLS component port by the name localhost, with
// the given name and secret; localhost resolves through a DNS server of the test's own to
// 127.0.0.1 only (where the server listens), whatever the machine's /etc/hosts says.
func peerLink(t *testing.T, s *peers.Server, pki *linktest.PKI, uniqueName, sec string) *link.Link {
	t.Helper()
	_, port, err := net.SplitHostPort(s.ComponentTLSAddr)
	if err != nil {
		t.Fatal(err)
	}
	dns := dnstest.Start(t, dnstest.Zone{"localhost": {A: []string{"127.0.0.1"}}})
	cfg := config("localhost:" + port)
	cfg.UniqueName, cfg.SharedSecret = uniqueName, secret.New(sec)
	// Generous timeouts: the servers share two cores with the other tests.
	return link.New(cfg, link.Options{
		Resolver: discover.NewResolver(dns.Addr, 2*time.Second), RootCAs: pki.Pool(),
		DNSTimeout: 5 * time.Second, ConnectTimeout: 10 * time.Second, TLSTimeout: 20 * time.Second, HandshakeTimeout: 20 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		Logger: newTestLogger(t),
	})
}

// waitPeer is waitFor with a deadline for a busy machine.
func waitPeer(t *testing.T, l *link.Link, what string, cond func(linkstate.Status) bool) linkstate.Status {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		ch := l.Changes()
		st := l.Status()
		if cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; status %+v\n%s", what, st, summary(l.Trace(0)))
		}
	}
}

func TestInteropPeers(t *testing.T) {
	for _, p := range []struct {
		kind peers.Kind
		// unknownName is the stream error the server answers an unregistered component
		// name with; skip says why that case cannot pass yet.
		unknownName, skip string
		// noLocalhost checks the link's failure against a certificate that lacks the
		// name the link connects by.
		noLocalhost func(t *testing.T, l *link.Link, st linkstate.Status)
	}{
		// Prosody answers <stream:stream id=''> then <host-unknown/>.
		{kind: peers.Prosody, unknownName: stream.HostUnknown, noLocalhost: noLocalhostServed},
		// ejabberd opens the stream for any name and answers the handshake with
		// <not-authorized/>: it does not tell an unknown name from a wrong secret.
		{kind: peers.Ejabberd, unknownName: stream.NotAuthorized, noLocalhost: noLocalhostServed},
	} {
		t.Run(string(p.kind), func(t *testing.T) {
			t.Parallel()
			pki := linktest.NewPKI(t, "Interop CA")

			t.Run("certificate for the domain and localhost", func(t *testing.T) {
				t.Parallel()
				s := startPeer(t, p.kind, pki, domain, "localhost")

				t.Run("registers", func(t *testing.T) {
					l := peerLink(t, s, pki, name, secret1)
					stop := start(t, l)
					st := waitPeer(t, l, "registration", registered)
					if st.Alarm != nil {
						t.Errorf("alarm %+v while registered", st.Alarm)
					}
					_, port, _ := net.SplitHostPort(s.ComponentTLSAddr)
					if got, want := st.Server, "localhost:"+port; got != want {
						t.Errorf("Server = %q, want %q", got, want)
					}
					if c := l.Conn(); c == nil || c.JID() != name+"."+domain {
						t.Errorf("Conn = %v, want a link as %s.%s", c, name, domain)
					}
					ok := map[linkstate.Step]bool{}
					for _, e := range l.Trace(0) {
						switch {
						case e.Outcome == linkstate.OK:
							ok[e.Step] = true
						case e.Step == linkstate.StepSRV && e.Outcome == linkstate.Skipped:
							// serverAddressOverride is set: no SRV lookup.
						default:
							t.Errorf("step %d (%s) %s: %s %s", int(e.Step), e.Step, e.Outcome, e.Cause, e.Detail)
						}
					}
					for _, step := range []linkstate.Step{linkstate.StepConfig, linkstate.StepOverride, linkstate.StepResolve,
						linkstate.StepConnect, linkstate.StepTLS, linkstate.StepSAN, linkstate.StepHandshake, linkstate.StepVerdict, linkstate.StepActive} {
						if !ok[step] {
							t.Errorf("no ok event for step %d (%s):\n%s", int(step), step, summary(l.Trace(0)))
						}
					}
					// Stop before the next case, so that its link is the only one.
					stop()
				})

				for _, c := range []struct {
					name, uniqueName, secret, cause, detail, skip string
				}{
					{"wrong secret", name, "not-the-secret", stream.NotAuthorized, "shared secret does not match", ""},
					{"unknown name", "cb7", secret1, p.unknownName, "<" + p.unknownName + "/>", p.skip},
				} {
					t.Run(c.name, func(t *testing.T) {
						if c.skip != "" {
							t.Skip(c.skip)
						}
						l := peerLink(t, s, pki, c.uniqueName, c.secret)
						start(t, l)
						st := waitPeer(t, l, "the authentication alarm", alarmed(linkstate.ReasonAuthentication))
						if st.Alarm.Type != link.AlarmType {
							t.Errorf("alarm type %q, want %q", st.Alarm.Type, link.AlarmType)
						}
						if !strings.Contains(st.Alarm.Detail, c.cause) || !strings.Contains(st.Alarm.Detail, c.detail) {
							t.Errorf("alarm detail %q: want %q and %q", st.Alarm.Detail, c.cause, c.detail)
						}
						if !hasEvent(l, linkstate.StepVerdict, linkstate.Failed, c.cause) {
							t.Errorf("no step 10 failure %s:\n%s", c.cause, summary(l.Trace(0)))
						}
						if !hasEvent(l, linkstate.StepHandshake, linkstate.OK, "") {
							t.Errorf("step 9 is not ok:\n%s", summary(l.Trace(0)))
						}
						if l.Conn() != nil {
							t.Error("a refused link has a Conn")
						}
					})
				}
			})

			t.Run("certificate without localhost", func(t *testing.T) {
				t.Parallel()
				s := startPeer(t, p.kind, pki, domain)
				l := peerLink(t, s, pki, name, secret1)
				start(t, l)
				st := waitPeer(t, l, "the connect alarm", alarmed(linkstate.ReasonConnect))
				p.noLocalhost(t, l, st)
				if l.Conn() != nil {
					t.Error("a refused link has a Conn")
				}
			})

			t.Run("certificate without the domain", func(t *testing.T) {
				t.Parallel()
				s := startPeer(t, p.kind, pki, "localhost")
				l := peerLink(t, s, pki, name, secret1)
				start(t, l)
				st := waitPeer(t, l, "the connect alarm", alarmed(linkstate.ReasonConnect))
				if got, want := st.Alarm.TLSCause, certs.CauseMissingSAN; got != want {
					t.Errorf("alarm tlsFailureCause = %q, want %q (%+v)", got, want, st.Alarm)
				}
				if !strings.Contains(st.Alarm.Detail, "lacks subjectAltName "+domain) {
					t.Errorf("alarm detail %q does not name the missing %s", st.Alarm.Detail, domain)
				}
				if !hasEvent(l, linkstate.StepSAN, linkstate.Failed, certs.CauseMissingSAN) {
					t.Errorf("no step 8 failure missing-san:\n%s", summary(l.Trace(0)))
				}
				if !hasEvent(l, linkstate.StepTLS, linkstate.OK, "") {
					t.Errorf("step 7 (TLS, chain) is not ok:\n%s", summary(l.Trace(0)))
				}
				if l.Conn() != nil {
					t.Error("a refused link has a Conn")
				}
			})
		})
	}
}

// noLocalhostServed: the link sends the XMPP domain as SNI (XEP-0368), so the server
// (Prosody, configured with its one VirtualHost; ejabberd) serves its certificate, and the
// link checks it at step 8 and names the missing localhost. Before the link sent the domain,
// Prosody ended the handshake with the alert unrecognized_name unless it had a VirtualHost
// named after the address dialled.
func noLocalhostServed(t *testing.T, l *link.Link, st linkstate.Status) {
	t.Helper()
	if got, want := st.Alarm.TLSCause, certs.CauseMissingSAN; got != want {
		t.Errorf("alarm tlsFailureCause = %q, want %q (%+v)", got, want, st.Alarm)
	}
	if !strings.Contains(st.Alarm.Detail, "lacks subjectAltName localhost") {
		t.Errorf("alarm detail %q does not name the missing localhost", st.Alarm.Detail)
	}
	if !hasEvent(l, linkstate.StepSAN, linkstate.Failed, certs.CauseMissingSAN) {
		t.Errorf("no step 8 failure missing-san:\n%s", summary(l.Trace(0)))
	}
}
