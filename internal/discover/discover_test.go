package discover_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/discover/dnstest"
)

func TestSRVNameAndAddr(t *testing.T) {
	for _, tc := range []struct{ domain, want string }{
		{"example.com", "_xmpp-component._tcp.example.com"},
		{"example.com.", "_xmpp-component._tcp.example.com"},
		{" example.com ", "_xmpp-component._tcp.example.com"},
	} {
		if got := discover.SRVName(tc.domain); got != tc.want {
			t.Errorf("SRVName(%q) = %q, want %q", tc.domain, got, tc.want)
		}
	}
	for _, tc := range []struct {
		t    discover.Target
		want string
	}{
		{discover.Target{Host: "xmpp.example.com", Port: 5223}, "xmpp.example.com:5223"},
		{discover.Target{Host: "2001:db8::1", Port: 5333}, "[2001:db8::1]:5333"},
		{discover.Target{Host: "192.0.2.1", Port: 1}, "192.0.2.1:1"},
	} {
		if got := tc.t.Addr(); got != tc.want {
			t.Errorf("%+v.Addr() = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// zone is the DNS data most tests run against.
func zone() dnstest.Zone {
	return dnstest.Zone{
		"_xmpp-component._tcp.example.com": {SRV: []dnstest.SRV{
			{Priority: 20, Weight: 0, Port: 5223, Target: "backup.example.com"},
			{Priority: 10, Weight: 60, Port: 5223, Target: "xmpp1.example.com"},
			{Priority: 5, Weight: 0, Port: 5300, Target: "first.example.com"},
			{Priority: 10, Weight: 40, Port: 5224, Target: "xmpp2.example.com"},
			{Priority: 30, Weight: 10, Port: 5225, Target: "last.example.com"},
		}},
		"_xmpp-component._tcp.single.example":   {SRV: []dnstest.SRV{{Priority: 0, Weight: 0, Port: 5333, Target: "xmpp.single.example."}}},
		"_xmpp-component._tcp.dot.example":      {SRV: []dnstest.SRV{{Target: "."}}},
		"_xmpp-component._tcp.nodata.example":   {},
		"_xmpp-component._tcp.servfail.example": {Rcode: dnstest.ServFail},
		"_xmpp-component._tcp.refused.example":  {Rcode: dnstest.Refused},
		"_xmpp-component._tcp.silent.example":   {Silent: true},
		"xmpp1.example.com":                     {A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"}},
		"v4only.example.com":                    {A: []string{"192.0.2.2", "192.0.2.3"}},
		"v6only.example.com":                    {AAAA: []string{"2001:db8::6"}},
		"noaddr.example.com":                    {SRV: []dnstest.SRV{{Port: 1, Target: "x.example.com"}}},
		"servfail.example.com":                  {Rcode: dnstest.ServFail},
		"silent.example.com":                    {Silent: true},
	}
}

func TestTargets(t *testing.T) {
	srv := dnstest.Start(t, zone())
	r := discover.NewResolver(srv.Addr, time.Second)

	tests := []struct {
		name      string
		domain    string
		override  string
		want      []discover.Target // nil: see wantKind
		wantKind  string
		wantMsg   string
		wantNoDNS bool // the answer needs no query
	}{
		{name: "override host", domain: "example.com", override: "xmpp.override.example", want: []discover.Target{{Host: "xmpp.override.example", Port: 5223}}, wantNoDNS: true},
		{name: "override v6 with port", override: " [2001:db8::5]:5333 ", want: []discover.Target{{Host: "2001:db8::5", Port: 5333}}, wantNoDNS: true},
		{name: "bad override", domain: "example.com", override: "xmpp://x", wantKind: discover.KindBadOverride, wantMsg: `server address override "xmpp://x": remove the scheme "xmpp://": give host or host:port`, wantNoDNS: true},
		{name: "single srv", domain: "single.example", want: []discover.Target{{Host: "xmpp.single.example", Port: 5333, FromSRV: true}}},
		{name: "rooted domain", domain: "single.example.", want: []discover.Target{{Host: "xmpp.single.example", Port: 5333, FromSRV: true}}},
		{name: "case-insensitive", domain: "SINGLE.Example", want: []discover.Target{{Host: "xmpp.single.example", Port: 5333, FromSRV: true}}},
		{name: "nxdomain", domain: "nx.example", wantKind: discover.KindNXDomain, wantMsg: "SRV _xmpp-component._tcp.nx.example: no such domain (NXDOMAIN)"},
		{name: "no srv records", domain: "nodata.example", wantKind: discover.KindNoRecords, wantMsg: "SRV _xmpp-component._tcp.nodata.example: the name exists but has no SRV records"},
		{name: "domain exists, srv name does not", domain: "xmpp1.example.com", wantKind: discover.KindNXDomain},
		{name: "service decidedly not available", domain: "dot.example", wantKind: discover.KindUnavailable, wantMsg: `SRV _xmpp-component._tcp.dot.example: the service is decidedly not available at this domain (SRV target ".")`},
		{name: "servfail", domain: "servfail.example", wantKind: discover.KindServerFailure, wantMsg: fmt.Sprintf("SRV _xmpp-component._tcp.servfail.example: the DNS server %s failed to answer (SERVFAIL)", srv.Addr)},
		{name: "refused", domain: "refused.example", wantKind: discover.KindRefused, wantMsg: fmt.Sprintf("SRV _xmpp-component._tcp.refused.example: the DNS server %s refused the query (REFUSED)", srv.Addr)},
		{name: "no answer", domain: "silent.example", wantKind: discover.KindTimeout, wantMsg: fmt.Sprintf("SRV _xmpp-component._tcp.silent.example: no answer from the DNS server %s (timeout)", srv.Addr)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Short per-exchange timeouts for the silent name; the context bounds the rest.
			r := r
			if tc.wantKind == discover.KindTimeout {
				r = discover.NewResolver(srv.Addr, 100*time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			before := srv.Queries()
			got, err := discover.Targets(ctx, r, tc.domain, tc.override)
			if asked := srv.Queries() - before; tc.wantNoDNS && asked != 0 {
				t.Errorf("%d DNS queries, want none", asked)
			} else if !tc.wantNoDNS && asked == 0 {
				t.Errorf("no DNS query was made")
			}
			if tc.wantKind == "" {
				if err != nil {
					t.Fatalf("Targets error: %v", err)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("Targets = %+v, want %+v", got, tc.want)
				}
				return
			}
			var e *discover.Error
			if !errors.As(err, &e) {
				t.Fatalf("Targets = %+v, %v; want a *discover.Error of kind %q", got, err, tc.wantKind)
			}
			if e.Kind != tc.wantKind {
				t.Errorf("Kind = %q, want %q (error: %v)", e.Kind, tc.wantKind, err)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message:\n got %s\nwant %s", err, tc.wantMsg)
			}
			if got != nil {
				t.Errorf("targets %+v returned with an error", got)
			}
		})
	}
}

func TestTargetsPriorityOrder(t *testing.T) {
	srv := dnstest.Start(t, zone())
	r := discover.NewResolver(srv.Addr, time.Second)
	for i := range 20 {
		got, err := discover.Targets(t.Context(), r, "example.com", "")
		if err != nil {
			t.Fatal(err)
		}
		var hosts []string
		for _, tg := range got {
			if !tg.FromSRV {
				t.Errorf("target %+v: FromSRV is false", tg)
			}
			hosts = append(hosts, tg.Host)
		}
		// Priority 5, then the two of priority 10 in either order, then 20, then 30.
		if len(hosts) != 5 || hosts[0] != "first.example.com" || hosts[3] != "backup.example.com" || hosts[4] != "last.example.com" ||
			!slices.Contains(hosts[1:3], "xmpp1.example.com") || !slices.Contains(hosts[1:3], "xmpp2.example.com") {
			t.Fatalf("lookup %d: order %q breaks priority order", i, hosts)
		}
		if got[0].Port != 5300 || got[0].Priority != 5 {
			t.Errorf("first target %+v, want port 5300 priority 5", got[0])
		}
	}
}

func TestTargetsWeightOrder(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{
		"_xmpp-component._tcp.example.com": {SRV: []dnstest.SRV{
			{Priority: 10, Weight: 10, Port: 5223, Target: "light.example.com"},
			{Priority: 10, Weight: 90, Port: 5223, Target: "heavy.example.com"},
		}},
	})
	r := discover.NewResolver(srv.Addr, time.Second)
	const n = 300
	heavyFirst := 0
	for range n {
		got, err := discover.Targets(t.Context(), r, "example.com", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d targets, want 2", len(got))
		}
		if got[0].Host == "heavy.example.com" {
			heavyFirst++
		}
	}
	// Expected 270 of 300 (sd about 5); these bounds are 14 and 50 standard deviations away,
	// so they never fail by chance, yet catch a fixed or unweighted order.
	if heavyFirst < 200 || heavyFirst == n {
		t.Errorf("weight 90 came first in %d of %d lookups, want about 90%% (and weight 10 sometimes)", heavyFirst, n)
	}
}

func TestLookupAddrs(t *testing.T) {
	srv := dnstest.Start(t, zone())
	r := discover.NewResolver(srv.Addr, time.Second)
	tests := []struct {
		host      string
		want      []string
		wantKind  string
		wantMsg   string
		wantNoDNS bool
	}{
		{host: "xmpp1.example.com", want: []string{"192.0.2.1", "2001:db8::1"}},
		{host: "xmpp1.example.com.", want: []string{"192.0.2.1", "2001:db8::1"}},
		{host: "v4only.example.com", want: []string{"192.0.2.2", "192.0.2.3"}},
		{host: "v6only.example.com", want: []string{"2001:db8::6"}},
		{host: "192.0.2.77", want: []string{"192.0.2.77"}, wantNoDNS: true},
		{host: "2001:db8::77", want: []string{"2001:db8::77"}, wantNoDNS: true},
		{host: "[2001:db8::78]", want: []string{"2001:db8::78"}, wantNoDNS: true},
		{host: "nothere.example.com.", wantKind: discover.KindNXDomain, wantMsg: "A/AAAA nothere.example.com: no such domain (NXDOMAIN)"},
		{host: "noaddr.example.com.", wantKind: discover.KindNoRecords, wantMsg: "A/AAAA noaddr.example.com: the name exists but has no A or AAAA records"},
		{host: "example.com.", wantKind: discover.KindNoRecords}, // an ancestor of names in the zone
		{host: "servfail.example.com.", wantKind: discover.KindServerFailure, wantMsg: "(SERVFAIL)"},
		{host: "silent.example.com.", wantKind: discover.KindTimeout},
		{host: "", wantMsg: "empty host name", wantNoDNS: true},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			r := r
			if tc.wantKind == discover.KindTimeout {
				r = discover.NewResolver(srv.Addr, 100*time.Millisecond)
			}
			before := srv.Queries()
			got, err := discover.LookupAddrs(t.Context(), r, tc.host)
			if asked := srv.Queries() - before; tc.wantNoDNS != (asked == 0) {
				t.Errorf("%d DNS queries; want none: %v", asked, tc.wantNoDNS)
			}
			if tc.want != nil {
				if err != nil {
					t.Fatalf("LookupAddrs error: %v", err)
				}
				var s []string
				for _, a := range got {
					s = append(s, a.String())
				}
				slices.Sort(s) // the resolver orders by RFC 6724, which depends on the host
				if !slices.Equal(s, tc.want) {
					t.Errorf("LookupAddrs = %q, want %q", s, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("LookupAddrs = %v, want an error", got)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantMsg)
			}
			if tc.wantKind == "" {
				return
			}
			var e *discover.Error
			if !errors.As(err, &e) || e.Kind != tc.wantKind || e.Op != discover.OpResolve {
				t.Fatalf("error %v: want a *discover.Error, op resolve, kind %q", err, tc.wantKind)
			}
			var de *net.DNSError
			if !errors.As(err, &de) {
				t.Errorf("error %v does not unwrap to a *net.DNSError", err)
			}
		})
	}
	// Addresses come back unmapped, ready for netip comparisons.
	got, err := discover.LookupAddrs(t.Context(), r, "v4only.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range got {
		if !a.Is4() {
			t.Errorf("address %v is not a plain IPv4 address", a)
		}
	}
}

func TestTCPFallback(t *testing.T) {
	// More SRV records than fit in a UDP answer: the server sets TC, and the resolver must
	// ask again over TCP and get them all.
	var recs []dnstest.SRV
	for i := range 60 {
		recs = append(recs, dnstest.SRV{Priority: uint16(i), Port: 5223, Target: fmt.Sprintf("xmpp-server-with-a-long-name-%02d.example.com", i)})
	}
	srv := dnstest.Start(t, dnstest.Zone{"_xmpp-component._tcp.example.com": {SRV: recs}})
	got, err := discover.Targets(t.Context(), discover.NewResolver(srv.Addr, time.Second), "example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d targets, want %d", len(got), len(recs))
	}
	for i, tg := range got {
		if tg.Priority != uint16(i) {
			t.Errorf("target %d has priority %d", i, tg.Priority)
		}
	}
	if q := srv.Queries(); q < 2 {
		t.Errorf("server saw %d queries, want the UDP one and the TCP retry", q)
	}
}

func TestPauseResumeAndSetZone(t *testing.T) {
	srv := dnstest.Start(t, zone())
	r := discover.NewResolver(srv.Addr, 100*time.Millisecond)
	lookup := func() ([]discover.Target, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return discover.Targets(ctx, r, "single.example", "")
	}
	if _, err := lookup(); err != nil {
		t.Fatalf("before Pause: %v", err)
	}
	srv.Pause()
	_, err := lookup()
	var e *discover.Error
	if !errors.As(err, &e) || e.Kind != discover.KindTimeout {
		t.Fatalf("while paused: %v, want kind timeout", err)
	}
	srv.Resume()
	if _, err := lookup(); err != nil {
		t.Fatalf("after Resume: %v", err)
	}

	if err := srv.SetZone(dnstest.Zone{"_xmpp-component._tcp.single.example": {SRV: []dnstest.SRV{{Port: 1, Target: "moved.example"}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := lookup()
	if err != nil || len(got) != 1 || got[0].Host != "moved.example" {
		t.Errorf("after SetZone: %+v, %v; want moved.example", got, err)
	}
	if err := srv.SetZone(dnstest.Zone{"x.example": {A: []string{"::1"}}}); err == nil {
		t.Errorf("SetZone accepted an IPv6 address as an A record")
	}
	if got, err := lookup(); err != nil || got[0].Host != "moved.example" {
		t.Errorf("a rejected SetZone changed the zone: %+v, %v", got, err)
	}
}

func TestServerGone(t *testing.T) {
	srv := dnstest.Start(t, zone())
	r := discover.NewResolver(srv.Addr, 500*time.Millisecond)
	srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := discover.Targets(ctx, r, "example.com", "")
	var e *discover.Error
	// Loopback answers a closed UDP port with ICMP port unreachable: a failure, not a wait,
	// and one that says nothing listens there (not a failing zone).
	if !errors.As(err, &e) || e.Kind != discover.KindConnRefused {
		t.Fatalf("Targets with the server gone: %v, want kind %s", err, discover.KindConnRefused)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say the connection was refused", err)
	}
	if !strings.Contains(err.Error(), srv.Addr) {
		t.Errorf("error %q does not name the server %s", err, srv.Addr)
	}
}

func TestCanceled(t *testing.T) {
	srv := dnstest.Start(t, zone())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := discover.Targets(ctx, discover.NewResolver(srv.Addr, time.Second), "example.com", "")
	var e *discover.Error
	if !errors.As(err, &e) || e.Kind != discover.KindCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("Targets with a canceled context: %v, want kind canceled wrapping context.Canceled", err)
	}
}

func TestOtherResolvers(t *testing.T) {
	// A resolver discover did not make still works; it cannot tell NXDOMAIN from NODATA.
	srv := dnstest.Start(t, zone())
	r := srv.Resolver()
	got, err := discover.Targets(t.Context(), r, "single.example", "")
	if err != nil || len(got) != 1 {
		t.Fatalf("Targets = %+v, %v", got, err)
	}
	for _, domain := range []string{"nx.example", "nodata.example"} {
		_, err := discover.Targets(t.Context(), r, domain, "")
		var e *discover.Error
		if !errors.As(err, &e) || e.Kind != discover.KindNotFound {
			t.Errorf("Targets(%s) through another resolver: %v, want kind not-found", domain, err)
		}
		if want := "no such domain, or no SRV records"; err != nil && !strings.HasSuffix(err.Error(), want) {
			t.Errorf("message %q, want it to end %q", err, want)
		}
	}
	if _, err := discover.Targets(t.Context(), r, " ", ""); err == nil {
		t.Errorf("Targets with no domain and no override succeeded")
	}
	if got := discover.NewResolver("", time.Second); got != net.DefaultResolver {
		t.Errorf("NewResolver(\"\") = %p, want net.DefaultResolver", got)
	}
	if a, err := discover.LookupAddrs(t.Context(), nil, "127.0.0.1"); err != nil || a[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("LookupAddrs(nil resolver, literal) = %v, %v", a, err)
	}
}
