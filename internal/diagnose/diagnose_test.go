package diagnose_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/link/linktest"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/diagnose"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/discover/dnstest"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

const (
	domain = "example.com"
	host   = "xmpp.example.com"
)

func run(t *testing.T, s diagnose.Settings) (diagnose.Report, string) {
	t.Helper()
	if s.DNSTimeout == 0 {
		s.DNSTimeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := diagnose.Run(ctx, s)
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	return r, b.String()
}

// rowRE matches the table line of step n with result res.
func rowRE(n int, res string) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`(?m)^\s*%d\s+%s\s`, n, res))
}

// harness returns a running XMPP server and settings that reach it.
func harness(t *testing.T) (*xmppdtest.Harness, diagnose.Settings) {
	t.Helper()
	h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true})
	s, _ := h.Registry.Lookup(xmppdtest.DefaultCallBridge)
	return h, diagnose.Settings{
		XMPPSettings: store.XMPPSettings{UniqueName: "cb1", Domain: h.Domain, ServerAddressOverride: h.ComponentAddr, SharedSecret: s},
		RootCAs:      h.Roots,
	}
}

func TestDiagnosePass(t *testing.T) {
	h, s := harness(t)
	r, table := run(t, s)
	if !r.Passed() {
		t.Fatalf("diagnosis failed:\n%s", table)
	}
	for _, want := range []*regexp.Regexp{
		rowRE(2, "PASS"), rowRE(3, "PASS"), rowRE(4, "SKIP"), rowRE(5, "PASS"), rowRE(6, "PASS"),
		rowRE(7, "PASS"), rowRE(8, "PASS"), rowRE(9, "PASS"), rowRE(10, "PASS"), rowRE(11, "PASS"),
		regexp.MustCompile(`(?m)^RESULT: PASS`),
		regexp.MustCompile(`XEP-0199 ping to example.com answered`),
		regexp.MustCompile(`subjectAltNames: DNS:example.com`),
	} {
		if !want.MatchString(table) {
			t.Errorf("table does not match %s:\n%s", want, table)
		}
	}
	if strings.Contains(table, "FAIL") {
		t.Errorf("a passing table says FAIL:\n%s", table)
	}
	if strings.Contains(table, s.SharedSecret.Reveal()) {
		t.Errorf("the table reveals the secret")
	}
	// The test link is gone afterwards.
	h.WaitLinks(t, func(jids []string) bool { return len(jids) == 0 })
}

// TestDiagnoseBesideALiveLink: diagnose run while the Call Bridge it checks is connected
// (the usual case: an administrator checks a running Call Bridge) never takes that Call
// Bridge's link away, whatever the XMPP server's duplicate policy, and says the name is in
// use. Before, under kick_old (then the default), the test's handshake replaced the live link.
func TestDiagnoseBesideALiveLink(t *testing.T) {
	for _, policy := range []string{xmppd.Reject, xmppd.KickOld} {
		t.Run(policy, func(t *testing.T) {
			t.Helper()
			h := xmppdtest.Start(t, xmppdtest.Options{NoCallBridge: true, Config: func(c *xmppd.Config) { c.DuplicateComponent = policy }})
			sec, _ := h.Registry.Lookup(xmppdtest.DefaultCallBridge)
			s := diagnose.Settings{
				XMPPSettings: store.XMPPSettings{UniqueName: "cb1", Domain: h.Domain, ServerAddressOverride: h.ComponentAddr, SharedSecret: sec},
				RootCAs:      h.Roots,
			}
			live := h.ConnectCallBridge(t, "cb1")
			r, table := run(t, s)
			if r.Passed() || r.Failure.FailureReason != linkstate.ReasonDuplicateName {
				t.Fatalf("diagnosis %+v, want a duplicateName failure:\n%s", r.Failure, table)
			}
			if !strings.Contains(table, "the name is in use") || !strings.Contains(table, "the secret is right") {
				t.Errorf("the table does not say the name is in use and the secret right:\n%s", table)
			}
			select {
			case <-live.Done():
				t.Fatalf("the live Call Bridge lost its link: %v", live.Err())
			default:
			}
			if got := h.Links(); len(got) != 1 {
				t.Errorf("links %v, want the live one", got)
			}
		})
	}
}

func TestDiagnoseNoRegister(t *testing.T) {
	h, s := harness(t)
	other := h.ConnectCallBridge(t, "cb1") // a running Call Bridge of the same name
	s.NoRegister = true
	r, table := run(t, s)
	if !r.Passed() {
		t.Fatalf("diagnosis failed:\n%s", table)
	}
	for _, want := range []*regexp.Regexp{rowRE(8, "PASS"), rowRE(9, "SKIP"), rowRE(10, "SKIP"), rowRE(11, "SKIP")} {
		if !want.MatchString(table) {
			t.Errorf("table does not match %s:\n%s", want, table)
		}
	}
	select {
	case <-other.Done():
		t.Errorf("the running Call Bridge lost its link: %v", other.Err())
	default:
	}
}

