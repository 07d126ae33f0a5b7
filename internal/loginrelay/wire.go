package loginrelay

import (
	"bytes"
	"encoding/xml"

	"confab.dev/confab/internal/stream"
)

// Every login crosses the relay four times (two requests, two answers), and encoding/xml's
// reflection and its re-reading of an element the link has already parsed once were a
// tenth of a login's CPU on the XMPP server and Call Bridge together. The relay's own
// elements are flat and written one way, so they are written with stream.Builder and, when
// they arrive in that form, read by a scanner; anything else falls back to encoding/xml.
// TestWireMatchesEncodingXML and FuzzFastChild check that both paths agree.

// wirePayload is a payload that writes itself.
type wirePayload interface{ writeTo(x *stream.Builder) }

func (p authPayload) writeTo(x *stream.Builder) {
	x.Elem("auth", p.Data, "xmlns", NS, "session", p.Session, "mechanism", p.Mechanism, "addr", p.Addr, "transport", p.Transport)
}

func (p responsePayload) writeTo(x *stream.Builder) {
	x.Elem("response", p.Data, "xmlns", NS, "session", p.Session)
}

func (p abortPayload) writeTo(x *stream.Builder) {
	x.Elem("abort", "", "xmlns", NS, "session", p.Session)
}

func (p challengePayload) writeTo(x *stream.Builder) {
	x.Elem("challenge", p.Data, "xmlns", NS, "session", p.Session)
}

func (p successPayload) writeTo(x *stream.Builder) {
	x.Elem("success", p.Data, "xmlns", NS, "session", p.Session, "jid", p.JID, "guest", p.Guest)
}

func (p failurePayload) writeTo(x *stream.Builder) {
	x.Open("failure", "xmlns", NS, "session", p.Session, "condition", p.Condition)
	if p.Text != "" {
		x.Elem("text", p.Text, "xmlns", NS)
	}
	x.End("failure")
}

func (p sessionEndPayload) writeTo(x *stream.Builder) {
	x.Elem("session-end", "", "xmlns", NS, "jid", p.JID, "reason", p.Reason)
}

// marshal serialises an iq or message of the relay.
func marshal(v any) []byte {
	switch v := v.(type) {
	case iq:
		if p, ok := v.Payload.(wirePayload); ok {
			x := stream.Builder{B: make([]byte, 0, 256)}
			x.Open("iq", "xmlns", stream.NSComponent, "type", v.Type, "id", v.ID, "from", v.From, "to", v.To)
			p.writeTo(&x)
			return x.End("iq").B
		}
	case message:
		if p, ok := v.Payload.(wirePayload); ok {
			x := stream.Builder{B: make([]byte, 0, 256)}
			x.Open("message", "xmlns", stream.NSComponent, "from", v.From, "to", v.To)
			p.writeTo(&x)
			return x.End("message").B
		}
	}
	b, err := xml.Marshal(v)
	if err != nil {
		// Only strings and fixed structs go in; failing here is a programming error.
		panic("loginrelay: marshal: " + err.Error())
	}
	return b
}

// child is a stanza's only child element, as fastChild reads it.
type child struct {
	local, ns string
	attrs     []xml.Attr
	text      string
}

