// Package httpsredirect answers plain HTTP that arrives on a TLS-only port: a browser sent
// to http://host:8445/admin/ gets a redirect to https://host:8445/admin/ instead of a TLS
// error or Go's "Client sent an HTTP request to an HTTPS server".
//
// Wrap the raw listener before TLS (tls.NewListener(httpsredirect.Wrap(ln), cfg)). Each
// accepted connection looks at its first byte the first time it is read, which happens in
// the server's per-connection goroutine during the TLS handshake, so Accept never waits
// on a client: a TLS ClientHello begins with a handshake record (0x16) and passes through
// untouched; anything else is read as an HTTP request (at most 8 KiB of header, under the
// server's handshake deadline), answered with 301 to the same host, port and path over
// https (or, without a usable Host header, a short plain page saying to use https), and
// closed. The TLS layer then sees ErrPlainHTTP, which the server logs as a handshake error.
package httpsredirect

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// ErrPlainHTTP is what the TLS layer reads from a connection that spoke plain HTTP, after
// the redirect has been written.
var ErrPlainHTTP = errors.New("plain HTTP request on the HTTPS port: answered with a redirect to https")

// maxHeader bounds the plain request's header.
const maxHeader = 8 << 10

// recordTypeHandshake is the first byte of a TLS handshake record (RFC 8446, 5.1).
const recordTypeHandshake = 0x16

// Wrap returns ln with the check described in the package documentation.
func Wrap(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c}, nil
}

// conn decides on its first Read whether it carries TLS.
type conn struct {
	net.Conn
	once sync.Once
	br   *bufio.Reader
	err  error // ErrPlainHTTP (or the read error) once the connection was plain HTTP
}

func (c *conn) Read(p []byte) (int, error) {
	c.once.Do(c.sniff)
	if c.err != nil {
		return 0, c.err
	}
	return c.br.Read(p)
}

func (c *conn) sniff() {
	c.br = bufio.NewReaderSize(c.Conn, 4096)
	first, err := c.br.Peek(1)
	if err != nil {
		return // Read reports it
	}
	if first[0] == recordTypeHandshake {
		return
	}
	c.err = ErrPlainHTTP
	c.answer()
	_ = c.Conn.Close()
}

// answer reads the plain request and writes the redirect.
func (c *conn) answer() {
	req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c.br, maxHeader)))
	if err != nil {
		writePlain(c.Conn, http.StatusBadRequest, "This port speaks HTTPS only. Use an https:// address.")
		return
	}
	host := req.Host
	if req.URL.IsAbs() || !validHost(host) {
		// An absolute-form request line (a proxy's) would choose the redirect's host: no.
		writePlain(c.Conn, http.StatusBadRequest, "This port speaks HTTPS only. Use an https:// address, e.g. https://<this server>"+portOf(c.Conn.LocalAddr())+"/")
		return
	}
	target := "https://" + host + req.URL.RequestURI()
	body := fmt.Sprintf("<!doctype html><title>Moved to HTTPS</title><p>This server speaks HTTPS only: <a href=\"%s\">%s</a></p>\n",
		html.EscapeString(target), html.EscapeString(target))
	fmt.Fprintf(c.Conn, "HTTP/1.1 301 Moved Permanently\r\nLocation: %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		target, len(body), body)
}

func writePlain(w io.Writer, code int, msg string) {
	msg += "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(msg), msg)
}

// validHost accepts host, host:port, [v6] and [v6]:port made of the characters a host
// name or address can have, so that nothing else reaches the Location header.
func validHost(h string) bool {
	if h == "" || len(h) > 300 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]_", r)) {
			return false
		}
	}
	host := h
	if hh, _, err := net.SplitHostPort(h); err == nil {
		host = hh
	}
	return host != "" && !strings.HasPrefix(host, "-")
}

func portOf(a net.Addr) string {
	if _, p, err := net.SplitHostPort(a.String()); err == nil {
		return ":" + p
	}
	return ""
}
