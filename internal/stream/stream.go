// Package stream reads and writes XMPP XML streams [RFC 6120 §4] with the limits a server on
// the internet edge needs: a maximum stanza size and nesting depth, and the restricted XML
// profile of [RFC 6120 §11.1] (no DTDs, comments, processing instructions or entity
// declarations).
//
// A Reader hands out one top-level element at a time. The element's own start tag is parsed
// (name, namespace, attributes); its content is kept as the raw bytes that arrived, already
// checked for well-formedness by encoding/xml, so that routing a stanza costs one parse and
// one copy and never re-encodes what the sender wrote.
package stream

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Namespaces used on streams.
const (
	NSStreams   = "http://etherx.jabber.org/streams"
	NSClient    = "jabber:client"
	NSComponent = "jabber:component:accept"
	NSServer    = "jabber:server"
	NSFraming   = "urn:ietf:params:xml:ns:xmpp-framing" // RFC 7395
	NSStreamErr = "urn:ietf:params:xml:ns:xmpp-streams"
	NSStanzaErr = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSXML       = "http://www.w3.org/XML/1998/namespace"
)

// Limits bound what a Reader accepts. Zero fields take the defaults.
type Limits struct {
	// MaxStanza is the largest top-level element, in bytes (default 256 KiB).
	MaxStanza int
	// MaxDepth is the deepest nesting inside a top-level element (default 64).
	MaxDepth int
}

func (l Limits) maxStanza() int {
	if l.MaxStanza <= 0 {
		return 256 << 10
	}
	return l.MaxStanza
}

func (l Limits) maxDepth() int {
	if l.MaxDepth <= 0 {
		return 64
	}
	return l.MaxDepth
}

// ErrClosed is returned by Next when the peer closed its stream (</stream:stream>).
var ErrClosed = errors.New("stream closed by peer")

// Header is the opening tag of a stream.
type Header struct {
	To, From, ID, Version, Lang string
	// NS is the stream's default namespace (jabber:client, jabber:component:accept, ...).
	NS string
	// Ext holds the header's attributes in other namespaces (extensions, such as Confab's
	// component probe), by resolved namespace and local name. AppendOpen writes them with
	// prefixes of its own.
	Ext []xml.Attr
}

// ExtValue returns the value of the extension attribute {space}local, or "".
func (h Header) ExtValue(space, local string) string {
	for _, a := range h.Ext {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Element is one top-level element: a stanza, or a stream-level element such as
// <starttls/>, <auth/> or <stream:features/>.
type Element struct {
	// Name holds the local name and the resolved namespace.
	Name xml.Name
	// Prefix is the element's prefix as written ("stream" in <stream:error>), or "".
	Prefix string
	// Attr holds the attributes other than namespace declarations, as written (a prefixed
	// attribute keeps its prefix in Name.Space, e.g. xml:lang is {Space: "xml", Local: "lang"}).
	Attr []xml.Attr
	// Decls holds the prefixed namespace declarations (xmlns:p) the raw content needs: those
	// made on the element itself, and copies of those of the stream header that the element
	// uses, so that the element stands alone wherever it is forwarded.
	Decls []xml.Attr
	// Inner is the content between the start and end tags, exactly as received.
	Inner []byte
}

// Get returns the value of the unprefixed attribute name, or "".
func (e *Element) Get(name string) string {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// Set sets (or adds) the unprefixed attribute name; an empty value removes it.
func (e *Element) Set(name, value string) {
	for i, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			if value == "" {
				e.Attr = append(e.Attr[:i], e.Attr[i+1:]...)
			} else {
				e.Attr[i].Value = value
			}
			return
		}
	}
	if value != "" {
		e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: name}, Value: value})
	}
}

// IsStanza reports whether e is a message, presence or iq in one of the stanza namespaces.
func (e *Element) IsStanza() bool {
	switch e.Name.Space {
	case NSClient, NSComponent, NSServer:
	default:
		return false
	}
	switch e.Name.Local {
	case "message", "presence", "iq":
		return true
	}
	return false
}

// Clone returns a deep copy of e, safe to change and to hand to another goroutine.
func (e *Element) Clone() *Element {
	c := &Element{Name: e.Name, Prefix: e.Prefix}
	c.Attr = append([]xml.Attr(nil), e.Attr...)
	c.Decls = append([]xml.Attr(nil), e.Decls...)
	c.Inner = append([]byte(nil), e.Inner...)
	return c
}

