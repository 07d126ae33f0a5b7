// Package config defines Confab's configuration files (TOML) and their defaults. A file
// holds what an operator sets once (listen addresses, certificates, limits); what the REST
// API changes lives in the Call Bridge's store instead. Every field has a useful zero value:
// defaults are applied by the With* methods at use, so a file need only name what differs.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"confab.dev/confab/internal/secret"
)

// Duration is a time.Duration written as "10s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d.Duration == 0 {
		return def
	}
	return d.Duration
}

// Log configures slog.
type Log struct {
	Format string `toml:"format"` // "text" (default) or "json"
	Level  string `toml:"level"`  // "debug", "info" (default), "warn", "error"
}

// TLS names certificate files.
type TLS struct {
	Cert string `toml:"cert"` // PEM certificate chain
	Key  string `toml:"key"`  // PEM private key
	// ClientCA is the CA bundle that verifies the peer's certificate (mutual TLS).
	ClientCA string `toml:"client_ca"`
	// RequireClientCert makes the peer's certificate mandatory (mutual TLS).
	RequireClientCert bool `toml:"require_client_cert"`
}

// XMPP is the `confab xmpp` configuration file.
type XMPP struct {
	// Domain is the XMPP domain (example.com); Call Bridge JIDs are <name>.<domain>.
	Domain string `toml:"domain"`
	// DataDir holds the Call Bridge registry and, when no certificate is configured, a
	// generated CA and server certificate. Default "confab-data".
	DataDir string `toml:"data_dir"`
	// Registry is the Call Bridge registry file. Default <data_dir>/callbridges.toml.
	Registry string `toml:"registry"`
	Listen   struct {
		C2S       string `toml:"c2s"`       // default ":5222"
		Component string `toml:"component"` // default ":5223"
		WebSocket string `toml:"websocket"` // HTTPS with /xmpp-websocket; default ":5443"
		Admin     string `toml:"admin"`     // /metrics, /healthz, /callbridges; default "127.0.0.1:5290"
	} `toml:"listen"`
	TLS TLS `toml:"tls"`
	// Component settings: TLS.ClientCA + TLS.RequireClientCert apply to the component port.
	Components struct {
		// Duplicate is what a second connection with a connected name gets: "reject" (default:
		// it is refused with conflict, and both sides raise an alarm) or "kick_old" (it
		// replaces the connected one).
		Duplicate string `toml:"duplicate"`
	} `toml:"components"`
	WebSocket struct {
		// Origins allowed to open an XMPP WebSocket ("https://meet.example.com"). Empty: the
		// listener's own host only.
		Origins []string `toml:"origins"`
	} `toml:"websocket"`
	Limits struct {
		StanzaC2S       int      `toml:"stanza_c2s"`       // bytes, default 262144
		StanzaComponent int      `toml:"stanza_component"` // bytes, default 524288
		MaxSessions     int      `toml:"max_sessions"`     // default 10000
		OpenTimeout     Duration `toml:"open_timeout"`
		TLSTimeout      Duration `toml:"tls_timeout"`
		AuthTimeout     Duration `toml:"auth_timeout"`
		IdleTimeout     Duration `toml:"idle_timeout"`
		WriteTimeout    Duration `toml:"write_timeout"`
		KeepAlive       Duration `toml:"keepalive"`
		RelayTimeout    Duration `toml:"relay_timeout"`
		// Per client: stanzas a second to others, and the burst (default 50 and 200); per
		// source address: connections not yet authenticated, not yet bound (100, 200); per
		// account: sessions kept detached for resumption (5). Zero takes the default.
		SenderRate                int `toml:"sender_rate"`
		SenderBurst               int `toml:"sender_burst"`
		UnauthenticatedPerAddress int `toml:"unauthenticated_per_address"`
		NegotiatingPerAddress     int `toml:"negotiating_per_address"`
		DetachedPerAccount        int `toml:"detached_per_account"`
	} `toml:"limits"`
	Log Log `toml:"log"`
}

