// Command confab runs Confab, an open-source meeting server modelled on Cisco Meeting
// Server's Call Bridge and XMPP server. One binary, one subcommand per role:
//
//	confab up                     everything on loopback with generated certificates (start here)
//	confab xmpp                   the XMPP server (c2s 5222, WebSocket, Call Bridge components 5223)
//	confab xmpp callbridge ...    the Call Bridges allowed to register (add, add-secret, list, del)
//	confab callbridge             the Call Bridge (REST API and web admin 8445)
//	confab callbridge api-user .. API and web admin accounts
//	confab diagnose               run the Call Bridge ↔ XMPP signalling steps once and explain each
//	confab turn                   the TURN server (UDP/TCP 3478, TLS 5349); "confab turn credentials" issues a pair
//	confab completion bash|zsh|fish
//	confab version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/launch"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a specific exit status (diagnose uses 1 for a failed check).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// stdio is the process's standard streams, passed in so tests can run subcommands.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr})
	stop()
	if err == nil {
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "confab:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

const usage = `usage: confab <command> [flags]

commands:
  up            run the XMPP server, Call Bridge and web app together on this machine
  xmpp          run the XMPP server; "confab xmpp callbridge" manages registered Call Bridges
  callbridge    run the Call Bridge; "confab callbridge api-user" manages API accounts
  diagnose      check the Call Bridge's link to an XMPP server step by step
  turn          run the TURN server; "confab turn credentials" prints a time-limited pair
  completion    print a shell completion script: confab completion bash|zsh|fish
  version       print the version and the commit it was built from

"confab <command> -h" describes each command's flags.
`

func run(ctx context.Context, args []string, io stdio) error {
	if len(args) == 0 {
		fmt.Fprint(io.err, usage)
		return &exitError{2, errors.New("no command given")}
	}
	switch args[0] {
	case "up":
		return runUp(ctx, args[1:], io)
	case "xmpp":
		return runXMPP(ctx, args[1:], io)
	case "callbridge":
		return runCallBridge(ctx, args[1:], io)
	case "diagnose":
		return runDiagnose(ctx, args[1:], io)
	case "turn":
		return runTURN(ctx, args[1:], io)
	case "version", "-version", "--version":
		fmt.Fprintln(io.out, versionString())
		return nil
	case "completion":
		return runCompletion(args[1:], io)
	case "__complete":
		complete(ctx, args[1:], io)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(io.out, usage)
		return nil
	}
	fmt.Fprint(io.err, usage)
	return &exitError{2, fmt.Errorf("unknown command %q", args[0])}
}

// newLogger builds the process's slog logger from the config's log section.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// parseVerb parses a verb's flags and its one NAME argument, which may come before or after
// the flags ("add cb1 -config f" and "add -config f cb1").
func parseVerb(fs *flag.FlagSet, args []string) (string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	return name, nil
}

// shutdown stops a role after SIGINT/SIGTERM, bounded by launch.ShutdownTimeout.
func shutdown(stop func(context.Context) error) error {
	ctx, cancel := context.WithTimeoutCause(context.Background(), launch.ShutdownTimeout,
		errors.New("shutdown took longer than "+launch.ShutdownTimeout.String()))
	defer cancel()
	return stop(ctx)
}
