package loginrelay

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"confab.dev/confab/internal/stream"
)

// TestWireMatchesEncodingXML: the serialisation written with stream.Builder reads back as
// the same XML as what encoding/xml writes for the same values (escapes may be spelled
// differently, and an empty attribute is left out rather than written empty).
func TestWireMatchesEncodingXML(t *testing.T) {
	odd := "a&b<c>d\"e'f\tg\nh\ri é \x01 \uFFFE end"
	payloads := []any{
		authPayload{Session: "s1", Mechanism: MechSCRAMSHA256, Addr: "[2001:db8::1]:5000", Transport: "tcp", Data: "biwsbj1hbGljZQ=="},
		authPayload{Session: "s2", Mechanism: MechPLAIN, Data: "="},
		authPayload{Session: odd, Mechanism: odd, Addr: odd, Transport: odd, Data: odd},
		responsePayload{Session: "s", Data: "Yz1iaXdz"},
		responsePayload{Session: odd, Data: odd},
		abortPayload{Session: "s"},
		abortPayload{},
		challengePayload{Session: "s", Data: ""},
		challengePayload{Session: odd, Data: odd},
		successPayload{Session: "s", JID: "alice@example.com", Data: "dj1ybUY5"},
		successPayload{Session: odd, JID: odd, Data: odd},
		failurePayload{Session: "s", Condition: CondNotAuthorized, Text: textInvalidCredentials},
		failurePayload{Session: "s", Condition: CondAborted},
		failurePayload{Session: odd, Condition: odd, Text: odd},
	}
	for i, p := range payloads {
		for _, v := range []any{
			iq{Type: "set", ID: "confab-login-1", From: "example.com", To: "cb1.example.com", Payload: p},
			iq{Type: "result", ID: odd, Payload: p},
		} {
			want, err := xml.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := marshal(v); !sameXML(t, got, want) {
				t.Errorf("payload %d %T:\n got  %s\n want %s", i, p, got, want)
			}
		}
	}
	for _, p := range []sessionEndPayload{{JID: "alice@example.com/web", Reason: "closed"}, {JID: odd}} {
		v := message{From: "example.com", To: "cb1.example.com", Payload: p}
		want, _ := xml.Marshal(v)
		if got := marshal(v); !sameXML(t, got, want) {
			t.Errorf("session-end:\n got  %s\n want %s", got, want)
		}
	}
}

// sameXML reports whether a and b hold the same elements, attributes (empty ones ignored)
// and text.
func sameXML(t *testing.T, a, b []byte) bool {
	t.Helper()
	return reflect.DeepEqual(xmlTokens(t, a), xmlTokens(t, b))
}

func xmlTokens(t *testing.T, b []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var out []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			s := "<" + tok.Name.Space + " " + tok.Name.Local
			attrs := slices.Clone(tok.Attr)
			slices.SortFunc(attrs, func(x, y xml.Attr) int { return strings.Compare(x.Name.Local, y.Name.Local) })
			for _, a := range attrs {
				if a.Value != "" && a.Name.Local != "xmlns" {
					s += " " + a.Name.Space + ":" + a.Name.Local + "=" + a.Value
				}
			}
			out = append(out, s)
		case xml.EndElement:
			out = append(out, "</"+tok.Name.Local)
		case xml.CharData:
			out = append(out, "text:"+string(tok))
		}
	}
}

// TestFastChildForms: what the scanner takes and what it leaves to encoding/xml.
func TestFastChildForms(t *testing.T) {
	tests := []struct {
		inner string
		fast  bool
	}{
		{`<auth xmlns="urn:confab:login:1" session="s" mechanism="PLAIN">AGEAYg==</auth>`, true},
		{` <auth xmlns='urn:confab:login:1' session = 's'/> `, true},
		{`<abort xmlns="urn:confab:login:1" session="s"></abort >`, true},
		{`<l:auth xmlns:l="urn:confab:login:1" session="s"/>`, false},         // prefixed
		{`<auth xmlns="urn:confab:login:1" session="a&amp;b"/>`, false},       // entity in an attribute
		{`<auth xmlns="urn:confab:login:1" session="s">a&#65;</auth>`, false}, // character reference
		{`<auth xmlns="urn:confab:login:1"><![CDATA[x]]></auth>`, false},
		{`<auth xmlns="urn:confab:login:1"><!-- c -->x</auth>`, false},
		{`<failure xmlns="urn:confab:login:1" condition="x"><text xmlns="urn:confab:login:1">t</text></failure>`, false},
		{`<auth xmlns="urn:confab:login:1"/><abort xmlns="urn:confab:login:1"/>`, false}, // two children
		{`<auth session="s"/>`, false},                                                   // namespace inherited: left to encoding/xml
		{`<auth xmlns="urn:confab:login:1" xml:lang="en"/>`, false},
		{`<auth xmlns="urn:confab:login:1" s="a	b"/>`, false}, // a tab, which XML normalises in attributes
	}
	for _, tt := range tests {
		if _, ok := fastChild([]byte(tt.inner)); ok != tt.fast {
			t.Errorf("fastChild(%s) ok = %v, want %v", tt.inner, ok, tt.fast)
		}
	}
}

