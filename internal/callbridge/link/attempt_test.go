package link_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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

const (
	domain  = "example.com"
	host    = "xmpp.example.com"
	name    = "cb1"
	secret1 = "s3cret-of-cb1"
)

// env is a DNS server and a component server with a good certificate.
type env struct {
	pki *linktest.PKI
	dns *dnstest.Server
	srv *linktest.Server
}

func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	if len(names) == 0 {
		names = []string{domain, host}
	}
	pki := linktest.NewPKI(t, "Test CA")
	pair := pki.Issue(t, certs.Options{Server: true}, names...)
	srv := linktest.Start(t, linktest.Config{Domain: domain, Cert: pair.Cert, Components: map[string]string{name: secret1, "cb2": "s3cret-of-cb2"}})
	e := &env{pki: pki, srv: srv}
	e.dns = dnstest.Start(t, e.zone(srv.Port()))
	return e
}

// zone has an SRV record pointing to host at port.
func (e *env) zone(port uint16) dnstest.Zone {
	return dnstest.Zone{
		"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{{Priority: 10, Weight: 50, Port: port, Target: host}}},
		host:                             {A: []string{"127.0.0.1"}},
	}
}

func (e *env) options() link.AttemptOptions {
	return link.AttemptOptions{
		Resolver: discover.NewResolver(e.dns.Addr, time.Second), RootCAs: e.pki.Pool(),
		DNSTimeout: 2 * time.Second, ConnectTimeout: 2 * time.Second, TLSTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second,
	}
}

func config(override string) store.XMPPSettings {
	return store.XMPPSettings{UniqueName: name, Domain: domain, ServerAddressOverride: override, SharedSecret: secret.New(secret1)}
}

// attempt runs one attempt and returns its registration or failure and its events.
func attempt(t *testing.T, cfg store.XMPPSettings, o link.AttemptOptions) (*link.Registration, *link.Failure, []linkstate.Event) {
	t.Helper()
	var events []linkstate.Event
	o.Emit = func(e linkstate.Event) { events = append(events, e) }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reg, err := link.Attempt(ctx, cfg, o)
	if reg != nil {
		t.Cleanup(func() { reg.Conn.Close("", "") })
		return reg, nil, events
	}
	var f *link.Failure
	if !errors.As(err, &f) {
		t.Fatalf("Attempt error %v (%T): want a *link.Failure", err, err)
	}
	return nil, f, events
}

// refusedPort returns a loopback port nothing listens on.
func refusedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

func summary(events []linkstate.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "  %d %s %s %s [%s] %s\n", int(e.Step), e.Step, e.Outcome, e.Target, e.Cause, e.Detail)
	}
	return b.String()
}

// steps returns "step:outcome" for each event.
func steps(events []linkstate.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%d:%s", int(e.Step), e.Outcome)
	}
	return out
}

func TestAttemptRegistersThroughSRV(t *testing.T) {
	e := newEnv(t)
	reg, f, events := attempt(t, config(""), e.options())
	if f != nil {
		t.Fatalf("attempt failed: %v\n%s", f, summary(events))
	}
	if got, want := reg.Conn.JID(), "cb1.example.com"; got != want {
		t.Errorf("JID = %q, want %q", got, want)
	}
	if got, want := reg.Server(), fmt.Sprintf("%s:%d", host, e.srv.Port()); got != want {
		t.Errorf("Server() = %q, want %q", got, want)
	}
	want := []string{"2:ok", "3:skipped", "4:ok", "5:ok", "6:ok", "7:ok", "8:ok", "9:ok", "10:ok"}
	if got := steps(events); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("steps = %v, want %v\n%s", got, want, summary(events))
	}
	for _, ev := range events {
		if ev.Outcome == linkstate.OK && ev.Detail == "" {
			t.Errorf("step %d has no detail", ev.Step)
		}
		if ev.Start.IsZero() {
			t.Errorf("step %d has no start time", ev.Step)
		}
	}
	if d := events[2].Detail; !strings.Contains(d, "_xmpp-component._tcp.example.com") || !strings.Contains(d, host) {
		t.Errorf("SRV detail %q: want the name looked up and the target", d)
	}
	if d := events[3].Detail; !strings.Contains(d, "127.0.0.1") {
		t.Errorf("resolve detail %q: want the address", d)
	}
	if d := events[6].Detail; !strings.Contains(d, "DNS:example.com") || !strings.Contains(d, "DNS:xmpp.example.com") {
		t.Errorf("SAN detail %q: want the SANs", d)
	}
}

