// Command confab-bench is Confab's load tool: it drives XMPP servers on this machine
// (loopback only) — Confab, Prosody and ejabberd — and writes what it measured as JSON.
// It is a command of its own so that the confab binary people run links none of it (the
// load generator, the Prosody/ejabberd launcher). bench/compare.sh and bench/soak.sh run it.
//
//	confab-bench login|idle|roundtrip   run a scenario against a server
//	confab-bench serve                  start a server to measure
//	confab-bench cert                   make a CA and a server certificate for serve
//	confab-bench report                 print a table of result files
//	confab-bench media                  media servers: Confab's SFU beside Janus
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
	"syscall"

	"confab.dev/confab/internal/config"
)

// exitError carries a specific exit status (2 for a usage error).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// stdio is the process's standard streams, passed in so tests can run commands.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runBench(ctx, os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr})
	stop()
	if err == nil {
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "confab-bench:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

// newLogger is a text logger at level.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}
