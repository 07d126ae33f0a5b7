package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"
)

// Causes of a failed TLS handshake, as returned by ClassifyTLSError. They are stable: logs,
// metrics, alarms and `confab diagnose` use them.
const (
	CauseUnknownAuthority = "unknown-authority" // the peer's chain does not lead to a trusted CA
	CauseExpired          = "expired"           // the peer's certificate expired or is not yet valid
	CauseHostnameMismatch = "hostname-mismatch" // the certificate is not valid for the name dialled
	CauseMissingSAN       = "missing-san"       // a *MissingSANError: a required name is absent
	CauseProtocolVersion  = "protocol-version"  // no TLS version both sides accept
	CauseBadCertificate   = "bad-certificate"   // the peer rejected our certificate, or we sent none
	CauseHandshakeFailure = "handshake-failure" // any other handshake failure
	CauseNotTLS           = "not-tls"           // the peer does not speak TLS (plaintext?)
	CauseTimeout          = "timeout"           // the handshake did not finish in time
	CauseEOF              = "eof"               // the peer closed or reset the connection
)

// ClassifyTLSError sorts an error from a TLS handshake (either side's) into one of the Cause
// constants and describes it in a sentence for an operator. A nil error gives "", "".
func ClassifyTLSError(err error) (cause, detail string) {
	if err == nil {
		return "", ""
	}
	var (
		missing   *MissingSANError
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		record    tls.RecordHeaderError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &missing):
		return CauseMissingSAN, missing.Error() + "; reissue it with subjectAltName " + missing.Remedy()
	case errors.As(err, &unknownCA):
		return CauseUnknownAuthority, unknownAuthorityDetail(unknownCA)
	case errors.As(err, &invalid):
		return invalidDetail(invalid)
	case errors.As(err, &hostname):
		return CauseHostnameMismatch, hostnameDetail(hostname)
	case errors.As(err, &record):
		return CauseNotTLS, notTLSDetail(record)
	}
	if code, ok := remoteAlert(err); ok {
		return alertCause(code)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "didn't provide a certificate"):
		return CauseBadCertificate, "the client sent no certificate, and this server requires one"
	case strings.Contains(msg, "unsupported versions") || strings.Contains(msg, "unsupported protocol version"):
		return CauseProtocolVersion, fmt.Sprintf("the two sides have no TLS version in common (%s); Confab requires TLS 1.2 or later", msg)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()):
		return CauseTimeout, "the TLS handshake did not complete in time: the peer accepted the connection but did not answer"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return CauseEOF, "the peer closed the connection during the TLS handshake (is it a TLS port, and does it accept us?)"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return CauseEOF, "the peer reset the connection during the TLS handshake (is it a TLS port, and does it accept us?)"
	}
	return CauseHandshakeFailure, "the TLS handshake failed: " + msg
}

func unknownAuthorityDetail(e x509.UnknownAuthorityError) string {
	c := e.Cert
	if c == nil {
		return "the peer's certificate is not signed by a trusted certificate authority"
	}
	if string(c.RawIssuer) == string(c.RawSubject) {
		return fmt.Sprintf("the peer's certificate %q is self-signed and not in the trust store; add it (or the CA that should sign it) to the trust store",
			c.Subject.CommonName)
	}
	return fmt.Sprintf("the peer's certificate %q was issued by %q, which is not in the trust store; add that CA's certificate to the trust store",
		c.Subject.CommonName, c.Issuer.CommonName)
}

func invalidDetail(e x509.CertificateInvalidError) (string, string) {
	c := e.Cert
	switch e.Reason {
	case x509.Expired:
		if c == nil {
			return CauseExpired, "the peer's certificate is outside its validity period"
		}
		now := time.Now()
		if now.Before(c.NotBefore) {
			return CauseExpired, fmt.Sprintf("the certificate %q is not valid until %s (check the clocks of both machines)",
				c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
		}
		return CauseExpired, fmt.Sprintf("the certificate %q expired at %s; renew it",
			c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	case x509.NotAuthorizedToSign:
		return CauseUnknownAuthority, "the peer's certificate chain is not valid: " + e.Error()
	}
	return CauseHandshakeFailure, "the peer's certificate cannot be used: " + e.Error()
}

func hostnameDetail(e x509.HostnameError) string {
	if e.Certificate == nil {
		return fmt.Sprintf("the peer's certificate is not valid for %s", e.Host)
	}
	present := presentSANs(e.Certificate)
	if len(present) == 0 {
		return fmt.Sprintf("the certificate %q is not valid for %s: it has no subjectAltNames (the common name does not count)",
			e.Certificate.Subject.CommonName, e.Host)
	}
	return fmt.Sprintf("the certificate %q is valid for %s, not for %s; connect by one of those names or reissue the certificate with %s added",
		e.Certificate.Subject.CommonName, strings.Join(sanList(present), ", "), e.Host, sanList([]string{e.Host})[0])
}

func notTLSDetail(e tls.RecordHeaderError) string {
	head := string(e.RecordHeader[:])
	if strings.HasPrefix(head, "<") || strings.HasPrefix(head, "\xef\xbb\xbf<") {
		return fmt.Sprintf("the peer answered in plaintext (%q…), not TLS: it looks like plain XMPP; this port expects TLS from the first byte", head)
	}
	return fmt.Sprintf("the peer's first bytes %q are not a TLS record: it does not speak TLS on this port", head)
}

// remoteAlert returns the alert description (RFC 8446 §6) of an alert the peer sent. crypto/tls
// reports one as a *net.OpError with Op "remote error" whose Err has an unexported uint8 type,
// so the code is read by reflection rather than by matching its text.
func remoteAlert(err error) (uint8, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return 0, false
	}
	return uint8(v.Uint()), true
}

func alertCause(code uint8) (string, string) {
	name := tls.AlertError(code).Error()
	switch code {
	case 42, 43, 44, 45, 46, 48, 49, 116:
		// bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired,
		// certificate_unknown, unknown_ca, access_denied, certificate_required.
		return CauseBadCertificate, fmt.Sprintf("the peer rejected our certificate, or the lack of one (alert %q): give it a certificate it trusts", name)
	case 70: // protocol_version
		return CauseProtocolVersion, fmt.Sprintf("the peer refused the TLS version offered (alert %q); Confab requires TLS 1.2 or later", name)
	}
	if code == 40 { // handshake_failure
		// A TLS 1.2 server that requires a client certificate it did not get sends this too.
		return CauseHandshakeFailure, fmt.Sprintf("the peer aborted the TLS handshake (alert %q): no cipher suite or key exchange in common, or, over TLS 1.2, it requires a client certificate we did not send", name)
	}
	return CauseHandshakeFailure, fmt.Sprintf("the peer aborted the TLS handshake (alert %q)", name)
}
