package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ejabberd 23.01's SASL mechanisms: those it can offer with plaintext-stored passwords (with
// hashed ones, only hashedOfferable), and the others, which are always disabled.
var (
	ejabberdOfferable = []string{"SCRAM-SHA-512", "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS",
		"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "PLAIN"}
	ejabberdOther = []string{"DIGEST-MD5", "X-OAUTH2", "ANONYMOUS", "EXTERNAL"}
)

// findEjabberd finds the Erlang VM and ejabberd's code. ejabberdctl is not used: as root it
// re-executes itself as the ejabberd user through su, and it names the node, which would
// need epmd; the VM is started directly instead, as a node without distribution, so that
// parallel servers cannot collide on a node name or a cookie.
func findEjabberd() (binaries, error) {
	var b binaries
	erl, err := exec.LookPath("erl")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/erl"); serr != nil {
			return b, fmt.Errorf("erl (Debian packages ejabberd, erlang-base): %w", ErrNotInstalled)
		}
		erl = "/usr/bin/erl"
	}
	var apps []string
	for _, pattern := range []string{"/usr/lib/*/ejabberd-*/ebin/ejabberd.app", "/usr/lib/ejabberd-*/ebin/ejabberd.app", "/usr/lib/erlang/lib/ejabberd-*/ebin/ejabberd.app"} {
		m, _ := filepath.Glob(pattern)
		apps = append(apps, m...)
	}
	if len(apps) == 0 {
		return b, fmt.Errorf("ejabberd's code (ebin/ejabberd.app, Debian package ejabberd): %w", ErrNotInstalled)
	}
	slices.Sort(apps)
	b.erl = erl
	// ERL_LIBS names the directory that holds ejabberd-<version>/ebin.
	b.erlLibs = filepath.Dir(filepath.Dir(filepath.Dir(apps[len(apps)-1])))
	return b, nil
}

// startEjabberd writes the configuration and runs the Erlang VM with ejabberd in the
// foreground, then creates the users through the HTTP API.
func (s *Server) startEjabberd(ctx context.Context, o Options) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	s.C2SAddr, s.ComponentTLSAddr, s.ComponentPlainAddr, s.AdminAddr = loopback(ports[0]), loopback(ports[1]), loopback(ports[2]), loopback(ports[3])
	s.ConfigFile = filepath.Join(s.Dir, "ejabberd.yml")
	s.LogFile = filepath.Join(s.Dir, "log", "ejabberd.log")
	s.ConsoleFile = filepath.Join(s.Dir, "console.log")
	for _, d := range []string{"log", "spool", "home"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			return err
		}
	}
	// ejabberd wants the certificate and its key in one file.
	pemFile := filepath.Join(s.Dir, "server.pem")
	var pemData []byte
	for _, f := range []string{o.CertFile, o.KeyFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		pemData = append(append(pemData, bytes.TrimSpace(data)...), '\n')
	}
	if err := os.WriteFile(pemFile, pemData, 0o600); err != nil {
		return err
	}
	cfg, err := ejabberdConfig(o, pemFile, ports)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.ConfigFile, cfg, 0o600); err != nil {
		return err
	}
	env := environ(map[string]string{
		"HOME":                 filepath.Join(s.Dir, "home"),
		"EJABBERD_CONFIG_PATH": s.ConfigFile,
		"EJABBERD_LOG_PATH":    s.LogFile,
		"EJABBERD_PID_PATH":    filepath.Join(s.Dir, "ejabberd.pid"),
		"ERL_CRASH_DUMP":       filepath.Join(s.Dir, "log", "erl_crash.dump"),
		"ERL_LIBS":             s.bin.erlLibs,
	})
	args := []string{
		"-noinput",
		// Idle schedulers sleep instead of spinning, leaving the CPU to the tests (or to the
		// load generator of a benchmark on the same machine).
		"+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
		"-mnesia", "dir", `"` + filepath.Join(s.Dir, "spool") + `"`,
		"-s", "ejabberd",
	}
	if err := s.spawn(s.bin.erl, args, env); err != nil {
		return err
	}
	want := []string{
		fmt.Sprintf("Start accepting TCP connections at 127.0.0.1:%d for ejabberd_c2s", ports[0]),
		fmt.Sprintf("Start accepting TLS connections at 127.0.0.1:%d for ejabberd_service", ports[1]),
		fmt.Sprintf("Start accepting TCP connections at 127.0.0.1:%d for ejabberd_service", ports[2]),
		fmt.Sprintf("Start accepting TCP connections at 127.0.0.1:%d for ejabberd_http", ports[3]),
	}
	err = s.waitReady(ctx, "ejabberd's ports", func(ctx context.Context) (bool, error) {
		log, _ := os.ReadFile(s.LogFile)
		if strings.Contains(string(log), "eaddrinuse") {
			return false, errPortInUse
		}
		for _, w := range want {
			if !strings.Contains(string(log), w) {
				return false, nil
			}
		}
		return dialAll(ctx, s.C2SAddr, s.ComponentTLSAddr, s.ComponentPlainAddr, s.AdminAddr), nil
	})
	if err != nil {
		return err
	}
	// The listeners open before every module is ready: wait for the API to answer.
	err = s.waitReady(ctx, "ejabberd's HTTP API", func(ctx context.Context) (bool, error) {
		_, err := s.api(ctx, "status", map[string]string{})
		return err == nil, nil
	})
	if err != nil {
		return err
	}
	for _, u := range sortedKeys(o.Users) {
		if err := s.Register(ctx, u, o.Users[u]); err != nil {
			return err
		}
	}
	return nil
}

