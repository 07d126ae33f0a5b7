package dnstest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"confab.dev/confab/internal/discover/dnstest"
)

func TestServerAnswers(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{
		"_xmpp-component._tcp.Example.COM.": {SRV: []dnstest.SRV{{Priority: 1, Weight: 2, Port: 5223, Target: "xmpp.example.com"}}},
		"xmpp.example.com":                  {A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"}},
		"a.b.deep.example.com":              {A: []string{"192.0.2.2"}},
		"fail.example.com":                  {Rcode: dnstest.ServFail},
		"refuse.example.com":                {Rcode: dnstest.Refused},
	})
	tests := []struct {
		name, qname string
		qtype       uint16
		net         string
		wantRcode   int
		wantAnswer  []string
	}{
		{"srv over udp", "_xmpp-component._tcp.example.com.", dns.TypeSRV, "udp", dns.RcodeSuccess, []string{"1 2 5223 xmpp.example.com."}},
		{"srv over tcp", "_xmpp-component._tcp.example.com.", dns.TypeSRV, "tcp", dns.RcodeSuccess, []string{"1 2 5223 xmpp.example.com."}},
		{"a", "XMPP.example.com.", dns.TypeA, "udp", dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"aaaa", "xmpp.example.com.", dns.TypeAAAA, "udp", dns.RcodeSuccess, []string{"2001:db8::1"}},
		{"other type is nodata", "xmpp.example.com.", dns.TypeMX, "udp", dns.RcodeSuccess, nil},
		{"missing type is nodata", "a.b.deep.example.com.", dns.TypeAAAA, "udp", dns.RcodeSuccess, nil},
		{"ancestor is nodata", "deep.example.com.", dns.TypeA, "udp", dns.RcodeSuccess, nil},
		{"outside the zone", "nope.example.com.", dns.TypeA, "udp", dns.RcodeNameError, nil},
		{"descendant of a name", "x.xmpp.example.com.", dns.TypeA, "tcp", dns.RcodeNameError, nil},
		{"servfail", "fail.example.com.", dns.TypeA, "udp", dns.RcodeServerFailure, nil},
		{"refused", "refuse.example.com.", dns.TypeSRV, "tcp", dns.RcodeRefused, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Queries()
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			c := &dns.Client{Net: tc.net, Timeout: 5 * time.Second}
			r, _, err := c.Exchange(m, srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.wantRcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
			}
			if !r.Authoritative {
				t.Errorf("answer is not authoritative")
			}
			var got []string
			for _, rr := range r.Answer {
				if rr.Header().Name != tc.qname {
					t.Errorf("answer owner %q, want the question's %q", rr.Header().Name, tc.qname)
				}
				switch rr := rr.(type) {
				case *dns.SRV:
					got = append(got, fmt.Sprintf("%d %d %d %s", rr.Priority, rr.Weight, rr.Port, rr.Target))
				case *dns.A:
					got = append(got, rr.A.String())
				case *dns.AAAA:
					got = append(got, rr.AAAA.String())
				}
			}
			if !slices.Equal(got, tc.wantAnswer) {
				t.Errorf("answer %q, want %q", got, tc.wantAnswer)
			}
			if n := srv.Queries() - before; n != 1 {
				t.Errorf("Queries() grew by %d, want 1", n)
			}
		})
	}
}

func TestTruncation(t *testing.T) {
	var recs []dnstest.SRV
	for i := range 50 {
		recs = append(recs, dnstest.SRV{Port: uint16(i + 1), Target: fmt.Sprintf("host-%02d.example.com", i)})
	}
	srv := dnstest.Start(t, dnstest.Zone{"s.example": {SRV: recs}})
	m := new(dns.Msg)
	m.SetQuestion("s.example.", dns.TypeSRV)
	r, _, err := (&dns.Client{Net: "udp"}).Exchange(m, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.Answer) >= len(recs) {
		t.Errorf("UDP answer: TC=%v with %d records; want TC and fewer than %d", r.Truncated, len(r.Answer), len(recs))
	}
	r, _, err = (&dns.Client{Net: "tcp"}).Exchange(m, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != len(recs) {
		t.Errorf("TCP answer: TC=%v with %d records; want all %d", r.Truncated, len(r.Answer), len(recs))
	}
}

func TestSilencePauseResume(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{
		"up.example":     {A: []string{"192.0.2.1"}},
		"silent.example": {A: []string{"192.0.2.2"}, Silent: true},
	})
	lookup := func(name string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := srv.Resolver().LookupNetIP(ctx, "ip4", name)
		return err
	}
	if err := lookup("up.example."); err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if err := lookup("silent.example."); !isTimeout(err) {
		t.Errorf("silent name: %v, want a timeout", err)
	}
	srv.Pause()
	if err := lookup("up.example."); !isTimeout(err) {
		t.Errorf("paused: %v, want a timeout", err)
	}
	srv.Resume()
	if err := lookup("up.example."); err != nil {
		t.Errorf("resumed: %v", err)
	}
	srv.Close()
	srv.Close() // idempotent; the test cleanup closes it a third time
	if err := lookup("up.example."); err == nil {
		t.Errorf("lookup succeeded after Close")
	}
}

func TestSetZoneRejectsBadAddresses(t *testing.T) {
	srv := dnstest.Start(t, nil)
	for _, z := range []dnstest.Zone{
		{"x.example": {A: []string{"2001:db8::1"}}},
		{"x.example": {AAAA: []string{"192.0.2.1"}}},
		{"x.example": {A: []string{"not an address"}}},
	} {
		if err := srv.SetZone(z); err == nil {
			t.Errorf("SetZone(%v) succeeded", z)
		}
	}
	if err := srv.SetZone(dnstest.Zone{"x.example": {A: []string{"192.0.2.1"}}}); err != nil {
		t.Errorf("SetZone: %v", err)
	}
}

func isTimeout(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsTimeout
}
