// Package sameorigin decides whether a state-changing browser request comes from a page of
// the server it is sent to, by the Origin header browsers attach to such requests (with the
// Referer as a fallback for the few that omit it). It is the cross-site request forgery
// check that the browser app and the web admin share (the web admin adds a synchronizer
// token on top), and the Origin check of the XMPP server's WebSocket endpoint (Allowed).
package sameorigin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrMissing is returned when a request carries neither Origin nor Referer.
var ErrMissing = errors.New("the request carries neither an Origin nor a Referer header")

// Check returns nil if the request's Origin (or, without one, its Referer) names the origin
// the request was sent to: the scheme of the connection (https when it came over TLS) and
// the Host header, with default ports made explicit. A browser cannot forge either header,
// so a page of another site cannot pass it.
func Check(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		return Allowed(r, o, nil)
	}
	own, err := own(r)
	if err != nil {
		return err
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		got, err := Of(ref)
		if err != nil {
			return fmt.Errorf("referer: %w", err)
		}
		if got != own {
			return fmt.Errorf("referer origin %s is not %s", got, own)
		}
		return nil
	}
	return ErrMissing
}

// Allowed returns nil if origin (an Origin header's value) is the origin r was sent to or,
// when allowed is not empty, one of allowed (origins such as "https://meet.example.com";
// default ports are made explicit on both sides).
func Allowed(r *http.Request, origin string, allowed []string) error {
	got, err := Of(origin)
	if err != nil {
		return fmt.Errorf("origin %q: %w", origin, err)
	}
	if len(allowed) == 0 {
		own, err := own(r)
		if err != nil {
			return err
		}
		if got != own {
			return fmt.Errorf("origin %s is not %s", got, own)
		}
		return nil
	}
	for _, a := range allowed {
		if want, err := Of(a); err == nil && got == want {
			return nil
		}
	}
	return fmt.Errorf("origin %s is not among the allowed origins", got)
}

// own is the origin r was sent to: the scheme of the connection (https when it came over
// TLS) and the Host header.
func own(r *http.Request) (string, error) {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	o, err := normalize(scheme, r.Host)
	if err != nil {
		return "", fmt.Errorf("host %q: %w", r.Host, err)
	}
	return o, nil
}

// Of returns the normalised origin "scheme://host:port" of an origin or URL string. The
// opaque origin "null" (sandboxed frames, some redirects) is an error.
func Of(s string) (string, error) {
	if s == "null" {
		return "", errors.New("opaque origin")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", errors.New("want scheme://host[:port]")
	}
	return normalize(u.Scheme, u.Host)
}

func normalize(scheme, hostport string) (string, error) {
	scheme = strings.ToLower(scheme)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the scheme's default.
		host, port = hostport, ""
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	if host == "" {
		return "", errors.New("empty host")
	}
	if port == "" {
		switch scheme {
		case "https", "wss":
			port = "443"
		case "http", "ws":
			port = "80"
		default:
			return "", fmt.Errorf("scheme %q has no default port", scheme)
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(host), port), nil
}
