// Package launch turns Confab's configuration files into running roles: it reads
// configuration, makes or loads certificates, opens the Call Bridge's store and the XMPP
// server's files (xmppd.OpenStores), binds every listener, starts the roles (xmppd.Server,
// callbridge.Bridge, turnd.Server) and shuts all of it down in order. cmd/confab and
// `confab up` call it; the role libraries it assembles know nothing of configuration files
// or flags.
//
// What belongs to one role is wired in that role's package, where a reader looks for it:
// the Call Bridge's media settings (callbridge.MediaConfig), its event log and its API
// accounts; the XMPP server's files; the TURN secrets (config.TURN.Secret,
// turnd.EnsureSecret). A test keeps launch to at most eight internal imports.
//
// Every goroutine a role starts is owned by its group and waited for in Shutdown.
package launch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"confab.dev/confab/internal/callbridge"
	"confab.dev/confab/internal/turnd"
	"confab.dev/confab/internal/web/httpsredirect"
	"confab.dev/confab/internal/xmppd"
)

// group runs a role's serving goroutines and remembers the first unexpected error.
type group struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
	failed  chan struct{} // closed on the first unexpected error
	once    sync.Once
	servers []*http.Server
	// stops are the Shutdown methods of the group's other servers (the embedded TURN
	// server), called after the HTTP servers stop.
	stops []func(context.Context) error
}

func newGroup() *group { return &group{failed: make(chan struct{})} }

// go runs f; an error other than the expected end-of-service ones fails the group.
func (g *group) run(name string, f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil && !expectedEnd(err) {
			g.mu.Lock()
			if g.err == nil {
				g.err = fmt.Errorf("%s: %w", name, err)
			}
			g.mu.Unlock()
			g.once.Do(func() { close(g.failed) })
		}
	}()
}

func expectedEnd(err error) bool {
	return errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, xmppd.ErrServerClosed) ||
		errors.Is(err, callbridge.ErrBridgeClosed) || errors.Is(err, turnd.ErrServerClosed)
}

// Err returns the first unexpected error, if any.
func (g *group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// serveHTTP serves h on ln (TLS when cfg is not nil) as part of the group.
func (g *group) serveHTTP(name string, ln net.Listener, h http.Handler, cfg *tls.Config, log *slog.Logger) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg != nil {
		srv.TLSConfig = cfg.Clone()
		ln = tls.NewListener(httpsredirect.Wrap(ln), srv.TLSConfig) // http:// on this port → https://
	}
	g.servers = append(g.servers, srv)
	g.run(name, func() error { return srv.Serve(ln) })
}

// shutdownHTTP stops the group's HTTP servers, then its other servers.
func (g *group) shutdownHTTP(ctx context.Context) error {
	var errs []error
	for _, s := range g.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			s.Close()
		}
	}
	for _, stop := range g.stops {
		errs = append(errs, stop(ctx))
	}
	return errors.Join(errs...)
}

// listen binds addr, naming the setting in the error so the operator knows what to change.
func listen(setting, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, setting, err)
	}
	return ln, nil
}