// AppendTo appends the element's XML to b, for a stream whose default namespace is
// streamNS. A stanza is written in the stream's own stanza namespace, as RFC 6120 §4.8.3 asks
// of a server moving stanzas between streams of different namespaces; any other element in a
// namespace other than streamNS gets an xmlns attribute.
func (e *Element) AppendTo(b []byte, streamNS string) []byte {
	ns := e.Name.Space
	if e.IsStanza() && isStanzaNS(streamNS) {
		ns = streamNS
	}
	return e.appendXML(b, ns, ns != streamNS)
}

// AppendFrame appends the element as a self-contained WebSocket message [RFC 7395 §3.3.3]:
// the namespace is always declared, and a stanza is put in stanzaNS (jabber:client).
func (e *Element) AppendFrame(b []byte, stanzaNS string) []byte {
	ns := e.Name.Space
	if e.IsStanza() {
		ns = stanzaNS
	}
	return e.appendXML(b, ns, true)
}

func (e *Element) appendXML(b []byte, ns string, declare bool) []byte {
	b = append(b, '<')
	if e.Prefix != "" {
		b = append(b, e.Prefix...)
		b = append(b, ':')
	}
	b = append(b, e.Name.Local...)
	if declare && e.Prefix == "" {
		b = appendAttr(b, "", "xmlns", ns)
	}
	if declare && e.Prefix != "" && !e.declares(e.Prefix) {
		b = appendAttr(b, "xmlns", e.Prefix, ns)
	}
	for _, d := range e.Decls {
		b = appendAttr(b, "xmlns", d.Name.Local, d.Value)
	}
	for _, a := range e.Attr {
		b = appendAttr(b, a.Name.Space, a.Name.Local, a.Value)
	}
	if len(e.Inner) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, e.Inner...)
	b = append(b, "</"...)
	if e.Prefix != "" {
		b = append(b, e.Prefix...)
		b = append(b, ':')
	}
	b = append(b, e.Name.Local...)
	return append(b, '>')
}

func (e *Element) declares(prefix string) bool {
	for _, d := range e.Decls {
		if d.Name.Local == prefix {
			return true
		}
	}
	return false
}

// Bytes returns the element as a standalone document fragment (with its namespace declared).
func (e *Element) Bytes() []byte { return e.appendXML(nil, e.Name.Space, true) }

// String returns the XML of e, for logs and tests.
func (e *Element) String() string { return string(e.Bytes()) }

// Decode unmarshals the element with encoding/xml, as if it stood alone.
func (e *Element) Decode(v any) error { return xml.Unmarshal(e.Bytes(), v) }

func isStanzaNS(ns string) bool { return ns == NSClient || ns == NSComponent || ns == NSServer }

func appendAttr(b []byte, prefix, local, value string) []byte {
	b = append(b, ' ')
	if prefix != "" {
		b = append(b, prefix...)
		b = append(b, ':')
	}
	b = append(b, local...)
	b = append(b, `="`...)
	b = AppendEscaped(b, value)
	return append(b, '"')
}