// FuzzFastChild checks the scanner against encoding/xml: for any child that the link's
// reader accepts inside an IQ or a message, what the relay reads through the fast path is
// what encoding/xml reads.
func FuzzFastChild(f *testing.F) {
	for _, s := range []string{
		`<auth xmlns="urn:confab:login:1" session="s" mechanism="PLAIN" addr="1.2.3.4:5" transport="tcp">AGEAYg==</auth>`,
		`<response xmlns='urn:confab:login:1' session='s'>Yz1i</response>`,
		`<abort xmlns="urn:confab:login:1" session="s"/>`,
		`<challenge xmlns="urn:confab:login:1" session="s">=</challenge>`,
		`<success xmlns="urn:confab:login:1" session="s" jid="a@b">dj0x</success>`,
		`<failure xmlns="urn:confab:login:1" session="s" condition="not-authorized"/>`,
		`<session-end xmlns="urn:confab:login:1" jid="a@b/c" reason="closed"/>`,
		`<auth xmlns="urn:other" session="s"/>`,
		`<auth xmlns="urn:confab:login:1" session="s" session2="t">  x y  </auth>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, inner string) {
		for _, wrap := range []string{"iq", "message"} {
			el, err := stream.Parse([]byte("<"+wrap+` xmlns="jabber:component:accept" type="set" id="x">`+inner+"</"+wrap+">"), stream.NSComponent, stream.Limits{})
			if err != nil {
				return
			}
			var slowReq request
			slowErr := el.Decode(&slowReq)
			fastReq, fastErr := decodeRequest(el)
			compare(t, "request", inner, slowReq, fastReq, slowErr, fastErr)
			var slowAns answer
			slowErr = el.Decode(&slowAns)
			fastAns, fastErr := decodeAnswer(el)
			compare(t, "answer", inner, slowAns, fastAns, slowErr, fastErr)
			var slowNote notice
			slowErr = el.Decode(&slowNote)
			fastNote, fastErr := decodeNotice(el)
			compare(t, "notice", inner, slowNote, fastNote, slowErr, fastErr)
		}
	})
}

func compare(t *testing.T, what, inner string, slow, fast any, slowErr, fastErr error) {
	t.Helper()
	if slowErr != nil {
		if fastErr == nil {
			if _, ok := fastChild([]byte(inner)); ok {
				t.Errorf("%s %q: encoding/xml fails (%v), the fast path reads %+v", what, inner, slowErr, fast)
			}
		}
		return
	}
	if fastErr != nil {
		t.Errorf("%s %q: the fast path fails (%v), encoding/xml reads it", what, inner, fastErr)
		return
	}
	clearXMLNames(reflect.ValueOf(&slow).Elem())
	clearXMLNames(reflect.ValueOf(&fast).Elem()) // set when the fast path fell back
	if s, f := fmt.Sprintf("%+v", deref(slow)), fmt.Sprintf("%+v", deref(fast)); s != f {
		t.Errorf("%s %q:\n encoding/xml %s\n fast path    %s", what, inner, s, f)
	}
}

// clearXMLNames zeroes the XMLName fields encoding/xml fills in, which the fast path leaves.
func clearXMLNames(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		c := reflect.New(v.Elem().Type()).Elem()
		c.Set(v.Elem())
		clearXMLNames(c)
		v.Set(c)
	case reflect.Pointer:
		if !v.IsNil() {
			clearXMLNames(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).Name == "XMLName" {
				v.Field(i).SetZero()
				continue
			}
			clearXMLNames(v.Field(i))
		}
	}
}

// deref turns a struct of pointers into a string-comparable form.
func deref(v any) string {
	rv := reflect.ValueOf(v)
	out := ""
	for i := range rv.NumField() {
		f := rv.Field(i)
		if f.IsNil() {
			out += rv.Type().Field(i).Name + ":nil "
			continue
		}
		out += fmt.Sprintf("%s:%+v ", rv.Type().Field(i).Name, f.Elem().Interface())
	}
	return out
}
