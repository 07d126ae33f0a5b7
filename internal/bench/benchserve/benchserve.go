// Package benchserve starts the servers that `confab bench` compares — Confab (its XMPP
// server and a Call Bridge relaying logins to the real user directory, in one process),
// Prosody and ejabberd (Debian packages, through internal/peers, storing SCRAM-SHA-256 keys
// rather than passwords) — with the same domain, certificate, users and test component, and
// describes each in an Info for the load tool.
package benchserve

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/launch"
	"confab.dev/confab/internal/peers"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// Servers that can be started.
const (
	Confab   = "confab"
	Prosody  = "prosody"
	Ejabberd = "ejabberd"
)

// Options describe the server to start. Every server gets the same.
type Options struct {
	Server string // Confab, Prosody or Ejabberd
	Dir    string // private working directory (created)
	Domain string
	// CAFile verifies CertFile (the Call Bridge's trust store); CertFile and KeyFile are the
	// server certificate, whose SANs must include Domain and localhost.
	CAFile, CertFile, KeyFile string
	// Users user0..user<Users-1> (UserPrefix, default "user") are created with Password.
	Users      int
	UserPrefix string
	Password   string
	// ComponentName is the test component's name (its JID is <name>.<domain>) and
	// ComponentSecret its secret.
	ComponentName, ComponentSecret string
	// Spaces, for Confab, is how many spaces to create (open to every user of the domain:
	// nonMemberAccess), for media benchmarks. Their JIDs are in Info.Spaces.
	Spaces int
	// Logger receives Confab's logs (at info, as a production server logs).
	Logger *slog.Logger
}

// Info describes a running server to the load tool.
type Info struct {
	Server          string `json:"server"`
	PID             int    `json:"pid"`
	Domain          string `json:"domain"`
	C2S             string `json:"c2s"`
	WebSocket       string `json:"websocket,omitempty"`
	Component       string `json:"component"`
	ComponentJID    string `json:"componentJid"`
	ComponentSecret string `json:"componentSecret"`
	Users           int    `json:"users"`
	UserPrefix      string `json:"userPrefix"`
	Password        string `json:"password"`
	CAFile          string `json:"caFile"`
	Version         string `json:"version,omitempty"`
	// PasswordStorage says how the server keeps the users' passwords, for the record.
	PasswordStorage string `json:"passwordStorage,omitempty"`
	// Spaces are the JIDs of the spaces made for media benchmarks (Confab).
	Spaces []string `json:"spaces,omitempty"`
	// MediaUDP is Confab's media (SFU) UDP address.
	MediaUDP string `json:"mediaUdp,omitempty"`
	// Janus is Janus's HTTP API (server janus), e.g. http://127.0.0.1:8088/janus.
	Janus string `json:"janus,omitempty"`
}