// AppendEscaped appends s escaped for use in XML text or a double-quoted attribute. What XML
// cannot carry (invalid UTF-8, control characters other than tab, newline and carriage
// return, U+FFFE and U+FFFF) becomes U+FFFD, so that the output is always well-formed even
// when s echoes a peer's bytes (a parser's error message, say).
func AppendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		if c := s[i]; c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && n == 1) || r == 0xFFFE || r == 0xFFFF {
				b = append(b, s[last:i]...)
				b = append(b, "\uFFFD"...)
				last = i + n
			}
			i += n - 1
			continue
		} else if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			b = append(b, s[last:i]...)
			b = append(b, "\uFFFD"...)
			last = i + 1
			continue
		}
		switch s[i] {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '"':
			esc = "&quot;"
		case '\'':
			esc = "&apos;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		case '\t':
			esc = "&#x9;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// Escape returns s escaped for XML text or attributes.
func Escape(s string) string { return string(AppendEscaped(nil, s)) }

// Error is a stream-level error [RFC 6120 §4.9]: the condition to send the peer before
// closing the stream, and why.
type Error struct {
	Condition string // e.g. "not-well-formed", "policy-violation"
	Text      string
	Err       error // the cause, if any (not sent to the peer)
}

func (e *Error) Error() string {
	s := "stream error " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Stream error conditions used by Confab [RFC 6120 §4.9.3].
const (
	BadFormat           = "bad-format"
	Conflict            = "conflict"
	ConnectionTimeout   = "connection-timeout"
	HostUnknown         = "host-unknown"
	InternalServerError = "internal-server-error"
	InvalidFrom         = "invalid-from"
	InvalidNamespace    = "invalid-namespace"
	NotAuthorized       = "not-authorized"
	NotWellFormed       = "not-well-formed"
	PolicyViolation     = "policy-violation"
	ResourceConstraint  = "resource-constraint"
	RestrictedXML       = "restricted-xml"
	SystemShutdown      = "system-shutdown"
	UnsupportedEncoding = "unsupported-encoding"
	UnsupportedStanza   = "unsupported-stanza-type"
	UnsupportedVersion  = "unsupported-version"
)

// AppendError appends a <stream:error/> with condition and optional text.
func AppendError(b []byte, condition, text string) []byte {
	b = append(b, "<stream:error><"...)
	b = append(b, condition...)
	b = append(b, ` xmlns="`+NSStreamErr+`"/>`...)
	if text != "" {
		b = append(b, `<text xmlns="`+NSStreamErr+`" xml:lang="en">`...)
		b = AppendEscaped(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}

// AppendOpen appends an XML declaration and a <stream:stream> opening tag.
func AppendOpen(b []byte, h Header) []byte {
	b = append(b, `<?xml version='1.0'?><stream:stream xmlns="`...)
	b = AppendEscaped(b, h.NS)
	b = append(b, `" xmlns:stream="`+NSStreams+`"`...)
	for _, a := range [...][2]string{{"from", h.From}, {"to", h.To}, {"id", h.ID}, {"version", h.Version}, {"xml:lang", h.Lang}} {
		if a[1] != "" {
			b = append(b, ' ')
			b = append(b, a[0]...)
			b = append(b, `="`...)
			b = AppendEscaped(b, a[1])
			b = append(b, '"')
		}
	}
	for i, a := range h.Ext {
		p := "x" + strconv.Itoa(i)
		b = append(b, ` xmlns:`+p+`="`...)
		b = AppendEscaped(b, a.Name.Space)
		b = append(b, `" `+p+`:`...)
		b = append(b, a.Name.Local...)
		b = append(b, `="`...)
		b = AppendEscaped(b, a.Value)
		b = append(b, '"')
	}
	return append(b, '>')
}

// Close is the closing tag of a stream.
const Close = "</stream:stream>"

var errTooLarge = errors.New("stanza too large")

// readError marks a failure of the underlying reader, so that translate can tell it from the
// decoder's complaints about the input, which are not all *xml.SyntaxError.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// recorder feeds the decoder byte by byte (so it never reads ahead of what it has parsed)
// and keeps the bytes of the element being read.
type recorder struct {
	br    *bufio.Reader
	buf   []byte
	base  int64 // offset of buf[0]
	phys  int64 // bytes read from br
	start int64 // offset where the current element (or the gap before it) began
	limit int
}

func (r *recorder) ReadByte() (byte, error) {
	if int(r.phys-r.start) >= r.limit {
		return 0, errTooLarge
	}
	c, err := r.br.ReadByte()
	if err != nil {
		if err != io.EOF { // encoding/xml compares with io.EOF itself: leave it bare
			err = &readError{err}
		}
		return 0, err
	}
	r.phys++
	r.buf = append(r.buf, c)
	return c, nil
}

func (r *recorder) Read(p []byte) (int, error) {
	// Only ReadByte is used by encoding/xml when the reader is an io.ByteReader.
	if len(p) == 0 {
		return 0, nil
	}
	c, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// mark discards the bytes before off and starts counting the size limit from there.
func (r *recorder) mark(off int64) {
	if n := int(off - r.base); n > 0 && n <= len(r.buf) {
		r.buf = r.buf[:copy(r.buf, r.buf[n:])]
		r.base = off
	}
	r.start = off
}

func (r *recorder) slice(from, to int64) []byte { return r.buf[from-r.base : to-r.base] }

// Reader reads a stream's elements.
type Reader struct {
	rec    recorder
	dec    *xml.Decoder
	limits Limits
	ns     string            // default namespace in scope for top-level elements
	pfx    map[string]string // prefixes declared on the stream header
	stack  []xml.Name        // open elements inside the current top-level element
	opened bool
	frag   bool // a single element (WebSocket message), no stream header
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// NewReader returns a Reader of the stream arriving on r.
func NewReader(r io.Reader, limits Limits) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 4096)
	}
	rd := &Reader{limits: limits}
	rd.rec = recorder{br: br, limit: limits.maxStanza()}
	rd.dec = xml.NewDecoder(&rd.rec)
	rd.dec.Strict = true
	return rd
}

// translate maps a decoder error to a stream error.
func translate(err error) error {
	var se *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, errTooLarge):
		return &Error{Condition: PolicyViolation, Text: "stanza too large", Err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return err
	}
	var re *readError
	if errors.As(err, &re) {
		return re.err // an I/O error: the connection is gone, nothing to send
	}
	var syn *xml.SyntaxError
	if errors.As(err, &syn) {
		if strings.Contains(syn.Msg, "encoding") {
			return &Error{Condition: UnsupportedEncoding, Text: "only UTF-8 is accepted", Err: err}
		}
		return &Error{Condition: NotWellFormed, Text: syn.Msg, Err: err}
	}
	// encoding/xml exports no error value for a declared charset it cannot read: its text is
	// all there is to tell that case from other syntax errors.
	if strings.Contains(err.Error(), "CharsetReader") {
		return &Error{Condition: UnsupportedEncoding, Text: "only UTF-8 is accepted", Err: err}
	}
	// Anything else the decoder refuses (an XML declaration of another version, ...) is bad
	// input too.
	return &Error{Condition: NotWellFormed, Text: strings.TrimPrefix(err.Error(), "xml: "), Err: err}
}

func restricted(what string) error {
	return &Error{Condition: RestrictedXML, Text: what + " not allowed in XMPP [RFC 6120 §11.1]"}
}

// token reads the next token, enforcing the restricted XML profile.
func (r *Reader) token(allowDecl bool) (xml.Token, error) {
	tok, err := r.dec.RawToken()
	if err != nil {
		return nil, translate(err)
	}
	switch t := tok.(type) {
	case xml.Directive:
		return nil, restricted("DTDs and other <!...> directives are")
	case xml.Comment:
		return nil, restricted("comments are")
	case xml.ProcInst:
		if !(allowDecl && t.Target == "xml") {
			return nil, restricted("processing instructions are")
		}
		if enc := procInstParam(string(t.Inst), "encoding"); enc != "" && !strings.EqualFold(enc, "utf-8") {
			return nil, &Error{Condition: UnsupportedEncoding, Text: "only UTF-8 is accepted"}
		}
	}
	return tok, nil
}

func procInstParam(s, name string) string {
	i := strings.Index(s, name+"=")
	if i < 0 || len(s) < i+len(name)+2 {
		return ""
	}
	s = s[i+len(name)+1:]
	q := s[0]
	if q != '\'' && q != '"' {
		return ""
	}
	s = s[1:]
	if j := strings.IndexByte(s, q); j >= 0 {
		return s[:j]
	}
	return ""
}

// ReadOpen reads the optional XML declaration and the <stream:stream> opening tag.
// wantNS, if not empty, is the only default namespace accepted (else invalid-namespace).
//
// Whitespace may come before the declaration: on a restarted stream (after STARTTLS or
// SASL) it is the whitespace a client wrote after its last top-level element of the old
// stream, which RFC 6120 §11.7 allows (mattn/go-xmpp ends every element with a newline and
// starts each stream with a declaration).
func (r *Reader) ReadOpen(wantNS string) (Header, error) {
	allowDecl := true
	for {
		tok, err := r.token(allowDecl)
		if err != nil {
			return Header{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return Header{}, &Error{Condition: NotWellFormed, Text: "text before the stream header"}
			}
			continue // whitespace: the declaration may still come
		}
		allowDecl = false
		switch t := tok.(type) {
		case xml.StartElement:
			h, err := r.open(t, wantNS)
			if err != nil {
				return h, err
			}
			r.opened = true
			return h, nil
		case xml.EndElement:
			return Header{}, &Error{Condition: NotWellFormed, Text: "end tag before the stream header"}
		}
	}
}

func (r *Reader) open(t xml.StartElement, wantNS string) (Header, error) {
	var h Header
	r.pfx = map[string]string{"xml": NSXML}
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			h.NS = a.Value
		case a.Name.Space == "xmlns":
			r.pfx[a.Name.Local] = a.Value
		case a.Name.Space == "" && a.Name.Local == "to":
			h.To = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			h.From = a.Value
		case a.Name.Space == "" && a.Name.Local == "id":
			h.ID = a.Value
		case a.Name.Space == "" && a.Name.Local == "version":
			h.Version = a.Value
		case a.Name.Space == "xml" && a.Name.Local == "lang":
			h.Lang = a.Value
		}
	}
	for _, a := range t.Attr {
		switch a.Name.Space {
		case "", "xmlns", "xml":
		default:
			if ns, ok := r.pfx[a.Name.Space]; ok && ns != NSStreams {
				h.Ext = append(h.Ext, xml.Attr{Name: xml.Name{Space: ns, Local: a.Name.Local}, Value: a.Value})
			}
		}
	}
	r.ns = h.NS
	if t.Name.Local != "stream" || r.pfx[t.Name.Space] != NSStreams {
		return h, &Error{Condition: InvalidNamespace, Text: "the stream header must be <stream:stream xmlns:stream='" + NSStreams + "'>"}
	}
	if wantNS != "" && h.NS != wantNS {
		return h, &Error{Condition: InvalidNamespace, Text: "the stream's default namespace must be " + wantNS}
	}
	return h, nil
}

