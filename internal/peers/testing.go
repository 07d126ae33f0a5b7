package peers

import (
	"context"
	"errors"
	"testing"

	"confab.dev/confab/internal/testenv"
)

// StartProsody starts Prosody for the test t in a temporary directory and stops it when
// the test ends. It skips t (fails it with CONFAB_REQUIRE_PEERS=1) when Prosody is not
// installed, and fails t if Prosody does not start.
func StartProsody(t testing.TB, o Options) *Server { return startT(t, Prosody, o) }

// StartEjabberd is StartProsody for ejabberd.
func StartEjabberd(t testing.TB, o Options) *Server { return startT(t, Ejabberd, o) }

// StartT starts a server of the given kind for t, like StartProsody.
func StartT(t testing.TB, kind Kind, o Options) *Server { return startT(t, kind, o) }

func startT(t testing.TB, kind Kind, o Options) *Server {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeoutCause(context.Background(), DefaultStartTimeout,
		errors.New(string(kind)+" did not start within "+DefaultStartTimeout.String()))
	defer cancel()
	s, err := Start(ctx, kind, dir, o)
	if errors.Is(err, ErrNotInstalled) {
		testenv.Missing(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	// Registered after t.TempDir's removal, so run before it.
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("%s's logs:\n%s", kind, s.Logs(80))
		}
	})
	return s
}

// StartCoturnT starts coturn for the test t in a temporary directory and stops it when the
// test ends. It skips t (fails it with CONFAB_REQUIRE_PEERS=1) when coturn is not
// installed, and fails t if coturn does not start.
func StartCoturnT(t testing.TB, o CoturnOptions) *Coturn {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(context.Background(), DefaultStartTimeout,
		errors.New("coturn did not start within "+DefaultStartTimeout.String()))
	defer cancel()
	c, err := StartCoturn(ctx, t.TempDir(), o)
	if errors.Is(err, ErrNotInstalled) {
		testenv.Missing(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("coturn's logs:\n%s", c.Logs(80))
		}
	})
	return c
}
