package stream

import (
	"bytes"
	"strconv"
	"testing"
)

// benchStanzas is a stream body of n chat messages, as a client sends them.
func benchStanzas(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`)
	for i := range n {
		b.WriteString(`<message to='echo.example.com' id='m` + strconv.Itoa(i) + `' type='chat'><body>` + string(bytes.Repeat([]byte("x"), 64)) + `</body></message>`)
	}
	return b.Bytes()
}

// BenchmarkReaderNext measures decoding one stanza from a stream: the start tag parsed, the
// content checked and kept raw.
func BenchmarkReaderNext(b *testing.B) {
	const n = 1024
	data := benchStanzas(n)
	b.SetBytes(int64(len(data) / n))
	b.ReportAllocs()
	var r *Reader
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			r = NewReader(bytes.NewReader(data), Limits{})
			if _, err := r.ReadOpen(NSClient); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendTo measures serialising a routed stanza into another stream's namespace.
func BenchmarkAppendTo(b *testing.B) {
	r := NewReader(bytes.NewReader(benchStanzas(1)), Limits{})
	if _, err := r.ReadOpen(NSClient); err != nil {
		b.Fatal(err)
	}
	e, err := r.Next()
	if err != nil {
		b.Fatal(err)
	}
	e.Set("from", "user0@example.com/res")
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendTo(buf[:0], NSComponent)
	}
}

// BenchmarkParse measures decoding one WebSocket message [RFC 7395].
func BenchmarkParse(b *testing.B) {
	msg := []byte(`<message xmlns='jabber:client' to='echo.example.com' id='m1' type='chat'><body>` + string(bytes.Repeat([]byte("x"), 64)) + `</body></message>`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(msg, NSClient, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