// Next returns the next top-level element. It returns ErrClosed after </stream:stream>,
// a *Error for a violation the peer must be told of, and other errors for I/O failures.
// The returned element's Inner is a fresh copy; the element belongs to the caller.
func (r *Reader) Next() (*Element, error) {
	for {
		r.rec.mark(r.dec.InputOffset())
		tok, err := r.token(false)
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, &Error{Condition: NotWellFormed, Text: "text outside a stanza"}
			}
			// whitespace keepalive: nothing to do
		case xml.EndElement:
			if r.frag || !r.opened || t.Name.Local != "stream" || r.pfx[t.Name.Space] != NSStreams {
				return nil, &Error{Condition: NotWellFormed, Text: "unexpected end tag </" + qname(t.Name) + ">"}
			}
			return nil, ErrClosed
		case xml.StartElement:
			return r.element(t)
		}
	}
}

func (r *Reader) element(start xml.StartElement) (*Element, error) {
	e := &Element{Name: xml.Name{Local: start.Name.Local}, Prefix: start.Name.Space}
	ns := r.ns
	local := map[string]string(nil)
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			ns = a.Value
		case a.Name.Space == "xmlns":
			e.Decls = append(e.Decls, a)
			if local == nil {
				local = make(map[string]string)
			}
			local[a.Name.Local] = a.Value
		default:
			e.Attr = append(e.Attr, a)
		}
	}
	if e.Prefix != "" {
		var ok bool
		if ns, ok = local[e.Prefix]; !ok {
			if ns, ok = r.pfx[e.Prefix]; !ok || e.Prefix == "xml" || e.Prefix == "xmlns" {
				return nil, &Error{Condition: NotWellFormed, Text: "undeclared prefix " + e.Prefix}
			}
			// Declared on the stream header: carry the declaration with the element.
			e.Decls = append(e.Decls, xml.Attr{Name: xml.Name{Space: "xmlns", Local: e.Prefix}, Value: ns})
		}
	}
	e.Name.Space = ns
	for i, a := range e.Attr {
		for _, b := range e.Attr[:i] {
			if a.Name == b.Name {
				return nil, &Error{Condition: NotWellFormed, Text: "duplicate attribute " + a.Name.Local}
			}
		}
		if err := r.usePrefix(e, nil, a.Name.Space); err != nil {
			return nil, err
		}
	}
	// Prefixes declared inside the element, with the depth of the element declaring them.
	var scope []prefixDecl
	innerStart := r.dec.InputOffset()
	// RawToken does not check that end tags match start tags: keep the stack here.
	stack := append(r.stack[:0], start.Name)
	defer func() { r.stack = stack[:0] }()
	maxDepth := r.limits.maxDepth()
	for {
		before := r.dec.InputOffset()
		tok, err := r.token(false)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name)
			if len(stack) > maxDepth {
				return nil, &Error{Condition: PolicyViolation, Text: fmt.Sprintf("elements nested deeper than %d", maxDepth)}
			}
			if scope, err = r.checkPrefixes(e, scope, len(stack), t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			if top := stack[len(stack)-1]; top != t.Name {
				return nil, &Error{Condition: NotWellFormed, Text: "element <" + qname(top) + "> closed by </" + qname(t.Name) + ">"}
			}
			for len(scope) > 0 && scope[len(scope)-1].depth >= len(stack) {
				scope = scope[:len(scope)-1]
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				if before > innerStart {
					e.Inner = bytes.Clone(r.rec.slice(innerStart, before))
					if !utf8.Valid(e.Inner) {
						return nil, &Error{Condition: NotWellFormed, Text: "invalid UTF-8"}
					}
				}
				for _, a := range e.Attr {
					if !utf8.ValidString(a.Value) {
						return nil, &Error{Condition: NotWellFormed, Text: "invalid UTF-8"}
					}
				}
				return e, nil
			}
		}
	}
}

