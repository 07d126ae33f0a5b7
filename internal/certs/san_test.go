package certs

import (
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
)

func TestCheckSANs(t *testing.T) {
	ca := newTestCA(t)
	domainOnly := issue(t, ca, Options{CommonName: "example.com", DNSNames: []string{"example.com"}}).Leaf
	both := issue(t, ca, Options{CommonName: "xmpp", DNSNames: []string{"example.com", "xmpp.example.com"}}).Leaf
	wildcard := issue(t, ca, Options{CommonName: "wild", DNSNames: []string{"example.com", "*.example.com"}}).Leaf
	withIP := issue(t, ca, Options{CommonName: "ip", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}}).Leaf
	cnOnly := issue(t, ca, Options{CommonName: "xmpp.example.com"}).Leaf

	tests := []struct {
		name        string
		cert        *x509.Certificate
		names       []string
		wantMissing []string
		wantMsg     string
		wantRemedy  string
	}{
		{name: "both present", cert: both, names: []string{"example.com", "xmpp.example.com"}},
		{name: "case and trailing dot", cert: both, names: []string{"Example.COM", "xmpp.example.com."}},
		{name: "wildcard covers host", cert: wildcard, names: []string{"example.com", "xmpp.example.com"}},
		{name: "ip addresses", cert: withIP, names: []string{"127.0.0.1", "::1", "localhost"}},
		{name: "blank names ignored", cert: domainOnly, names: []string{"", " ", "example.com"}},
		{
			name: "fqdn missing", cert: domainOnly, names: []string{"example.com", "xmpp.example.com"},
			wantMissing: []string{"xmpp.example.com"},
			wantMsg:     `certificate "example.com" lacks subjectAltName xmpp.example.com (it has DNS:example.com)`,
			wantRemedy:  "DNS:example.com, DNS:xmpp.example.com",
		},
		{
			name: "both missing", cert: withIP, names: []string{"example.com", "xmpp.example.com"},
			wantMissing: []string{"example.com", "xmpp.example.com"},
			wantMsg:     `certificate "ip" lacks subjectAltNames example.com, xmpp.example.com (it has DNS:localhost, IP:127.0.0.1, IP:::1)`,
			wantRemedy:  "DNS:localhost, IP:127.0.0.1, IP:::1, DNS:example.com, DNS:xmpp.example.com",
		},
		{
			name: "wildcard does not cover the apex", cert: issue(t, ca, Options{CommonName: "w", DNSNames: []string{"*.example.com"}}).Leaf, names: []string{"example.com", "xmpp.example.com"},
			wantMissing: []string{"example.com"},
			wantMsg:     `certificate "w" lacks subjectAltName example.com (it has DNS:*.example.com)`,
			wantRemedy:  "DNS:*.example.com, DNS:example.com",
		},
		{
			name: "ip missing", cert: domainOnly, names: []string{"192.0.2.7"},
			wantMissing: []string{"192.0.2.7"},
			wantRemedy:  "DNS:example.com, IP:192.0.2.7",
		},
		{
			name: "common name does not count", cert: cnOnly, names: []string{"xmpp.example.com"},
			wantMissing: []string{"xmpp.example.com"},
			wantMsg:     `certificate "xmpp.example.com" lacks subjectAltName xmpp.example.com (it has none, and the common name does not count)`,
			wantRemedy:  "DNS:xmpp.example.com",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSANs(tc.cert, tc.names...)
			if tc.wantMissing == nil {
				if err != nil {
					t.Fatalf("CheckSANs = %v, want nil", err)
				}
				return
			}
			var m *MissingSANError
			if !errors.As(err, &m) {
				t.Fatalf("CheckSANs = %v (%T), want *MissingSANError", err, err)
			}
			if !slices.Equal(m.Missing, tc.wantMissing) {
				t.Errorf("Missing = %q, want %q", m.Missing, tc.wantMissing)
			}
			if !slices.Equal(m.Want, tc.names) {
				t.Errorf("Want = %q, want %q", m.Want, tc.names)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message:\n got %s\nwant %s", err, tc.wantMsg)
			}
			for _, n := range tc.wantMissing {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("message %q does not name %s", err, n)
				}
			}
			if got := m.Remedy(); got != tc.wantRemedy {
				t.Errorf("Remedy() = %q, want %q", got, tc.wantRemedy)
			}
			// Reissuing with the remedy's names must satisfy the check.
			var o Options
			for _, san := range strings.Split(m.Remedy(), ", ") {
				if ip, ok := strings.CutPrefix(san, "IP:"); ok {
					o.IPs = append(o.IPs, net.ParseIP(ip))
				} else {
					o.DNSNames = append(o.DNSNames, strings.TrimPrefix(san, "DNS:"))
				}
			}
			if err := CheckSANs(issue(t, ca, o).Leaf, tc.names...); err != nil {
				t.Errorf("certificate reissued with the remedy still fails: %v", err)
			}
		})
	}
}