// TestAttemptSendsTheDomainAsSNI: the TLS SNI is the XMPP domain [XEP-0368 §3], whether the
// server was found through SRV (target xmpp.example.com) or given by serverAddressOverride
// (a name or an address); before, it was the host dialled, and a server with one
// VirtualHost (Prosody) refused it with the alert unrecognized_name.
func TestAttemptSendsTheDomainAsSNI(t *testing.T) {
	e := newEnv(t, domain, host, "127.0.0.1")
	port := e.srv.Port()
	for _, override := range []string{"", fmt.Sprintf("%s:%d", host, port), fmt.Sprintf("127.0.0.1:%d", port)} {
		t.Run("override="+override, func(t *testing.T) {
			before := len(e.srv.SNIs())
			if _, f, events := attempt(t, config(override), e.options()); f != nil {
				t.Fatalf("attempt failed: %v\n%s", f, summary(events))
			}
			snis := e.srv.SNIs()[before:]
			if len(snis) != 1 || snis[0] != domain {
				t.Errorf("SNI = %q, want [%q]", snis, domain)
			}
		})
	}
}

func TestAttemptOverride(t *testing.T) {
	e := newEnv(t, domain, host, "127.0.0.1")
	port := e.srv.Port()
	for _, tc := range []struct {
		override string
		server   string
	}{
		{fmt.Sprintf("%s:%d", host, port), fmt.Sprintf("%s:%d", host, port)},
		{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port)},
	} {
		t.Run(tc.override, func(t *testing.T) {
			reg, f, events := attempt(t, config(tc.override), e.options())
			if f != nil {
				t.Fatalf("attempt failed: %v\n%s", f, summary(events))
			}
			if got := reg.Server(); got != tc.server {
				t.Errorf("Server() = %q, want %q", got, tc.server)
			}
			want := "2:ok 3:ok 4:skipped 5:ok 6:ok 7:ok 8:ok 9:ok 10:ok"
			if got := strings.Join(steps(events), " "); got != want {
				t.Errorf("steps = %s, want %s", got, want)
			}
		})
	}
}

func TestAttemptOverrideDefaultPort(t *testing.T) {
	// Nothing listens on 5223 of 127.0.0.2 in a test: the attempt must have gone there.
	e := newEnv(t)
	_, f, events := attempt(t, config("127.0.0.2"), e.options())
	if f == nil {
		t.Fatalf("attempt to 127.0.0.2:5223 succeeded")
	}
	if got, want := f.Target, "127.0.0.2:5223"; got != want {
		t.Errorf("failure target = %q, want %q\n%s", got, want, summary(events))
	}
	if !strings.Contains(events[1].Detail, "port 5223 by default") {
		t.Errorf("override detail %q: want it to say the port defaulted", events[1].Detail)
	}
}

func TestAttemptSRVFailover(t *testing.T) {
	e := newEnv(t, domain, "xmpp1.example.com", "xmpp2.example.com")
	dead := refusedPort(t)
	if err := e.dns.SetZone(dnstest.Zone{
		"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{
			{Priority: 20, Weight: 50, Port: e.srv.Port(), Target: "xmpp2.example.com"},
			{Priority: 10, Weight: 50, Port: dead, Target: "xmpp1.example.com"},
		}},
		"xmpp1.example.com": {A: []string{"127.0.0.1"}},
		"xmpp2.example.com": {A: []string{"127.0.0.1"}},
	}); err != nil {
		t.Fatal(err)
	}
	reg, f, events := attempt(t, config(""), e.options())
	if f != nil {
		t.Fatalf("attempt failed: %v\n%s", f, summary(events))
	}
	if got, want := reg.Target.Host, "xmpp2.example.com"; got != want {
		t.Errorf("registered through %q, want %q", got, want)
	}
	var refused *linkstate.Event
	for i, ev := range events {
		if ev.Step == linkstate.StepConnect && ev.Outcome == linkstate.Failed {
			refused = &events[i]
		}
	}
	if refused == nil {
		t.Fatalf("no failed connect to the first target:\n%s", summary(events))
	}
	if got, want := refused.Target, fmt.Sprintf("xmpp1.example.com:%d", dead); got != want {
		t.Errorf("failed connect target = %q, want %q", got, want)
	}
	if refused.Cause != "connection-refused" || !strings.Contains(refused.Remedy, "nothing listens") {
		t.Errorf("failed connect: cause %q remedy %q, want connection-refused and 'nothing listens'", refused.Cause, refused.Remedy)
	}
}