// prefixDecl is a namespace prefix declared by an element at depth inside a top-level element.
type prefixDecl struct {
	depth  int
	prefix string
}

// checkPrefixes records the prefixes t declares and checks those it uses, for an element at
// depth inside e. RawToken resolves no prefixes, and a stanza using one that is undeclared
// would be forwarded as XML that a namespace-aware client (a browser's DOMParser) refuses,
// ending the recipient's stream: the sender's stream ends instead.
func (r *Reader) checkPrefixes(e *Element, scope []prefixDecl, depth int, t xml.StartElement) ([]prefixDecl, error) {
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" {
			if a.Name.Local == "" || a.Name.Local == "xmlns" {
				return scope, &Error{Condition: NotWellFormed, Text: "invalid namespace declaration"}
			}
			scope = append(scope, prefixDecl{depth: depth, prefix: a.Name.Local})
		}
	}
	if t.Name.Space == "xmlns" {
		return scope, &Error{Condition: NotWellFormed, Text: "the prefix xmlns names no element"}
	}
	if err := r.usePrefix(e, scope, t.Name.Space); err != nil {
		return scope, err
	}
	for _, a := range t.Attr {
		if a.Name.Space != "xmlns" {
			if err := r.usePrefix(e, scope, a.Name.Space); err != nil {
				return scope, err
			}
		}
	}
	return scope, nil
}

