// Package callbridges keeps the list of Call Bridges allowed to register with an XMPP server
// as components, each with its shared secret: the equivalent of Cisco Meeting Server's MMP
// commands `xmpp callbridge add <name>` (generates and prints a secret), `add-secret` (sets a
// given one), `list` and `del`.
//
// The list is a TOML file, readable only by its owner (0600), rewritten atomically (a
// temporary file renamed over it), so that a reader never sees half a file. Several processes
// may share it: the XMPP server reads it and Watches it, while the command line edits it;
// every change re-reads the file first, so one writer does not undo another's change.
package callbridges

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"

	"confab.dev/confab/internal/secret"
)

// Errors callers branch on.
var (
	ErrExists   = errors.New("call bridge already registered")
	ErrNotFound = errors.New("no such call bridge")
)

// Entry is one Call Bridge allowed to register.
type Entry struct {
	// Name is the Call Bridge's unique name; its component JID is Name + "." + the domain.
	Name string
	// Secret is the shared secret of the component handshake.
	Secret secret.Secret
	// Created is when the entry was added (UTC, to the second).
	Created time.Time
}

// Registry is the set of registered Call Bridges, backed by a file. It is safe for concurrent
// use.
type Registry struct {
	path string

	// Logger receives the problems Watch meets (an unreadable or invalid file); nil discards.
	// Set it before calling Watch.
	Logger *slog.Logger

	mu      sync.RWMutex
	entries map[string]Entry
	raw     []byte // the file content entries were loaded from

	wmu sync.Mutex // serialises read-modify-write cycles within this process
}

// fileFormat is the file's layout.
type fileFormat struct {
	CallBridge []fileEntry `toml:"callbridge"`
}

type fileEntry struct {
	Name    string    `toml:"name"`
	Secret  string    `toml:"secret"`
	Created time.Time `toml:"created,omitzero"`
}

const fileHeader = `# Call Bridges allowed to register with this XMPP server as components.
# Managed by "confab xmpp callbridge add|add-secret|del|list"; keep this file private (0600).
# Each secret is the shared secret of the component handshake (XEP-0114).

`

// Open opens the registry file at path, creating it (mode 0600, in a directory created 0700)
// if it does not exist.
func Open(path string) (*Registry, error) {
	r := &Registry{path: path, entries: map[string]Entry{}}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("callbridges: %w", err)
		}
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := writeFile(path, encode(nil)); err != nil {
			return nil, err
		}
	}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Path returns the registry file's path.
func (r *Registry) Path() string { return r.path }

// ValidName reports whether name can be a Call Bridge's unique name: a DNS label (letters,
// digits and hyphens, 1 to 63 characters, not starting or ending with a hyphen), since it
// becomes the first label of the component's JID.
func ValidName(name string) error {
	if len(name) == 0 || len(name) > 63 {
		return fmt.Errorf("callbridges: invalid name %q: must be 1 to 63 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("callbridges: invalid name %q: only letters, digits and hyphens are allowed", name)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("callbridges: invalid name %q: must not start or end with a hyphen", name)
	}
	return nil
}

// canonical returns the stored form of a name: names are case-insensitive, like the DNS.
func canonical(name string) string { return strings.ToLower(name) }

// NewSecret returns a strong shared secret: 32 random bytes, base64url without padding.
func NewSecret() secret.Secret {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return secret.New(base64.RawURLEncoding.EncodeToString(b[:]))
}

// Add registers name with a newly generated secret and returns the secret. It fails with
// ErrExists if the name is taken.
func (r *Registry) Add(name string) (secret.Secret, error) {
	if err := ValidName(name); err != nil {
		return secret.Secret{}, err
	}
	s := NewSecret()
	err := r.modify(func(m map[string]Entry) error {
		key := canonical(name)
		if _, ok := m[key]; ok {
			return fmt.Errorf("callbridges: %s: %w", key, ErrExists)
		}
		m[key] = Entry{Name: key, Secret: s, Created: now()}
		return nil
	})
	if err != nil {
		return secret.Secret{}, err
	}
	return s, nil
}

// SetSecret registers name with the given secret, or replaces the secret of a registered name.
func (r *Registry) SetSecret(name string, s secret.Secret) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if strings.TrimSpace(s.Reveal()) == "" {
		return errors.New("callbridges: empty secret")
	}
	return r.modify(func(m map[string]Entry) error {
		key := canonical(name)
		e, ok := m[key]
		if !ok {
			e = Entry{Name: key, Created: now()}
		}
		e.Secret = s
		m[key] = e
		return nil
	})
}

