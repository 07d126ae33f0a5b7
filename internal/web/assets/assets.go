// Package assets serves the embedded files of Confab's web pages (the browser app and the web
// admin) with strong ETags: the files never change while the process runs, so a browser
// revalidates cheaply and never runs a stale bundle.
package assets

import (
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// Files is a set of embedded files, read once.
type Files struct {
	files map[string]file
}

type file struct {
	body  []byte
	etag  string
	ctype string
}

// New reads every file of fsys. It panics when fsys cannot be read: the files are embedded
// in the binary, so that is a build error.
func New(fsys fs.FS) *Files {
	s := &Files{files: make(map[string]file)}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		s.files[p] = file{body: b, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`, ctype: ct}
		return nil
	})
	if err != nil {
		panic(err) // embedded files are part of the build
	}
	return s
}

// Serve writes the file name (a path inside fsys) with its type, ETag and "Cache-Control:
// no-cache", or 304 when the request's If-None-Match names its ETag, or 404.
func (s *Files) Serve(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := s.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" {
		for _, m := range strings.Split(match, ",") {
			if strings.TrimSpace(m) == f.etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(f.body)
}
