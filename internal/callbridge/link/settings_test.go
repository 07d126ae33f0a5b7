package link

import (
	"net"
	"strings"
	"testing"
)

func TestValidators(t *testing.T) {
	tests := []struct {
		name  string
		fn    func(string) error
		good  []string
		wrong []string
	}{
		{"domain", ValidDomain,
			[]string{"example.com", "xn--bcher-kva.example", "a", "my-host.example.co", strings.Repeat("a", 63) + ".com"},
			[]string{"example.com.", ".example.com", "a..b", "-a.com", "a-.com", "a_b.com", "ex ample.com", "1.2.3.4", "a.123",
				strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "com", "bücher.example"}},
		{"uniqueName", ValidUniqueName,
			[]string{"cb1", "cb_london", "CB-2", strings.Repeat("a", 63)},
			[]string{"cb.1", "cb@x", "cb/1", "-cb", "cb-", strings.Repeat("a", 64), "c b"}},
		{"serverAddressOverride", ValidOverride,
			[]string{"xmpp.example.com", "xmpp.example.com:5223", "10.0.0.5", "10.0.0.5:15223", "::1", "2001:db8::1",
				"[2001:db8::1]", "[2001:db8::1]:5223", "[fe80::1%eth0]:5223", "localhost:1", "host:65535"},
			[]string{"host:0", "host:65536", "host:", "host:+5", "host:port", "2001:db8::1:5223x", "[2001:db8::1", "[2001:db8::1]5223",
				"[10.0.0.1]:5223", "[::1%a b]:5223", "::1%x/y", " host", "host:5223 ", "https://host", "a b:5223", ":5223", "host:5223:1", "1.2.3.999"}},
		{"sharedSecret", ValidSecret,
			[]string{"s", "with spaces and ünïcode", strings.Repeat("x", 1024)},
			[]string{"a\x00b", "tab\there", strings.Repeat("x", 1025)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.good {
				if err := tt.fn(s); err != nil {
					t.Errorf("%q refused: %v", s, err)
				}
			}
			for _, s := range tt.wrong {
				if err := tt.fn(s); err == nil {
					t.Errorf("%q accepted", s)
				}
			}
		})
	}
}

func FuzzValidOverride(f *testing.F) {
	for _, s := range []string{"xmpp.example.com:5223", "[::1]:5223", "::1", "10.0.0.1", "[", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidOverride(s) != nil {
			return
		}
		// Whatever is accepted splits into a host and a port as net.Dial reads them, once
		// the default port is added where none was given.
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
			host, port, err = net.SplitHostPort(net.JoinHostPort(h, "5223"))
		}
		if err != nil || host == "" || port == "" || strings.ContainsAny(host, " /@[]") {
			t.Errorf("ValidOverride(%q) accepted it, but it splits into %q %q (%v)", s, host, port, err)
		}
	})
}
