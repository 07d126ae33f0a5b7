package stream

import (
	"bytes"
	"encoding/xml"
)

// Payload returns the name and resolved namespace of e's first child element: an IQ's
// payload [RFC 6120 §8.2.3], or the first extension of a message or presence. It is the
// zero Name when e has no child element. Receivers route what arrives by it, as
// mellium.im/xmpp's mux routes IQs by payload name, never by searching the raw bytes.
//
// The common form — an unprefixed child that declares its namespace with xmlns, or inherits
// e's — is read by a scanner; anything else (prefixes, comments first, entities in the
// namespace) by encoding/xml.
func (e *Element) Payload() xml.Name {
	if n, ok := fastPayload(e.Inner, e.Name.Space); ok {
		return n
	}
	d := xml.NewDecoder(bytes.NewReader(e.Bytes()))
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.Name{}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				return t.Name
			}
		case xml.EndElement:
			depth--
		}
	}
}

// fastPayload reads the first child's start tag from inner when it is in the common form.
func fastPayload(inner []byte, parentNS string) (xml.Name, bool) {
	s := bytes.TrimLeft(inner, " \t\r\n")
	if len(s) == 0 {
		return xml.Name{}, true // no children (text-only content has no '<' at all)
	}
	if s[0] != '<' {
		if bytes.IndexByte(s, '<') < 0 {
			return xml.Name{}, true
		}
		return xml.Name{}, false // text before the first child: let encoding/xml find it
	}
	s = s[1:]
	n := 0
	for n < len(s) && !isSpace(s[n]) && s[n] != '/' && s[n] != '>' {
		if s[n] == ':' || s[n] == '!' || s[n] == '?' {
			return xml.Name{}, false
		}
		n++
	}
	if n == 0 {
		return xml.Name{}, false
	}
	name := xml.Name{Local: string(s[:n]), Space: parentNS}
	s = s[n:]
	for {
		s = bytes.TrimLeft(s, " \t\r\n")
		if len(s) == 0 {
			return xml.Name{}, false
		}
		if s[0] == '>' || s[0] == '/' {
			return name, true
		}
		eq := bytes.IndexByte(s, '=')
		if eq <= 0 {
			return xml.Name{}, false
		}
		attr := string(bytes.TrimRight(s[:eq], " \t\r\n"))
		s = bytes.TrimLeft(s[eq+1:], " \t\r\n")
		if len(s) == 0 || s[0] != '"' && s[0] != '\'' {
			return xml.Name{}, false
		}
		end := bytes.IndexByte(s[1:], s[0])
		if end < 0 {
			return xml.Name{}, false
		}
		value := s[1 : 1+end]
		s = s[2+end:]
		if attr == "xmlns" {
			if bytes.IndexByte(value, '&') >= 0 {
				return xml.Name{}, false
			}
			name.Space = string(value)
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
