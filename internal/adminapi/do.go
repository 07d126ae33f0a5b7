package adminapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Response is the answer to Do.
type Response struct {
	Status   int
	Location string // the Location header of a successful POST
	Body     []byte // an XML document, or nothing
}

// Do performs one request on behalf of account, an API account the caller has authenticated
// itself (the web admin's signed-in administrator): no credentials are read, nor counted by
// the throttles. path is the path and query under /api/v1 ("/coSpaces?limit=5"); form, when
// not nil, is the form of a POST or PUT. The answer is XML, and the request is logged as any
// other.
func (h *Handler) Do(ctx context.Context, account, method, path string, form url.Values) Response {
	s := h.s
	var body strings.Reader
	if form != nil {
		body.Reset(form.Encode())
	}
	r, err := http.NewRequestWithContext(ctx, method, "/api/v1"+path, &body)
	if err != nil {
		f := ParameterError("path", "invalidValue", err.Error())
		return Response{Status: f.status(), Body: f.appendXML([]byte(xmlDecl))}
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.RemoteAddr = "web admin"
	r = normalizePath(r, s.names)
	start := time.Now()
	rec := &recorder{header: http.Header{}}
	s.serveAs(rec, r, account)
	level := slog.LevelDebug
	if method != http.MethodGet || rec.status >= 400 {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "api request", "method", method, "path", r.URL.Path, "status", rec.status,
		"user", account, "remote", "web admin", "duration", time.Since(start))
	return Response{Status: rec.status, Location: rec.header.Get("Location"), Body: rec.body}
}

// recorder is the ResponseWriter of Do.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}
