package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"time"
)

// Key algorithms for Options.Algorithm.
const (
	ECDSAP256 = "ecdsa-p256"
	RSA2048   = "rsa-2048"
)

// Options describe a certificate for CA.Issue.
type Options struct {
	// CommonName is the subject's common name. Verifiers ignore it for host names; list
	// every name a peer will check in DNSNames or IPs.
	CommonName string
	// DNSNames and IPs are the subjectAltNames.
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter bound the validity; zero means an hour ago and a year from now.
	NotBefore, NotAfter time.Time
	// Server and Client set the extended key usages serverAuth and clientAuth. If neither
	// is set the certificate is for a server.
	Server, Client bool
	// Algorithm is the key type: ECDSAP256 (the default when empty) or RSA2048.
	Algorithm string
}

// A Pair is an issued certificate with its private key.
type Pair struct {
	CertPEM []byte
	KeyPEM  []byte // PKCS #8
	// Cert is ready for tls.Config.Certificates (the leaf only: the root is not sent).
	Cert tls.Certificate
	Leaf *x509.Certificate
}

// Issue makes a key and a certificate for it signed by ca.
func (ca *CA) Issue(o Options) (*Pair, error) {
	if o.CommonName == "" && len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		return nil, errors.New("issue certificate: no common name, DNS name or IP address")
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.AddDate(1, 0, 0)
	}
	if !o.NotAfter.After(o.NotBefore) {
		return nil, fmt.Errorf("issue certificate: NotAfter %s is not after NotBefore %s",
			o.NotAfter.Format(time.RFC3339), o.NotBefore.Format(time.RFC3339))
	}
	key, err := generateKey(o.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		usage |= x509.KeyUsageKeyEncipherment // TLS 1.2 RSA key exchange
	}
	var ext []x509.ExtKeyUsage
	if o.Server || !o.Client {
		ext = append(ext, x509.ExtKeyUsageServerAuth)
	}
	if o.Client {
		ext = append(ext, x509.ExtKeyUsageClientAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName},
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           ext,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %q: %w", o.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %q: %w", o.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %q: marshal key: %w", o.CommonName, err)
	}
	return &Pair{
		CertPEM: encodePEM("CERTIFICATE", der),
		KeyPEM:  encodePEM("PRIVATE KEY", keyDER),
		Cert:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Leaf:    leaf,
	}, nil
}

// WriteFiles writes the certificate (mode 0644) and the private key (mode 0600).
func (p *Pair) WriteFiles(certFile, keyFile string) error {
	if err := writeFileAtomic(keyFile, p.KeyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, p.CertPEM, 0o644)
}

func generateKey(algorithm string) (crypto.Signer, error) {
	switch algorithm {
	case "", ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q (want %q or %q)", algorithm, ECDSAP256, RSA2048)
	}
}