func TestAttemptSRVPriorityOrder(t *testing.T) {
	// Every target is missing from DNS, so the attempt resolves each in turn: the order of
	// the resolve events is the order the targets were tried.
	e := newEnv(t)
	if err := e.dns.SetZone(dnstest.Zone{
		"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{
			{Priority: 30, Weight: 10, Port: 5223, Target: "c.example.com"},
			{Priority: 10, Weight: 10, Port: 5223, Target: "a.example.com"},
			{Priority: 20, Weight: 10, Port: 5223, Target: "b.example.com"},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	_, f, events := attempt(t, config(""), e.options())
	if f == nil {
		t.Fatal("attempt succeeded, want failure")
	}
	var order []string
	for _, ev := range events {
		if ev.Step == linkstate.StepResolve {
			order = append(order, ev.Target)
		}
	}
	if got, want := strings.Join(order, ","), "a.example.com,b.example.com,c.example.com"; got != want {
		t.Errorf("targets tried in order %s, want %s", got, want)
	}
	if f.Step != linkstate.StepResolve || f.Reason != linkstate.ReasonDNS || f.Cause != "nxdomain" {
		t.Errorf("failure = step %d %s %s, want step 5 dnsFailure nxdomain", f.Step, f.Reason, f.Cause)
	}
}

func TestAttemptSRVWeightOrder(t *testing.T) {
	// Within a priority, RFC 2782 picks by weight: a target of weight 1000 beside one of
	// weight 1 comes first nearly always (the chance of the other is 1/1001 per attempt).
	e := newEnv(t)
	if err := e.dns.SetZone(dnstest.Zone{
		"_xmpp-component._tcp." + domain: {SRV: []dnstest.SRV{
			{Priority: 10, Weight: 1, Port: 5223, Target: "light.example.com"},
			{Priority: 10, Weight: 1000, Port: 5223, Target: "heavy.example.com"},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	heavyFirst := 0
	const runs = 5
	for range runs {
		_, _, events := attempt(t, config(""), e.options())
		for _, ev := range events {
			if ev.Step == linkstate.StepResolve {
				if ev.Target == "heavy.example.com" {
					heavyFirst++
				}
				break
			}
		}
	}
	if heavyFirst < runs-1 {
		t.Errorf("the weight-1000 target came first in %d of %d attempts, want at least %d", heavyFirst, runs, runs-1)
	}
}

func TestAttemptDNSFailures(t *testing.T) {
	srvName := "_xmpp-component._tcp." + domain
	for _, tc := range []struct {
		name   string
		zone   dnstest.Zone
		step   linkstate.Step
		cause  string
		detail string
		remedy string
	}{
		{"nxdomain", dnstest.Zone{"other.org": {A: []string{"192.0.2.1"}}}, linkstate.StepSRV, "nxdomain",
			"NXDOMAIN", "_xmpp-component._tcp.example.com. 86400 IN SRV 10 50 5223 xmpp.example.com."},
		{"no SRV records", dnstest.Zone{srvName: {}}, linkstate.StepSRV, "no-records",
			"no SRV records", "_xmpp-component._tcp.example.com. 86400 IN SRV 10 50 5223 xmpp.example.com."},
		{"servfail", dnstest.Zone{srvName: {Rcode: dnstest.ServFail}}, linkstate.StepSRV, "server-failure",
			"SERVFAIL", "answers SERVFAIL: check the zone for example.com"},
		{"timeout", dnstest.Zone{srvName: {Silent: true}}, linkstate.StepSRV, "timeout",
			"timeout", "does not answer: check that it is running"},
		{"service unavailable", dnstest.Zone{srvName: {SRV: []dnstest.SRV{{Target: "."}}}}, linkstate.StepSRV, "unavailable",
			"not available", `replace the "." SRV record`},
		{"target nxdomain", dnstest.Zone{srvName: {SRV: []dnstest.SRV{{Priority: 1, Port: 5223, Target: "gone.example.com"}}}},
			linkstate.StepResolve, "nxdomain", "gone.example.com", "create an A (IPv4) or AAAA (IPv6) record for gone.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if err := e.dns.SetZone(tc.zone); err != nil {
				t.Fatal(err)
			}
			o := e.options()
			o.DNSTimeout = 300 * time.Millisecond
			_, f, events := attempt(t, config(""), o)
			if f == nil {
				t.Fatalf("attempt succeeded, want %s", tc.cause)
			}
			if f.Step != tc.step || f.Reason != linkstate.ReasonDNS || f.Cause != tc.cause {
				t.Errorf("failure = step %d %s %s, want step %d dnsFailure %s\n%s", f.Step, f.Reason, f.Cause, tc.step, tc.cause, summary(events))
			}
			if !strings.Contains(f.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", f.Detail, tc.detail)
			}
			if !strings.Contains(f.Remedy, tc.remedy) {
				t.Errorf("remedy %q does not contain %q", f.Remedy, tc.remedy)
			}
			if a := f.Alarm(); a.Type != "xmppRegistrationFailure" || a.FailureReason != "dnsFailure" {
				t.Errorf("alarm = %+v, want xmppRegistrationFailure dnsFailure", a)
			}
			last := events[len(events)-1]
			if last.Outcome != linkstate.Failed || last.Remedy == "" {
				t.Errorf("last event %+v: want a failure with a remedy", last)
			}
		})
	}
}

func TestAttemptCertificates(t *testing.T) {
	pki := linktest.NewPKI(t, "Test CA")
	other := linktest.NewPKI(t, "Someone Else's CA")
	past := time.Now().Add(-48 * time.Hour)
	for _, tc := range []struct {
		name     string
		cert     *certs.Pair
		override bool   // connect to 127.0.0.1:port instead of through SRV
		tlsCause string // "" = success
		step     linkstate.Step
		mentions []string // in the detail
		remedy   string
	}{
		{name: "good", cert: pki.Issue(t, certs.Options{Server: true}, domain, host)},
		{name: "good wildcard", cert: pki.Issue(t, certs.Options{Server: true}, domain, "*.example.com")},
		{name: "no domain SAN", cert: pki.Issue(t, certs.Options{Server: true}, host),
			tlsCause: "missing-san", step: linkstate.StepSAN, mentions: []string{"example.com"},
			remedy: "subjectAltName DNS:xmpp.example.com, DNS:example.com"},
		{name: "no FQDN SAN", cert: pki.Issue(t, certs.Options{Server: true}, domain),
			tlsCause: "missing-san", step: linkstate.StepSAN, mentions: []string{"xmpp.example.com"},
			remedy: "subjectAltName DNS:example.com, DNS:xmpp.example.com"},
		{name: "neither SAN", cert: pki.Issue(t, certs.Options{Server: true}, "other.test"),
			tlsCause: "missing-san", step: linkstate.StepSAN, mentions: []string{"example.com", "xmpp.example.com"},
			remedy: "DNS:other.test, DNS:example.com, DNS:xmpp.example.com"},
		{name: "untrusted CA", cert: other.Issue(t, certs.Options{Server: true}, domain, host),
			tlsCause: "unknown-authority", step: linkstate.StepTLS, mentions: []string{"Someone Else's CA"},
			remedy: "trust store"},
		{name: "expired", cert: pki.Issue(t, certs.Options{Server: true, NotBefore: past.Add(-time.Hour), NotAfter: past}, domain, host),
			tlsCause: "expired", step: linkstate.StepTLS, mentions: []string{"expired"}, remedy: "renew"},
		{name: "IP override with IP SAN", cert: pki.Issue(t, certs.Options{Server: true}, domain, "127.0.0.1"), override: true},
		{name: "IP override without IP SAN", cert: pki.Issue(t, certs.Options{Server: true}, domain, host), override: true,
			tlsCause: "missing-san", step: linkstate.StepSAN, mentions: []string{"127.0.0.1"}, remedy: "IP:127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := linktest.Start(t, linktest.Config{Domain: domain, Cert: tc.cert.Cert, Components: map[string]string{name: secret1}})
			dns := dnstest.Start(t, (&env{}).zone(srv.Port()))
			o := link.AttemptOptions{Resolver: discover.NewResolver(dns.Addr, time.Second), RootCAs: pki.Pool(), DNSTimeout: 2 * time.Second}
			cfg := config("")
			if tc.override {
				cfg.ServerAddressOverride = srv.Addr()
			}
			reg, f, events := attempt(t, cfg, o)
			if tc.tlsCause == "" {
				if f != nil {
					t.Fatalf("attempt failed: %v\n%s", f, summary(events))
				}
				if reg.Certificate == nil {
					t.Errorf("registration has no certificate")
				}
				return
			}
			if f == nil {
				t.Fatalf("attempt succeeded, want %s", tc.tlsCause)
			}
			if f.Step != tc.step || f.Reason != linkstate.ReasonConnect || f.TLSCause != tc.tlsCause {
				t.Errorf("failure = step %d %s tls %q, want step %d connectFailure tls %q\n%s", f.Step, f.Reason, f.TLSCause, tc.step, tc.tlsCause, summary(events))
			}
			for _, m := range tc.mentions {
				if !strings.Contains(f.Detail, m) {
					t.Errorf("detail %q does not name %q", f.Detail, m)
				}
			}
			if !strings.Contains(f.Remedy, tc.remedy) {
				t.Errorf("remedy %q does not contain %q", f.Remedy, tc.remedy)
			}
			if a := f.Alarm(); a.FailureReason != "connectFailure" || a.TLSCause != tc.tlsCause {
				t.Errorf("alarm = %+v, want connectFailure with TLS cause %s", a, tc.tlsCause)
			}
			if srv.Accepted() != 0 {
				t.Errorf("the server registered a component despite the refused certificate")
			}
		})
	}
}

func TestAttemptClientCertificate(t *testing.T) {
	pki := linktest.NewPKI(t, "Test CA")
	clientCA := linktest.NewPKI(t, "Call Bridge CA")
	srv := linktest.Start(t, linktest.Config{
		Domain: domain, Cert: pki.Issue(t, certs.Options{Server: true}, domain, host).Cert,
		ClientCAs: clientCA.Pool(), RequireClientCert: true, Components: map[string]string{name: secret1},
	})
	dns := dnstest.Start(t, (&env{}).zone(srv.Port()))
	good := clientCA.Issue(t, certs.Options{Client: true}, "cb1.example.com").Cert
	stranger := pki.Issue(t, certs.Options{Client: true}, "cb1.example.com").Cert
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"trusted client certificate", &good, true},
		{"no client certificate", nil, false},
		{"client certificate from another CA", &stranger, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := link.AttemptOptions{Resolver: discover.NewResolver(dns.Addr, time.Second), RootCAs: pki.Pool(), ClientCert: tc.cert}
			_, f, events := attempt(t, config(""), o)
			if tc.ok {
				if f != nil {
					t.Fatalf("attempt failed: %v\n%s", f, summary(events))
				}
				return
			}
			if f == nil {
				t.Fatal("attempt succeeded without an acceptable client certificate")
			}
			if f.Reason != linkstate.ReasonConnect || f.TLSCause != "bad-certificate" {
				t.Errorf("failure = %s tls %q (%v), want connectFailure bad-certificate\n%s", f.Reason, f.TLSCause, f, summary(events))
			}
			if !strings.Contains(f.Remedy, "certificate") {
				t.Errorf("remedy %q says nothing of the certificate", f.Remedy)
			}
		})
	}
}

