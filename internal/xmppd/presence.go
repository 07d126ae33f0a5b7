package xmppd

import (
	"context"
	"errors"
	"slices"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd/roster"
)

// Rosters and presence subscriptions between the server's users [RFC 6121 §2-4], so that
// ordinary XMPP clients (Gajim, Profanity, Conversations) show each other online. Items are
// kept in Config.Roster. A session's roster work runs on its reading goroutine; no lock is
// held while the store is asked.

// rosterTimeout bounds one roster store operation.
const rosterTimeout = 5 * time.Second

func (s *Server) rosterCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, rosterTimeout)
}

// appendItem writes a roster <item/>; remove writes subscription='remove'.
func appendItem(x *stream.Builder, it roster.Item, remove bool) {
	sub := it.Subscription
	if remove {
		sub = "remove"
	}
	ask := ""
	if it.Ask && !remove {
		ask = "subscribe"
	}
	if len(it.Groups) == 0 || remove {
		x.Empty("item", "jid", it.JID, "name", it.Name, "subscription", sub, "ask", ask)
		return
	}
	x.Open("item", "jid", it.JID, "name", it.Name, "subscription", sub, "ask", ask)
	for _, g := range it.Groups {
		x.Elem("group", g)
	}
	x.End("item")
}

// rosterGet answers a roster get with the items the user's clients listed.
func (ss *session) rosterGet(e *stream.Element) {
	s := ss.srv
	ctx, cancel := s.rosterCtx()
	defer cancel()
	items, err := s.cfg.Roster.Items(ctx, ss.bare)
	if err != nil {
		ss.log.Warn("roster get failed", "err", err)
		ss.deliver(errorReply(e, "", stream.StanzaError{Type: stream.ErrWait, Condition: "internal-server-error"}))
		return
	}
	x := stream.Builder{}
	x.Open("query", "xmlns", nsRoster)
	for _, it := range items {
		if it.Listed {
			appendItem(&x, it, false)
		}
	}
	x.End("query")
	ss.deliver(result(e, "", x.B))
}

// rosterSet stores or removes one item and pushes it to the user's sessions [RFC 6121
// §2.3, §2.5].
func (ss *session) rosterSet(e *stream.Element) {
	s := ss.srv
	var q struct {
		Items []struct {
			JID          string   `xml:"jid,attr"`
			Name         string   `xml:"name,attr"`
			Subscription string   `xml:"subscription,attr"`
			Groups       []string `xml:"group"`
		} `xml:"jabber:iq:roster item"`
	}
	bad := func(text string) {
		ss.deliver(errorReply(e, "", stream.StanzaError{Type: stream.ErrModify, Condition: "bad-request", Text: text}))
	}
	if err := decodePayload(e, &q); err != nil || len(q.Items) != 1 {
		bad("a roster set carries exactly one item [RFC 6121 §2.3.3]")
		return
	}
	in := q.Items[0]
	j, err := jid.Parse(in.JID)
	if err != nil || j.Resourcepart() != "" {
		bad("the item's jid must be a bare JID")
		return
	}
	contact := j.String()
	ctx, cancel := s.rosterCtx()
	defer cancel()
	it, err := s.cfg.Roster.Item(ctx, ss.bare, contact)
	if err != nil && !errors.Is(err, roster.ErrNotFound) {
		ss.log.Warn("roster set failed", "err", err)
		ss.deliver(errorReply(e, "", stream.StanzaError{Type: stream.ErrWait, Condition: "internal-server-error"}))
		return
	}
	if in.Subscription == "remove" {
		if err == nil {
			// Cancel both directions, as RFC 6121 §2.5.2 asks.
			if it.HasTo() || it.Ask {
				ss.subscription("unsubscribe", contact)
			}
			if it.HasFrom() || it.PendingIn {
				ss.subscription("unsubscribed", contact)
			}
			if err := s.cfg.Roster.Delete(ctx, ss.bare, contact); err != nil {
				ss.log.Warn("roster remove failed", "err", err)
			}
		}
		ss.deliver(result(e, "", nil))
		s.rosterPush(ss.bare, roster.Item{JID: contact}, true)
		return
	}
	if errors.Is(err, roster.ErrNotFound) {
		it = roster.Item{JID: contact, Subscription: roster.None}
	}
	it.Name, it.Groups, it.Listed = in.Name, slices.Compact(in.Groups), true
	if err := s.cfg.Roster.Put(ctx, ss.bare, it); err != nil {
		ss.log.Warn("roster set failed", "err", err)
		ss.deliver(errorReply(e, "", stream.StanzaError{Type: stream.ErrWait, Condition: "internal-server-error"}))
		return
	}
	ss.deliver(result(e, "", nil))
	s.rosterPush(ss.bare, it, false)
}