// registerEjabberd creates or replaces a user with the API commands register and, if the
// user exists, change_password.
func (s *Server) registerEjabberd(ctx context.Context, user, password string) error {
	_, err := s.api(ctx, "register", map[string]string{"user": user, "host": s.Domain, "password": password})
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) && strings.Contains(ae.Body, "already registered") {
		_, err = s.api(ctx, "change_password", map[string]string{"user": user, "host": s.Domain, "newpass": password})
	}
	if err != nil {
		return fmt.Errorf("register %s@%s: %w", user, s.Domain, err)
	}
	return nil
}

type apiError struct {
	Command string
	Status  int
	Body    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("ejabberd API %s: HTTP %d: %s", e.Command, e.Status, e.Body)
}

// api calls a command of ejabberd's HTTP API and returns its JSON answer.
func (s *Server) api(ctx context.Context, command string, args any) (json.RawMessage, error) {
	body, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.AdminAddr+"/api/"+command, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ejabberd API %s: %w", command, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("ejabberd API %s: %w", command, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &apiError{Command: command, Status: resp.StatusCode, Body: strings.TrimSpace(string(out))}
	}
	return out, nil
}

// ejabberdConfig returns ejabberd's configuration. It is JSON, which is YAML too, so that
// encoding/json does the quoting.
func ejabberdConfig(o Options, pemFile string, ports []int) ([]byte, error) {
	off, err := disabled(Ejabberd, ejabberdOfferable, &o)
	if err != nil {
		return nil, err
	}
	off = append(off, ejabberdOther...)
	level := "info"
	if o.Debug {
		level = "debug"
	}
	type m = map[string]any
	services := m{}
	for _, jid := range sortedKeys(o.Components) {
		services[jid] = m{"password": o.Components[jid]}
	}
	service := func(port int, tls bool) m {
		l := m{"port": port, "ip": "127.0.0.1", "module": "ejabberd_service", "hosts": services,
			"max_stanza_size": 524288}
		if tls {
			// Without a certfile of its own, a direct-TLS service listener ends every
			// handshake at once: it has no domain to pick a certificate by.
			l["tls"], l["certfile"] = true, pemFile
		}
		if len(services) == 0 {
			// No hosts would let any component in with the listener's password: set one
			// nobody knows.
			delete(l, "hosts")
			l["password"] = fmt.Sprintf("unset-%d-%d", time.Now().UnixNano(), os.Getpid())
		}
		return l
	}
	cfg := m{
		"loglevel":         level,
		"log_rotate_count": 0,
		"hosts":            []string{o.Domain},
		"certfiles":        []string{pemFile},
		"listen": []m{
			{"port": ports[0], "ip": "127.0.0.1", "module": "ejabberd_c2s", "starttls_required": true,
				"max_stanza_size": 262144},
			service(ports[1], true),
			service(ports[2], false),
			{"port": ports[3], "ip": "127.0.0.1", "module": "ejabberd_http",
				"request_handlers": m{"/api": "mod_http_api"}},
		},
		"auth_method":             "internal",
		"auth_password_format":    "plain",
		"disable_sasl_mechanisms": off,
		"acl":                     m{"loopback": m{"ip": []string{"127.0.0.0/8"}}},
		"api_permissions": m{
			"loopback may do anything": m{
				"who":  m{"access": m{"allow": []m{{"acl": "loopback"}}}},
				"what": []string{"*"},
			},
		},
		"modules": m{
			"mod_disco":    m{},
			"mod_ping":     m{},
			"mod_roster":   m{},
			"mod_http_api": m{},
		},
	}
	if o.HashedPasswords {
		// Users are registered after the start, so every one is stored as keys (ejabberd
		// uses 4096 iterations, ScramIterations, for the keys it makes).
		cfg["auth_password_format"] = "scram"
		cfg["auth_scram_hash"] = "sha256"
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte("# Written by confab.dev/confab/internal/peers for a test or benchmark; not for production.\n# JSON is YAML.\n"), out...), nil
}