// WriteFile writes the info as JSON, atomically, so that a script polling for it never
// reads half of it.
func (i Info) WriteFile(path string) error {
	b, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadInfo reads an info file.
func ReadInfo(path string) (Info, error) {
	var i Info
	b, err := os.ReadFile(path)
	if err != nil {
		return i, err
	}
	if err := json.Unmarshal(b, &i); err != nil {
		return i, fmt.Errorf("%s: %w", path, err)
	}
	return i, nil
}

// Running is a started server.
type Running struct {
	Info Info
	stop func(context.Context) error
}

// Stop stops the server and waits for it.
func (r *Running) Stop(ctx context.Context) error { return r.stop(ctx) }

func (o *Options) check() error {
	if o.UserPrefix == "" {
		o.UserPrefix = "user"
	}
	if o.Domain == "" || o.CertFile == "" || o.KeyFile == "" || o.Password == "" {
		return errors.New("benchserve: domain, certificate, key and password are required")
	}
	if o.ComponentName == "" || o.ComponentSecret == "" {
		return errors.New("benchserve: a test component name and secret are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return os.MkdirAll(o.Dir, 0o700)
}

func (o *Options) userMap() map[string]string {
	m := make(map[string]string, o.Users)
	for i := range o.Users {
		m[fmt.Sprintf("%s%d", o.UserPrefix, i)] = o.Password
	}
	return m
}

// Start starts the server of o and returns once it accepts logins.
func Start(ctx context.Context, o Options) (*Running, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	info := Info{Server: o.Server, Domain: o.Domain, Users: o.Users, UserPrefix: o.UserPrefix, Password: o.Password,
		ComponentJID: o.ComponentName + "." + o.Domain, ComponentSecret: o.ComponentSecret, CAFile: o.CAFile}
	switch o.Server {
	case Confab:
		return startConfab(ctx, o, info)
	case Prosody, Ejabberd:
		// Stored SCRAM keys, as a production deployment keeps them and as Confab's Call
		// Bridge does: with plaintext passwords the peers would derive the keys (PBKDF2)
		// on every SCRAM login, which Confab never does.
		s, err := peers.Start(ctx, peers.Kind(o.Server), o.Dir, peers.Options{
			Domain: o.Domain, CertFile: o.CertFile, KeyFile: o.KeyFile,
			Components:      map[string]string{info.ComponentJID: o.ComponentSecret},
			Users:           o.userMap(),
			HashedPasswords: true,
		})
		if err != nil {
			return nil, err
		}
		info.PID, info.C2S, info.Component = s.PID, s.C2SAddr, s.ComponentTLSAddr
		info.PasswordStorage = fmt.Sprintf("SCRAM-SHA-256 keys, %d iterations; offers %s", peers.ScramIterations, strings.Join(peers.HashedMechanisms(), ", "))
		return &Running{Info: info, stop: func(context.Context) error { s.Stop(); return nil }}, nil
	}
	return nil, fmt.Errorf("benchserve: unknown server %q (want confab, prosody or ejabberd)", o.Server)
}

// startConfab runs the XMPP server and a Call Bridge in this process, as `confab up` does,
// with the given certificate: the Call Bridge registers over TLS on the component port and
// answers every login from its store (SCRAM keys, Argon2id for PLAIN).
func startConfab(ctx context.Context, o Options, info Info) (*Running, error) {
	log := o.Logger
	var xc config.XMPP
	xc.Domain = o.Domain
	xc.DataDir = o.Dir
	xc.Listen.C2S, xc.Listen.Component, xc.Listen.WebSocket, xc.Listen.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "-"
	xc.TLS.Cert, xc.TLS.Key = o.CertFile, o.KeyFile
	xc.Limits.MaxSessions = 100000
	// The load tool is one sender per client, on one address, far faster than a person: the
	// per-client and per-address limits would measure themselves.
	xc.Limits.SenderRate, xc.Limits.SenderBurst = 1_000_000, 1_000_000
	xc.Limits.UnauthenticatedPerAddress, xc.Limits.NegotiatingPerAddress = 100000, 100000
	x, err := launch.StartXMPP(ctx, xc, log, nil)
	if err != nil {
		return nil, err
	}
	stopX := func(ctx context.Context) error { return x.Shutdown(ctx) }
	const cbName = "cb1"
	cbSecret := secret.New(secretOf(o.ComponentSecret + "/cb1"))
	if err := x.Registry.SetSecret(cbName, cbSecret); err != nil {
		_ = stopX(ctx)
		return nil, err
	}
	if err := x.Registry.SetSecret(o.ComponentName, secret.New(o.ComponentSecret)); err != nil {
		_ = stopX(ctx)
		return nil, err
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		_ = stopX(ctx)
		return nil, fmt.Errorf("benchserve: CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		_ = stopX(ctx)
		return nil, fmt.Errorf("benchserve: %s: no certificate", o.CAFile)
	}
	_, compPort, _ := net.SplitHostPort(x.Addrs.Component)
	var cc config.CallBridge
	cc.DataDir = o.Dir
	cc.Store = filepath.Join(o.Dir, "callbridge.db")
	cc.Listen.API, cc.Listen.Web = "127.0.0.1:0", "127.0.0.1:0"
	cc.Media.UDP = "127.0.0.1:0"
	cc.TLS.Cert, cc.TLS.Key = o.CertFile, o.KeyFile
	cb, err := launch.StartCallBridge(ctx, cc, log, launch.CallBridgeOptions{
		Trust: &launch.LinkTrust{RootCAs: roots},
		Prepare: func(ctx context.Context, st *store.Store) error {
			_, err := st.UpdateXMPPSettings(ctx, func(c *store.XMPPSettings) error {
				c.UniqueName, c.Domain = cbName, o.Domain
				c.ServerAddressOverride = net.JoinHostPort("localhost", compPort)
				c.SharedSecret = cbSecret
				return nil
			})
			return err
		},
	})
	if err != nil {
		_ = stopX(ctx)
		return nil, err
	}
	stop := func(ctx context.Context) error { return errors.Join(cb.Shutdown(ctx), x.Shutdown(ctx)) }
	for i := range o.Users {
		name := fmt.Sprintf("%s%d", o.UserPrefix, i)
		if _, err := cb.Users.CreateLocal(ctx, users.LocalUser{Username: name}, secret.New(o.Password)); err != nil && !errors.Is(err, users.ErrExists) {
			_ = stop(ctx)
			return nil, fmt.Errorf("benchserve: create %s: %w", name, err)
		}
	}
	for i := range o.Spaces {
		sp, err := cb.Meetings.CreateSpace(ctx, store.CoSpace{Name: fmt.Sprintf("Bench space %d", i), NonMemberAccess: true})
		if err != nil {
			_ = stop(ctx)
			return nil, fmt.Errorf("benchserve: create space %d: %w", i, err)
		}
		info.Spaces = append(info.Spaces, sp.ID+"@"+cbName+"."+o.Domain)
	}
	info.MediaUDP = cb.Addrs.MediaUDP
	// The users' Argon2id hashes took 19 MiB each: give that back to the system, so that the
	// resident memory before a run is what the server holds, not what setting it up needed.
	debug.FreeOSMemory()
	deadline := time.Now().Add(30 * time.Second)
	for cb.Link.Status().State != linkstate.Registered {
		if time.Now().After(deadline) {
			_ = stop(ctx)
			return nil, fmt.Errorf("benchserve: the Call Bridge did not register within 30s: %+v", cb.Link.Status())
		}
		select {
		case <-cb.Link.Changes():
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			_ = stop(context.WithoutCancel(ctx))
			return nil, ctx.Err()
		}
	}
	info.PID = os.Getpid()
	info.C2S, info.Component = x.Addrs.C2S, x.Addrs.Component
	_, wsPort, _ := net.SplitHostPort(x.Addrs.WebSocket)
	info.WebSocket = "wss://localhost:" + wsPort + "/xmpp-websocket"
	info.Version = launch.Version
	info.PasswordStorage = fmt.Sprintf("SCRAM-SHA-1 and SCRAM-SHA-256 keys, %d iterations; Argon2id for PLAIN", users.DefaultIterations)
	return &Running{Info: info, stop: stop}, nil
}

// secretOf derives a printable secret for the Call Bridge's own registration.
func secretOf(s string) string { return "cb-" + strings.Map(keepAlnum, s) + "-bench" }

func keepAlnum(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
		return r
	}
	return 'x'
}

// MakeCerts writes a CA (ca.pem) and a server certificate (cert.pem, key.pem) for domain,
// localhost and 127.0.0.1 into dir, with the key algorithm certs.ECDSAP256 or certs.RSA2048.
func MakeCerts(dir, domain, algorithm string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := certs.NewCA("confab bench CA", 30*24*time.Hour)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	p, err := ca.Issue(certs.Options{
		CommonName: domain,
		DNSNames:   []string{domain, "localhost"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Server:     true,
		Algorithm:  algorithm,
	})
	if err != nil {
		return err
	}
	return p.WriteFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
}
