package launch

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataDirOwnerOnly walks the data directory of a running `confab up` and checks that it
// and every file and directory in it are their owner's alone: the store with its journal files, the Call
// Bridge registry, private keys, the admin password. Certificates are public and may be
// readable by others.
func TestDataDirOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // made by up itself
	startUp(t, dir)
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		perm := info.Mode().Perm()
		t.Logf("%v %s", perm, rel)
		n++
		public := !d.IsDir() && strings.HasSuffix(path, ".pem") && !strings.Contains(filepath.Base(path), "key")
		if !public && perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want owner-only", rel, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("only %d entries in the data directory", n)
	}
}
