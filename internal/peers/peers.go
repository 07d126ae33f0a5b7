// Package peers starts third-party XMPP servers — Prosody and ejabberd, as Debian packages
// them — on loopback, for interop tests and as the yardstick of benchmarks; and coturn, a
// third-party TURN server, for the interop tests of Confab's own (coturn.go).
//
// Each server runs in the foreground as a child of the caller, as the current user, from a
// private directory that holds its configuration, data, logs and pid file; nothing under
// /etc or /var is read or written and the system services are left alone. Every server
// gets the same shape:
//
//   - a client port (c2s) that requires STARTTLS and offers the SASL mechanisms asked for
//     (SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN by default), with the users asked for, their
//     passwords kept in plaintext or, with Options.HashedPasswords, as SCRAM-SHA-256 keys;
//   - a component port with TLS from the first byte, like Cisco Meeting Server's 5223
//     (ejabberd: an ejabberd_service listener with tls: true; Prosody: the direct-TLS port
//     of mod_net_multiplex, ssl_ports, which hands component streams to mod_component);
//   - a plain component port [XEP-0114] (ejabberd_service; Prosody's component_ports);
//
// each on a free port of 127.0.0.1 chosen at start.
//
// Start is the entry point for programs (a benchmark); StartProsody and StartEjabberd
// wrap it for tests, skipping (or, with CONFAB_REQUIRE_PEERS=1, failing) when the Debian
// package is not installed, and stopping the server when the test ends.
package peers

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind names a third-party XMPP server.
type Kind string

// The servers this package can start.
const (
	Prosody  Kind = "prosody"  // Debian package prosody (0.12)
	Ejabberd Kind = "ejabberd" // Debian package ejabberd (23.01)
)

// Kinds returns every Kind, for tests and benchmarks that run against each server.
func Kinds() []Kind { return []Kind{Prosody, Ejabberd} }

// ErrNotInstalled is returned (wrapped) by Start when the server's package is missing.
var ErrNotInstalled = errors.New("not installed")

// errPortInUse means a port chosen as free was taken before the server bound it; Start
// tries again with other ports.
var errPortInUse = errors.New("a port chosen for the server was taken by another process")

// DefaultStartTimeout bounds Start when the context has no deadline. ejabberd alone takes
// several seconds to start; on a busy two-core machine it can take much longer.
const DefaultStartTimeout = 3 * time.Minute

// DefaultMechanisms returns the SASL mechanisms a server offers when Options.Mechanisms is
// empty and passwords are kept in plaintext: the ones Confab's own XMPP server offers.
func DefaultMechanisms() []string { return []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} }

// HashedMechanisms returns the SASL mechanisms a server offers when Options.Mechanisms is
// empty and Options.HashedPasswords is set: a server that keeps SCRAM-SHA-256 keys can
// offer SCRAM-SHA-256 and PLAIN (checked by deriving the keys), and no other SCRAM variant.
func HashedMechanisms() []string { return []string{"SCRAM-SHA-256", "PLAIN"} }

// ScramIterations is the PBKDF2 iteration count of the SCRAM keys a server stores with
// Options.HashedPasswords: ejabberd's default, and what Confab's Call Bridge uses. (Prosody's
// own default is 10000; it is set to this so that the three servers store the same thing.)
const ScramIterations = 4096

// Options describe a server to start.
type Options struct {
	// Domain is the XMPP domain the server hosts (e.g. example.com).
	Domain string
	// CertFile and KeyFile are the server's certificate and its private key (PEM). The
	// certificate's subjectAltNames must carry Domain and the names clients and components
	// connect by (e.g. localhost). The file is used for every port.
	CertFile, KeyFile string
	// Components maps each external component's JID (e.g. cb1.example.com) to its secret.
	Components map[string]string
	// Users maps each username to be created on Domain to its password.
	Users map[string]string
	// Mechanisms are the SASL mechanisms offered on the client port once TLS is up; empty
	// means DefaultMechanisms, or HashedMechanisms with HashedPasswords.
	Mechanisms []string
	// HashedPasswords makes the server store SCRAM-SHA-256 keys (salted, ScramIterations
	// PBKDF2 iterations) instead of passwords, as a production deployment does: Prosody's
	// internal_hashed with password_hash "SHA-256", ejabberd's auth_password_format scram
	// with auth_scram_hash sha256. A SCRAM login then costs the server no PBKDF2 (a PLAIN
	// login costs one), and only the mechanisms of HashedMechanisms (and SCRAM-SHA-256-PLUS)
	// can be offered. Without it both servers keep passwords in plaintext, so that they can
	// offer every SCRAM variant and PLAIN together, and derive the SCRAM keys with a fresh
	// salt on every SCRAM login.
	HashedPasswords bool
	// Debug raises the server's log level to debug.
	Debug bool
}

