package launch

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"confab.dev/confab/internal/config"
)

// LinkTrust is what the Call Bridge needs to reach and verify its XMPP server: the trust
// store, the client certificate for mutual TLS, and the resolver.
type LinkTrust struct {
	RootCAs    *x509.CertPool   // nil: the system's trust store
	ClientCert *tls.Certificate // nil: none
	DNSServer  string           // "": the system resolver
}

// LoadLinkTrust reads the [xmpp] section of a Call Bridge configuration.
func LoadLinkTrust(cfg config.CallBridge) (LinkTrust, error) {
	var t LinkTrust
	if cfg.XMPP.CA != "" {
		pem, err := os.ReadFile(cfg.XMPP.CA)
		if err != nil {
			return t, fmt.Errorf("xmpp.ca: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return t, fmt.Errorf("xmpp.ca %s: no PEM certificates in it", cfg.XMPP.CA)
		}
	}
	if cfg.XMPP.ClientCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.XMPP.ClientCert, cfg.XMPP.ClientKey)
		if err != nil {
			return t, fmt.Errorf("xmpp.client_cert: %w", err)
		}
		t.ClientCert = &c
	}
	if cfg.XMPP.DNSServer != "" {
		t.DNSServer = cfg.XMPP.DNSServer
	}
	return t, nil
}