func TestAttemptHandshakeRefused(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		cfg    store.XMPPSettings
		cause  string
		remedy string
	}{
		{"wrong secret", store.XMPPSettings{UniqueName: name, Domain: domain, SharedSecret: secret.New("wrong")},
			"not-authorized", "confab xmpp callbridge add-secret cb1"},
		{"unknown name", store.XMPPSettings{UniqueName: "cb9", Domain: domain, SharedSecret: secret.New(secret1)},
			"host-unknown", "confab xmpp callbridge add cb9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f, events := attempt(t, tc.cfg, e.options())
			if f == nil {
				t.Fatal("attempt succeeded")
			}
			if f.Step != linkstate.StepVerdict || f.Reason != linkstate.ReasonAuthentication || f.Cause != tc.cause {
				t.Errorf("failure = step %d %s %s, want step 10 authenticationFailure %s\n%s", f.Step, f.Reason, f.Cause, tc.cause, summary(events))
			}
			if !strings.Contains(f.Remedy, tc.remedy) {
				t.Errorf("remedy %q does not contain %q", f.Remedy, tc.remedy)
			}
			if a := f.Alarm(); !strings.Contains(a.Detail, tc.cause) {
				t.Errorf("alarm detail %q does not say %s", a.Detail, tc.cause)
			}
			if strings.Contains(summary(events), secret1) || strings.Contains(summary(events), "wrong") {
				t.Errorf("the events reveal the secret:\n%s", summary(events))
			}
		})
	}
}