// Load reads a TOML file into v, rejecting unknown keys so that a typo is an error, not a
// silently ignored setting.
func Load(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := Decode(b, v); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Decode parses TOML into v, rejecting unknown keys.
func Decode(b []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return fmt.Errorf("unknown setting: %s", sm.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
		return err
	}
	return nil
}

// WithDefaults returns c with every unset field given its default.
func (c XMPP) WithDefaults() XMPP {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Domain, "localhost")
	def(&c.DataDir, "confab-data")
	def(&c.Registry, c.DataDir+"/callbridges.toml")
	def(&c.Listen.C2S, ":5222")
	def(&c.Listen.Component, ":5223")
	def(&c.Listen.WebSocket, ":5443")
	def(&c.Listen.Admin, "127.0.0.1:5290")
	def(&c.Components.Duplicate, "reject")
	def(&c.Log.Format, "text")
	def(&c.Log.Level, "info")
	return c
}

// Validate reports the first setting that cannot work.
func (c XMPP) Validate() error {
	switch c.Components.Duplicate {
	case "", "kick_old", "reject":
	default:
		return fmt.Errorf("components.duplicate = %q: want \"kick_old\" or \"reject\"", c.Components.Duplicate)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls.cert and tls.key must be set together")
	}
	if c.TLS.RequireClientCert && c.TLS.ClientCA == "" {
		return errors.New("tls.require_client_cert needs tls.client_ca")
	}
	return validateLog(c.Log)
}

func validateLog(l Log) error {
	switch l.Format {
	case "", "text", "json":
	default:
		return fmt.Errorf("log.format = %q: want \"text\" or \"json\"", l.Format)
	}
	switch l.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level = %q: want debug, info, warn or error", l.Level)
	}
	return nil
}

// CallBridge is the `confab callbridge` configuration file. The XMPP settings (unique name,
// domain, server address, shared secret) are not here: they live in the store and are set
// through the REST API or the web admin, as on CMS.
type CallBridge struct {
	// DataDir holds the store and generated certificates. Default "confab-data".
	DataDir string `toml:"data_dir"`
	// Store is the SQLite database file. Default <data_dir>/callbridge.db.
	Store  string `toml:"store"`
	Listen struct {
		// API serves the REST API (/api/v1) and the web admin (/admin/). Default ":8445".
		API string `toml:"api"`
		// Web serves the browser app (the Web Bridge). Default ":8443".
		Web string `toml:"web"`
	} `toml:"listen"`
	// TLS is the certificate of the API and web listeners; generated in <data_dir>/tls when
	// empty.
	TLS  TLS `toml:"tls"`
	XMPP struct {
		// CA is the PEM bundle that verifies the XMPP server's certificate. Empty: the
		// system's trust store.
		CA string `toml:"ca"`
		// ClientCert and ClientKey are presented when the XMPP server asks (mutual TLS).
		ClientCert string `toml:"client_cert"`
		ClientKey  string `toml:"client_key"`
		// DNSServer answers the SRV and A/AAAA lookups ("192.0.2.53" or "[::1]:5353").
		// Empty: the system resolver.
		DNSServer  string   `toml:"dns_server"`
		KeepAlive  Duration `toml:"keepalive"`
		BackoffMin Duration `toml:"backoff_min"`
		BackoffMax Duration `toml:"backoff_max"`
	} `toml:"xmpp"`
	// Media is the media server (the SFU): all participants' audio and video go through one
	// UDP port and, for clients that cannot use UDP, one TCP port (ICE-TCP).
	Media struct {
		// UDP is the address of the media UDP port. Default ":10000"; "off" turns media off
		// (meetings are chat only).
		UDP string `toml:"udp"`
		// TCP is the address of the ICE-TCP port. Default: the UDP address's host and port;
		// "off" turns ICE-TCP off.
		TCP string `toml:"tcp"`
		// PublicIPs are advertised to browsers instead of the host's own addresses, for a
		// host behind a 1:1 NAT (a cloud VM with a public address): forward the same ports.
		PublicIPs []string `toml:"public_ips"`
	} `toml:"media"`
	// TURN, when the file has a [turn] section, runs Confab's TURN server inside the Call
	// Bridge (see TURN; its admin listener is not used: the REST API lists the
	// allocations), offered to the browsers through /api/v1/turnServers. Unlike `confab
	// turn`, it relays only to this Call Bridge's media port unless [turn.peers] allow
	// says otherwise, and a missing shared secret is generated in <data_dir>/turn-secret.
	TURN *TURN `toml:"turn"`
	Web  struct {
		// WebSocketURL is where browsers open XMPP over WebSocket, e.g.
		// "wss://xmpp.example.com:5443/xmpp-websocket". Empty: this web listener's own
		// /xmpp-websocket (as `confab up` serves it).
		WebSocketURL string `toml:"websocket_url"`
	} `toml:"web"`
	Log Log `toml:"log"`
}

