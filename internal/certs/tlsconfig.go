package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerOptions configure ServerConfig.
type ServerOptions struct {
	// CertFile and KeyFile name a PEM certificate (chain) and key; they are added to
	// Certificates. At least one certificate is needed.
	CertFile, KeyFile string
	Certificates      []tls.Certificate
	// ClientCAFile names PEM CA certificates that client certificates are verified against.
	// Without RequireClientCert a client certificate is asked for but optional.
	ClientCAFile string
	// RequireClientCert refuses clients without a certificate that verifies against
	// ClientCAFile (mutual TLS).
	RequireClientCert bool
}

// ClientOptions configure ClientConfig.
type ClientOptions struct {
	// CAFile names PEM CA certificates to trust, added to RootCAs. With neither, the
	// system roots are used.
	CAFile  string
	RootCAs *x509.CertPool
	// CertFile and KeyFile name a client certificate and key for mutual TLS, presented when
	// the server asks for one.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate is verified against (and sent as
	// SNI); empty means the host of the address dialled.
	ServerName string
}

// ServerConfig returns a server TLS configuration: TLS 1.2 at least, AEAD suites with
// forward secrecy for TLS 1.2, and the listed key exchanges.
func ServerConfig(o ServerOptions) (*tls.Config, error) {
	certs := append([]tls.Certificate(nil), o.Certificates...)
	if o.CertFile != "" || o.KeyFile != "" {
		c, err := loadKeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("server tls: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("server tls: no certificate (set CertFile and KeyFile, or Certificates)")
	}
	cfg := baseConfig()
	cfg.Certificates = certs
	if o.ClientCAFile != "" {
		pool, err := loadPool(nil, o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server tls: client CAs: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if o.RequireClientCert {
		if cfg.ClientCAs == nil {
			return nil, errors.New("server tls: RequireClientCert needs ClientCAFile")
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig returns a client TLS configuration with the same protocol floor as
// ServerConfig.
func ClientConfig(o ClientOptions) (*tls.Config, error) {
	cfg := baseConfig()
	cfg.ServerName = o.ServerName
	cfg.RootCAs = o.RootCAs
	if o.CAFile != "" {
		pool, err := loadPool(o.RootCAs, o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("client tls: %w", err)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		c, err := loadKeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client tls: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

func baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.3 suites are not configurable (and all sound); these apply to TLS 1.2:
		// ECDHE for forward secrecy, AEAD only.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// The hybrid post-quantum X25519MLKEM768 first (Go's own default, and OpenSSL 3.5's),
		// then X25519 and P-256 for every other peer.
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
	}
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("need both a certificate file and a key file (got %q and %q)", certFile, keyFile)
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

// loadPool returns a copy of base (or a new pool) with the certificates of file added.
func loadPool(base *x509.CertPool, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if base != nil {
		pool = base.Clone()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return pool, nil
}
