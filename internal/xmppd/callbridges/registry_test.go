package callbridges

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/secret"
)

func open(t *testing.T, path string) *Registry {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "confab", "callbridges.toml")
	r := open(t, path)
	if got := len(r.List()); got != 0 {
		t.Errorf("new registry has %d entries", got)
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{path, 0o600}, {filepath.Dir(path), 0o700}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("%s mode = %o, want %o", c.path, got, c.want)
		}
	}
}

func TestAddListLookupDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridges.toml")
	r := open(t, path)
	s1, err := r.Add("cb1")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r.Add("CB-2") // names are case-insensitive, stored in lower case
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []secret.Secret{s1, s2} {
		b, err := base64.RawURLEncoding.DecodeString(s.Reveal())
		if err != nil || len(b) != 32 {
			t.Errorf("secret %q: want 32 random bytes in base64url (%v)", s.Reveal(), err)
		}
	}
	if s1.Reveal() == s2.Reveal() {
		t.Error("two Adds gave the same secret")
	}
	if _, err := r.Add("cb1"); !errors.Is(err, ErrExists) {
		t.Errorf("Add existing = %v, want ErrExists", err)
	}
	if _, err := r.Add("Cb1"); !errors.Is(err, ErrExists) {
		t.Errorf("Add existing in other case = %v, want ErrExists", err)
	}
	list := r.List()
	if len(list) != 2 || list[0].Name != "cb-2" || list[1].Name != "cb1" {
		t.Fatalf("List = %+v, want cb-2, cb1", list)
	}
	if list[1].Secret.Reveal() != s1.Reveal() || time.Since(list[1].Created) > time.Minute {
		t.Errorf("entry = %+v", list[1])
	}
	if s, ok := r.Lookup("CB1"); !ok || s.Reveal() != s1.Reveal() {
		t.Errorf("Lookup(CB1) = %v, %v", s, ok)
	}
	if _, ok := r.Lookup("cb3"); ok {
		t.Error("Lookup of an unknown name succeeded")
	}

	// add-secret: replaces one, creates another.
	if err := r.SetSecret("cb1", secret.New("given-secret")); err != nil {
		t.Fatal(err)
	}
	if err := r.SetSecret("cb3", secret.New("another")); err != nil {
		t.Fatal(err)
	}
	if err := r.SetSecret("cb4", secret.New("  ")); err == nil {
		t.Error("SetSecret with a blank secret succeeded")
	}
	if s, _ := r.Lookup("cb1"); s.Reveal() != "given-secret" {
		t.Errorf("after SetSecret, cb1 secret = %q", s.Reveal())
	}
	if after := r.List(); len(after) != 3 || after[1].Name != "cb1" || !after[1].Created.Equal(list[1].Created) {
		t.Errorf("List after SetSecret = %+v; want 3 entries, cb1 keeping its creation time", after)
	}

	if err := r.Delete("cb-2"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("cb-2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}

	// Everything is on disk, and private.
	r2 := open(t, path)
	got := r2.List()
	if len(got) != 2 || got[0].Name != "cb1" || got[0].Secret.Reveal() != "given-secret" || got[1].Name != "cb3" {
		t.Errorf("reopened: %+v", got)
	}
	if !got[0].Created.Equal(list[1].Created) {
		t.Errorf("created changed across reopen: %v, want %v", got[0].Created, list[1].Created)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode after writes = %o, want 600", fi.Mode().Perm())
	}
	// No temporary files left behind.
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"cb1", true},
		{"a", true},
		{"Call-Bridge-7", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"cb_1", false},
		{"cb.1", false},
		{"cb 1", false},
		{"-cb", false},
		{"cb-", false},
		{"çb", false},
		{"cb1\n", false},
	}
	r := open(t, filepath.Join(t.TempDir(), "r.toml"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidName(tt.name); (err == nil) != tt.ok {
				t.Errorf("ValidName = %v, want ok=%v", err, tt.ok)
			}
			if _, err := r.Add(tt.name); (err == nil) != tt.ok {
				t.Errorf("Add = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// The secret never appears in what Entry prints.
func TestEntryRedacts(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "r.toml"))
	s, err := r.Add("cb1")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "entries", r.List())
	if strings.Contains(b.String(), s.Reveal()) {
		t.Errorf("log line reveals the secret: %s", b.String())
	}
}

// Two writers sharing a file (the XMPP server and the CLI) do not undo each other's changes.
func TestTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.toml")
	a, b := open(t, path), open(t, path)
	if _, err := a.Add("cb1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add("cb2"); err != nil { // b has not seen cb1
		t.Fatal(err)
	}
	if _, err := b.Add("cb1"); !errors.Is(err, ErrExists) {
		t.Errorf("b.Add(cb1) = %v, want ErrExists", err)
	}
	if got := len(open(t, path).List()); got != 2 {
		t.Errorf("file has %d entries, want 2", got)
	}
}

