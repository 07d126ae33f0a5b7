package stream

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// conditions are the stream errors a Reader may return.
var conditions = []string{NotWellFormed, PolicyViolation, RestrictedXML, UnsupportedEncoding, InvalidNamespace}

// checkReadErr fails t unless err is what Next, ReadOpen or Parse may return on input held in
// memory: a *Error with a known condition, the end of the input, or the end of the stream.
func checkReadErr(t *testing.T, err error) {
	t.Helper()
	var se *Error
	switch {
	case errors.As(err, &se):
		if !slices.Contains(conditions, se.Condition) {
			t.Fatalf("stream error with unexpected condition %q: %v", se.Condition, err)
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrClosed):
	default:
		t.Fatalf("error is neither a stream error nor the end of the input: %T %v", err, err)
	}
}

// nsWellFormed checks what a namespace-aware parser (a browser's DOMParser, another XMPP
// library) checks and encoding/xml's RawToken does not: every prefix used on an element or
// attribute is declared in scope. It returns the first violation.
func nsWellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	scopes := []map[string]bool{{"xml": true, "xmlns": true}}
	declared := func(p string) bool {
		for i := len(scopes) - 1; i >= 0; i-- {
			if scopes[i][p] {
				return true
			}
		}
		return false
	}
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			s := map[string]bool{}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" {
					s[a.Name.Local] = true
				}
			}
			scopes = append(scopes, s)
			if t.Name.Space != "" && !declared(t.Name.Space) {
				return fmt.Errorf("element %s:%s: undeclared prefix", t.Name.Space, t.Name.Local)
			}
			for _, a := range t.Attr {
				if a.Name.Space != "" && !declared(a.Name.Space) {
					return fmt.Errorf("attribute %s:%s: undeclared prefix", a.Name.Space, a.Name.Local)
				}
			}
		case xml.EndElement:
			scopes = scopes[:len(scopes)-1]
		}
	}
}

// checkElement checks the invariants of an element a Reader handed out: valid UTF-8, within
// the size limit, and, serialised the ways the server forwards it, one self-contained element
// that parses back to the same name, attributes and content.
func checkElement(t *testing.T, e *Element, limits Limits) {
	t.Helper()
	if !utf8.Valid(e.Inner) {
		t.Fatalf("element %s: invalid UTF-8 content accepted", e.Name.Local)
	}
	for _, a := range e.Attr {
		if !utf8.ValidString(a.Value) {
			t.Fatalf("element %s: invalid UTF-8 in attribute %s", e.Name.Local, a.Name.Local)
		}
	}
	if len(e.Inner) > limits.maxStanza() {
		t.Fatalf("element of %d bytes accepted with a limit of %d", len(e.Inner), limits.maxStanza())
	}
	for _, out := range [][]byte{e.Bytes(), e.AppendFrame(nil, NSClient), e.AppendTo(nil, NSComponent)} {
		if err := nsWellFormed(out); err != nil {
			t.Fatalf("the element as forwarded is not namespace-well-formed: %v\n%s", err, out)
		}
		got, err := Parse(out, "urn:confab:test:default", Limits{MaxStanza: len(out) + 1, MaxDepth: limits.maxDepth() + 1})
		if err != nil {
			t.Fatalf("the element as forwarded does not parse: %v\n%s", err, out)
		}
		if got.Name.Local != e.Name.Local || got.Prefix != e.Prefix || !bytes.Equal(got.Inner, e.Inner) {
			t.Fatalf("round trip changed the element:\n in  %q %q %q\n out %q %q %q\n%s",
				e.Prefix, e.Name.Local, e.Inner, got.Prefix, got.Name.Local, got.Inner, out)
		}
		if !slices.Equal(got.Attr, e.Attr) {
			t.Fatalf("round trip changed the attributes: %v -> %v\n%s", e.Attr, got.Attr, out)
		}
	}
	if got, err := Parse(e.Bytes(), "", Limits{MaxStanza: len(e.Bytes()) + 1, MaxDepth: limits.maxDepth() + 1}); err == nil && got.Name.Space != e.Name.Space {
		t.Fatalf("round trip changed the namespace: %q -> %q", e.Name.Space, got.Name.Space)
	}
}

const fuzzHeader = `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0">`

var readerSeeds = []string{
	`<message to="bob@example.com" id="1"><body>hi &amp; bye</body></message>`,
	`<iq type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq> <presence/>`,
	`<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/></starttls></stream:features>`,
	`<p:a xmlns:p="urn:x" p:b="1"><p:c/></p:a>`,
	`<message><x:body/></message>`,
	`<message xml:lang="en"><body xml:lang="fr">é</body></message>`,
	`</stream:stream>`,
	`<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`,
	`<message>&lol;</message>`,
	`<!-- c --><message/>`,
	`<?pi x?><message/>`,
	"<message>\xff</message>",
	`<message a="1" a="2"/>`,
	`<a><b></a></b>`,
	`<a>` + strings.Repeat(`<b>`, 70) + strings.Repeat(`</b>`, 70) + `</a>`,
	`<message><![CDATA[<not/>]]></message>`,
	`<message to="&#x0;"/>`,
	`text`,
}

