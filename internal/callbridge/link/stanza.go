package link

import (
	"strconv"
	"strings"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// NSPing is the XEP-0199 namespace.
const NSPing = "urn:xmpp:ping"

// pingPrefix starts the id of the Link's own pings, so that their answers are recognised.
const pingPrefix = "confab-keepalive-"

func domainOf(cfg store.XMPPConfig) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(cfg.Domain), "."))
}

// pingIQ is an XEP-0199 ping from the component to the server's domain.
func pingIQ(from, to string, seq uint64) []byte {
	b := []byte(`<iq type="get" id="` + pingPrefix + strconv.FormatUint(seq, 10) + `" from="`)
	b = stream.AppendEscaped(b, from)
	b = append(b, `" to="`...)
	b = stream.AppendEscaped(b, to)
	return append(b, `"><ping xmlns="`+NSPing+`"/></iq>`...)
}

// isPingResult reports whether e answers one of the Link's pings. An error answer counts
// too: a server without XEP-0199 that answers service-unavailable is alive.
func isPingResult(e *stream.Element) bool {
	t := e.Get("type")
	return (t == "result" || t == "error") && strings.HasPrefix(e.Get("id"), pingPrefix)
}

// isPingRequest reports whether e is an XEP-0199 ping.
func isPingRequest(e *stream.Element) bool {
	if e.Get("type") != "get" {
		return false
	}
	var v struct {
		Ping *struct{} `xml:"urn:xmpp:ping ping"`
	}
	if err := e.Decode(&v); err != nil {
		return false
	}
	return v.Ping != nil
}

// iqResult is the empty result answering the IQ request e.
func iqResult(e *stream.Element) []byte {
	return appendReplyStart(nil, e, "result", true)
}

// iqError answers the IQ request e with a stanza error.
func iqError(e *stream.Element, typ, condition string) []byte {
	b := appendReplyStart(nil, e, "error", false)
	b = append(b, `<error type="`...)
	b = stream.AppendEscaped(b, typ)
	b = append(b, `"><`...)
	b = append(b, condition...)
	b = append(b, ` xmlns="`+stream.NSStanzaErr+`"/></error></iq>`...)
	return b
}

// appendReplyStart writes the start tag of a reply to the IQ e, with from and to swapped;
// empty closes it at once.
func appendReplyStart(b []byte, e *stream.Element, typ string, empty bool) []byte {
	b = append(b, `<iq type="`...)
	b = append(b, typ...)
	b = append(b, '"')
	for _, a := range [...][2]string{{"id", e.Get("id")}, {"from", e.Get("to")}, {"to", e.Get("from")}} {
		if a[1] == "" {
			continue
		}
		b = append(b, ' ')
		b = append(b, a[0]...)
		b = append(b, `="`...)
		b = stream.AppendEscaped(b, a[1])
		b = append(b, '"')
	}
	if empty {
		return append(b, "/>"...)
	}
	return append(b, '>')
}
