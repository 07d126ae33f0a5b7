package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestClassifyTLSErrorHandshakes(t *testing.T) {
	ca, stranger := newTestCA(t), newTestCA(t)
	const host = "xmpp.example.com"
	now := time.Now()
	good := issue(t, ca, Options{CommonName: host, DNSNames: []string{host}, Server: true})
	expired := issue(t, ca, Options{CommonName: host, DNSNames: []string{host}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	future := issue(t, ca, Options{CommonName: host, DNSNames: []string{host}, NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)})
	clientCert := issue(t, ca, Options{CommonName: "cb1", Client: true})
	strangerClient := issue(t, stranger, Options{CommonName: "cb1", Client: true})

	server := func(p *Pair, requireClient bool) *tls.Config {
		t.Helper()
		o := ServerOptions{Certificates: []tls.Certificate{p.Cert}}
		cfg, err := ServerConfig(o)
		if err != nil {
			t.Fatal(err)
		}
		if requireClient {
			cfg.ClientCAs = ca.Pool()
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return cfg
	}
	client := func(trust *CA, name string, edit func(*tls.Config)) *tls.Config {
		t.Helper()
		cfg, err := ClientConfig(ClientOptions{RootCAs: trust.Pool(), ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(cfg)
		}
		return cfg
	}
	tls11 := func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }
	tls12 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }
	withCert := func(p *Pair, next func(*tls.Config)) func(*tls.Config) {
		return func(c *tls.Config) {
			c.Certificates = []tls.Certificate{p.Cert}
			if next != nil {
				next(c)
			}
		}
	}
	plaintextXMPP := func(c net.Conn) error {
		_, err := io.WriteString(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept'>")
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, c) // until the client gives up
		return err
	}
	// hangUp reads the client's hello, then closes: a FIN. Closing with the hello unread
	// would make the kernel answer with a reset instead, which is another case.
	hangUp := func(c net.Conn) error {
		hdr := make([]byte, 5) // a TLS record header; the hello fits one record
		if _, err := io.ReadFull(c, hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, c, int64(hdr[3])<<8|int64(hdr[4])); err != nil {
			return err
		}
		return c.Close()
	}

	tests := []struct {
		name       string
		serve      func(net.Conn) error // nil: a TLS server with serverCfg
		serverCfg  *tls.Config
		clientCfg  *tls.Config
		wantClient string // cause the client sees
		wantServer string // cause the server sees; "" = not checked
		wantDetail string // in the client's detail
	}{
		{name: "untrusted CA", serverCfg: server(good, false), clientCfg: client(stranger, host, nil),
			wantClient: CauseUnknownAuthority, wantServer: CauseBadCertificate, wantDetail: `issued by "test CA", which is not in the trust store`},
		{name: "expired", serverCfg: server(expired, false), clientCfg: client(ca, host, nil),
			wantClient: CauseExpired, wantDetail: "expired at"},
		{name: "not yet valid", serverCfg: server(future, false), clientCfg: client(ca, host, nil),
			wantClient: CauseExpired, wantDetail: "not valid until"},
		{name: "wrong name", serverCfg: server(good, false), clientCfg: client(ca, "other.example.com", nil),
			wantClient: CauseHostnameMismatch, wantDetail: "valid for DNS:xmpp.example.com, not for other.example.com"},
		{name: "tls 1.1 client", serverCfg: server(good, false), clientCfg: client(ca, host, tls11),
			wantClient: CauseProtocolVersion, wantServer: CauseProtocolVersion, wantDetail: "TLS 1.2 or later"},
		{name: "plaintext peer", serve: plaintextXMPP, clientCfg: client(ca, host, nil),
			wantClient: CauseNotTLS, wantDetail: "plain XMPP"},
		{name: "client cert required, none sent (TLS 1.3)", serverCfg: server(good, true), clientCfg: client(ca, host, nil),
			wantClient: CauseBadCertificate, wantServer: CauseBadCertificate, wantDetail: "rejected our certificate"},
		// TLS 1.2 servers answer a missing client certificate with a plain handshake_failure
		// alert, so the client cannot tell it apart; the detail names it as a possibility.
		{name: "client cert required, none sent (TLS 1.2)", serverCfg: server(good, true), clientCfg: client(ca, host, tls12),
			wantClient: CauseHandshakeFailure, wantServer: CauseBadCertificate, wantDetail: "requires a client certificate we did not send"},
		{name: "client cert from an unknown CA", serverCfg: server(good, true), clientCfg: client(ca, host, withCert(strangerClient, nil)),
			wantClient: CauseBadCertificate, wantServer: CauseUnknownAuthority, wantDetail: "unknown certificate authority"},
		{name: "no common cipher suite", serverCfg: server(good, false), clientCfg: client(ca, host, func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
		}), wantClient: CauseHandshakeFailure, wantServer: CauseHandshakeFailure, wantDetail: "handshake failure"},
		{name: "peer hangs up", serve: hangUp, clientCfg: client(ca, host, nil),
			wantClient: CauseEOF, wantDetail: "closed the connection"},
		{name: "success with client cert", serverCfg: server(good, true), clientCfg: client(ca, host, withCert(clientCert, nil))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			if tc.serve != nil {
				r = handshakeWith(t, tc.serve, tc.clientCfg)
			} else {
				r = handshake(t, tc.serverCfg, tc.clientCfg)
			}
			// Callers wrap; classification must see through that.
			cause, detail := ClassifyTLSError(wrap(r.client))
			if cause != tc.wantClient {
				t.Errorf("client cause = %q, want %q (error: %v)", cause, tc.wantClient, r.client)
			}
			if !strings.Contains(detail, tc.wantDetail) {
				t.Errorf("client detail = %q, want it to contain %q", detail, tc.wantDetail)
			}
			if tc.wantClient != "" && (detail == "" || strings.HasSuffix(detail, ".")) {
				t.Errorf("detail %q: want a non-empty sentence without a final period", detail)
			}
			if tc.wantServer != "" {
				if cause, _ := ClassifyTLSError(wrap(r.server)); cause != tc.wantServer {
					t.Errorf("server cause = %q, want %q (error: %v)", cause, tc.wantServer, r.server)
				}
			}
		})
	}

	t.Run("plaintext client", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		serverErr := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				serverErr <- err
				return
			}
			defer c.Close()
			serverErr <- tls.Server(c, server(good, false)).Handshake()
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "<stream:stream to='example.com'>")
		err = <-serverErr
		if cause, detail := ClassifyTLSError(err); cause != CauseNotTLS || !strings.Contains(detail, "plaintext") {
			t.Errorf("server saw %v, classified %q %q; want %q", err, cause, detail, CauseNotTLS)
		}
	})

	t.Run("missing SAN after a good handshake", func(t *testing.T) {
		r := handshake(t, server(good, false), client(ca, host, nil))
		if r.client != nil {
			t.Fatal(r.client)
		}
		err := CheckSANs(r.state.PeerCertificates[0], "example.com", host)
		cause, detail := ClassifyTLSError(fmt.Errorf("xmpp server certificate: %w", err))
		if cause != CauseMissingSAN {
			t.Errorf("cause = %q, want %q", cause, CauseMissingSAN)
		}
		if want := "subjectAltName DNS:xmpp.example.com, DNS:example.com"; !strings.Contains(detail, want) {
			t.Errorf("detail = %q, want it to contain %q", detail, want)
		}
	})
}

func TestClassifyTLSErrorTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A peer that accepts and never answers (the kernel completes the TCP handshake).
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	cfg, err := ClientConfig(ClientOptions{ServerName: "x.example"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		run  func(c net.Conn) error
	}{
		{"conn deadline", func(c net.Conn) error {
			c.SetDeadline(time.Now().Add(100 * time.Millisecond))
			return tls.Client(c, cfg).Handshake()
		}},
		{"context deadline", func(c net.Conn) error {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			return tls.Client(c, cfg).HandshakeContext(ctx)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = tc.run(c)
			if cause, detail := ClassifyTLSError(wrap(err)); cause != CauseTimeout || detail == "" {
				t.Errorf("ClassifyTLSError(%v) = %q, %q; want %q", err, cause, detail, CauseTimeout)
			}
		})
	}
}

func TestClassifyTLSErrorOther(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantCause string
	}{
		{"nil", nil, ""},
		{"unrelated", errors.New("something odd"), CauseHandshakeFailure},
		{"unexpected eof", io.ErrUnexpectedEOF, CauseEOF},
		{"quic alert", fmt.Errorf("quic: %w", tls.AlertError(70)), CauseProtocolVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if cause, _ := ClassifyTLSError(tc.err); cause != tc.wantCause {
				t.Errorf("ClassifyTLSError(%v) cause = %q, want %q", tc.err, cause, tc.wantCause)
			}
		})
	}
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("connect 127.0.0.1:5223: %w", err)
}
