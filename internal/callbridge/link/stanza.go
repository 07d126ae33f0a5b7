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

func domainOf(cfg store.XMPPSettings) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(cfg.Domain), "."))
}

// pingIQ is an XEP-0199 ping from the component to the server's domain.
func pingIQ(from, to string, seq uint64) []byte {
	var x stream.Builder
	x.Open("iq", "type", "get", "id", pingPrefix+strconv.FormatUint(seq, 10), "from", from, "to", to)
	return x.Empty("ping", "xmlns", NSPing).End("iq").B
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