// rosterPush sends an item's new state to every session of owner [RFC 6121 §2.1.6].
func (s *Server) rosterPush(owner string, it roster.Item, remove bool) {
	x := stream.Builder{}
	x.Open("query", "xmlns", nsRoster)
	appendItem(&x, it, remove)
	x.End("query")
	for _, t := range s.router.userSessions(owner, false) {
		if full := t.fullJID.Load(); full != nil {
			t.deliver(newStanza("iq", "set", "push-"+newID()[:12], "", *full, x.B))
		}
	}
}

// isLocalUser says whether to is the bare JID of a user of this server.
func (s *Server) isLocalUser(to string) bool {
	j, err := jid.Parse(to)
	return err == nil && j.Domainpart() == s.domain && j.Localpart() != "" && j.Resourcepart() == ""
}

// sendPresence delivers a presence of type typ (or available if empty, with the stanza's
// inner content) from from to every available session of the local user to.
func (s *Server) sendPresence(typ, from, to string, inner []byte) {
	for _, t := range s.router.userSessions(to, false) {
		if full := t.fullJID.Load(); full != nil && (t.available.Load() || typ == "subscribe") {
			t.deliver(newStanza("presence", typ, "", from, *full, inner))
		}
	}
}

// subscription handles a subscription stanza the user sent to a local contact [RFC 6121
// §3]: both rosters are updated and pushed, the contact is told, and presence follows.
func (ss *session) subscription(typ, contact string) {
	s := ss.srv
	ctx, cancel := s.rosterCtx()
	defer cancel()
	get := func(owner, other string) roster.Item {
		it, err := s.cfg.Roster.Item(ctx, owner, other)
		if err != nil {
			it = roster.Item{JID: other, Subscription: roster.None}
		}
		return it
	}
	put := func(owner string, it roster.Item) {
		if err := s.cfg.Roster.Put(ctx, owner, it); err != nil {
			ss.log.Warn("roster update failed", "owner", owner, "contact", it.JID, "err", err)
			return
		}
		if it.Listed {
			s.rosterPush(owner, it, false)
		}
	}
	mine, theirs := get(ss.bare, contact), get(contact, ss.bare)
	switch typ {
	case "subscribe":
		if !mine.HasTo() {
			mine.Ask, mine.Listed = true, true
			put(ss.bare, mine)
		}
		if theirs.HasFrom() {
			// Already approved: the contact's server answers for it [RFC 6121 §3.1.3].
			mine.Ask = false
			mine.Subscription = roster.With(true, mine.HasFrom())
			put(ss.bare, mine)
			s.sendPresence("subscribed", contact, ss.bare, nil)
			s.presenceOf(contact, ss.bare)
			return
		}
		theirs.PendingIn = true
		put(contact, theirs)
		s.sendPresence("subscribe", ss.bare, contact, nil)
	case "subscribed":
		if !theirs.Ask && !mine.PendingIn {
			return // nothing asked [RFC 6121 §3.1.5]
		}
		mine.PendingIn, mine.Listed = false, true
		mine.Subscription = roster.With(mine.HasTo(), true)
		put(ss.bare, mine)
		theirs.Ask, theirs.Listed = false, true
		theirs.Subscription = roster.With(true, theirs.HasFrom())
		put(contact, theirs)
		s.sendPresence("subscribed", ss.bare, contact, nil)
		s.presenceOf(ss.bare, contact)
	case "unsubscribe":
		if mine.HasTo() || mine.Ask {
			mine.Ask = false
			mine.Subscription = roster.With(false, mine.HasFrom())
			put(ss.bare, mine)
		}
		if theirs.HasFrom() || theirs.PendingIn {
			theirs.PendingIn = false
			theirs.Subscription = roster.With(theirs.HasTo(), false)
			put(contact, theirs)
			s.sendPresence("unsubscribe", ss.bare, contact, nil)
			s.unavailableOf(contact, ss.bare)
		}
	case "unsubscribed":
		if mine.HasFrom() || mine.PendingIn {
			mine.PendingIn = false
			mine.Subscription = roster.With(mine.HasTo(), false)
			put(ss.bare, mine)
		}
		if theirs.HasTo() || theirs.Ask {
			theirs.Ask = false
			theirs.Subscription = roster.With(false, theirs.HasFrom())
			put(contact, theirs)
			s.sendPresence("unsubscribed", ss.bare, contact, nil)
			s.unavailableOf(ss.bare, contact)
		}
	}
}

