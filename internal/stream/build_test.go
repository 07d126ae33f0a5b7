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
