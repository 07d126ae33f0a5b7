package discover_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"confab.dev/confab/internal/discover"
)

func TestParseOverride(t *testing.T) {
	tests := []struct {
		in       string
		wantHost string
		wantPort uint16
		wantErr  string // substring of the error; "" means success
	}{
		{in: "xmpp.example.com", wantHost: "xmpp.example.com", wantPort: 5223},
		{in: "  xmpp.example.com:5333\n", wantHost: "xmpp.example.com", wantPort: 5333},
		{in: "xmpp.example.com.", wantHost: "xmpp.example.com.", wantPort: 5223},
		{in: "localhost", wantHost: "localhost", wantPort: 5223},
		{in: "xmpp_1.example.com:1", wantHost: "xmpp_1.example.com", wantPort: 1},
		{in: "1.2.3.4", wantHost: "1.2.3.4", wantPort: 5223},
		{in: "1.2.3.4:65535", wantHost: "1.2.3.4", wantPort: 65535},
		{in: "2001:db8::1", wantHost: "2001:db8::1", wantPort: 5223},
		{in: "[2001:db8::1]:5333", wantHost: "2001:db8::1", wantPort: 5333},
		{in: "[2001:db8::1]", wantHost: "2001:db8::1", wantPort: 5223},
		{in: "::1", wantHost: "::1", wantPort: 5223},
		{in: "[fe80::1%eth0]:5223", wantHost: "fe80::1%eth0", wantPort: 5223},
		{in: "xmpp.example.com:05223", wantHost: "xmpp.example.com", wantPort: 5223},

		{in: "", wantErr: "empty host"},
		{in: "   ", wantErr: "empty host"},
		{in: ":5223", wantErr: "empty host"},
		{in: "[]:5223", wantErr: "empty host"},
		{in: "xmpp.example.com:", wantErr: "empty port"},
		{in: "xmpp.example.com:0", wantErr: "port 0 is out of range 1-65535"},
		{in: "xmpp.example.com:65536", wantErr: "port 65536 is out of range 1-65535"},
		{in: "xmpp.example.com:99999999999999999999", wantErr: "out of range"},
		{in: "xmpp.example.com:xmpp", wantErr: `port "xmpp" is not a number`},
		{in: "xmpp.example.com:-1", wantErr: "not a number"},
		{in: "xmpp.example.com:+5223", wantErr: "not a number"},
		{in: "[2001:db8::1:5333", wantErr: "unbalanced brackets"},
		{in: "2001:db8::1]:5333", wantErr: "unbalanced brackets"},
		{in: "[[2001:db8::1]]:5333", wantErr: "unbalanced brackets"},
		{in: "[2001:db8::1]5333", wantErr: `unexpected "5333" after ']'`},
		{in: "[xmpp.example.com]:5223", wantErr: "not an IPv6 address"},
		{in: "[1.2.3.4]:5223", wantErr: "not an IPv6 address"},
		{in: "2001:db8::g:5333", wantErr: "[address]:port"},
		{in: "xmpp example.com", wantErr: "contains a space"},
		{in: "xmpp.example.com :5223", wantErr: "contains a space"},
		{in: "xmpp://xmpp.example.com", wantErr: `remove the scheme "xmpp://"`},
		{in: "https://xmpp.example.com:5223/", wantErr: `remove the scheme "https://"`},
		{in: "xmpp.example.com/path", wantErr: "not a URL"},
		{in: "xmpp..example.com", wantErr: "empty label"},
		{in: ".example.com", wantErr: "empty label"},
		{in: "-xmpp.example.com", wantErr: "starts or ends with '-'"},
		{in: "xmpp@example.com", wantErr: `contains '@'`},
		{in: "xmpp.exämple.com", wantErr: "xn--"},
		{in: "1.2.3.400", wantErr: "not a valid IPv4 address"},
		{in: "1.2.3", wantErr: "not a valid IPv4 address"},
		{in: strings.Repeat("a", 64) + ".example.com", wantErr: "longer than 63"},
		{in: strings.Repeat("abcdefghi.", 26) + "com", wantErr: "longer than 253"},
	}
	for _, tc := range tests {
		t.Run(strconv.Quote(tc.in), func(t *testing.T) {
			host, port, err := discover.ParseOverride(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseOverride(%q) error: %v", tc.in, err)
				}
				if host != tc.wantHost || port != tc.wantPort {
					t.Errorf("ParseOverride(%q) = %q, %d; want %q, %d", tc.in, host, port, tc.wantHost, tc.wantPort)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseOverride(%q) = %q, %d; want an error containing %q", tc.in, host, port, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseOverride(%q) error = %q, want it to contain %q", tc.in, err, tc.wantErr)
			}
			var e *discover.Error
			if !errors.As(err, &e) || e.Op != discover.OpOverride || e.Kind != discover.KindBadOverride || e.Name != tc.in {
				t.Errorf("error %#v: want *discover.Error{Op: override, Kind: bad-override, Name: %q}", err, tc.in)
			}
			if want := "server address override " + strconv.Quote(tc.in) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

// FuzzParseOverride checks that whatever parses is a usable address that parses back to
// itself from its host:port form.
func FuzzParseOverride(f *testing.F) {
	for _, s := range []string{"xmpp.example.com", "host:5333", "[2001:db8::1]:5333", "2001:db8::1", "1.2.3.4", "[::1", "x://y", " a b ", "a:0", "[fe80::1%eth0]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := discover.ParseOverride(s)
		if err != nil {
			if host != "" || port != 0 {
				t.Errorf("ParseOverride(%q) returned %q, %d with error %v", s, host, port, err)
			}
			return
		}
		if host == "" || port == 0 || strings.ContainsAny(host, " \t\n[]/") {
			t.Fatalf("ParseOverride(%q) = %q, %d", s, host, port)
		}
		addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
		h2, p2, err := discover.ParseOverride(addr)
		if err != nil || h2 != host || p2 != port {
			t.Errorf("ParseOverride(%q) = %q, %d; its form %q parses to %q, %d, %v", s, host, port, addr, h2, p2, err)
		}
	})
}
