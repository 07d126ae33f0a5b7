package stream

import (
	"bytes"
	"encoding/xml"
	"testing"
)

func parseOne(t *testing.T, b []byte) *Element {
	t.Helper()
	r := NewReader(bytes.NewReader(b), Limits{})
	e, err := r.Next()
	if err != nil {
		t.Fatalf("read %s: %v", b, err)
	}
	return e
}

func TestBuilderEscapesAndOmitsEmpty(t *testing.T) {
	var x Builder
	x.Open("message", "to", `a"b<c>&'`, "type", "").Elem("body", "x < y & \x01").Empty("thread", "xmlns", "urn:t").End("message")
	e := parseOne(t, x.B)
	if got, want := e.Get("to"), `a"b<c>&'`; got != want {
		t.Errorf("to = %q, want %q", got, want)
	}
	if bytes.Contains(x.B, []byte("type=")) {
		t.Errorf("empty attribute written: %s", x.B)
	}
	var v struct {
		Body string `xml:"body"`
	}
	if err := e.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if want := "x < y & \uFFFD"; v.Body != want {
		t.Errorf("body = %q, want %q", v.Body, want)
	}
}

func TestErrorReply(t *testing.T) {
	req := parseOne(t, []byte(`<iq xmlns="jabber:client" type="get" id="p&amp;1" from="a@example.com/r" to="cb1.example.com"><q xmlns="urn:x"/></iq>`))
	tests := []struct {
		name string
		b    []byte
		from string
	}{
		{"to", ErrorReply(req, StanzaError{Type: ErrCancel, Condition: "item-not-found", Text: "No such <space>"}), "cb1.example.com"},
		{"from", ErrorReplyFrom(req, "s@cb1.example.com", StanzaError{Type: ErrModify, Condition: "bad-request"}), "s@cb1.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseOne(t, tt.b)
			if e.Name.Local != "iq" || e.Get("type") != "error" || e.Get("id") != "p&1" || e.Get("to") != "a@example.com/r" || e.Get("from") != tt.from {
				t.Fatalf("reply = %s", tt.b)
			}
			var v struct {
				Error struct {
					Type  string `xml:"type,attr"`
					Conds []struct {
						XMLName xml.Name
						Text    string `xml:",chardata"`
					} `xml:",any"`
				} `xml:"error"`
			}
			if err := e.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if v.Error.Type == "" || len(v.Error.Conds) == 0 || v.Error.Conds[0].XMLName.Space != NSStanzaErr {
				t.Errorf("error = %+v in %s", v.Error, tt.b)
			}
		})
	}
	if got := parseOne(t, Result(req)); got.Get("type") != "result" || got.Get("id") != "p&1" || got.Get("from") != "cb1.example.com" {
		t.Errorf("Result = %s", got)
	}
}

func TestAnswerable(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`<iq type="get" id="1"/>`, true},
		{`<iq type="result" id="1"/>`, false},
		{`<iq type="error" id="1"/>`, false},
		{`<message type="error"/>`, false},
		{`<message/>`, true},
		{`<presence type="result"/>`, true},
	}
	for _, tt := range tests {
		if got := Answerable(parseOne(t, []byte(tt.in))); got != tt.want {
			t.Errorf("Answerable(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPayload(t *testing.T) {
	tests := []struct {
		in   string
		want xml.Name
	}{
		{`<iq xmlns="jabber:component:accept" type="set" id="1"><auth xmlns="urn:confab:login:1" session="s">x</auth></iq>`, xml.Name{Space: "urn:confab:login:1", Local: "auth"}},
		{`<iq xmlns="jabber:component:accept" type="get" id="1"><ping xmlns='urn:xmpp:ping'/></iq>`, xml.Name{Space: "urn:xmpp:ping", Local: "ping"}},
		{`<message xmlns="jabber:component:accept"><body>hi</body><participant xmlns="urn:confab:meeting:1"/></message>`, xml.Name{Space: "jabber:component:accept", Local: "body"}},
		{`<presence xmlns="jabber:component:accept"/>`, xml.Name{}},
		{`<message xmlns="jabber:component:accept">just text</message>`, xml.Name{}},
		{`<iq xmlns="jabber:component:accept" xmlns:p="urn:p" type="get" id="1"><p:q/></iq>`, xml.Name{Space: "urn:p", Local: "q"}},
		{`<iq xmlns="jabber:component:accept" type="get" id="1"><q a="x>y" xmlns="urn:q&amp;r"/></iq>`, xml.Name{Space: "urn:q&r", Local: "q"}},
		{`<iq xmlns="jabber:component:accept" type="get" id="1"> <q a = 'v' xmlns = "urn:q" >t</q></iq>`, xml.Name{Space: "urn:q", Local: "q"}},
		{`<message xmlns="jabber:component:accept">text<x xmlns="urn:x"/></message>`, xml.Name{Space: "urn:x", Local: "x"}},
	}
	for _, tt := range tests {
		if got := parseOne(t, []byte(tt.in)).Payload(); got != tt.want {
			t.Errorf("Payload of %s = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzPayload: the scanner and encoding/xml agree wherever the scanner answers.
func FuzzPayload(f *testing.F) {
	for _, s := range []string{`<auth xmlns="urn:confab:login:1" session="s">x</auth>`, `<ping xmlns='urn:xmpp:ping'/>`, `<body>x</body>`, ``, `<p:q xmlns:p="urn:p"/>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, inner string) {
		doc := `<iq xmlns="jabber:component:accept" type="get" id="1">` + inner + `</iq>`
		r := NewReader(bytes.NewReader([]byte(doc)), Limits{})
		e, err := r.Next()
		if err != nil {
			return
		}
		fast, ok := fastPayload(e.Inner, e.Name.Space)
		if !ok {
			return
		}
		e2 := e.Clone()
		e2.Inner = append([]byte("<!---->"), e2.Inner...) // force the encoding/xml path
		if slow := e2.Payload(); fast != slow {
			t.Errorf("inner %q: scanner %v, encoding/xml %v", inner, fast, slow)
		}
	})
}
