package xmppd

import (
	"sync"
	"time"
)

// CertCheck is what the XMPP server found when it checked its own certificate: whether it
// names the XMPP domain, and the names the domain's SRV records point Call Bridges to (each
// Call Bridge refuses a certificate that lacks either, at its step 8). The admin listener's
// /healthz shows it; the server stays healthy either way.
type CertCheck struct {
	Checked time.Time `json:"checked"`
	// OK is false when a warning was found.
	OK bool `json:"ok"`
	// Names are the certificate's subjectAltNames ("DNS:example.com", "IP:127.0.0.1").
	Names []string `json:"names"`
	// Warnings say which name is missing and what it breaks.
	Warnings []string `json:"warnings,omitempty"`
	// SRV says what the lookup of _xmpp-component._tcp.<domain> found, or why the names it
	// points to could not be checked.
	SRV string `json:"srv,omitempty"`
}

type certCheckBox struct {
	mu sync.Mutex
	c  *CertCheck
}

// SetCertCheck records the result of a check of the server's certificate (see CertCheck).
func (s *Server) SetCertCheck(c CertCheck) {
	s.certCheck.mu.Lock()
	defer s.certCheck.mu.Unlock()
	s.certCheck.c = &c
}

// CertificateCheck returns the last check of the server's certificate, or nil if none ran.
func (s *Server) CertificateCheck() *CertCheck {
	s.certCheck.mu.Lock()
	defer s.certCheck.mu.Unlock()
	if s.certCheck.c == nil {
		return nil
	}
	c := *s.certCheck.c
	return &c
}
