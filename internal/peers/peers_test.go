package peers_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/peers"
	"confab.dev/confab/internal/stream"
)

const (
	domain = "example.com"
	cbJID  = "cb1.example.com"
	// Quotes and a backslash test the quoting of both servers' configuration files.
	cbSecret = `s3cret "of" cb1\ 'x'`
)

// pki writes a server certificate for names, issued by a new CA, and returns the files and
// a pool trusting the CA.
func pki(t *testing.T, names ...string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	ca, err := certs.NewCA("Peers test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(certs.Options{CommonName: names[0], DNSNames: names, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pair.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pair.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca.Pool()
}

// register runs the XEP-0114 handshake as jid with secret on addr, over TLS from the first
// byte (verified for localhost against roots) when roots is not nil. It returns the stream
// error condition the server answered, or "" for <handshake/>. It reads the server's
// answer itself rather than through package component, to test the servers alone.
func register(t *testing.T, addr string, roots *x509.CertPool, jid, sec string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if roots != nil {
		tc := tls.Client(nc, &tls.Config{RootCAs: roots, ServerName: "example.com", MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake with %s: %v", addr, err)
		}
		nc = tc
	}
	if _, err := nc.Write(stream.AppendOpen(nil, stream.Header{NS: stream.NSComponent, To: jid})); err != nil {
		t.Fatal(err)
	}
	r := stream.NewReader(nc, stream.Limits{})
	h, err := r.ReadOpen(stream.NSComponent)
	if err != nil {
		t.Fatalf("stream header: %v", err)
	}
	verdict := func() string {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		if se, ok := component.RemoteError(e); ok {
			return se.Condition
		}
		if e.Name.Local != "handshake" {
			t.Fatalf("got %s, want <handshake/> or a stream error", e)
		}
		return ""
	}
	if h.ID == "" {
		// Prosody refuses an unknown name with an id-less header and the stream error.
		return verdict()
	}
	sum := sha1.Sum([]byte(h.ID + sec))
	if _, err := fmt.Fprintf(nc, "<handshake>%x</handshake>", sum); err != nil {
		t.Fatal(err)
	}
	return verdict()
}

func TestServers(t *testing.T) {
	for _, tc := range []struct {
		kind peers.Kind
		// unknown is what the server answers a component it does not know.
		unknown string
	}{
		{peers.Prosody, stream.HostUnknown},
		// ejabberd opens the stream for any name and then refuses the handshake.
		{peers.Ejabberd, stream.NotAuthorized},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			certFile, keyFile, roots := pki(t, domain, "localhost")
			s := peers.StartT(t, tc.kind, peers.Options{
				Domain: domain, CertFile: certFile, KeyFile: keyFile,
				Components: map[string]string{cbJID: cbSecret},
				Users:      map[string]string{"alice": "alice's password", "bob": "bob-pw"},
			})
			if s.PID <= 0 || s.C2SAddr == "" || s.ComponentTLSAddr == "" || s.ComponentPlainAddr == "" {
				t.Fatalf("server %+v lacks a PID or an address", s)
			}

			t.Run("component", func(t *testing.T) {
				for _, port := range []struct {
					name  string
					addr  string
					roots *x509.CertPool
				}{
					{"tls", s.ComponentTLSAddr, roots},
					{"plain", s.ComponentPlainAddr, nil},
				} {
					for _, c := range []struct {
						name, jid, secret string
						want              string // stream error, "" for success
					}{
						{"right secret", cbJID, cbSecret, ""},
						{"wrong secret", cbJID, "not-the-secret", stream.NotAuthorized},
						{"unknown component", "cb9.example.com", cbSecret, tc.unknown},
					} {
						t.Run(port.name+"/"+c.name, func(t *testing.T) {
							if got := register(t, port.addr, port.roots, c.jid, c.secret); got != c.want {
								t.Errorf("answer = %q, want %q (empty: <handshake/>)", got, c.want)
							}
						})
					}
				}
			})

			t.Run("c2s", func(t *testing.T) {
				got := features(t, s, roots, nil)
				want := peers.DefaultMechanisms()
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("mechanisms after STARTTLS = %v, want %v", got, want)
				}
				for _, l := range []struct {
					mech, user, password string
					ok                   bool
				}{
					{"PLAIN", "alice", "alice's password", true},
					{"PLAIN", "alice", "wrong", false},
					{"SCRAM-SHA-256", "bob", "bob-pw", true},
					{"SCRAM-SHA-1", "alice", "alice's password", true},
					{"SCRAM-SHA-256", "bob", "wrong", false},
					{"PLAIN", "nobody", "x", false},
				} {
					t.Run(fmt.Sprintf("%s %s %v", l.mech, l.user, l.ok), func(t *testing.T) {
						var err error
						features(t, s, roots, func(c *c2s) { err = c.auth(l.mech, l.user, l.password) })
						if ok := err == nil; ok != l.ok {
							t.Errorf("login: %v, want success %v", err, l.ok)
						}
					})
				}
			})

			t.Run("register while running", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := s.Register(ctx, "carol", "carol-pw"); err != nil {
					t.Fatal(err)
				}
				var err error
				features(t, s, roots, func(c *c2s) { err = c.auth("SCRAM-SHA-256", "carol", "carol-pw") })
				if err != nil {
					t.Errorf("carol's login: %v", err)
				}
			})

			t.Run("stop", func(t *testing.T) {
				s.Stop()
				select {
				case <-s.Exited():
				default:
					t.Fatal("Stop returned before the server exited")
				}
				if c, err := net.DialTimeout("tcp", s.C2SAddr, 5*time.Second); err == nil {
					c.Close()
					t.Errorf("%s still accepts connections after Stop", s.C2SAddr)
				}
				s.Stop() // idempotent
			})
		})
	}
}