// presenceOf sends the current presence of each available session of owner to every
// available session of to.
func (s *Server) presenceOf(owner, to string) {
	for _, o := range s.router.userSessions(owner, true) {
		if p := o.lastPresence.Load(); p != nil {
			if full := o.fullJID.Load(); full != nil {
				s.sendPresence("", *full, to, *p)
			}
		}
	}
}

// unavailableOf sends unavailable presence from each session of owner to the sessions of to.
func (s *Server) unavailableOf(owner, to string) {
	for _, o := range s.router.userSessions(owner, false) {
		if full := o.fullJID.Load(); full != nil {
			s.sendPresence("unavailable", *full, to, nil)
		}
	}
}

// broadcastPresence sends the user's broadcast presence (available, with its content, or
// unavailable) to the contacts subscribed to it and to the user's other sessions [RFC 6121
// §4.2.2, §4.4.2]; on the first available presence of a session, it also sends the session
// the presence of the contacts it is subscribed to, and the subscription requests waiting
// for the user [RFC 6121 §4.2.3, §3.1.3].
func (ss *session) broadcastPresence(typ string, inner []byte, initial bool) {
	s := ss.srv
	ctx, cancel := s.rosterCtx()
	defer cancel()
	items, err := s.cfg.Roster.Items(ctx, ss.bare)
	if err != nil {
		ss.log.Warn("presence broadcast: roster unavailable", "err", err)
	}
	for _, it := range items {
		if it.HasFrom() {
			s.sendPresence(typ, ss.full, it.JID, inner)
		}
	}
	for _, o := range s.router.userSessions(ss.bare, false) {
		if o != ss && o.available.Load() {
			if full := o.fullJID.Load(); full != nil {
				o.deliver(newStanza("presence", typ, "", ss.full, *full, inner))
			}
		}
	}
	if !initial {
		return
	}
	for _, it := range items {
		if it.HasTo() {
			for _, o := range s.router.userSessions(it.JID, true) {
				if p := o.lastPresence.Load(); p != nil {
					if full := o.fullJID.Load(); full != nil {
						ss.deliver(newStanza("presence", "", "", *full, ss.full, *p))
					}
				}
			}
		}
		if it.PendingIn {
			ss.deliver(newStanza("presence", "subscribe", "", it.JID, ss.bare, nil))
		}
	}
	for _, o := range s.router.userSessions(ss.bare, true) {
		if o != ss {
			if p := o.lastPresence.Load(); p != nil {
				if full := o.fullJID.Load(); full != nil {
					ss.deliver(newStanza("presence", "", "", *full, ss.full, *p))
				}
			}
		}
	}
}

// rosterIQ reports whether e is a roster query, and answers it.
func (ss *session) rosterIQ(e *stream.Element, typ string) bool {
	if payload(e) != xname(nsRoster, "query") {
		return false
	}
	switch typ {
	case "get":
		ss.rosterGet(e)
	case "set":
		ss.rosterSet(e)
	}
	return true
}