// WithDefaults returns c with every unset field given its default.
func (c CallBridge) WithDefaults() CallBridge {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.DataDir, "confab-data")
	def(&c.Store, c.DataDir+"/callbridge.db")
	def(&c.Listen.API, ":8445")
	def(&c.Listen.Web, ":8443")
	def(&c.Media.UDP, ":10000")
	def(&c.Log.Format, "text")
	def(&c.Log.Level, "info")
	if c.TURN != nil {
		t := c.TURN.WithDefaults()
		c.TURN = &t
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c CallBridge) Validate() error {
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls.cert and tls.key must be set together")
	}
	if (c.XMPP.ClientCert == "") != (c.XMPP.ClientKey == "") {
		return errors.New("xmpp.client_cert and xmpp.client_key must be set together")
	}
	if c.TURN != nil {
		if err := c.TURN.Validate(); err != nil {
			return err
		}
	}
	return validateLog(c.Log)
}

// TURN is the TURN server's section, `[turn]`: the listeners, credentials, relay addresses,
// quotas and peer rules of Confab's embedded TURN server (package turnd). `confab turn`
// reads it from a TURNServer file; a role that embeds the TURN server reads the same section
// from its own file.
type TURN struct {
	// Realm is the long-term-credential realm (RFC 8489 §9.2). Default "confab".
	Realm  string `toml:"realm"`
	Listen struct {
		UDP string `toml:"udp"` // default ":3478"; "off" for none
		TCP string `toml:"tcp"` // default ":3478"; "off" for none
		// TLS is TURN over TLS (turns:). Default ":5349"; "off" for none. 443 passes more
		// firewalls when it is free.
		TLS string `toml:"tls"`
		// Admin serves /metrics, /healthz and /allocations over plain HTTP. Default
		// "127.0.0.1:5291"; "off" for none. Keep it on loopback.
		Admin string `toml:"admin"`
	} `toml:"listen"`
	// TLS is the certificate of the TLS listener; generated in <data_dir>/tls when empty.
	TLS TLS `toml:"tls"`
	// SharedSecret is coturn's static-auth-secret: time-limited credentials (the "TURN REST
	// API" scheme) are derived from it. SharedSecretFile names a file holding it instead
	// (first line), which keeps it out of the configuration. Neither, and no Users: no
	// client can authenticate.
	SharedSecret     string `toml:"shared_secret"`
	SharedSecretFile string `toml:"shared_secret_file"`
	// Users are static long-term credentials, username → password, for tests and small
	// sites.
	Users map[string]string `toml:"users"`
	Relay struct {
		// IP is the relayed address advertised to clients (the public address of a host
		// behind a 1:1 NAT). Default: the address the client reached the server on; a UDP
		// listener on all addresses needs it set.
		IP string `toml:"ip"`
		// BindIP is where relay sockets are bound. Default: the listener's address, or all
		// addresses when IP is set and the listener is on all addresses.
		BindIP string `toml:"bind_ip"`
		// MinPort and MaxPort bound the relay ports. Default 49152–65535.
		MinPort int `toml:"min_port"`
		MaxPort int `toml:"max_port"`
	} `toml:"relay"`
	Quotas struct {
		// PerUser bounds one user's allocations (the user id of a time-limited credential,
		// or a static username): 486 Allocation Quota Reached past it. Default 10; -1 for
		// no bound.
		PerUser int `toml:"per_user"`
		// Total bounds all allocations: 508 Insufficient Capacity past it. Default 10000.
		Total int `toml:"total"`
		// Bandwidth caps each allocation, in bytes per second each way; what exceeds it is
		// dropped. Default 4000000 (32 Mbit/s); -1 for no cap.
		Bandwidth int64 `toml:"bandwidth"`
		// Connections bounds the TCP and TLS connections together. Default 10000.
		Connections int `toml:"connections"`
	} `toml:"quotas"`
	Peers struct {
		// Deny lists CIDRs no client may relay to, beyond the default loopback, link-local,
		// unspecified and multicast ranges (e.g. the site's private networks).
		Deny []string `toml:"deny"`
		// Allow lists CIDRs that may be relayed to even if denied (the media server's
		// address on a private network; 127.0.0.1/32 for tests on loopback).
		Allow []string `toml:"allow"`
	} `toml:"peers"`
}

