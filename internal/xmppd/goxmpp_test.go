package xmppd_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	goxmpp "github.com/xmppo/go-xmpp"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// TestGoXMPPBytes logs in with the exact bytes mattn/go-xmpp (xmppo/go-xmpp v0.4.1, which
// go-sendxmpp uses) writes: a newline after every top-level element, and an XML
// declaration at the start of every stream, restarted ones included. Whitespace between
// top-level elements and a declaration on a restarted stream are legal [RFC 6120 §11.7];
// before the fix the newline after <starttls/> was taken for plaintext pipelined into the
// TLS handshake (policy-violation), and the declaration after </auth>'s newline for a
// processing instruction (restricted-xml).
func TestGoXMPPBytes(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	header := "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client'" +
		" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\n"
	tests := []struct {
		name string
		// split sends the newline after <starttls/> in a write of its own, after <proceed/>.
		split bool
	}{
		{"newline with starttls", false},
		{"newline after proceed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := h.DialRaw()
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			r := stream.NewReader(bufio.NewReader(nc), stream.Limits{MaxStanza: 1 << 20})
			write := func(s string) {
				t.Helper()
				if _, err := nc.Write([]byte(s)); err != nil {
					t.Fatalf("write %q: %v", s, err)
				}
			}
			expect := func(local string) *stream.Element {
				t.Helper()
				e, err := r.Next()
				if err != nil {
					t.Fatalf("waiting for <%s/>: %v", local, err)
				}
				if e.Name.Local != local {
					t.Fatalf("got %s, want <%s/>", e, local)
				}
				return e
			}
			open := func() {
				t.Helper()
				if _, err := r.ReadOpen(stream.NSClient); err != nil {
					t.Fatalf("server's stream header: %v", err)
				}
				expect("features")
			}
			write(header)
			open()
			if tt.split {
				write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
			} else {
				write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n")
			}
			expect("proceed")
			if tt.split {
				write("\n")
			}
			tc := tls.Client(nc, &tls.Config{RootCAs: h.Roots, ServerName: "example.com"})
			if err := tc.Handshake(); err != nil {
				t.Fatalf("tls handshake after the newline: %v", err)
			}
			br := bufio.NewReader(tc)
			r = stream.NewReader(br, stream.Limits{MaxStanza: 1 << 20})
			write = func(s string) {
				t.Helper()
				if _, err := tc.Write([]byte(s)); err != nil {
					t.Fatalf("write %q: %v", s, err)
				}
			}
			write(header)
			open()
			plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + h.Users["alice"]))
			write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + plain + "</auth>\n")
			expect("success")
			r = stream.NewReader(br, stream.Limits{MaxStanza: 1 << 20})
			write(header)
			open()
			write("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>sendxmpp</resource></bind></iq>\n")
			if e := expect("iq"); e.Get("type") != "result" {
				t.Fatalf("bind answered %s", e)
			}
			write("<iq to='example.com' type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>\n")
			if e := expect("iq"); e.Get("type") != "result" {
				t.Fatalf("session answered %s", e)
			}
		})
	}
}

// TestInteropGoXMPP logs in with the go-xmpp library itself (STARTTLS, PLAIN) and sends a
// message to another user.
func TestInteropGoXMPP(t *testing.T) {
	h := xmppdtest.Start(t, xmppdtest.Options{})
	bob := h.Login(t, "bob")
	_, port, _ := net.SplitHostPort(h.C2SAddr)
	opts := goxmpp.Options{
		Host:      "localhost:" + port,
		User:      "alice@example.com",
		Password:  h.Users["alice"],
		Resource:  "sendxmpp",
		NoTLS:     true,
		StartTLS:  true,
		TLSConfig: &tls.Config{RootCAs: h.Roots, ServerName: "example.com"},
		Mechanism: "PLAIN",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type res struct {
		c   *goxmpp.Client
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := opts.NewClient()
		done <- res{c, err}
	}()
	var c *goxmpp.Client
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("go-xmpp login: %v", r.err)
		}
		c = r.c
	case <-ctx.Done():
		t.Fatal("go-xmpp login did not finish in 20 s")
	}
	defer c.Close()
	if _, _, err := c.Send(goxmpp.Chat{Remote: bob.JID, Type: "chat", Text: "from go-xmpp"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	e := bob.Expect(t, "the message from go-xmpp", func(e *stream.Element) bool { return e.Name.Local == "message" })
	if got := xmppdtest.Body(e); got != "from go-xmpp" || !strings.HasPrefix(e.Get("from"), "alice@example.com/") {
		t.Fatalf("bob got %s, want the body %q from alice", e, "from go-xmpp")
	}
}
