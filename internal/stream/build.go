package stream

import "encoding/xml"

// Confab writes its own stanzas as text: a handful of flat shapes whose every variable part
// goes through AppendEscaped, so the output is always well-formed. Builder is the one way
// to do it; every package that writes XML for the wire uses it (or AppendError/AppendOpen for
// the stream's own framing). Stanzas are read back with Element.Decode (encoding/xml).

// Builder appends XML to B.
type Builder struct{ B []byte }

// start writes <name a1="v1" …; attrs are name/value pairs, and a pair with an empty value
// is left out (as encoding/xml's omitempty does).
func (x *Builder) start(name string, attrs []string) {
	x.B = append(x.B, '<')
	x.B = append(x.B, name...)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" {
			continue
		}
		x.B = append(x.B, ' ')
		x.B = append(x.B, attrs[i]...)
		x.B = append(x.B, `="`...)
		x.B = AppendEscaped(x.B, attrs[i+1])
		x.B = append(x.B, '"')
	}
}

// Open writes a start tag with attrs (name/value pairs; empty values are left out).
func (x *Builder) Open(name string, attrs ...string) *Builder {
	x.start(name, attrs)
	x.B = append(x.B, '>')
	return x
}

// Empty writes an element with no content.
func (x *Builder) Empty(name string, attrs ...string) *Builder {
	x.start(name, attrs)
	x.B = append(x.B, "/>"...)
	return x
}

// Text writes escaped character data.
func (x *Builder) Text(s string) *Builder {
	x.B = AppendEscaped(x.B, s)
	return x
}

// Raw writes b, which must already be well-formed XML (an element read from a stream).
func (x *Builder) Raw(b []byte) *Builder {
	x.B = append(x.B, b...)
	return x
}

// End writes an end tag.
func (x *Builder) End(name string) *Builder {
	x.B = append(x.B, "</"...)
	x.B = append(x.B, name...)
	x.B = append(x.B, '>')
	return x
}

// Elem writes a whole element holding only text: <name attrs…>text</name>.
func (x *Builder) Elem(name, text string, attrs ...string) *Builder {
	return x.Open(name, attrs...).Text(text).End(name)
}

// Stanza error types [RFC 6120 §8.3.2].
const (
	ErrAuth     = "auth"
	ErrCancel   = "cancel"
	ErrContinue = "continue"
	ErrModify   = "modify"
	ErrWait     = "wait"
)

// StanzaError is an error to send back for a stanza [RFC 6120 §8.3]: its type (ErrCancel,
// …), its defined condition ("item-not-found", …) and an optional human-readable text.
type StanzaError struct {
	Type, Condition, Text string
	// App is an application-specific condition, written as an empty element after the
	// text when its Local is set [RFC 6120 §8.3.4].
	App xml.Name
}

// Append writes <error type=…><condition/><text>…</text></error>.
func (se StanzaError) Append(x *Builder) *Builder {
	x.Open("error", "type", se.Type)
	x.Empty(se.Condition, "xmlns", NSStanzaErr)
	if se.Text != "" {
		x.Open("text", "xmlns", NSStanzaErr, "xml:lang", "en").Text(se.Text).End("text")
	}
	if se.App.Local != "" {
		x.Empty(se.App.Local, "xmlns", se.App.Space)
	}
	return x.End("error")
}

// Reply returns the start of a stanza answering e: the same kind, type typ, the same id,
// from the address e was sent to (or from, when not empty) and to e's sender. The caller
// writes the content and the end tag (e.Name.Local).
func Reply(e *Element, typ, from string) *Builder {
	if from == "" {
		from = e.Get("to")
	}
	x := &Builder{B: make([]byte, 0, 256)}
	return x.Open(e.Name.Local, "type", typ, "id", e.Get("id"), "from", from, "to", e.Get("from"))
}

// ErrorReply is the error stanza answering e (an iq, message or presence) with se, from the
// address e was sent to [RFC 6120 §8.3]. It does not check whether e may be answered: see
// Answerable.
func ErrorReply(e *Element, se StanzaError) []byte {
	return ErrorReplyFrom(e, "", se)
}

// ErrorReplyFrom is ErrorReply from another address than the one e was sent to.
func ErrorReplyFrom(e *Element, from string, se StanzaError) []byte {
	x := Reply(e, "error", from)
	se.Append(x)
	return x.End(e.Name.Local).B
}

// Answerable reports whether e may be answered with an error: an error never gets an error
// in reply, nor does an iq result [RFC 6120 §8.3.1].
func Answerable(e *Element) bool {
	t := e.Get("type")
	return t != "error" && !(e.Name.Local == "iq" && t == "result")
}

// Result is the empty result answering the IQ request e [RFC 6120 §8.2.3].
func Result(e *Element) []byte {
	var x Builder
	return x.Empty("iq", "type", "result", "id", e.Get("id"), "from", e.Get("to"), "to", e.Get("from")).B
}
