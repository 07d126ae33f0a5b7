package discover

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

// ParseOverride parses a server address override: a host name or IP address with an
// optional port, which defaults to DefaultPort.
//
//	xmpp.example.com        -> xmpp.example.com, 5223
//	xmpp.example.com:5333   -> xmpp.example.com, 5333
//	192.0.2.10              -> 192.0.2.10, 5223
//	2001:db8::1             -> 2001:db8::1, 5223
//	[2001:db8::1]:5333      -> 2001:db8::1, 5333
//
// Surrounding whitespace is ignored. The error, an *Error of KindBadOverride, says what is
// wrong: an empty host, a port that is not a number or not in 1-65535, unbalanced brackets,
// spaces, a URL scheme, or characters no host name has.
func ParseOverride(s string) (host string, port uint16, err error) {
	orig := s
	bad := func(format string, a ...any) (string, uint16, error) {
		return "", 0, &Error{Op: OpOverride, Name: orig, Kind: KindBadOverride, Err: fmt.Errorf(format, a...)}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return bad("empty host")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return bad("remove the scheme %q: give host or host:port", s[:i+3])
	}
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return bad("contains a space: give host or host:port")
	}
	if strings.Contains(s, "/") {
		return bad("contains '/': give host or host:port, not a URL")
	}

	var portStr string
	hasPort := false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("unbalanced brackets: no closing ']'")
		}
		host = s[1:end]
		rest := s[end+1:]
		if strings.ContainsAny(host, "[]") || strings.ContainsAny(rest, "[]") {
			return bad("unbalanced brackets")
		}
		switch {
		case rest == "":
		case rest[0] == ':':
			portStr, hasPort = rest[1:], true
		default:
			return bad("unexpected %q after ']': give [address]:port", rest)
		}
		if host == "" {
			return bad("empty host")
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return bad("%q in brackets is not an IPv6 address", host)
		}
	case strings.ContainsAny(s, "[]"):
		return bad("unbalanced brackets: ']' without '['")
	case strings.Count(s, ":") > 1:
		// Several colons: an IPv6 address without a port.
		if _, err := netip.ParseAddr(s); err != nil {
			return bad("%q is not an IPv6 address; write an IPv6 address with a port as [address]:port", s)
		}
		host = s
	default:
		host, portStr, hasPort = strings.Cut(s, ":")
		if host == "" {
			return bad("empty host before ':'")
		}
		if err := checkHost(host); err != nil {
			return bad("%w", err)
		}
	}

	port = DefaultPort
	if hasPort {
		if portStr == "" {
			return bad("empty port after ':'")
		}
		n, err := strconv.ParseUint(portStr, 10, 16)
		switch {
		case errors.Is(err, strconv.ErrRange) || (err == nil && n == 0):
			return bad("port %s is out of range 1-65535", portStr)
		case err != nil:
			return bad("port %q is not a number", portStr)
		}
		port = uint16(n)
	}
	return host, port, nil
}

// checkHost accepts an IPv4 address or a DNS host name (letters, digits, '-' and '_' in
// labels of at most 63 characters, 253 in all, an optional final dot).
func checkHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if len(name) > 253 {
		return fmt.Errorf("host name is longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return fmt.Errorf("host %q has an empty label", h)
		}
		if len(l) > 63 {
			return fmt.Errorf("host %q has a label longer than 63 characters", h)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q has a label that starts or ends with '-'", h)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %q contains %q, which no host name has (internationalised names go in their xn-- form)", h, c)
			}
		}
	}
	// No top-level domain is all digits, so "192.0.2.300" is a mistyped address, not a name.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("%q is not a valid IPv4 address", h)
	}
	return nil
}
