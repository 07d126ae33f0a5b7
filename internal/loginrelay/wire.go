package loginrelay

import (
	"bytes"
	"encoding/xml"

	"confab.dev/confab/internal/stream"
)

// Every login crosses the relay four times (two requests, two answers), and encoding/xml's
// reflection and its re-reading of an element the link has already parsed once were a
// tenth of a login's CPU on the XMPP server and Call Bridge together. The relay's own
// elements are flat and written one way, so they are written by hand here and, when they
// arrive in that form, read by a scanner; anything else falls back to encoding/xml.
// TestWireMatchesEncodingXML and FuzzFastChild check that both paths agree.

// wattr is an attribute to write; an empty value is left out when omitEmpty is set (as
// encoding/xml's omitempty does).
type wattr struct {
	name, value string
	omitEmpty   bool
}

// writeStart writes a start tag declaring ns, as encoding/xml writes it.
func writeStart(buf *bytes.Buffer, name, ns string, attrs ...wattr) {
	buf.WriteByte('<')
	buf.WriteString(name)
	buf.WriteString(` xmlns="`)
	escapeAttr(buf, ns)
	buf.WriteByte('"')
	for _, a := range attrs {
		if a.omitEmpty && a.value == "" {
			continue
		}
		buf.WriteByte(' ')
		buf.WriteString(a.name)
		buf.WriteString(`="`)
		escapeAttr(buf, a.value)
		buf.WriteByte('"')
	}
	buf.WriteByte('>')
}

func writeEnd(buf *bytes.Buffer, name string) {
	buf.WriteString("</")
	buf.WriteString(name)
	buf.WriteByte('>')
}

func escapeAttr(buf *bytes.Buffer, s string) { _ = xml.EscapeText(buf, []byte(s)) }

// writeElem writes a whole flat element: attributes and escaped text.
func writeElem(buf *bytes.Buffer, name, text string, attrs ...wattr) {
	writeStart(buf, name, NS, attrs...)
	_ = xml.EscapeText(buf, []byte(text))
	writeEnd(buf, name)
}

// wirePayload is a payload that writes itself.
type wirePayload interface{ writeTo(buf *bytes.Buffer) }

func (p authPayload) writeTo(buf *bytes.Buffer) {
	writeElem(buf, "auth", p.Data, wattr{"session", p.Session, false}, wattr{"mechanism", p.Mechanism, false},
		wattr{"addr", p.Addr, true}, wattr{"transport", p.Transport, true})
}

func (p responsePayload) writeTo(buf *bytes.Buffer) {
	writeElem(buf, "response", p.Data, wattr{"session", p.Session, false})
}

func (p abortPayload) writeTo(buf *bytes.Buffer) {
	writeElem(buf, "abort", "", wattr{"session", p.Session, false})
}

func (p challengePayload) writeTo(buf *bytes.Buffer) {
	writeElem(buf, "challenge", p.Data, wattr{"session", p.Session, false})
}

func (p successPayload) writeTo(buf *bytes.Buffer) {
	writeElem(buf, "success", p.Data, wattr{"session", p.Session, false}, wattr{"jid", p.JID, false})
}

func (p failurePayload) writeTo(buf *bytes.Buffer) {
	writeStart(buf, "failure", NS, wattr{"session", p.Session, false}, wattr{"condition", p.Condition, false})
	if p.Text != "" {
		writeElem(buf, "text", p.Text)
	}
	writeEnd(buf, "failure")
}

func (p sessionEndPayload) writeTo(buf *bytes.Buffer) {
	writeElem(buf, "session-end", "", wattr{"jid", p.JID, false}, wattr{"reason", p.Reason, true})
}

// marshal serialises an iq or message of the relay.
func marshal(v any) []byte {
	var buf bytes.Buffer
	switch v := v.(type) {
	case iq:
		if p, ok := v.Payload.(wirePayload); ok {
			buf.Grow(256)
			writeStart(&buf, "iq", stream.NSComponent, wattr{"type", v.Type, false}, wattr{"id", v.ID, false},
				wattr{"from", v.From, true}, wattr{"to", v.To, true})
			p.writeTo(&buf)
			writeEnd(&buf, "iq")
			return buf.Bytes()
		}
	case message:
		if p, ok := v.Payload.(wirePayload); ok {
			writeStart(&buf, "message", stream.NSComponent, wattr{"from", v.From, true}, wattr{"to", v.To, true})
			p.writeTo(&buf)
			writeEnd(&buf, "message")
			return buf.Bytes()
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
			a.Success = &successPayload{Session: c.attr("session"), JID: c.attr("jid"), Data: c.text}
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