// Delete removes name. It fails with ErrNotFound if the name is not registered.
func (r *Registry) Delete(name string) error {
	return r.modify(func(m map[string]Entry) error {
		key := canonical(name)
		if _, ok := m[key]; !ok {
			return fmt.Errorf("callbridges: %s: %w", key, ErrNotFound)
		}
		delete(m, key)
		return nil
	})
}

// List returns the registered Call Bridges sorted by name.
func (r *Registry) List() []Entry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns the secret of name, and false if it is not registered.
func (r *Registry) Lookup(name string) (secret.Secret, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[canonical(name)]
	return e.Secret, ok
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// modify re-reads the file, applies f to a copy of the entries, writes the result and adopts it.
func (r *Registry) modify(f func(map[string]Entry) error) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if err := r.reload(); err != nil {
		return err // never overwrite a file we could not read: it may hold what an admin wrote
	}
	r.mu.RLock()
	m := make(map[string]Entry, len(r.entries)+1)
	for k, v := range r.entries {
		m[k] = v
	}
	r.mu.RUnlock()
	if err := f(m); err != nil {
		return err
	}
	data := encode(m)
	if err := writeFile(r.path, data); err != nil {
		return err
	}
	r.mu.Lock()
	r.entries, r.raw = m, data
	r.mu.Unlock()
	return nil
}

// reload reads the file and adopts its entries.
func (r *Registry) reload() error {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return fmt.Errorf("callbridges: %w", err)
	}
	return r.adopt(data)
}

// adopt parses data, the file's content, and makes it current.
func (r *Registry) adopt(data []byte) error {
	r.mu.RLock()
	same := r.raw != nil && bytes.Equal(data, r.raw)
	r.mu.RUnlock()
	if same {
		return nil
	}
	m, err := decode(data)
	if err != nil {
		return fmt.Errorf("callbridges: %s: %w", r.path, err)
	}
	r.mu.Lock()
	r.entries, r.raw = m, data
	r.mu.Unlock()
	return nil
}

func decode(data []byte) (map[string]Entry, error) {
	var f fileFormat
	d := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) && len(sme.Errors) > 0 {
			de := sme.Errors[0]
			row, _ := de.Position()
			return nil, fmt.Errorf("line %d: unknown key %s", row, strings.Join(de.Key(), "."))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d, column %d: %w", row, col, err)
		}
		return nil, err
	}
	m := make(map[string]Entry, len(f.CallBridge))
	for i, fe := range f.CallBridge {
		if err := ValidName(fe.Name); err != nil {
			return nil, fmt.Errorf("callbridge entry %d: %w", i+1, err)
		}
		key := canonical(fe.Name)
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("callbridge %q is listed twice", key)
		}
		if strings.TrimSpace(fe.Secret) == "" {
			return nil, fmt.Errorf("callbridge %q has no secret", key)
		}
		m[key] = Entry{Name: key, Secret: secret.New(fe.Secret), Created: fe.Created}
	}
	return m, nil
}

func encode(m map[string]Entry) []byte {
	var f fileFormat
	for _, e := range m {
		f.CallBridge = append(f.CallBridge, fileEntry{Name: e.Name, Secret: e.Secret.Reveal(), Created: e.Created})
	}
	slices.SortFunc(f.CallBridge, func(a, b fileEntry) int { return strings.Compare(a.Name, b.Name) })
	body, err := toml.Marshal(f)
	if err != nil {
		panic("callbridges: marshal: " + err.Error()) // strings and times only
	}
	return append([]byte(fileHeader), body...)
}

// writeFile replaces path with data atomically: a private temporary file in the same
// directory, synced, renamed over path, and the directory synced.
func writeFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("callbridges: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("callbridges: write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil { // make the rename durable; best effort
		_ = d.Sync()
		d.Close()
	}
	return nil
}
