package xmppd_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// FuzzClientInput sends arbitrary bytes to a real server, once at the start of a stream and
// once after login, and checks that the server neither hangs nor stops serving others.
func FuzzClientInput(f *testing.F) {
	for _, seed := range []string{
		`<message to="bob@example.com"><body>hi</body></message>`,
		`<iq type="get" id="1"><ping xmlns="urn:xmpp:ping"/></iq>`,
		`<presence/>`,
		`</stream:stream>`,
		`<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>`,
		`<a xmlns:p="urn:x"><p:b/></a>`,
		`<iq type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>&#0;</resource></bind></iq>`,
		"<message>\xff\xfe</message>",
		`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">=</auth>`,
		`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`,
		`<stream:error xmlns:stream="http://etherx.jabber.org/streams"/>`,
	} {
		f.Add([]byte(seed))
	}
	h := xmppdtest.Start(f, xmppdtest.Options{Config: func(c *xmppd.Config) {
		c.OpenTimeout = time.Second
		c.AuthTimeout = 2 * time.Second
		c.MaxStanzaC2S = 16 << 10
	}})
	watch := h.Login(f, "bob")
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		// Before TLS, right after the stream header.
		nc, err := h.DialRaw()
		if err != nil {
			t.Fatal(err)
		}
		header := `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0">`
		_, _ = nc.Write(append([]byte(header), data...))
		_ = nc.(*net.TCPConn).CloseWrite() // the server sees the end at once instead of waiting
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64<<10)
		for {
			if _, err := nc.Read(buf); err != nil {
				break // closed by the server, or the client timed out: either way, no hang below
			}
		}
		_ = nc.Close()

		// After login over TLS.
		c := h.DialTLS(t)
		if err := c.Auth("PLAIN", "alice", h.Users["alice"]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Bind(""); err != nil {
			t.Fatal(err)
		}
		_ = c.SendRaw(string(data))

		// Others are still served.
		id := "f" + strconv.Itoa(n)
		watch.Send(t, `<iq type="get" id="`+id+`" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`)
		watch.Expect(t, "ping "+id, xmppdtest.IsKind("iq", id))
	})
}