func TestStartErrors(t *testing.T) {
	certFile, keyFile, _ := pki(t, domain)
	for _, tc := range []struct {
		name string
		kind peers.Kind
		o    peers.Options
		want string
	}{
		{"no domain", peers.Prosody, peers.Options{CertFile: certFile, KeyFile: keyFile}, "no domain"},
		{"no certificate", peers.Ejabberd, peers.Options{Domain: domain}, "no certificate"},
		{"missing certificate file", peers.Prosody, peers.Options{Domain: domain, CertFile: certFile + ".gone", KeyFile: keyFile}, "no such file"},
		{"mechanism the server lacks", peers.Prosody, peers.Options{Domain: domain, CertFile: certFile, KeyFile: keyFile, Mechanisms: []string{"CRAM-MD5"}}, "cannot offer SASL mechanism CRAM-MD5"},
		{"SCRAM-SHA-1 with hashed passwords", peers.Ejabberd, peers.Options{Domain: domain, CertFile: certFile, KeyFile: keyFile, HashedPasswords: true, Mechanisms: []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}}, "cannot offer SASL mechanism SCRAM-SHA-1 with hashed passwords"},
		{"unknown kind", peers.Kind("openfire"), peers.Options{Domain: domain, CertFile: certFile, KeyFile: keyFile}, "unknown server kind"},
		{"bad user", peers.Ejabberd, peers.Options{Domain: domain, CertFile: certFile, KeyFile: keyFile, Users: map[string]string{"a@b": "x"}}, "not a plain username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := peers.Start(context.Background(), tc.kind, t.TempDir(), tc.o)
			if err == nil {
				s.Stop()
				t.Fatalf("Start succeeded, want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start error %q, want %q in it", err, tc.want)
			}
		})
	}
}

func TestMechanisms(t *testing.T) {
	for _, kind := range peers.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			certFile, keyFile, roots := pki(t, domain, "localhost")
			s := peers.StartT(t, kind, peers.Options{Domain: domain, CertFile: certFile, KeyFile: keyFile,
				Mechanisms: []string{"scram-sha-1"}, Users: map[string]string{"dave": `dave\pw`}})
			var err error
			got := features(t, s, roots, func(c *c2s) { err = c.auth("SCRAM-SHA-1", "dave", `dave\pw`) })
			if want := []string{"SCRAM-SHA-1"}; !slices.Equal(got, want) {
				t.Errorf("mechanisms = %v, want %v", got, want)
			}
			if err != nil {
				t.Errorf("login: %v", err)
			}
		})
	}
}

// c2s is a client stream after STARTTLS.
type c2s struct {
	t     *testing.T
	conn  net.Conn
	r     *stream.Reader
	mechs []string
}

// features opens a client stream to s, negotiates STARTTLS (verifying the certificate for
// the domain), reads the SASL mechanisms offered, and calls then (if not nil) on the stream.
func features(t *testing.T, s *peers.Server, roots *x509.CertPool, then func(*c2s)) []string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.C2SAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &c2s{t: t, conn: nc}
	if !strings.Contains(string(c.open().Inner), "starttls") {
		t.Fatal("no STARTTLS offered")
	}
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if e := c.next(); e.Name.Local != "proceed" {
		t.Fatalf("STARTTLS answered %s", e)
	}
	tc := tls.Client(nc, &tls.Config{RootCAs: roots, ServerName: s.Domain, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STARTTLS handshake: %v", err)
	}
	c.conn = tc
	var f struct {
		Mechanisms []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
	}
	if err := c.open().Decode(&f); err != nil {
		t.Fatal(err)
	}
	c.mechs = f.Mechanisms
	if then != nil {
		then(c)
	}
	return f.Mechanisms
}

func (c *c2s) open() *stream.Element {
	c.t.Helper()
	c.send(string(stream.AppendOpen(nil, stream.Header{NS: stream.NSClient, To: domain, Version: "1.0"})))
	c.r = stream.NewReader(c.conn, stream.Limits{})
	if _, err := c.r.ReadOpen(stream.NSClient); err != nil {
		c.t.Fatalf("stream header: %v", err)
	}
	e := c.next()
	if e.Name.Local != "features" {
		c.t.Fatalf("got %s, want stream features", e)
	}
	return e
}