func TestDiagnoseFailures(t *testing.T) {
	h, good := harness(t)
	pki := linktest.NewPKI(t, "Test CA")
	stranger := linktest.NewPKI(t, "Unknown CA")
	startServer := func(t *testing.T, ca *linktest.PKI, names ...string) *linktest.Server {
		return linktest.Start(t, linktest.Config{Domain: domain, Cert: ca.Issue(t, certs.Options{Server: true}, names...).Cert,
			Components: map[string]string{"cb1": "s"}})
	}
	srvZone := func(port uint16) dnstest.Zone {
		return dnstest.Zone{
			"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{{Priority: 10, Weight: 50, Port: port, Target: host}}},
			host:                             {A: []string{"127.0.0.1"}},
		}
	}
	viaSRV := func(t *testing.T, zone dnstest.Zone, roots *linktest.PKI) diagnose.Settings {
		d := dnstest.Start(t, zone)
		return diagnose.Settings{
			XMPPSettings: store.XMPPSettings{UniqueName: "cb1", Domain: domain, SharedSecret: secret.New("s")},
			Resolver:     discover.NewResolver(d.Addr, time.Second), RootCAs: roots.Pool(),
		}
	}
	refused := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}

	for _, tc := range []struct {
		name     string
		settings func(t *testing.T) diagnose.Settings
		step     int
		reason   string
		want     []string // in the table
	}{
		{"incomplete settings", func(t *testing.T) diagnose.Settings {
			s := good
			s.SharedSecret = secret.Secret{}
			return s
		}, 2, "configurationIncomplete", []string{"missing sharedSecret", "/api/v1/system/configuration/xmpp"}},
		{"nxdomain", func(t *testing.T) diagnose.Settings {
			return viaSRV(t, dnstest.Zone{"other.org": {}}, pki)
		}, 4, "dnsFailure", []string{"NXDOMAIN", "_xmpp-component._tcp.example.com. 86400 IN SRV 10 50 5223 xmpp.example.com."}},
		{"target without address", func(t *testing.T) diagnose.Settings {
			z := srvZone(5223)
			delete(z, host)
			return viaSRV(t, z, pki)
		}, 5, "dnsFailure", []string{"create an A (IPv4) or AAAA (IPv6) record for xmpp.example.com"}},
		{"connection refused", func(t *testing.T) diagnose.Settings {
			s := good
			s.ServerAddressOverride = refused(t)
			return s
		}, 6, "connectFailure", []string{"connection refused", "nothing listens on"}},
		{"untrusted CA", func(t *testing.T) diagnose.Settings {
			srv := startServer(t, stranger, domain, host)
			return viaSRV(t, srvZone(srv.Port()), pki)
		}, 7, "connectFailure", []string{"unknown-authority", "Unknown CA", "trust store"}},
		{"certificate without the FQDN", func(t *testing.T) diagnose.Settings {
			srv := startServer(t, pki, domain)
			return viaSRV(t, srvZone(srv.Port()), pki)
		}, 8, "connectFailure", []string{"missing-san", "lacks subjectAltName xmpp.example.com", "subjectAltName DNS:example.com, DNS:xmpp.example.com"}},
		{"certificate without the domain", func(t *testing.T) diagnose.Settings {
			srv := startServer(t, pki, host)
			return viaSRV(t, srvZone(srv.Port()), pki)
		}, 8, "connectFailure", []string{"missing-san", "lacks subjectAltName example.com", "subjectAltName DNS:xmpp.example.com, DNS:example.com"}},
		{"wrong secret", func(t *testing.T) diagnose.Settings {
			s := good
			s.SharedSecret = secret.New("wrong")
			return s
		}, 10, "authenticationFailure", []string{"not-authorized", "confab xmpp callbridge add-secret cb1"}},
		{"unknown name", func(t *testing.T) diagnose.Settings {
			s := good
			s.UniqueName = "cb5"
			return s
		}, 10, "authenticationFailure", []string{"host-unknown", "confab xmpp callbridge add cb5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, table := run(t, tc.settings(t))
			if r.Passed() {
				t.Fatalf("diagnosis passed:\n%s", table)
			}
			if r.Failure.Step != tc.step || r.Failure.FailureReason != tc.reason {
				t.Errorf("failure = step %d %s, want step %d %s", r.Failure.Step, r.Failure.FailureReason, tc.step, tc.reason)
			}
			if re := rowRE(tc.step, "FAIL"); !re.MatchString(table) {
				t.Errorf("no FAIL row for step %d:\n%s", tc.step, table)
			}
			if !regexp.MustCompile(`(?m)^\s+remedy: \S`).MatchString(table) {
				t.Errorf("no remedy line:\n%s", table)
			}
			if !strings.Contains(table, fmt.Sprintf("RESULT: FAIL at step %d", tc.step)) {
				t.Errorf("no FAIL verdict for step %d:\n%s", tc.step, table)
			}
			for _, w := range tc.want {
				if !strings.Contains(table, w) {
					t.Errorf("table lacks %q:\n%s", w, table)
				}
			}
			// Every later step is shown as not reached.
			for n := tc.step + 1; n <= 11; n++ {
				if !rowRE(n, "SKIP").MatchString(table) {
					t.Errorf("step %d is not SKIP after step %d failed:\n%s", n, tc.step, table)
				}
			}
			if strings.Contains(table, "wrong") && tc.name == "wrong secret" {
				t.Errorf("the table reveals the secret:\n%s", table)
			}

			var got struct {
				Passed  bool `json:"passed"`
				Failure struct {
					Step          int    `json:"step"`
					FailureReason string `json:"failureReason"`
					Remedy        string `json:"remedy"`
				} `json:"failure"`
				Steps []struct {
					Step   int    `json:"step"`
					Result string `json:"result"`
				} `json:"steps"`
			}
			var b bytes.Buffer
			if err := r.WriteJSON(&b); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b.Bytes(), &got); err != nil {
				t.Fatalf("JSON: %v\n%s", err, b.String())
			}
			if got.Passed || got.Failure.Step != tc.step || got.Failure.FailureReason != tc.reason || got.Failure.Remedy == "" {
				t.Errorf("JSON = passed %v failure %+v, want step %d %s with a remedy", got.Passed, got.Failure, tc.step, tc.reason)
			}
			if len(got.Steps) < 10 {
				t.Errorf("JSON has %d steps, want every step 2-11", len(got.Steps))
			}
		})
	}
	_ = h
}