// Server is a running third-party XMPP server.
type Server struct {
	Kind   Kind
	Domain string
	// C2SAddr is the client port (STARTTLS required), ComponentTLSAddr the component port
	// with TLS from the first byte, ComponentPlainAddr the plain component port; all are
	// 127.0.0.1:port. Prosody has no plain component port (ComponentPlainAddr is empty)
	// when Options.Components is empty: the module that owns it loads with the first
	// component.
	C2SAddr, ComponentTLSAddr, ComponentPlainAddr string
	// AdminAddr is ejabberd's HTTP API (mod_http_api under /api, open to loopback only);
	// empty for Prosody.
	AdminAddr string
	// PID is the server process's id (the Erlang VM for ejabberd, Lua for Prosody).
	PID int
	// Dir holds the server's configuration, data and logs.
	Dir string
	// ConfigFile is the server's configuration file, LogFile its main log, ConsoleFile
	// what it wrote to stdout and stderr.
	ConfigFile, LogFile, ConsoleFile string

	bin      binaries
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been waited for
	waitErr  error         // set before exited is closed
	stopOnce sync.Once
}

// binaries are the installed programs a server runs from.
type binaries struct {
	prosody, prosodyctl string // Prosody's launchers (Lua scripts)
	erl, erlLibs        string // the Erlang VM, and the directory holding ejabberd-<version>
}

