package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Prosody 0.12's SASL mechanisms: those it can offer with plaintext-stored passwords (with
// hashed ones, only hashedOfferable), and the others, which are always disabled.
var (
	prosodyOfferable = []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "PLAIN"}
	prosodyOther     = []string{"DIGEST-MD5", "LOGIN", "ANONYMOUS", "EXTERNAL", "OAUTHBEARER", "X-OAUTH2"}
)

func findProsody() (binaries, error) {
	var b binaries
	for _, p := range []struct {
		name string
		dst  *string
	}{{"prosody", &b.prosody}, {"prosodyctl", &b.prosodyctl}} {
		path, err := exec.LookPath(p.name)
		if err != nil {
			if _, serr := os.Stat("/usr/bin/" + p.name); serr != nil {
				return b, fmt.Errorf("%s (Debian package prosody): %w", p.name, ErrNotInstalled)
			}
			path = "/usr/bin/" + p.name
		}
		*p.dst = path
	}
	return b, nil
}

// startProsody writes the configuration, creates the users with prosodyctl and runs
// `prosody -F` (foreground). Prosody refuses to run as root unless told to (run_as_root):
// here that is deliberate, since tests and CI run as root, and the process touches only
// s.Dir.
func (s *Server) startProsody(ctx context.Context, o Options) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	s.C2SAddr, s.ComponentPlainAddr, s.ComponentTLSAddr = loopback(ports[0]), loopback(ports[1]), loopback(ports[2])
	s.ConfigFile = filepath.Join(s.Dir, "prosody.cfg.lua")
	s.LogFile = filepath.Join(s.Dir, "prosody.log")
	s.ConsoleFile = filepath.Join(s.Dir, "console.log")
	for _, d := range []string{"data", "certs"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			return err
		}
	}
	cfg, err := prosodyConfig(s, o, ports)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.ConfigFile, cfg, 0o600); err != nil {
		return err
	}
	// Prosody's internal storage is files: users made before the start are there for it.
	for _, u := range sortedKeys(o.Users) {
		if err := s.Register(ctx, u, o.Users[u]); err != nil {
			return err
		}
	}
	env := environ(map[string]string{"HOME": s.Dir})
	if err := s.spawn(s.bin.prosody, []string{"--config", s.ConfigFile, "-F"}, env); err != nil {
		return err
	}
	want := []string{
		fmt.Sprintf("Activated service 'c2s' on [127.0.0.1]:%d", ports[0]),
		fmt.Sprintf("Activated service 'multiplex_ssl' on [127.0.0.1]:%d", ports[2]),
	}
	addrs := []string{s.C2SAddr, s.ComponentTLSAddr}
	if len(o.Components) > 0 {
		want = append(want, fmt.Sprintf("Activated service 'component' on [127.0.0.1]:%d", ports[1]))
		addrs = append(addrs, s.ComponentPlainAddr)
	} else {
		// mod_component, which owns the plain port, loads with the first component.
		s.ComponentPlainAddr = ""
	}
	return s.waitReady(ctx, "Prosody's ports", func(ctx context.Context) (bool, error) {
		log, _ := os.ReadFile(s.LogFile)
		if i := strings.Index(string(log), "Failed to open server port"); i >= 0 {
			line, _, _ := strings.Cut(string(log[i:]), "\n")
			if strings.Contains(line, "in use") {
				return false, fmt.Errorf("%s: %w", line, errPortInUse)
			}
			return false, errors.New(line)
		}
		for _, w := range want {
			if !strings.Contains(string(log), w) {
				return false, nil
			}
		}
		return dialAll(ctx, addrs...), nil
	})
}

// Register creates (or replaces) a user on the server's domain: with prosodyctl for
// Prosody, through the HTTP API for ejabberd. It works on a running server.
func (s *Server) Register(ctx context.Context, user, password string) error {
	switch s.Kind {
	case Prosody:
		cmd := exec.CommandContext(ctx, s.bin.prosodyctl, "--config", s.ConfigFile, "register", user, s.Domain, password)
		cmd.Dir = s.Dir
		cmd.Env = environ(map[string]string{"HOME": s.Dir})
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("prosodyctl register %s@%s: %w: %s", user, s.Domain, err, strings.TrimSpace(string(out)))
		}
		return nil
	case Ejabberd:
		return s.registerEjabberd(ctx, user, password)
	}
	return fmt.Errorf("register: unknown server kind %q", s.Kind)
}

// prosodyConfig returns Prosody's configuration file.
//
// The component port with TLS from the first byte is mod_net_multiplex's ssl_ports:
// Prosody 0.12 has no direct-TLS option for mod_component, but the multiplexer terminates
// TLS and hands a stream in jabber:component:accept to mod_component.
//
// Prosody refuses a TLS handshake on that port whose SNI names none of its hosts (alert
// unrecognized_name). It is configured as its users configure it: one VirtualHost, the
// XMPP domain, which a Call Bridge sends as SNI (XEP-0368).
func prosodyConfig(s *Server, o Options, ports []int) ([]byte, error) {
	off, err := disabled(Prosody, prosodyOfferable, &o)
	if err != nil {
		return nil, err
	}
	off = append(off, prosodyOther...)
	level := "info"
	if o.Debug {
		level = "debug"
	}
	path := func(elem ...string) string { return lua(filepath.Join(append([]string{s.Dir}, elem...)...)) }

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("-- Written by confab.dev/confab/internal/peers for a test or benchmark; not for production.")
	w("run_as_root = true")
	w("pidfile = %s", path("prosody.pid"))
	w("data_path = %s", path("data"))
	w("certificates = %s", path("certs"))
	w("plugin_paths = {}")
	w("use_ipv6 = false")
	w("interfaces = { %s }", lua("127.0.0.1"))
	w("local_interfaces = { %s }", lua("127.0.0.1"))
	w("c2s_ports = { %d }", ports[0])
	w("component_ports = { %d }", ports[1])
	w("ssl_ports = { %d }", ports[2])
	for _, none := range []string{"c2s_direct_tls_ports", "legacy_ssl_ports", "s2s_ports", "ports", "http_ports", "https_ports"} {
		w("%s = {}", none)
	}
	w("log = { { levels = { min = %s }, to = %s, filename = %s } }", lua(level), lua("file"), lua(s.LogFile))
	w("modules_enabled = { %s }", luaList([]string{"roster", "saslauth", "tls", "disco", "ping", "posix", "net_multiplex"}))
	w("modules_disabled = { %s }", luaList([]string{"s2s", "offline"}))
	w("c2s_require_encryption = true")
	w("allow_unencrypted_plain_auth = false")
	if o.HashedPasswords {
		// Keys for SCRAM-SHA-256 only: Prosody 0.12 stores one hash per host.
		w("authentication = %s", lua("internal_hashed"))
		w("password_hash = %s", lua("SHA-256"))
		w("default_iteration_count = %d", ScramIterations)
	} else {
		w("authentication = %s", lua("internal_plain"))
	}
	w("storage = %s", lua("internal"))
	w("disable_sasl_mechanisms = { %s }", luaList(off))
	w("ssl = { certificate = %s, key = %s }", lua(o.CertFile), lua(o.KeyFile))
	w("")
	w("VirtualHost %s", lua(o.Domain))
	for _, jid := range sortedKeys(o.Components) {
		w("Component %s", lua(jid))
		w("\tcomponent_secret = %s", lua(o.Components[jid]))
	}
	return []byte(b.String()), nil
}

// lua quotes s as a Lua string literal.
func lua(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			// Always three digits, so that a digit after it is not read as part of it.
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func luaList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = lua(it)
	}
	return strings.Join(q, ", ")
}