func TestAttemptConnectFailures(t *testing.T) {
	e := newEnv(t)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept'>"))
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		name     string
		override string
		cause    string
		tlsCause string
		remedy   string
	}{
		{"connection refused", fmt.Sprintf("127.0.0.1:%d", refusedPort(t)), "connection-refused", "", "nothing listens on 127.0.0.1"},
		{"plaintext server", plain.Addr().String(), "not-tls", "not-tls", "does not speak TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f, events := attempt(t, config(tc.override), e.options())
			if f == nil {
				t.Fatal("attempt succeeded")
			}
			if f.Reason != linkstate.ReasonConnect || f.Cause != tc.cause || f.TLSCause != tc.tlsCause {
				t.Errorf("failure = %s %s tls %q, want connectFailure %s tls %q\n%s", f.Reason, f.Cause, f.TLSCause, tc.cause, tc.tlsCause, summary(events))
			}
			if !strings.Contains(f.Remedy, tc.remedy) {
				t.Errorf("remedy %q does not contain %q", f.Remedy, tc.remedy)
			}
		})
	}
}

func TestAttemptConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    store.XMPPSettings
		step   linkstate.Step
		cause  string
		detail string
	}{
		{"nothing set", store.XMPPSettings{}, linkstate.StepConfig, "configuration-incomplete", "missing uniqueName, domain, sharedSecret"},
		{"no secret", store.XMPPSettings{UniqueName: name, Domain: domain}, linkstate.StepConfig, "configuration-incomplete", "missing sharedSecret"},
		{"no domain", store.XMPPSettings{UniqueName: name, SharedSecret: secret.New("x")}, linkstate.StepConfig, "configuration-incomplete", "missing domain"},
		{"dotted name", store.XMPPSettings{UniqueName: "cb1.bad", Domain: domain, SharedSecret: secret.New("x")}, linkstate.StepConfig, "invalid-setting", "single DNS label"},
		{"bad override", store.XMPPSettings{UniqueName: name, Domain: domain, SharedSecret: secret.New("x"), ServerAddressOverride: "https://xmpp.example.com"},
			linkstate.StepOverride, "invalid-override", "scheme"},
		{"bad override port", store.XMPPSettings{UniqueName: name, Domain: domain, SharedSecret: secret.New("x"), ServerAddressOverride: "xmpp.example.com:99999"},
			linkstate.StepOverride, "invalid-override", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f, events := attempt(t, tc.cfg, link.AttemptOptions{})
			if f == nil {
				t.Fatal("attempt succeeded")
			}
			if f.Step != tc.step || f.Reason != linkstate.ReasonConfiguration || f.Cause != tc.cause {
				t.Errorf("failure = step %d %s %s, want step %d configurationIncomplete %s", f.Step, f.Reason, f.Cause, tc.step, tc.cause)
			}
			if !strings.Contains(f.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", f.Detail, tc.detail)
			}
			if f.Remedy == "" {
				t.Error("no remedy")
			}
			if last := events[len(events)-1]; last.Step != tc.step || last.Outcome != linkstate.Failed {
				t.Errorf("last event = %d %s, want step %d failed", last.Step, last.Outcome, tc.step)
			}
		})
	}
}
