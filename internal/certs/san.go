package certs

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"strings"
)

// A MissingSANError reports names a certificate does not cover (step 8 of the signalling
// flow: the XMPP server's certificate must carry both the XMPP domain and its own FQDN).
type MissingSANError struct {
	// Subject is the certificate's subject common name, to say which certificate it is.
	Subject string
	// Missing are the wanted names the certificate does not cover.
	Missing []string
	// Present are the certificate's subjectAltNames (DNS names and IP addresses).
	Present []string
	// Want are the names that were checked.
	Want []string
}

func (e *MissingSANError) Error() string {
	var b strings.Builder
	b.WriteString("certificate")
	if e.Subject != "" {
		fmt.Fprintf(&b, " %q", e.Subject)
	}
	if len(e.Missing) == 1 {
		fmt.Fprintf(&b, " lacks subjectAltName %s", e.Missing[0])
	} else {
		fmt.Fprintf(&b, " lacks subjectAltNames %s", strings.Join(e.Missing, ", "))
	}
	if len(e.Present) == 0 {
		b.WriteString(" (it has none, and the common name does not count)")
	} else {
		fmt.Fprintf(&b, " (it has %s)", strings.Join(sanList(e.Present), ", "))
	}
	return b.String()
}

// Remedy returns the subjectAltName list to reissue the certificate with, in OpenSSL's
// notation: the present names followed by the missing ones, for example
// "DNS:example.com, DNS:xmpp.example.com". (Wanted names that a present wildcard already
// covers need not be added.)
func (e *MissingSANError) Remedy() string {
	seen := make(map[string]bool)
	var all []string
	for _, n := range append(append([]string(nil), e.Present...), e.Missing...) {
		k := strings.ToLower(strings.TrimSuffix(n, "."))
		if seen[k] {
			continue
		}
		seen[k] = true
		all = append(all, n)
	}
	return strings.Join(sanList(all), ", ")
}

// CheckSANs reports, as a *MissingSANError, which of names cert does not cover. A name is
// covered as a TLS client would check it (x509.Certificate.VerifyHostname), so wildcards and
// IP addresses count. Empty names are ignored.
func CheckSANs(cert *x509.Certificate, names ...string) error {
	var missing, want []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		want = append(want, n)
		if cert.VerifyHostname(n) != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &MissingSANError{
		Subject: cert.Subject.CommonName,
		Missing: missing,
		Present: presentSANs(cert),
		Want:    want,
	}
}

func presentSANs(cert *x509.Certificate) []string {
	out := make([]string, 0, len(cert.DNSNames)+len(cert.IPAddresses))
	out = append(out, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// sanList writes names as "DNS:name" or "IP:address".
func sanList(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		if _, err := netip.ParseAddr(strings.Trim(n, "[]")); err == nil {
			out[i] = "IP:" + strings.Trim(n, "[]")
		} else {
			out[i] = "DNS:" + n
		}
	}
	return out
}