func (c *c2s) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *c2s) next() *stream.Element {
	c.t.Helper()
	e, err := c.r.Next()
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

// auth runs a SASL exchange and returns nil on success.
func (c *c2s) auth(mech, user, password string) error {
	c.t.Helper()
	if !slices.Contains(c.mechs, mech) {
		return fmt.Errorf("%s not offered (%v)", mech, c.mechs)
	}
	const ns = "urn:ietf:params:xml:ns:xmpp-sasl"
	b64 := base64.StdEncoding
	var conv *scram.ClientConversation
	var initial string
	switch mech {
	case "PLAIN":
		initial = "\x00" + user + "\x00" + password
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		h := scram.SHA1
		if mech == "SCRAM-SHA-256" {
			h = scram.SHA256
		}
		client, err := h.NewClient(user, password, "")
		if err != nil {
			return err
		}
		conv = client.NewConversation()
		if initial, err = conv.Step(""); err != nil {
			return err
		}
	default:
		c.t.Fatalf("mechanism %s not supported by the test client", mech)
	}
	c.send(fmt.Sprintf(`<auth xmlns='%s' mechanism='%s'>%s</auth>`, ns, mech, b64.EncodeToString([]byte(initial))))
	for {
		e := c.next()
		data, err := b64.DecodeString(strings.TrimSpace(string(e.Inner)))
		switch e.Name.Local {
		case "challenge":
			if err != nil || conv == nil {
				return fmt.Errorf("bad challenge %s", e)
			}
			resp, err := conv.Step(string(data))
			if err != nil {
				return fmt.Errorf("SCRAM: %w", err)
			}
			c.send(fmt.Sprintf(`<response xmlns='%s'>%s</response>`, ns, b64.EncodeToString([]byte(resp))))
		case "success":
			if conv != nil && !conv.Done() {
				if err != nil {
					return fmt.Errorf("bad success %s", e)
				}
				if _, err := conv.Step(string(data)); err != nil {
					return fmt.Errorf("the server's SCRAM proof: %w", err)
				}
			}
			return nil
		case "failure":
			return fmt.Errorf("SASL failure: %s", e.Inner)
		default:
			return fmt.Errorf("unexpected %s", e)
		}
	}
}

// TestHashedPasswords starts each server with and without HashedPasswords and checks the
// mechanisms offered, SCRAM-SHA-256 and PLAIN logins (of users made at the start and while
// running), and whether a password can be found in the server's stored data once it has
// stopped: it must be there in plaintext mode and nowhere with hashed passwords, though the
// users' records are there in both.
func TestHashedPasswords(t *testing.T) {
	const password = "Pl41ntext-Canary-7d1e"
	for _, kind := range peers.Kinds() {
		for _, hashed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s hashed=%v", kind, hashed), func(t *testing.T) {
				t.Parallel()
				certFile, keyFile, roots := pki(t, domain, "localhost")
				s := peers.StartT(t, kind, peers.Options{Domain: domain, CertFile: certFile, KeyFile: keyFile,
					Users: map[string]string{"erin": password}, HashedPasswords: hashed})

				got := features(t, s, roots, nil)
				want := peers.DefaultMechanisms()
				if hashed {
					want = peers.HashedMechanisms()
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("mechanisms after STARTTLS = %v, want %v", got, want)
				}

				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := s.Register(ctx, "frank", password); err != nil {
					t.Fatal(err)
				}
				for _, l := range []struct {
					mech, user, password string
					ok                   bool
				}{
					{"SCRAM-SHA-256", "erin", password, true},
					{"SCRAM-SHA-256", "erin", password + "x", false},
					{"SCRAM-SHA-256", "frank", password, true},
					{"PLAIN", "erin", password, true},
					{"PLAIN", "frank", "wrong", false},
				} {
					var err error
					features(t, s, roots, func(c *c2s) { err = c.auth(l.mech, l.user, l.password) })
					if ok := err == nil; ok != l.ok {
						t.Errorf("%s login of %s: %v, want success %v", l.mech, l.user, err, l.ok)
					}
				}

				// Stopped, the server has written everything it keeps.
				s.Stop()
				if len(storedWith(t, s.Dir, "frank")) == 0 {
					t.Fatal("no stored data names frank: the search looks in the wrong place")
				}
				files := storedWith(t, s.Dir, password)
				if found := len(files) > 0; found != !hashed {
					t.Errorf("password found in the stored data: %v (files %v), want %v", found, files, !hashed)
				}
			})
		}
	}
}

// storedWith returns the files under dir, other than configuration and logs, whose name or
// content contains s (Prosody names a user's file after the user).
func storedWith(t *testing.T, dir, s string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, ".log") || strings.HasSuffix(path, ".cfg.lua") || strings.HasSuffix(path, ".yml") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), s) || strings.Contains(string(data), s) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
