package xmppd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"

	"confab.dev/confab/internal/stream"
)

// Namespaces the server answers itself.
const (
	nsPing      = "urn:xmpp:ping"                          // XEP-0199
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"  // XEP-0030
	nsDiscoItem = "http://jabber.org/protocol/disco#items" // XEP-0030
	nsRoster    = "jabber:iq:roster"                       // RFC 6121 §2
	nsSession   = "urn:ietf:params:xml:ns:xmpp-session"    // RFC 3921 §3, kept for old clients
	nsBind      = "urn:ietf:params:xml:ns:xmpp-bind"       // RFC 6120 §7
	nsSASL      = "urn:ietf:params:xml:ns:xmpp-sasl"       // RFC 6120 §6
	nsTLS       = "urn:ietf:params:xml:ns:xmpp-tls"        // RFC 6120 §5
)

func xname(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }

// newStanza builds a stanza in jabber:client (it is moved to the destination stream's
// namespace when written).
func newStanza(kind, typ, id, from, to string, inner []byte) *stream.Element {
	e := &stream.Element{Name: xml.Name{Space: stream.NSClient, Local: kind}, Inner: inner}
	e.Set("type", typ)
	e.Set("id", id)
	e.Set("from", from)
	e.Set("to", to)
	return e
}

// pingPayload is the payload of an XEP-0199 ping.
func pingPayload() []byte {
	var x stream.Builder
	return x.Empty("ping", "xmlns", nsPing).B
}

// result is the iq result answering iq, from the address iq was sent to.
func result(iq *stream.Element, from string, inner []byte) *stream.Element {
	if from == "" {
		from = iq.Get("to")
	}
	return newStanza("iq", "result", iq.Get("id"), from, iq.Get("from"), inner)
}

// errorReply is the stanza error [RFC 6120 §8.3] answering e, from the address e was sent to
// unless from is set.
func errorReply(e *stream.Element, from string, se stream.StanzaError) *stream.Element {
	if from == "" {
		from = e.Get("to")
	}
	var x stream.Builder
	return newStanza(e.Name.Local, "error", e.Get("id"), from, e.Get("from"), se.Append(&x).B)
}

// bounce answers e with a stanza error, unless e must not be answered: an error never gets
// an error in reply, nor does an iq result [RFC 6120 §8.3.1].
func (s *Server) bounce(e *stream.Element, src endpoint, cond, typ string) {
	s.bounceText(e, src, cond, typ, "")
}

// bounceText is bounce with a text.
func (s *Server) bounceText(e *stream.Element, src endpoint, cond, typ, text string) {
	if !stream.Answerable(e) {
		return
	}
	src.deliver(errorReply(e, "", stream.StanzaError{Type: typ, Condition: cond, Text: text}))
}

// checkIQ returns why iq breaks RFC 6120 §8.2.3, or "" if it does not: an iq needs an id and
// a type of get, set, result or error, and a get or set has exactly one payload.
func checkIQ(iq *stream.Element) string {
	if iq.Get("id") == "" {
		return "an iq needs an 'id' [RFC 6120 §8.2.3]"
	}
	switch iq.Get("type") {
	case "get", "set":
		if n := children(iq, 2); n != 1 {
			return "an iq of type get or set carries exactly one payload element [RFC 6120 §8.2.3]"
		}
	case "result", "error":
	default:
		return "an iq's 'type' is get, set, result or error [RFC 6120 §8.2.3]"
	}
	return ""
}

// children counts the child elements of e, up to limit.
func children(e *stream.Element, limit int) int {
	if len(e.Inner) == 0 {
		return 0
	}
	d := xml.NewDecoder(bytes.NewReader(e.Bytes()))
	depth, n := 0, 0
	for n < limit {
		tok, err := d.Token()
		if err != nil {
			return n
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				n++
			}
		case xml.EndElement:
			depth--
		}
	}
	return n
}

// payload returns the name of the first child element of e (an iq's payload).
func payload(e *stream.Element) xml.Name {
	if len(e.Inner) == 0 {
		return xml.Name{}
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

// decodePayload decodes the first child of e into v.
func decodePayload(e *stream.Element, v any) error {
	d := xml.NewDecoder(bytes.NewReader(e.Bytes()))
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("no payload")
			}
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				return d.DecodeElement(v, &t)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// discoInfo is the server's XEP-0030 identity and features.
var discoInfo = []byte(`<query xmlns="` + nsDiscoInfo + `">` +
	`<identity category="server" type="im" name="Confab"/>` +
	`<feature var="` + nsDiscoInfo + `"/>` +
	`<feature var="` + nsDiscoItem + `"/>` +
	`<feature var="` + nsPing + `"/>` +
	`</query>`)

// serverStanza handles a stanza addressed to the server itself (its domain, or no address
// from a component).
func (s *Server) serverStanza(e *stream.Element, src endpoint) {
	kind, typ := e.Name.Local, e.Get("type")
	s.m.routed.WithLabelValues(kind, destServer).Inc()
	if kind != "iq" || (typ != "get" && typ != "set") {
		return // messages and presence to the server, and answers to its pings
	}
	p := payload(e)
	switch {
	case typ == "get" && p == xml.Name{Space: nsPing, Local: "ping"}:
		src.deliver(result(e, "", nil))
	case typ == "get" && p == xml.Name{Space: nsDiscoInfo, Local: "query"}:
		src.deliver(result(e, "", discoInfo))
	case typ == "get" && p == xml.Name{Space: nsDiscoItem, Local: "query"}:
		src.deliver(result(e, "", []byte(`<query xmlns="`+nsDiscoItem+`"/>`)))
	case typ == "set" && p == xml.Name{Space: nsSession, Local: "session"}:
		src.deliver(result(e, "", nil))
	default:
		src.deliver(errorReply(e, "", stream.StanzaError{Type: "cancel", Condition: "service-unavailable"}))
	}
}
