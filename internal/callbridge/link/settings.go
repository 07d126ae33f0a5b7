package link

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"unicode"

	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/store"
)

// SettingError is an invalid XMPP setting, named by its API name.
type SettingError struct {
	Field string // uniqueName, domain, serverAddressOverride or sharedSecret
	Err   error
}

func (e *SettingError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// ValidateSettings checks every field of cfg with ValidateSetting; the error is a
// *SettingError naming the first invalid field.
func ValidateSettings(cfg store.XMPPSettings) error {
	for _, f := range [...][2]string{{"uniqueName", cfg.UniqueName}, {"domain", cfg.Domain},
		{"serverAddressOverride", cfg.ServerAddressOverride}, {"sharedSecret", cfg.SharedSecret.Reveal()}} {
		if err := ValidateSetting(f[0], f[1]); err != nil {
			return &SettingError{Field: f[0], Err: err}
		}
	}
	return nil
}

// ValidDomain accepts a DNS name: dot-separated labels of letters, digits and hyphens, 1-63
// characters each, not starting or ending with a hyphen, at most 253 characters, no trailing
// dot, and a last label that is not all digits (which also rules out IPv4 addresses).
// Internationalised names are given in their ASCII (xn--) form.
func ValidDomain(s string) error {
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

// ValidUniqueName accepts the Call Bridge's unique name: one label (letters, digits, hyphen
// and, as CMS allows, underscore; 1-63 characters), so that it is both a JID localpart and
// the first label of the component's domain.
func ValidUniqueName(s string) error { return validLabel(s, true) }

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

// ValidOverride accepts what the link will be able to use: discover.ParseOverride is the
// parser the link itself applies (host, host:port, IPv4, IPv6 alone or [IPv6]:port), and
// surrounding whitespace, which it would forgive, is refused so the stored value is clean.
func ValidOverride(s string) error {
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

// ValidSecret accepts a shared secret of at most 1024 bytes without control characters (it
// is typed or pasted by an administrator, and must match the XMPP server's byte for byte).
func ValidSecret(s string) error {
	if len(s) > 1024 {
		return errors.New("longer than 1024 bytes")
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return errors.New("contains a control character")
	}
	return nil
}

// ValidateSetting checks one field of the XMPP settings by its API name (uniqueName, domain,
// serverAddressOverride, sharedSecret): the REST API and the web admin accept exactly what
// the link can use. An empty value (unset) is always valid.
func ValidateSetting(field, value string) error {
	if value == "" {
		return nil
	}
	switch field {
	case "uniqueName":
		return ValidUniqueName(value)
	case "domain":
		return ValidDomain(value)
	case "serverAddressOverride":
		return ValidOverride(value)
	case "sharedSecret":
		return ValidSecret(value)
	}
	return fmt.Errorf("unknown setting %q", field)
}

// Applier is what a SettingsWriter applies stored settings to: the Link.
type Applier interface{ Apply(cfg store.XMPPSettings) }

// SettingsWriter is the one writer of the Call Bridge's XMPP settings: the REST API
// (/system/configuration/xmpp) and the web admin (Configuration > General) both call the
// Call Bridge's one SettingsWriter.
type SettingsWriter struct {
	Store *store.Store
	Link  Applier

	mu sync.Mutex // held from the read to the Apply
}

// Update reads the stored settings, lets change edit them, checks every field (a
// *SettingError names an invalid one), stores them and applies them to the link at once.
// Writers are serialised from the read to the apply, so however many save at once, the link
// ends on the settings stored last. It returns the settings before and after.
func (w *SettingsWriter) Update(ctx context.Context, change func(*store.XMPPSettings) error) (before, after store.XMPPSettings, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	after, err = w.Store.UpdateXMPPSettings(ctx, func(c *store.XMPPSettings) error {
		before = *c
		if err := change(c); err != nil {
			return err
		}
		return ValidateSettings(*c)
	})
	if err != nil {
		return before, after, err
	}
	if w.Link != nil {
		w.Link.Apply(after)
	}
	return before, after, nil
}