func TestBadFile(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not TOML", "[[callbridge]\nname = ", "line 1"},
		{"unknown key", "[[callbridge]]\nname = \"cb1\"\nsecret = \"x\"\npassword = \"y\"\n", "password"},
		{"bad name", "[[callbridge]]\nname = \"cb_1\"\nsecret = \"x\"\n", "cb_1"},
		{"no secret", "[[callbridge]]\nname = \"cb1\"\n", "no secret"},
		{"duplicate", "[[callbridge]]\nname = \"cb1\"\nsecret = \"x\"\n[[callbridge]]\nname = \"CB1\"\nsecret = \"y\"\n", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "callbridges.toml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v, want an error naming %s and mentioning %q", err, path, tt.want)
			}
		})
	}
	// A change is refused rather than overwriting a file that went bad under us.
	path := filepath.Join(t.TempDir(), "callbridges.toml")
	r := open(t, path)
	if err := os.WriteFile(path, []byte("garbage = [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add("cb1"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Add on a broken file = %v, want an error naming the file", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage = [\n" {
		t.Errorf("the broken file was overwritten: %q", b)
	}
}

// logSink collects log records for tests that wait for one.
type logSink struct {
	mu   sync.Mutex
	msgs []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	s.mu.Lock()
	s.msgs = append(s.msgs, b.String())
	s.mu.Unlock()
	return nil
}
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }
func (s *logSink) has(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridges.toml")
	writer := open(t, path)
	reader := open(t, path)
	sink := &logSink{}
	reader.Logger = slog.New(sink)

	changes := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reader.Watch(ctx, func() { changes <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v", err)
		}
	})

	// Watch has started when a change made now is seen; retry the first change until it is.
	var s secret.Secret
	eventually(t, "the watcher to see an Add", func() bool {
		_ = writer.Delete("cb1")
		var err error
		if s, err = writer.Add("cb1"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changes:
		case <-time.After(500 * time.Millisecond):
			return false
		}
		got, ok := reader.Lookup("cb1")
		return ok && got.Reveal() == s.Reveal()
	})
	drain(changes)

	waitChange := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatalf("no onChange after %s", what)
		}
	}
	if err := writer.Delete("cb1"); err != nil {
		t.Fatal(err)
	}
	waitChange("Delete")
	if _, ok := reader.Lookup("cb1"); ok {
		t.Error("reader still has cb1 after the writer deleted it")
	}

	// An editor writing in place, not by rename.
	if err := os.WriteFile(path, []byte("[[callbridge]]\nname = \"cb9\"\nsecret = \"typed-by-hand\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitChange("an in-place write")
	if s, ok := reader.Lookup("cb9"); !ok || s.Reveal() != "typed-by-hand" {
		t.Errorf("reader Lookup(cb9) = %q, %v", s.Reveal(), ok)
	}

	// A broken file is reported, naming the file, and the entries stay.
	if err := os.WriteFile(path, []byte("[[callbridge]]\nname = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the invalid file to be logged", func() bool { return sink.has("invalid") && sink.has(path) })
	if _, ok := reader.Lookup("cb9"); !ok {
		t.Error("a broken file wiped the entries")
	}
	select {
	case <-changes:
		t.Error("onChange called for a broken file")
	default:
	}
	// Fixed again: picked up.
	if err := os.WriteFile(path, []byte("[[callbridge]]\nname = \"cb10\"\nsecret = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitChange("the fix")
	if _, ok := reader.Lookup("cb10"); !ok {
		t.Error("reader did not pick up the fixed file")
	}
}

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// A file written by hand, without creation times, survives a rewrite unchanged in meaning.
func TestHandWrittenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridges.toml")
	if err := os.WriteFile(path, []byte("[[callbridge]]\nname = \"cb1\"\nsecret = \"s1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := open(t, path)
	if _, err := r.Add("cb2"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "0001-01-01") {
		t.Errorf("a missing creation time was written as the zero time:\n%s", b)
	}
	if s, ok := open(t, path).Lookup("cb1"); !ok || s.Reveal() != "s1" {
		t.Errorf("cb1 after rewrite = %q, %v", s.Reveal(), ok)
	}
}
