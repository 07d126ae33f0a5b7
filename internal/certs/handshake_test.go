package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// result is what each side of a loopback handshake saw.
type result struct {
	client, server error
	state          tls.ConnectionState // the client's, after a successful handshake
}

// handshake runs a real TLS handshake over 127.0.0.1 between a server using serverCfg and a
// client using clientCfg. The server writes one byte after its handshake and the client
// reads it, so that failures TLS 1.3 reports only after the client's handshake (a rejected
// client certificate) reach the client too.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) result {
	t.Helper()
	return handshakeWith(t, func(c net.Conn) error {
		s := tls.Server(c, serverCfg)
		if err := s.Handshake(); err != nil {
			return err
		}
		_, err := s.Write([]byte{'k'})
		return err
	}, clientCfg)
}

// handshakeWith is handshake with an arbitrary server side, given the accepted connection.
func handshakeWith(t *testing.T, serve func(net.Conn) error, clientCfg *tls.Config) result {
	t.Helper()
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
		c.SetDeadline(time.Now().Add(10 * time.Second))
		serverErr <- serve(c)
	}()

	var r result
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, clientCfg)
	r.client = c.HandshakeContext(ctx)
	if r.client == nil {
		r.state = c.ConnectionState()
		var b [1]byte
		_, r.client = io.ReadFull(c, b[:])
	}
	raw.Close() // unblock a server still waiting on us
	r.server = <-serverErr
	return r
}

