package meeting

import "confab.dev/confab/internal/stream"

// Stanzas are written as text: a handful of fixed shapes whose every variable part goes
// through stream.AppendEscaped. They are read with stream.Element.Decode (encoding/xml).

// xb builds XML into b.
type xb struct{ b []byte }

// start writes <name a1="v1" …; attrs are name/value pairs, and a pair with an empty value
// is left out.
func (x *xb) start(name string, attrs ...string) {
	x.b = append(x.b, '<')
	x.b = append(x.b, name...)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" {
			continue
		}
		x.b = append(x.b, ' ')
		x.b = append(x.b, attrs[i]...)
		x.b = append(x.b, `="`...)
		x.b = stream.AppendEscaped(x.b, attrs[i+1])
		x.b = append(x.b, '"')
	}
}

// open writes a start tag.
func (x *xb) open(name string, attrs ...string) *xb {
	x.start(name, attrs...)
	x.b = append(x.b, '>')
	return x
}

// empty writes an empty element.
func (x *xb) empty(name string, attrs ...string) *xb {
	x.start(name, attrs...)
	x.b = append(x.b, "/>"...)
	return x
}

// text writes escaped character data.
func (x *xb) text(s string) *xb {
	x.b = stream.AppendEscaped(x.b, s)
	return x
}

// end writes an end tag.
func (x *xb) end(name string) *xb {
	x.b = append(x.b, "</"...)
	x.b = append(x.b, name...)
	x.b = append(x.b, '>')
	return x
}

// stanzaError writes <error type=…><condition/><text>…</text></error> [RFC 6120 §8.3].
func (x *xb) stanzaError(typ, condition, text string) *xb {
	x.open("error", "type", typ)
	x.empty(condition, "xmlns", stream.NSStanzaErr)
	if text != "" {
		x.open("text", "xmlns", stream.NSStanzaErr, "xml:lang", "en").text(text).end("text")
	}
	return x.end("error")
}

// errorReply answers the stanza e (iq, message or presence) with an error of the same kind,
// from the address it was sent to.
func errorReply(e *stream.Element, typ, condition, text string) []byte {
	var x xb
	kind := e.Name.Local
	x.open(kind, "type", "error", "id", e.Get("id"), "from", e.Get("to"), "to", e.Get("from"))
	x.stanzaError(typ, condition, text)
	return x.end(kind).b
}
