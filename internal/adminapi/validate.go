package adminapi

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"confab.dev/confab/internal/discover"
)

// validDomain accepts a DNS name: dot-separated labels of letters, digits and hyphens, 1-63
// characters each, not starting or ending with a hyphen, at most 253 characters, no trailing
// dot, and a last label that is not all digits (which also rules out IPv4 addresses).
// Internationalised names are given in their ASCII (xn--) form.
func validDomain(s string) error {
	if len(s) > 253 {
		return errors.New("longer than 253 characters")
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if err := validLabel(l, false); err != nil {
			return err
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("the last label is all digits")
	}
	return nil
}

// validUniqueName accepts the Call Bridge's unique name: one label (letters, digits, hyphen
// and, as CMS allows, underscore; 1-63 characters), so that it is both a JID localpart and
// the first label of the component's domain.
func validUniqueName(s string) error { return validLabel(s, true) }

func validLabel(l string, underscore bool) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return fmt.Errorf("label %.20q… longer than 63 characters", l)
	}
	for _, c := range l {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || underscore && c == '_'
		if !ok {
			return fmt.Errorf("character %q not allowed in %q", c, l)
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	return nil
}

// validOverride accepts what the link will be able to use: discover.ParseOverride is the
// parser the link itself applies (host, host:port, IPv4, IPv6 alone or [IPv6]:port), and
// surrounding whitespace, which it would forgive, is refused so the stored value is clean.
func validOverride(s string) error {
	if strings.TrimSpace(s) != s {
		return errors.New("surrounding whitespace")
	}
	host, _, err := discover.ParseOverride(s)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return validZone(ip.Zone())
	}
	return nil
}

// validZone accepts an IPv6 zone that names an interface (eth0, en0.100) or its index, or
// none; netip and ParseOverride accept any text there.
func validZone(z string) error {
	if len(z) > 15 || strings.Trim(z, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return errors.New("invalid IPv6 zone")
	}
	return nil
}

// validSecret accepts a shared secret of at most 1024 bytes without control characters (it
// is typed or pasted by an administrator, and must match the XMPP server's byte for byte).
func validSecret(s string) error {
	if len(s) > 1024 {
		return errors.New("longer than 1024 bytes")
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return errors.New("contains a control character")
	}
	return nil
}

// ValidateXMPPSetting checks one field of the XMPP settings as the API does, by its API name
// (uniqueName, domain, serverAddressOverride, sharedSecret), so that the web admin accepts
// exactly what the API accepts. An empty value (unset) is always valid.
func ValidateXMPPSetting(field, value string) error {
	if value == "" {
		return nil
	}
	switch field {
	case "uniqueName":
		return validUniqueName(value)
	case "domain":
		return validDomain(value)
	case "serverAddressOverride":
		return validOverride(value)
	case "sharedSecret":
		return validSecret(value)
	}
	return fmt.Errorf("unknown setting %q", field)
}
