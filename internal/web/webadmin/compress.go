package webadmin

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
)

// assetFiles are the web admin's embedded files, each kept as it is and compressed once
// at start (gzip and brotli) when that makes it smaller. A request gets the smallest
// encoding its Accept-Encoding allows; every answer says Vary: Accept-Encoding, and each
// encoding has its own strong ETag, so that a cache never serves one encoding's bytes for
// another's validator.
//
// Only these static files are compressed, never the pages: a page holds the session's
// CSRF token beside text the request chose (a search, a name typed in a form), which is
// what a compression side channel (BREACH) needs.
type assetFiles struct {
	files map[string]*asset
}

type asset struct {
	ctype    string
	variants []variant // identity first, then the compressed ones that are smaller
}

type variant struct {
	encoding string // "", "gzip", "br"
	body     []byte
	etag     string
}

func newAssetFiles(fsys fs.FS) *assetFiles {
	a := &assetFiles{files: map[string]*asset{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		tag := base64.RawURLEncoding.EncodeToString(sum[:12])
		f := &asset{ctype: ct, variants: []variant{{body: b, etag: `"` + tag + `"`}}}
		for _, enc := range []string{"br", "gzip"} {
			c := compress(enc, b)
			if len(c) < len(b) {
				f.variants = append(f.variants, variant{encoding: enc, body: c, etag: `"` + tag + "-" + enc + `"`})
			}
		}
		a.files[p] = f
		return nil
	})
	if err != nil {
		panic(err) // embedded files are part of the build
	}
	return a
}

func compress(enc string, b []byte) []byte {
	var buf bytes.Buffer
	switch enc {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
	case "br":
		bw := brotli.NewWriterLevel(&buf, brotli.BestCompression)
		_, _ = bw.Write(b)
		_ = bw.Close()
	}
	return buf.Bytes()
}

// acceptable parses Accept-Encoding into the q-value of each coding named ("*" included).
func acceptable(header string) map[string]float64 {
	out := map[string]float64{}
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		out[name] = q
	}
	return out
}

// pick returns the smallest variant the request accepts (identity when nothing else is).
func (f *asset) pick(r *http.Request) variant {
	acc := acceptable(r.Header.Get("Accept-Encoding"))
	best := f.variants[0]
	for _, v := range f.variants[1:] {
		q, named := acc[v.encoding]
		if !named {
			q, named = acc["*"]
		}
		if named && q > 0 && len(v.body) < len(best.body) {
			best = v
		}
	}
	return best
}

// serve writes the file name with its type, the chosen encoding and its ETag, and
// "Cache-Control: no-cache" (revalidate: the files change with the binary), or 304 when
// If-None-Match names that ETag, or the web admin's 404 page.
func (s *server) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := s.static.files[name]
	if !ok {
		s.notFound(w, r)
		return
	}
	v := f.pick(r)
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Vary", "Accept-Encoding")
	h.Set("ETag", v.etag)
	h.Set("Cache-Control", "no-cache")
	if v.encoding != "" {
		h.Set("Content-Encoding", v.encoding)
	}
	if match := r.Header.Get("If-None-Match"); match != "" {
		for _, m := range strings.Split(match, ",") {
			if m = strings.TrimSpace(m); m == v.etag || m == "*" {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(v.body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(v.body)
}
