package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDecodeXMPP(t *testing.T) {
	var c XMPP
	err := Decode([]byte(`
domain = "example.com"
[listen]
c2s = "127.0.0.1:5222"
[limits]
stanza_c2s = 1000
auth_timeout = "30s"
[websocket]
origins = ["https://a.example.com"]
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	if c.Domain != "example.com" || c.Listen.C2S != "127.0.0.1:5222" || c.Listen.Component != ":5223" {
		t.Errorf("listen = %+v", c.Listen)
	}
	if c.Limits.StanzaC2S != 1000 || c.Limits.AuthTimeout.Duration != 30*time.Second {
		t.Errorf("limits = %+v", c.Limits)
	}
	if c.Registry != "confab-data/callbridges.toml" {
		t.Errorf("registry = %q", c.Registry)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown key", "domian = \"x\"", "unknown setting"},
		{"bad duration", "[limits]\nauth_timeout = \"soon\"", "soon"},
		{"negative duration", "[limits]\nauth_timeout = \"-1s\"", "negative"},
		{"syntax", "domain = ", "line 1"},
		{"wrong type", "[limits]\nstanza_c2s = \"big\"", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c XMPP
			err := Decode([]byte(tt.in), &c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	var c XMPP
	c.Components.Duplicate = "sometimes"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "components.duplicate") {
		t.Errorf("duplicate policy: %v", err)
	}
	c = XMPP{}
	c.TLS.Cert = "a.pem"
	if err := c.Validate(); err == nil {
		t.Error("cert without key accepted")
	}
	var cb CallBridge
	cb.XMPP.ClientCert = "c.pem"
	if err := cb.Validate(); err == nil {
		t.Error("client cert without key accepted")
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.toml")
	if err := os.WriteFile(p, []byte("bogus = 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c XMPP
	if err := Load(p, &c); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v, want the file named", err)
	}
	if err := Load(filepath.Join(t.TempDir(), "missing.toml"), &c); err == nil {
		t.Error("missing file accepted")
	}
}

func TestExampleConfigLoads(t *testing.T) {
	var c XMPP
	if err := Load("../../examples/xmpp.toml", &c); err != nil {
		t.Fatal(err)
	}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("domain = \"example.com\"\n[limits]\nauth_timeout = \"3s\"\n"))
	f.Add([]byte("[listen]\nc2s = \":5222\""))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c XMPP
		if Decode(b, &c) == nil {
			_ = c.WithDefaults().Validate()
		}
		var cb CallBridge
		if Decode(b, &cb) == nil {
			_ = cb.WithDefaults().Validate()
		}
		var tc TURNServer
		if Decode(b, &tc) == nil {
			_ = tc.WithDefaults().Validate()
		}
	})
}

func TestDecodeTURN(t *testing.T) {
	var c TURNServer
	err := Decode([]byte(`
[turn]
realm = "example.com"
shared_secret = "s"
[turn.listen]
tls = ":443"
udp = "off"
[turn.relay]
ip = "203.0.113.1"
[turn.quotas]
per_user = -1
[turn.peers]
allow = ["127.0.0.1/32"]
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	tc := c.TURN
	if tc.Realm != "example.com" || tc.Listen.TLS != ":443" || tc.Listen.UDP != "off" || tc.Listen.TCP != ":3478" || tc.Listen.Admin != "127.0.0.1:5291" {
		t.Errorf("listen = %+v", tc.Listen)
	}
	if tc.Relay.MinPort != 49152 || tc.Relay.MaxPort != 65535 || tc.Quotas.PerUser != -1 || tc.Quotas.Total != 10000 || tc.Quotas.Bandwidth != 4000000 {
		t.Errorf("relay %+v, quotas %+v", tc.Relay, tc.Quotas)
	}
	if c.DataDir != "confab-data" || c.Log.Level != "info" {
		t.Errorf("data_dir %q, log %+v", c.DataDir, c.Log)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	bad := []struct {
		name string
		edit func(*TURN)
	}{
		{"cert without key", func(t *TURN) { t.TLS.Cert = "a.pem" }},
		{"both secrets", func(t *TURN) { t.SharedSecret, t.SharedSecretFile = "a", "b" }},
		{"ports reversed", func(t *TURN) { t.Relay.MinPort, t.Relay.MaxPort = 6000, 5000 }},
		{"port too high", func(t *TURN) { t.Relay.MaxPort = 70000 }},
		{"empty password", func(t *TURN) { t.Users = map[string]string{"u": ""} }},
	}
	for _, b := range bad {
		tc := c.TURN
		b.edit(&tc)
		if err := tc.Validate(); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}

func TestTURNExampleLoads(t *testing.T) {
	var c TURNServer
	if err := Load("../../examples/turn.toml", &c); err != nil {
		t.Fatal(err)
	}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestTURNSecret: the shared secret is the setting, or the first line of the file it names;
// an empty first line is an error, not a server no one can authenticate to.
func TestTURNSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("  from-file \nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\nlater\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		turn  TURN
		want  string
		fails bool
	}{
		{"neither", TURN{}, "", false},
		{"inline", TURN{SharedSecret: "inline"}, "inline", false},
		{"file", TURN{SharedSecretFile: file}, "from-file", false},
		{"empty first line", TURN{SharedSecretFile: empty}, "", true},
		{"missing file", TURN{SharedSecretFile: filepath.Join(dir, "none")}, "", true},
	} {
		s, err := c.turn.Secret()
		if (err != nil) != c.fails || s.Reveal() != c.want {
			t.Errorf("%s: %q, %v; want %q, error %v", c.name, s.Reveal(), err, c.want, c.fails)
		}
	}
	if u := (TURN{}).UserSecrets(); u != nil {
		t.Errorf("no users: %v, want nil", u)
	}
	u := TURN{Users: map[string]string{"ann": "pw"}}.UserSecrets()
	if len(u) != 1 || u["ann"].Reveal() != "pw" {
		t.Errorf("users: %d, ann %q", len(u), u["ann"].Reveal())
	}
}
