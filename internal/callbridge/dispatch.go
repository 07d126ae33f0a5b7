package callbridge

import (
	"context"

	"confab.dev/confab/internal/callbridge/media"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/stream"
)

// dispatch receives every element from the XMPP server over the link, in order (the link
// answers XEP-0199 pings itself), and hands it to its owner by the namespace of its payload
// (stream.Element.Payload: the parsed first child, as an IQ router routes by payload name):
//
//   - the login relay (urn:confab:login:1): requests go to the login workers, slow and
//     bounded; session-end notices to the login responder, inline;
//   - the media signalling (urn:confab:media:1) to the media service, inline and in order;
//   - everything else to the meeting service, inline and in order, which answers what it
//     does not understand with a stanza error.
func (b *Bridge) dispatch(ctx context.Context, c *component.Conn, e *stream.Element) {
	b.route(ctx, c, e)
}

// conn is where answers go: the link's connection (*component.Conn).
type conn interface{ Write(b []byte) error }

func (b *Bridge) route(ctx context.Context, c conn, e *stream.Element) {
	if !e.IsStanza() {
		b.log.Debug("non-stanza element from the XMPP server ignored", "element", e.Name.Local)
		return
	}
	ns := e.Payload().Space
	if ns == media.NS && b.Media != nil && b.Media.Handle(ctx, c, e) {
		return
	}
	if ns == loginrelay.NS {
		r := b.responderFor(c)
		switch e.Name.Local {
		case "iq":
			b.login(ctx, loginJob{ctx, r, c, e})
		case "message":
			r.HandleMessage(e)
		default:
			b.log.Debug("login relay element of unexpected kind ignored", "element", e.Name.Local, "from", e.Get("from"))
		}
		return
	}
	if b.Meetings.Handle(ctx, c, e) {
		return
	}
	b.log.Debug("unhandled element from the XMPP server", "element", e.Name.Local, "from", e.Get("from"), "to", e.Get("to"))
}
