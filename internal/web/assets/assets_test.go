package assets

import (
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

func TestServe(t *testing.T) {
	files := New(fstest.MapFS{
		"app.js":    {Data: []byte("console.log(1)")},
		"logo.svg":  {Data: []byte("<svg/>")},
		"blob.zzz9": {Data: []byte{1, 2}},
	})
	get := func(method, name, inm string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/"+name, nil)
		if inm != "" {
			r.Header.Set("If-None-Match", inm)
		}
		w := httptest.NewRecorder()
		files.Serve(w, r, name)
		return w
	}
	w := get("GET", "app.js", "")
	etag := w.Header().Get("ETag")
	if w.Code != 200 || w.Body.String() != "console.log(1)" || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" ||
		len(etag) < 10 || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET app.js: %d %q %v", w.Code, w.Body, w.Header())
	}
	tests := []struct {
		method, name, inm string
		code              int
		ctype, body       string
	}{
		{"GET", "app.js", etag, 304, "", ""},
		{"GET", "app.js", `"other", ` + etag, 304, "", ""},
		{"GET", "app.js", `"other"`, 200, "", "console.log(1)"},
		{"HEAD", "app.js", "", 200, "", ""},
		{"GET", "logo.svg", "", 200, "image/svg+xml", "<svg/>"},
		{"GET", "blob.zzz9", "", 200, "application/octet-stream", "\x01\x02"},
		{"GET", "missing.js", "", 404, "", "404 page not found\n"},
	}
	for _, tt := range tests {
		w := get(tt.method, tt.name, tt.inm)
		if w.Code != tt.code || w.Body.String() != tt.body || (tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype) {
			t.Errorf("%s %s (If-None-Match %s): %d %q %q; want %d %q %q", tt.method, tt.name, tt.inm,
				w.Code, w.Header().Get("Content-Type"), w.Body, tt.code, tt.ctype, tt.body)
		}
	}
}