func (c *child) attr(name string) string {
	for _, a := range c.attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// fastChild reads the only child of a stanza from its raw content (stream.Element.Inner, which
// the link's reader has already checked is well-formed) when it is written as marshal writes:
// no prefixes, the namespace declared with xmlns, attributes and text free of entity and
// character references, no comments, CDATA, processing instructions or child elements. ok
// is false for anything else.
func fastChild(inner []byte) (c child, ok bool) {
	s := bytes.TrimLeft(inner, " \t\r\n")
	if len(s) < 2 || s[0] != '<' {
		return c, false
	}
	s = s[1:]
	n := nameLen(s)
	if n == 0 {
		return c, false
	}
	c.local, s = string(s[:n]), s[n:]
	for {
		sp := len(s)
		s = bytes.TrimLeft(s, " \t\r\n")
		if len(s) == 0 {
			return c, false
		}
		if s[0] == '>' || s[0] == '/' {
			break
		}
		if sp == len(s) {
			return c, false // attributes are separated by white space
		}
		n := nameLen(s)
		if n == 0 {
			return c, false
		}
		name := string(s[:n])
		s = bytes.TrimLeft(s[n:], " \t\r\n")
		if len(s) == 0 || s[0] != '=' {
			return c, false
		}
		s = bytes.TrimLeft(s[1:], " \t\r\n")
		if len(s) == 0 || (s[0] != '"' && s[0] != '\'') {
			return c, false
		}
		end := bytes.IndexByte(s[1:], s[0])
		if end < 0 {
			return c, false
		}
		value := s[1 : 1+end]
		if bytes.ContainsAny(value, "&<\t\r\n") {
			return c, false
		}
		s = s[2+end:]
		switch {
		case name == "xmlns":
			if c.ns != "" {
				return c, false
			}
			c.ns = string(value)
		default:
			for _, a := range c.attrs {
				if a.Name.Local == name {
					return c, false
				}
			}
			c.attrs = append(c.attrs, xml.Attr{Name: xml.Name{Local: name}, Value: string(value)})
		}
	}
	if c.ns == "" {
		return c, false
	}
	var rest []byte
	if s[0] == '/' {
		if len(s) < 2 || s[1] != '>' {
			return c, false
		}
		rest = s[2:]
	} else {
		s = s[1:]
		lt := bytes.IndexByte(s, '<')
		if lt < 0 {
			return c, false
		}
		text := s[:lt]
		if bytes.ContainsAny(text, "&>\r") {
			return c, false
		}
		c.text = string(text)
		s = s[lt:]
		closing := "</" + c.local
		if !bytes.HasPrefix(s, []byte(closing)) {
			return c, false
		}
		s = bytes.TrimLeft(s[len(closing):], " \t\r\n")
		if len(s) == 0 || s[0] != '>' {
			return c, false
		}
		rest = s[1:]
	}
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return c, false
	}
	return c, true
}

// nameLen is the length of the unprefixed XML name at the start of s, or 0 when there is
// none or it has a prefix. It accepts ASCII names only; others take the slow path.
func nameLen(s []byte) int {
	n := 0
	for n < len(s) {
		b := s[n]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b == '_':
		case n > 0 && (b >= '0' && b <= '9' || b == '-' || b == '.'):
		default:
			if b == ':' || b >= 0x80 {
				return 0
			}
			return n
		}
		n++
	}
	return n
}

// decodeWith reads el's only child into a T: through the fast path when fastChild can read
// it (fill sets v from a child in the relay's namespace), through encoding/xml otherwise.
func decodeWith[T any](el *stream.Element, fill func(c *child, v *T)) (T, error) {
	var v T
	c, ok := fastChild(el.Inner)
	if !ok {
		err := el.Decode(&v)
		return v, err
	}
	if c.ns == NS {
		fill(&c, &v)
	}
	return v, nil
}

// request is a login relay request, as the Responder reads it.
type request struct {
	Auth     *authPayload
	Response *responsePayload
	Abort    *abortPayload
}

func decodeRequest(el *stream.Element) (request, error) {
	return decodeWith(el, func(c *child, req *request) {
		switch c.local {
		case "auth":
			req.Auth = &authPayload{Session: c.attr("session"), Mechanism: c.attr("mechanism"),
				Addr: c.attr("addr"), Transport: c.attr("transport"), Data: c.text}
		case "response":
			req.Response = &responsePayload{Session: c.attr("session"), Data: c.text}
		case "abort":
			req.Abort = &abortPayload{Session: c.attr("session")}
		}
	})
}

// answer is the Call Bridge's answer, as the Client reads it.
type answer struct {
	Challenge *challengePayload
	Success   *successPayload
	Failure   *failurePayload
}

func decodeAnswer(el *stream.Element) (answer, error) {
	return decodeWith(el, func(c *child, a *answer) {
		switch c.local {
		case "challenge":
			a.Challenge = &challengePayload{Session: c.attr("session"), Data: c.text}
		case "success":
			a.Success = &successPayload{Session: c.attr("session"), JID: c.attr("jid"), Guest: c.attr("guest"), Data: c.text}
		case "failure": // with a <text/> child it takes the slow path
			a.Failure = &failurePayload{Session: c.attr("session"), Condition: c.attr("condition")}
		}
	})
}

// notice is a message from the XMPP server to a Call Bridge.
type notice struct {
	End *sessionEndPayload
}

func decodeNotice(el *stream.Element) (notice, error) {
	return decodeWith(el, func(c *child, n *notice) {
		if c.local == "session-end" {
			n.End = &sessionEndPayload{JID: c.attr("jid"), Reason: c.attr("reason")}
		}
	})
}
