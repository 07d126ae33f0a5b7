package stream

import (
	"errors"
	"io"
	"strings"
	"testing"
)

const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`

func TestReadOpenAndElements(t *testing.T) {
	in := header + ` <message to='bob@example.com' id="m1" xml:lang='en'><body>hi &amp; &lt;you&gt;</body><x xmlns='urn:x'><y/></x></message>
	<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq><stream:features/></stream:stream>`
	r := NewReader(strings.NewReader(in), Limits{})
	h, err := r.ReadOpen(NSClient)
	if err != nil {
		t.Fatal(err)
	}
	if h.To != "example.com" || h.Version != "1.0" || h.NS != NSClient {
		t.Errorf("header = %+v", h)
	}
	m, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if m.Name.Local != "message" || m.Name.Space != NSClient || !m.IsStanza() {
		t.Errorf("name = %v", m.Name)
	}
	if got, want := string(m.Inner), `<body>hi &amp; &lt;you&gt;</body><x xmlns='urn:x'><y/></x>`; got != want {
		t.Errorf("inner = %q, want %q", got, want)
	}
	if m.Get("to") != "bob@example.com" || m.Get("id") != "m1" {
		t.Errorf("attrs = %v", m.Attr)
	}
	m.Set("from", "alice@example.com/r")
	if got, want := string(m.AppendTo(nil, NSComponent)), `<message to="bob@example.com" id="m1" xml:lang="en" from="alice@example.com/r"><body>hi &amp; &lt;you&gt;</body><x xmlns='urn:x'><y/></x></message>`; got != want {
		t.Errorf("AppendTo = %s\nwant       %s", got, want)
	}
	if got := string(m.AppendFrame(nil, NSClient)); !strings.HasPrefix(got, `<message xmlns="jabber:client" to=`) {
		t.Errorf("AppendFrame = %s", got)
	}
	var body struct {
		Body string `xml:"body"`
	}
	if err := m.Decode(&body); err != nil || body.Body != "hi & <you>" {
		t.Errorf("Decode = %q, %v", body.Body, err)
	}
	iq, err := r.Next()
	if err != nil || iq.Name.Local != "iq" || string(iq.Inner) != `<ping xmlns='urn:xmpp:ping'/>` {
		t.Fatalf("iq = %v, %v", iq, err)
	}
	f, err := r.Next()
	if err != nil || f.Name.Space != NSStreams || f.Name.Local != "features" || f.Inner != nil {
		t.Fatalf("features = %+v, %v", f, err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after </stream:stream>: %v, want ErrClosed", err)
	}
}

// TestReadOpenAfterWhitespace: whitespace left from the previous stream (a client that ends
// every element with a newline, as mattn/go-xmpp does) may come before the XML declaration
// of a restarted stream [RFC 6120 §11.7].
func TestReadOpenAfterWhitespace(t *testing.T) {
	for _, lead := range []string{"", "\n", " \r\n\t "} {
		in := lead + "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\n<message/>\n"
		r := NewReader(strings.NewReader(in), Limits{})
		h, err := r.ReadOpen(NSClient)
		if err != nil {
			t.Fatalf("ReadOpen after %q: %v", lead, err)
		}
		if h.To != "example.com" {
			t.Errorf("to = %q, want example.com", h.To)
		}
		if e, err := r.Next(); err != nil || e.Name.Local != "message" {
			t.Errorf("Next = %v, %v; want <message/>", e, err)
		}
	}
}

func TestBadInput(t *testing.T) {
	big := "<message><body>" + strings.Repeat("a", 2000) + "</body></message>"
	deep := strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70)
	tests := []struct {
		name, in, want string
	}{
		{"doctype", `<!DOCTYPE x [<!ENTITY a "aaaa">]>` + header, RestrictedXML},
		{"doctype inside", header + `<!DOCTYPE x>`, RestrictedXML},
		{"comment", header + `<!-- hi -->`, RestrictedXML},
		{"comment in stanza", header + `<message><!-- hi --></message>`, RestrictedXML},
		{"processing instruction", header + `<?foo bar?>`, RestrictedXML},
		{"xml declaration after the header", header + `<?xml version='1.0'?>`, RestrictedXML},
		{"two xml declarations", "\n<?xml version='1.0'?> <?xml version='1.0'?>" + header, RestrictedXML},
		{"entity reference", header + `<message><body>&xxe;</body></message>`, NotWellFormed},
		{"oversized stanza", header + big, PolicyViolation},
		{"deep nesting", header + "<message>" + deep + "</message>", PolicyViolation},
		{"mismatched tags", header + `<message><a></b></message>`, NotWellFormed},
		{"bad end", header + `</foo>`, NotWellFormed},
		{"text at top level", header + `hello`, NotWellFormed},
		{"invalid utf-8", header + "<message><body>\xff\xfe</body></message>", NotWellFormed},
		{"undeclared prefix", header + `<foo:bar/>`, NotWellFormed},
		{"duplicate attribute", header + `<message to='a' to='b'/>`, NotWellFormed},
		{"latin-1", `<?xml version='1.0' encoding='ISO-8859-1'?>` + header[21:], UnsupportedEncoding},
		{"wrong stream namespace", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>`, InvalidNamespace},
		{"wrong default namespace", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>`, InvalidNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), Limits{MaxStanza: 1024})
			_, err := r.ReadOpen(NSClient)
			for err == nil {
				_, err = r.Next()
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want stream error %s", err, tt.want)
			}
			if se.Condition != tt.want {
				t.Errorf("condition = %s (%v), want %s", se.Condition, se, tt.want)
			}
		})
	}
}

func TestSizeLimitDoesNotBuffer(t *testing.T) {
	// An endless stanza must fail at the limit, not read until memory runs out.
	r := NewReader(io.MultiReader(strings.NewReader(header+"<message><body>"), endless{}), Limits{MaxStanza: 4096})
	if _, err := r.ReadOpen(""); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	var se *Error
	if !errors.As(err, &se) || se.Condition != PolicyViolation {
		t.Fatalf("err = %v, want policy-violation", err)
	}
	if n := len(r.rec.buf); n > 8192 {
		t.Errorf("buffered %d bytes for a 4096-byte limit", n)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestManyStanzasKeepBufferSmall(t *testing.T) {
	var b strings.Builder
	b.WriteString(header)
	for range 1000 {
		b.WriteString("<message to='x'><body>0123456789</body></message> ")
	}
	r := NewReader(strings.NewReader(b.String()), Limits{MaxStanza: 200})
	if _, err := r.ReadOpen(""); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, err := r.Next(); err != nil {
			t.Fatalf("stanza %d: %v", i, err)
		}
	}
	if n := cap(r.rec.buf); n > 1024 {
		t.Errorf("capture buffer grew to %d bytes", n)
	}
}

func TestParseFrame(t *testing.T) {
	e, err := Parse([]byte(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>`), NSClient, Limits{})
	if err != nil || e.Name.Space != NSFraming || e.Get("to") != "example.com" {
		t.Fatalf("open = %+v, %v", e, err)
	}
	e, err = Parse([]byte(`<message xmlns="jabber:client" to="a@b"><body>x</body></message>`), NSClient, Limits{})
	if err != nil || !e.IsStanza() || string(e.Inner) != "<body>x</body>" {
		t.Fatalf("message = %+v, %v", e, err)
	}
	for _, bad := range []string{`<a/><b/>`, `<a>`, `<!-- x --><a/>`, `text`, `<a>&bad;</a>`} {
		if _, err := Parse([]byte(bad), NSClient, Limits{}); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestAppendError(t *testing.T) {
	got := string(AppendError(nil, PolicyViolation, "too <big>"))
	want := `<stream:error><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"/><text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">too &lt;big&gt;</text></stream:error>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func BenchmarkReadMessage(b *testing.B) {
	msg := "<message to='bob@example.com/r' from='alice@example.com/x' type='chat' id='abc'><body>Hello there, how are you today?</body></message>"
	in := header + strings.Repeat(msg, b.N)
	r := NewReader(strings.NewReader(in), Limits{})
	if _, err := r.ReadOpen(""); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	var out []byte
	for range b.N {
		e, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		e.Set("from", "alice@example.com/x")
		out = e.AppendTo(out[:0], NSComponent)
	}
}