// usePrefix checks that prefix p (if any) is declared: in scope, on e itself, or on the
// stream header, in which case the declaration is copied onto e.
func (r *Reader) usePrefix(e *Element, scope []prefixDecl, p string) error {
	if p == "" || p == "xml" {
		return nil
	}
	for i := len(scope) - 1; i >= 0; i-- {
		if scope[i].prefix == p {
			return nil
		}
	}
	if e.declares(p) {
		return nil
	}
	if ns, ok := r.pfx[p]; ok {
		e.Decls = append(e.Decls, xml.Attr{Name: xml.Name{Space: "xmlns", Local: p}, Value: ns})
		return nil
	}
	return &Error{Condition: NotWellFormed, Text: "undeclared prefix " + p}
}

// Parse reads exactly one element from data, as a WebSocket message carries it [RFC 7395
// §3.3.3]. defaultNS is the namespace of an element that declares none.
func Parse(data []byte, defaultNS string, limits Limits) (*Element, error) {
	if len(data) > limits.maxStanza() {
		return nil, &Error{Condition: PolicyViolation, Text: "stanza too large"}
	}
	r := NewReader(bytes.NewReader(data), limits)
	r.frag = true
	r.ns = defaultNS
	r.pfx = map[string]string{"xml": NSXML}
	e, err := r.Next()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &Error{Condition: NotWellFormed, Text: "incomplete element", Err: err}
		}
		return nil, err
	}
	// Nothing but whitespace may follow.
	for {
		tok, err := r.token(false)
		if errors.Is(err, io.EOF) {
			return e, nil
		}
		if err != nil {
			return nil, err
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return nil, &Error{Condition: NotWellFormed, Text: "more than one element in a WebSocket message"}
		}
	}
}