// TURNServer is the `confab turn` configuration file.
type TURNServer struct {
	// DataDir holds a generated CA and certificate when [turn.tls] names none. Default
	// "confab-data".
	DataDir string `toml:"data_dir"`
	TURN    TURN   `toml:"turn"`
	Log     Log    `toml:"log"`
}

// WithDefaults returns c with every unset field given its default.
func (c TURN) WithDefaults() TURN {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Realm, "confab")
	def(&c.Listen.UDP, ":3478")
	def(&c.Listen.TCP, ":3478")
	def(&c.Listen.TLS, ":5349")
	def(&c.Listen.Admin, "127.0.0.1:5291")
	if c.Relay.MinPort == 0 && c.Relay.MaxPort == 0 {
		c.Relay.MinPort, c.Relay.MaxPort = 49152, 65535
	}
	if c.Quotas.PerUser == 0 {
		c.Quotas.PerUser = 10
	}
	if c.Quotas.Total == 0 {
		c.Quotas.Total = 10000
	}
	if c.Quotas.Bandwidth == 0 {
		c.Quotas.Bandwidth = 4_000_000
	}
	if c.Quotas.Connections == 0 {
		c.Quotas.Connections = 10000
	}
	return c
}

// Validate reports the first setting that cannot work. Addresses and CIDRs are checked by
// the TURN server when it starts.
func (c TURN) Validate() error {
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("turn.tls.cert and turn.tls.key must be set together")
	}
	if c.SharedSecret != "" && c.SharedSecretFile != "" {
		return errors.New("turn.shared_secret and turn.shared_secret_file are exclusive")
	}
	if c.Relay.MinPort < 0 || c.Relay.MaxPort > 65535 || c.Relay.MinPort > c.Relay.MaxPort ||
		(c.Relay.MinPort == 0) != (c.Relay.MaxPort == 0) {
		return fmt.Errorf("turn.relay ports %d–%d: want 1 ≤ min_port ≤ max_port ≤ 65535", c.Relay.MinPort, c.Relay.MaxPort)
	}
	for u, p := range c.Users {
		if u == "" || p == "" {
			return fmt.Errorf("turn.users: %q: empty username or password", u)
		}
	}
	return nil
}

// Secret returns the shared secret: SharedSecret, or the first line of SharedSecretFile
// when that is set (an empty line is an error); zero when neither is set.
func (c TURN) Secret() (secret.Secret, error) {
	if c.SharedSecretFile == "" {
		return secret.New(c.SharedSecret), nil
	}
	b, err := os.ReadFile(c.SharedSecretFile)
	if err != nil {
		return secret.Secret{}, fmt.Errorf("turn shared secret: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return secret.Secret{}, fmt.Errorf("turn shared secret: %s: empty first line", c.SharedSecretFile)
	}
	return secret.New(line), nil
}

// UserSecrets returns Users with each password as a secret.Secret, so that it is redacted
// wherever it goes from here; nil when there are none.
func (c TURN) UserSecrets() map[string]secret.Secret {
	if len(c.Users) == 0 {
		return nil
	}
	out := make(map[string]secret.Secret, len(c.Users))
	for u, p := range c.Users {
		out[u] = secret.New(p)
	}
	return out
}

// WithDefaults returns c with every unset field given its default.
func (c TURNServer) WithDefaults() TURNServer {
	if c.DataDir == "" {
		c.DataDir = "confab-data"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	c.TURN = c.TURN.WithDefaults()
	return c
}

// Validate reports the first setting that cannot work.
func (c TURNServer) Validate() error {
	if err := c.TURN.Validate(); err != nil {
		return err
	}
	return validateLog(c.Log)
}
