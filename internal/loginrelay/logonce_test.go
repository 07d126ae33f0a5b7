package loginrelay

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRefusedLoginLoggedOnce: with OnLogin set (the Call Bridge logs "unsuccessful login
// request from ..." there), the Responder does not log the refusal a second time; without
// it, the Responder's own line is the one.
func TestRefusedLoginLoggedOnce(t *testing.T) {
	for _, withHook := range []bool{true, false} {
		f := newFixture(t, 5*time.Second)
		logs := &lockedBuffer{}
		f.resp.Logger = slog.New(slog.NewTextHandler(logs, nil))
		f.resp.FailureFloor = -1
		if !withHook {
			f.resp.OnLogin = nil
		}
		_, r, err := f.client.Begin(ctxT(t), MechPLAIN, []byte("\x00alice\x00wrong"), "", "tcp")
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != KindFailure || r.Condition != CondNotAuthorized {
			t.Fatalf("reply %+v, want not-authorized", r)
		}
		got := strings.Count(logs.String(), `msg="login failed"`)
		want := 0
		if !withHook {
			want = 1
		}
		if got != want {
			t.Errorf("OnLogin set %v: %d 'login failed' lines, want %d:\n%s", withHook, got, want, logs.String())
		}
	}
}
