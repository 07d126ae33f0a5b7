package adminapi

import (
	"net/http"
	"net/url"
	"strings"
)

// Paths are read as CMS reads them, so that a tool's URL that works against CMS works here:
//
//   - a trailing slash names the same resource (/api/v1/coSpaces/ is /api/v1/coSpaces), and so
//     do doubled slashes (//api/v1//calls);
//   - the names of collections and their parts are matched ignoring case
//     (/api/v1/cospaces/<id>/accessmethods), as scripts written against CMS spell them both
//     ways. Object ids are left as they are.
//
// normalizePath rewrites the request's path to the routes' spelling before routing, so that
// no client is sent a redirect (which would lose a PUT's body).

// learnNames records the literal segments of a route pattern ("GET /api/v1/coSpaces/{id}"),
// so that normalizePath can restore their spelling.
func (s *server) learnNames(pattern string) {
	_, path, _ := strings.Cut(pattern, " ")
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || strings.HasPrefix(seg, "{") {
			continue
		}
		s.names[strings.ToLower(seg)] = seg
	}
}

// normalizePath returns r with its path cleaned as described above; r itself when nothing
// changes.
func normalizePath(r *http.Request, names map[string]string) *http.Request {
	escaped := r.URL.EscapedPath()
	segs := strings.Split(escaped, "/")
	out := make([]string, 0, len(segs))
	for _, seg := range segs {
		if seg == "" {
			continue
		}
		if canon, ok := names[strings.ToLower(seg)]; ok {
			seg = canon
		}
		out = append(out, seg)
	}
	clean := "/" + strings.Join(out, "/")
	if clean == escaped {
		return r
	}
	unescaped, err := url.PathUnescape(clean)
	if err != nil {
		return r // the mux answers it as it stands
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = unescaped, clean
	if r2.URL.EscapedPath() != clean {
		r2.URL.RawPath = ""
	}
	r2.RequestURI = r2.URL.RequestURI()
	return r2
}