// FuzzReader feeds arbitrary bytes to a Reader, both as a whole stream and after a valid
// stream header, and checks that it ends with a stream error or the end of the input and that
// every element it hands out is one the server can forward safely.
func FuzzReader(f *testing.F) {
	for _, s := range readerSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(fuzzHeader + `<message/>`))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><stream:stream xmlns:stream="http://etherx.jabber.org/streams">`))
	limits := Limits{MaxStanza: 4 << 10, MaxDepth: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, append([]byte(fuzzHeader), data...)} {
			r := NewReader(bytes.NewReader(in), limits)
			if _, err := r.ReadOpen(NSClient); err != nil {
				checkReadErr(t, err)
				continue
			}
			for n := 0; ; n++ {
				if n > len(in) {
					t.Fatalf("%d elements from %d bytes", n, len(in))
				}
				e, err := r.Next()
				if err != nil {
					checkReadErr(t, err)
					break
				}
				checkElement(t, e, limits)
			}
		}
	})
}

// FuzzParse is FuzzReader for one WebSocket message [RFC 7395].
func FuzzParse(f *testing.F) {
	for _, s := range readerSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>`))
	f.Add([]byte(`<message/><message/>`))
	limits := Limits{MaxStanza: 4 << 10, MaxDepth: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data, NSClient, limits)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || !slices.Contains(conditions, se.Condition) {
				t.Fatalf("Parse error is not a stream error with a known condition: %T %v", err, err)
			}
			return
		}
		checkElement(t, e, limits)
	})
}

// TestPrefixes covers what the fuzzers found: prefixes used inside a stanza must be declared,
// and one declared on the stream header travels with the stanza; an XML declaration of
// another version is not-well-formed rather than an I/O failure.
func TestPrefixes(t *testing.T) {
	header := `<stream:stream xmlns="jabber:client" xmlns:stream="` + NSStreams + `" xmlns:x="urn:x">`
	tests := []struct {
		name, in string
		wantCond string // "" for accepted
		wantOut  string // as forwarded to a client
	}{
		{"prefix of the header travels", `<message><x:body x:a="1"/></message>`, "",
			`<message xmlns="jabber:client" xmlns:x="urn:x"><x:body x:a="1"/></message>`},
		{"prefix declared inside", `<message><y:a xmlns:y="urn:y"><y:b/></y:a></message>`, "",
			`<message xmlns="jabber:client"><y:a xmlns:y="urn:y"><y:b/></y:a></message>`},
		{"prefixed top-level element", `<stream:features><stream:x/></stream:features>`, "",
			`<stream:features xmlns:stream="` + NSStreams + `"><stream:x/></stream:features>`},
		{"undeclared element prefix", `<message><y:body/></message>`, NotWellFormed, ""},
		{"undeclared attribute prefix", `<message><body y:a="1"/></message>`, NotWellFormed, ""},
		{"undeclared on the stanza", `<message y:a="1"/>`, NotWellFormed, ""},
		{"prefix out of scope", `<message><a xmlns:y="urn:y"/><y:b/></message>`, NotWellFormed, ""},
		{"xmlns as element prefix", `<message><xmlns:a/></message>`, NotWellFormed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(header+tt.in), Limits{})
			if _, err := r.ReadOpen(NSClient); err != nil {
				t.Fatal(err)
			}
			e, err := r.Next()
			var se *Error
			switch {
			case tt.wantCond != "":
				if !errors.As(err, &se) || se.Condition != tt.wantCond {
					t.Fatalf("Next = %v, %v; want stream error %s", e, err, tt.wantCond)
				}
			case err != nil:
				t.Fatalf("Next: %v", err)
			default:
				if got := string(e.AppendFrame(nil, NSClient)); got != tt.wantOut {
					t.Errorf("forwarded as\n %s\nwant\n %s", got, tt.wantOut)
				}
			}
		})
	}
	_, err := NewReader(strings.NewReader(`<?xml version="0"?><a/>`), Limits{}).ReadOpen("")
	var se *Error
	if !errors.As(err, &se) || se.Condition != NotWellFormed {
		t.Errorf("XML version 0: %v, want not-well-formed", err)
	}
}

// FuzzEscape checks that whatever string is escaped, text and attribute are well-formed, and
// that a string XML can carry comes back unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"a<b>&\"'", "tab\there\nnew\rcr", "\x00\x01", "\xff\xfe", "\uFFFE\uFFFF", "é😀", "invalid character entity &\x8f (no semicolon)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		doc := `<a x="` + Escape(s) + `">` + Escape(s) + `</a>`
		var v struct {
			X    string `xml:"x,attr"`
			Text string `xml:",chardata"`
		}
		if err := xml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("escaped %q does not parse: %v\n%s", s, err, doc)
		}
		carried := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
			return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF
		})
		if carried && (v.X != s || v.Text != s) {
			t.Fatalf("%q came back as attribute %q, text %q", s, v.X, v.Text)
		}
	})
}
