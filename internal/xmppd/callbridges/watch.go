package callbridges

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long Watch waits for a burst of file events to end before reloading.
const debounce = 50 * time.Millisecond

// Watch reloads the registry whenever its file changes, whoever changed it (this Registry,
// another one, the command line, an editor), and then calls onChange. It watches the
// directory rather than the file, because writers replace the file by renaming a new one over
// it. Bursts of events are coalesced. A file that cannot be read or parsed is reported to
// Logger and leaves the current entries in place. Watch blocks until ctx is done, and then
// returns nil; it returns an error if the file system cannot be watched.
func (r *Registry) Watch(ctx context.Context, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("callbridges: watch: %w", err)
	}
	defer w.Close()
	dir, base := filepath.Dir(r.path), filepath.Base(r.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("callbridges: watch %s: %w", dir, err)
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// seen is the content onChange was last called for (or that was current when Watch began).
	r.mu.RLock()
	seen := r.raw
	r.mu.RUnlock()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("callbridges: watch: event channel closed")
			}
			if filepath.Base(ev.Name) == base {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("callbridges: watch: error channel closed")
			}
			log.Warn("call bridge registry: watch error; reloading", "file", r.path, "err", err)
			timer.Reset(debounce) // events may have been lost
		case <-timer.C:
			data, changed, err := r.reloadFromWatch(seen)
			switch {
			case errors.Is(err, os.ErrNotExist):
				log.Warn("call bridge registry file is gone; keeping the entries loaded", "file", r.path)
			case err != nil:
				log.Error("call bridge registry file is invalid; keeping the entries loaded", "file", r.path, "err", err)
			case changed:
				seen = data
				log.Info("call bridge registry reloaded", "file", r.path, "entries", len(r.List()))
				if onChange != nil {
					onChange()
				}
			}
		}
	}
}

// reloadFromWatch reads and adopts the file unless its content is seen, holding the write
// lock so that an older read never replaces a newer write of this process.
func (r *Registry) reloadFromWatch(seen []byte) ([]byte, bool, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	data, err := os.ReadFile(r.path)
	if err != nil {
		return nil, false, err
	}
	if bytes.Equal(data, seen) {
		return data, false, nil
	}
	if err := r.adopt(data); err != nil {
		return nil, false, err
	}
	return data, true, nil
}