func TestServerAndClientConfig(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	caFile, caKey := dir+"/ca.pem", dir+"/ca-key.pem"
	if err := ca.WriteFiles(caFile, caKey); err != nil {
		t.Fatal(err)
	}
	srv := issue(t, ca, Options{CommonName: "xmpp", DNSNames: []string{"xmpp.example.com"}, Server: true})
	srvFile, srvKey := dir+"/server.pem", dir+"/server-key.pem"
	if err := srv.WriteFiles(srvFile, srvKey); err != nil {
		t.Fatal(err)
	}
	cli := issue(t, ca, Options{CommonName: "cb1", Client: true})
	cliFile, cliKey := dir+"/client.pem", dir+"/client-key.pem"
	if err := cli.WriteFiles(cliFile, cliKey); err != nil {
		t.Fatal(err)
	}

	t.Run("protocol floor", func(t *testing.T) {
		s, err := ServerConfig(ServerOptions{Certificates: []tls.Certificate{srv.Cert}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := ClientConfig(ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		insecure := make(map[uint16]bool)
		for _, cs := range tls.InsecureCipherSuites() {
			insecure[cs.ID] = true
		}
		for _, cfg := range []*tls.Config{s, c} {
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
			}
			for _, id := range cfg.CipherSuites {
				name := tls.CipherSuiteName(id)
				if insecure[id] || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) || !strings.Contains(name, "ECDHE") {
					t.Errorf("cipher suite %s is not an ECDHE AEAD suite", name)
				}
			}
			for _, cv := range cfg.CurvePreferences {
				if cv != tls.X25519 && cv != tls.CurveP256 && cv != tls.X25519MLKEM768 {
					t.Errorf("curve %v offered", cv)
				}
			}
		}
		if c.RootCAs != nil {
			t.Errorf("ClientConfig without CAs has RootCAs set; want nil (system roots)")
		}
	})

	tests := []struct {
		name       string
		server     ServerOptions
		client     ClientOptions
		clientMax  uint16
		wantPeerCN string // client CN the server saw; "" means none
	}{
		{"server cert from files", ServerOptions{CertFile: srvFile, KeyFile: srvKey}, ClientOptions{CAFile: caFile, ServerName: "xmpp.example.com"}, 0, ""},
		{"root pool", ServerOptions{Certificates: []tls.Certificate{srv.Cert}}, ClientOptions{RootCAs: ca.Pool(), ServerName: "xmpp.example.com"}, 0, ""},
		{"mutual tls 1.3", ServerOptions{CertFile: srvFile, KeyFile: srvKey, ClientCAFile: caFile, RequireClientCert: true}, ClientOptions{CAFile: caFile, CertFile: cliFile, KeyFile: cliKey, ServerName: "xmpp.example.com"}, 0, "cb1"},
		{"mutual tls 1.2", ServerOptions{CertFile: srvFile, KeyFile: srvKey, ClientCAFile: caFile, RequireClientCert: true}, ClientOptions{CAFile: caFile, CertFile: cliFile, KeyFile: cliKey, ServerName: "xmpp.example.com"}, tls.VersionTLS12, "cb1"},
		{"optional client cert given", ServerOptions{CertFile: srvFile, KeyFile: srvKey, ClientCAFile: caFile}, ClientOptions{CAFile: caFile, CertFile: cliFile, KeyFile: cliKey, ServerName: "xmpp.example.com"}, 0, "cb1"},
		{"optional client cert absent", ServerOptions{CertFile: srvFile, KeyFile: srvKey, ClientCAFile: caFile}, ClientOptions{CAFile: caFile, ServerName: "xmpp.example.com"}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ServerConfig(tc.server)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ClientConfig(tc.client)
			if err != nil {
				t.Fatal(err)
			}
			c.MaxVersion = tc.clientMax
			var peerCN string
			r := handshakeWith(t, func(conn net.Conn) error {
				sc := tls.Server(conn, s)
				if err := sc.Handshake(); err != nil {
					return err
				}
				if pc := sc.ConnectionState().PeerCertificates; len(pc) > 0 {
					peerCN = pc[0].Subject.CommonName
				}
				_, err := sc.Write([]byte{'k'})
				return err
			}, c)
			if r.client != nil || r.server != nil {
				t.Fatalf("handshake failed: client %v, server %v", r.client, r.server)
			}
			if peerCN != tc.wantPeerCN {
				t.Errorf("server saw client certificate %q, want %q", peerCN, tc.wantPeerCN)
			}
			if tc.clientMax != 0 && r.state.Version != tc.clientMax {
				t.Errorf("negotiated version %x, want %x", r.state.Version, tc.clientMax)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		server  *ServerOptions
		client  *ClientOptions
		wantErr string
	}{
		{name: "server without certificate", server: &ServerOptions{}, wantErr: "no certificate"},
		{name: "server cert without key", server: &ServerOptions{CertFile: srvFile}, wantErr: "need both"},
		{name: "server key mismatch", server: &ServerOptions{CertFile: srvFile, KeyFile: cliKey}, wantErr: "private key does not match"},
		{name: "require client cert without CAs", server: &ServerOptions{Certificates: []tls.Certificate{srv.Cert}, RequireClientCert: true}, wantErr: "needs ClientCAFile"},
		{name: "client CA file is a key", server: &ServerOptions{Certificates: []tls.Certificate{srv.Cert}, ClientCAFile: caKey}, wantErr: "no PEM certificates"},
		{name: "client CA file missing", client: &ClientOptions{CAFile: dir + "/none.pem"}, wantErr: "no such file"},
		{name: "client key without cert", client: &ClientOptions{KeyFile: cliKey}, wantErr: "need both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.server != nil {
				_, err = ServerConfig(*tc.server)
			} else {
				_, err = ClientConfig(*tc.client)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestClientConfigMergesCAFileIntoRootCAs(t *testing.T) {
	a, b := newTestCA(t), newTestCA(t)
	dir := t.TempDir()
	if err := b.WriteFiles(dir+"/b.pem", dir+"/b-key.pem"); err != nil {
		t.Fatal(err)
	}
	base := a.Pool()
	c, err := ClientConfig(ClientOptions{RootCAs: base, CAFile: dir + "/b.pem"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ca := range []*CA{a, b} {
		leaf := issue(t, ca, Options{DNSNames: []string{"h.example"}}).Leaf
		if _, err := leaf.Verify(x509VerifyOpts(c.RootCAs, "h.example")); err != nil {
			t.Errorf("merged pool does not trust %q: %v", ca.Cert.Subject.CommonName, err)
		}
	}
	leaf := issue(t, b, Options{DNSNames: []string{"h.example"}}).Leaf
	if _, err := leaf.Verify(x509VerifyOpts(base, "h.example")); err == nil {
		t.Errorf("ClientConfig modified the caller's RootCAs pool")
	}
}

func x509VerifyOpts(roots *x509.CertPool, name string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, DNSName: name}
}
