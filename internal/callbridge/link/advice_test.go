package link_test

import (
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/link/linktest"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/discover/dnstest"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// TestAttemptDNSServerFaults: a DNS server that refuses, does not answer or is not there
// is named, with its configured port, in a remedy about that server, not about the zone.
func TestAttemptDNSServerFaults(t *testing.T) {
	srvName := "_xmpp-component._tcp." + domain
	for _, tc := range []struct {
		name        string
		zone        dnstest.Zone
		stop        bool // no DNS server at the address at all
		cause       string
		remedy      []string
		notInRemedy []string
	}{
		{name: "does not answer", zone: dnstest.Zone{srvName: {Silent: true}}, cause: discover.KindTimeout,
			remedy: []string{"does not answer", "UDP and TCP port %[1]s", "127.0.0.1:%[1]s"}, notInRemedy: []string{"port 53)", "zone", "DNSSEC"}},
		{name: "refuses", zone: dnstest.Zone{srvName: {Rcode: dnstest.Refused}}, cause: discover.KindRefused,
			remedy: []string{"127.0.0.1:%[1]s refuses to answer"}, notInRemedy: []string{"DNSSEC"}},
		{name: "not running", zone: dnstest.Zone{}, stop: true, cause: discover.KindConnRefused,
			remedy: []string{"nothing listens at 127.0.0.1:%[1]s", "dns_server"}, notInRemedy: []string{"zone", "DNSSEC"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := dnstest.Start(t, tc.zone)
			_, port, _ := strings.Cut(dns.Addr, ":")
			if tc.stop {
				dns.Close()
			}
			o := link.AttemptOptions{Resolver: discover.NewResolver(dns.Addr, 200*time.Millisecond), DNSTimeout: 600 * time.Millisecond}
			_, f, events := attempt(t, config(""), o)
			if f == nil {
				t.Fatal("attempt succeeded")
			}
			if f.Step != linkstate.StepSRV || f.Reason != linkstate.ReasonDNS || f.Cause != tc.cause {
				t.Fatalf("failure = step %d %s %s, want step 4 dnsFailure %s\n%s", f.Step, f.Reason, f.Cause, tc.cause, summary(events))
			}
			for _, w := range tc.remedy {
				if w = strings.ReplaceAll(w, "%[1]s", port); !strings.Contains(f.Remedy, w) {
					t.Errorf("remedy %q: want %q", f.Remedy, w)
				}
			}
			for _, w := range tc.notInRemedy {
				if strings.Contains(f.Remedy, w) {
					t.Errorf("remedy %q: want no %q", f.Remedy, w)
				}
			}
		})
	}
}

// TestAttemptDomainTypo: a mistyped Domain field is reported as such, at whichever step
// shows it, never as "reissue the certificate with the typo" or only "create the record".
func TestAttemptDomainTypo(t *testing.T) {
	pki := linktest.NewPKI(t, "Test CA")
	t.Run("srv lookup, no override", func(t *testing.T) {
		dns := dnstest.Start(t, dnstest.Zone{"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{{Priority: 1, Port: 5223, Target: host}}}})
		for _, tc := range []struct {
			name  string
			known []string
			want  []string
		}{
			{"domain unknown to DNS", nil, []string{"first check that the Domain field (exmaple.com) is the XMPP server's domain", "exmaple.com itself does not exist in DNS", "if it is right, create the SRV record"}},
			{"registered before with another", []string{domain}, []string{"misspelling of example.com, with which this Call Bridge registered before"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := config("")
				cfg.Domain = "exmaple.com"
				o := link.AttemptOptions{Resolver: discover.NewResolver(dns.Addr, time.Second), KnownDomains: tc.known}
				_, f, events := attempt(t, cfg, o)
				if f == nil || f.Step != linkstate.StepSRV || f.Cause != discover.KindNXDomain {
					t.Fatalf("failure %v, want step 4 nxdomain\n%s", f, summary(events))
				}
				for _, w := range tc.want {
					if !strings.Contains(f.Remedy, w) {
						t.Errorf("remedy %q: want %q", f.Remedy, w)
					}
				}
			})
		}
	})
	t.Run("certificate of another domain, override", func(t *testing.T) {
		srv := linktest.Start(t, linktest.Config{Domain: domain, Cert: pki.Issue(t, certs.Options{Server: true}, domain, "localhost", "127.0.0.1").Cert,
			Components: map[string]string{name: secret1}})
		cfg := store.XMPPSettings{UniqueName: name, Domain: "example.org", ServerAddressOverride: srv.Addr(), SharedSecret: secret.New(secret1)}
		_, f, events := attempt(t, cfg, link.AttemptOptions{RootCAs: pki.Pool()})
		if f == nil || f.Step != linkstate.StepSAN || f.Cause != link.CauseDomainMismatch || f.TLSCause != certs.CauseMissingSAN {
			t.Fatalf("failure %+v, want step 8 domain-mismatch (TLS cause missing-san)\n%s", f, summary(events))
		}
		if want := "the XMPP server presents example.com: is the Domain field (example.org) right?"; !strings.HasPrefix(f.Remedy, want) {
			t.Errorf("remedy %q: want it to start %q", f.Remedy, want)
		}
		if a := f.Alarm(); a.FailureReason != linkstate.ReasonConnect || a.TLSCause != certs.CauseMissingSAN {
			t.Errorf("alarm %+v, want connectFailure/missing-san", a)
		}
	})
	t.Run("server of another domain answers host-unknown", func(t *testing.T) {
		// A certificate for both domains: the names pass, and the XMPP server itself says
		// which domain it serves.
		srv := linktest.Start(t, linktest.Config{Domain: domain, Cert: pki.Issue(t, certs.Options{Server: true}, domain, "example.org", "127.0.0.1").Cert,
			Components: map[string]string{name: secret1}})
		cfg := store.XMPPSettings{UniqueName: name, Domain: "example.org", ServerAddressOverride: srv.Addr(), SharedSecret: secret.New(secret1)}
		_, f, events := attempt(t, cfg, link.AttemptOptions{RootCAs: pki.Pool()})
		if f == nil || f.Step != linkstate.StepVerdict || f.Cause != link.CauseDomainMismatch || f.Reason != linkstate.ReasonAuthentication {
			t.Fatalf("failure %+v, want step 10 domain-mismatch\n%s", f, summary(events))
		}
		for _, w := range []string{"<host-unknown/>", "it serves the domain example.com, not example.org"} {
			if !strings.Contains(f.Detail, w) {
				t.Errorf("detail %q: want %q", f.Detail, w)
			}
		}
		if want := "the XMPP server presents example.com: is the Domain field (example.org) right?"; !strings.HasPrefix(f.Remedy, want) {
			t.Errorf("remedy %q: want it to start %q", f.Remedy, want)
		}
	})
	t.Run("unknown name of the right domain", func(t *testing.T) {
		srv := linktest.Start(t, linktest.Config{Domain: domain, Cert: pki.Issue(t, certs.Options{Server: true}, domain, "127.0.0.1").Cert,
			Components: map[string]string{name: secret1}})
		cfg := store.XMPPSettings{UniqueName: "cb9", Domain: domain, ServerAddressOverride: srv.Addr(), SharedSecret: secret.New(secret1)}
		_, f, _ := attempt(t, cfg, link.AttemptOptions{RootCAs: pki.Pool()})
		if f == nil || f.Cause != "host-unknown" || !strings.Contains(f.Remedy, "confab xmpp callbridge add cb9") {
			t.Fatalf("failure %+v, want host-unknown with the registration remedy", f)
		}
	})
}
