package launch

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/store"
)

// UpOptions configures `confab up`: every role in one process, on loopback by default.
type UpOptions struct {
	DataDir string // default "confab-data"
	Domain  string // XMPP domain, default "example.com"
	Name    string // the Call Bridge's unique name, default "cb1"
	// Listen addresses; defaults 127.0.0.1:5222, :5223, :8443 (web app + XMPP WebSocket),
	// :8445 (REST API + web admin), :5290 (XMPP admin: metrics).
	C2S, Component, Web, API, Admin string
	// Media is the media server's UDP and TCP port; default port 10000 on the web
	// listener's host (loopback by default); "off" turns media off.
	Media string
	// TURN is the embedded TURN server's UDP and TCP listener; default port 3478 on the web
	// listener's host; "off" runs no TURN server. TURNTLS is its TURN over TLS listener;
	// default port 443 on that host where it can be bound, else 5349; "off" for none.
	// TURNHost is the name browsers are told to reach it by (default: its address).
	TURN, TURNTLS, TURNHost string
	// Hosts are extra names for the generated certificate (the host name, localhost and
	// 127.0.0.1 are always there).
	Hosts []string
	Log   config.Log
}

// Up is a running `confab up`.
type Up struct {
	XMPP       *XMPP
	CallBridge *CallBridge
	Local      *certs.Local
	Domain     string
	// AdminUser is the web admin / API account; AdminPassword is set only on the run that
	// created it (it is printed once and saved in AdminPasswordFile).
	AdminUser, AdminPassword, AdminPasswordFile string
	// Demo is the demo space; DemoPasscode its passcode.
	Demo         store.CoSpace
	DemoPasscode string
}

// adminUser is the account `confab up` creates on its first run.
const adminUser = "admin"

// StartUp starts the XMPP server and the Call Bridge together, creating on the first run the
// data directory, a CA and certificates, the Call Bridge's registration, an admin account and
// a demo space. Later runs reuse them.
func StartUp(ctx context.Context, o UpOptions, log *slog.Logger) (u *Up, err error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.DataDir, "confab-data")
	def(&o.Domain, "example.com")
	def(&o.Name, "cb1")
	def(&o.C2S, "127.0.0.1:5222")
	def(&o.Component, "127.0.0.1:5223")
	def(&o.Web, "127.0.0.1:8443")
	def(&o.API, "127.0.0.1:8445")
	def(&o.Admin, "127.0.0.1:5290")
	var tlsFallback string
	if host, _, err := net.SplitHostPort(o.Web); err == nil {
		def(&o.Media, net.JoinHostPort(host, "10000"))
		def(&o.TURN, net.JoinHostPort(host, "3478"))
		if o.TURNTLS == "" {
			o.TURNTLS, tlsFallback = net.JoinHostPort(host, "443"), net.JoinHostPort(host, "5349")
		}
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	u = &Up{Domain: o.Domain, AdminUser: adminUser, AdminPasswordFile: filepath.Join(o.DataDir, "admin-password")}
	hosts := append([]string{}, o.Hosts...)
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	u.Local, err = certs.EnsureLocal(filepath.Join(o.DataDir, "tls"), o.Domain, hosts)
	if err != nil {
		return nil, err
	}
	if u.Local.Created() {
		log.Info("generated certificates", "ca", u.Local.CAFile, "cert", u.Local.CertFile, "reason", u.Local.Reason)
	}
	ca, err := certs.LoadCA(u.Local.CAFile, u.Local.CAKeyFile)
	if err != nil {
		return nil, err
	}

	var xc config.XMPP
	xc.Domain = o.Domain
	xc.DataDir = o.DataDir
	xc.Listen.C2S, xc.Listen.Component, xc.Listen.Admin = o.C2S, o.Component, o.Admin
	xc.Listen.WebSocket = "-" // served on the web listener, beside the app
	xc.TLS.Cert, xc.TLS.Key = u.Local.CertFile, u.Local.KeyFile
	xc.Log = o.Log
	xc = xc.WithDefaults()
	u.XMPP, err = StartXMPP(ctx, xc, log, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			u.XMPP.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	sec, ok := u.XMPP.Registry.Lookup(o.Name)
	if !ok {
		if sec, err = u.XMPP.Registry.Add(o.Name); err != nil {
			return nil, err
		}
		log.Info("registered the Call Bridge with the XMPP server", "name", o.Name)
	}
	_, compPort, _ := net.SplitHostPort(u.XMPP.Addrs.Component)

	var cc config.CallBridge
	cc.DataDir = o.DataDir
	cc.Listen.API, cc.Listen.Web = o.API, o.Web
	cc.Media.UDP = o.Media
	if !Off(o.TURN) || !Off(o.TURNTLS) {
		t := config.TURN{}
		t.Listen.UDP, t.Listen.TCP, t.Listen.TLS, t.Listen.Admin = o.TURN, o.TURN, o.TURNTLS, "off"
		if Off(o.TURN) {
			t.Listen.UDP, t.Listen.TCP = "off", "off"
		}
		if Off(o.TURNTLS) {
			t.Listen.TLS, tlsFallback = "off", ""
		}
		cc.TURN = &t
	}
	cc.TLS.Cert, cc.TLS.Key = u.Local.CertFile, u.Local.KeyFile
	cc.Log = o.Log
	u.CallBridge, err = StartCallBridge(ctx, cc, log, CallBridgeOptions{
		WebSocket:       u.XMPP.Server.WebSocketHandler(),
		Trust:           &LinkTrust{RootCAs: ca.Pool()},
		TURNTLSFallback: tlsFallback,
		TURNHost:        o.TURNHost,
		Prepare: func(ctx context.Context, st *store.Store) error {
			_, err := st.UpdateXMPPSettings(ctx, func(c *store.XMPPSettings) error {
				c.UniqueName, c.Domain = o.Name, o.Domain
				c.ServerAddressOverride = net.JoinHostPort("localhost", compPort)
				c.SharedSecret = sec
				return nil
			})
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	// The admin account and the demo space are made through the Call Bridge, which owns API
	// accounts and spaces; until StartUp returns, nobody knows the admin's password.
	if err = u.ensureAdmin(ctx); err == nil {
		u.Demo, err = u.CallBridge.EnsureDemoSpace(ctx)
	}
	if err != nil {
		u.CallBridge.Shutdown(context.WithoutCancel(ctx))
		return nil, err
	}
	u.DemoPasscode = u.Demo.Passcode.Reveal()
	return u, nil
}

// ensureAdmin creates the admin account on the first run, with a generated password saved
// owner-only in the data directory.
func (u *Up) ensureAdmin(ctx context.Context) error {
	if _, err := u.CallBridge.Store.APIUserHash(ctx, adminUser); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	pw := rand.Text()
	if err := os.WriteFile(u.AdminPasswordFile, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("save the admin password: %w", err)
	}
	if err := u.CallBridge.Accounts.Add(ctx, adminUser, pw); err != nil {
		return err
	}
	u.AdminPassword = pw
	return nil
}

// Shutdown stops the Call Bridge, then the XMPP server.
func (u *Up) Shutdown(ctx context.Context) error {
	return errors.Join(u.CallBridge.Shutdown(ctx), u.XMPP.Shutdown(ctx))
}

// Err says why a role failed (XMPP.Failed or CallBridge.Failed was closed).
func (u *Up) Err() error { return errors.Join(u.XMPP.Err(), u.CallBridge.Err()) }