// Start starts a server of the given kind in dir (which must exist and be private to it)
// and returns once it accepts connections on every port and has created o.Users. If ctx
// has no deadline, DefaultStartTimeout applies. Errors wrap ErrNotInstalled when the
// server's package is missing, and quote the end of the server's log otherwise.
func Start(ctx context.Context, kind Kind, dir string, o Options) (*Server, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	if strings.ContainsAny(dir, "\"\\\n") {
		return nil, fmt.Errorf("start %s: directory %q: quotes, backslashes and newlines are not supported", kind, dir)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	var bin binaries
	switch kind {
	case Prosody:
		bin, err = findProsody()
	case Ejabberd:
		bin, err = findEjabberd()
	default:
		return nil, fmt.Errorf("start %q: unknown server kind", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, DefaultStartTimeout,
			fmt.Errorf("%s did not start within %s", kind, DefaultStartTimeout))
		defer cancel()
	}
	// A port found free can be taken before the server binds it; try again with others.
	const attempts = 3
	for i := 1; ; i++ {
		run := filepath.Join(dir, fmt.Sprintf("run%d", i))
		if err := os.MkdirAll(run, 0o700); err != nil {
			return nil, fmt.Errorf("start %s: %w", kind, err)
		}
		s := &Server{Kind: kind, Domain: o.Domain, Dir: run, bin: bin}
		switch kind {
		case Prosody:
			err = s.startProsody(ctx, o)
		case Ejabberd:
			err = s.startEjabberd(ctx, o)
		}
		if err == nil {
			return s, nil
		}
		s.Stop()
		if errors.Is(err, errPortInUse) && i < attempts {
			continue
		}
		return nil, fmt.Errorf("start %s in %s: %w%s", kind, run, err, s.tail())
	}
}

func (o *Options) check() error {
	if strings.TrimSpace(o.Domain) == "" {
		return errors.New("no domain")
	}
	if o.CertFile == "" || o.KeyFile == "" {
		return errors.New("no certificate or key file")
	}
	for _, f := range []string{o.CertFile, o.KeyFile} {
		if _, err := os.Stat(f); err != nil {
			return err
		}
	}
	for jid, s := range o.Components {
		if jid == "" || s == "" {
			return fmt.Errorf("component %q: empty JID or secret", jid)
		}
	}
	for u, p := range o.Users {
		if u == "" || p == "" || strings.ContainsAny(u, "@/ ") {
			return fmt.Errorf("user %q: empty password, or not a plain username", u)
		}
	}
	return nil
}

func (o *Options) mechanisms() []string {
	if len(o.Mechanisms) == 0 {
		if o.HashedPasswords {
			return HashedMechanisms()
		}
		return DefaultMechanisms()
	}
	out := make([]string, len(o.Mechanisms))
	for i, m := range o.Mechanisms {
		out[i] = strings.ToUpper(strings.TrimSpace(m))
	}
	return out
}

// hashedOfferable are the mechanisms either server can offer with HashedPasswords.
var hashedOfferable = []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"}

// disabled returns the mechanisms of known that are not wanted, or an error naming a
// wanted mechanism the server cannot offer: one it does not know, or, with hashed
// passwords, one that needs keys it does not store.
func disabled(kind Kind, known []string, o *Options) ([]string, error) {
	wanted := o.mechanisms()
	for _, w := range wanted {
		if !slices.Contains(known, w) {
			return nil, fmt.Errorf("%s cannot offer SASL mechanism %s (it knows %s)", kind, w, strings.Join(known, ", "))
		}
		if o.HashedPasswords && !slices.Contains(hashedOfferable, w) {
			return nil, fmt.Errorf("%s cannot offer SASL mechanism %s with hashed passwords (it stores SCRAM-SHA-256 keys: %s)", kind, w, strings.Join(hashedOfferable, ", "))
		}
	}
	var out []string
	for _, k := range known {
		if !slices.Contains(wanted, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// certNames returns the DNS subjectAltNames of the first certificate in file.
func certNames(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no PEM certificate", file)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return c.DNSNames, nil
	}
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// spawn starts the server process, its output going to ConsoleFile.
func (s *Server) spawn(name string, args []string, env []string) error {
	out, err := os.OpenFile(s.ConsoleFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	s.cmd, s.PID = cmd, cmd.Process.Pid
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// waitReady polls, until ctx ends, for ready to report true. It fails at once if the
// process exits, or if ready returns an error.
func (s *Server) waitReady(ctx context.Context, what string, ready func(ctx context.Context) (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := ready(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-s.exited:
			// The log may say why (a port in use, say).
			if _, err := ready(ctx); err != nil {
				return err
			}
			return fmt.Errorf("the server exited while waiting for %s: %v", what, s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// dialAll reports whether every address accepts a TCP connection.
func dialAll(ctx context.Context, addrs ...string) bool {
	for _, a := range addrs {
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// Stop stops the server: SIGTERM, then SIGKILL to its process group if it has not exited
// within 20 seconds. It is idempotent and safe on a server that failed to start.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd == nil {
			return
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			// The server started as the leader of its own process group: kill it with its
			// helpers (ejabberd's erl_child_setup, for instance). The leader is still
			// there, so the group id cannot have been reused.
			killGroup(s.PID)
			<-s.exited
		}
	})
}

// Exited returns a channel closed when the server process has ended.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// tail returns the end of the server's log files, for an error message.
func (s *Server) tail() string {
	var b strings.Builder
	for _, f := range []string{s.LogFile, s.ConsoleFile} {
		if f == "" {
			continue
		}
		if t := tailFile(f, 30); t != "" {
			fmt.Fprintf(&b, "\n--- %s (end) ---\n%s", f, t)
		}
	}
	return b.String()
}

// Logs returns the last n lines of the server's log and console output.
func (s *Server) Logs(n int) string {
	var b strings.Builder
	for _, f := range []string{s.LogFile, s.ConsoleFile} {
		if t := tailFile(f, n); t != "" {
			fmt.Fprintf(&b, "--- %s ---\n%s", f, t)
		}
	}
	return b.String()
}

func tailFile(name string, n int) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// environ returns the caller's environment with the given variables replaced.
func environ(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// sortedKeys returns m's keys in order, so that generated files are deterministic.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
