package xmppd

// A bound session's stanzas [RFC 6120 §8]: what the client sends, checked, limited and routed.

import (
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/stream"
)

// serveStanzas reads stanzas until the stream ends [RFC 6120 §8].
func (ss *session) serveStanzas() error {
	for {
		e, err := ss.t.next(time.Time{}) // silence is watched by the session's timer
		if err != nil {
			return err
		}
		if err := ss.handle(e); err != nil {
			return err
		}
	}
}

func (ss *session) handle(e *stream.Element) error {
	if isStreamError(e) {
		ss.log.Info("client sent a stream error", "error", e.String())
		return errPeerError
	}
	if e.Name.Space == nsSM {
		return ss.smElement(e)
	}
	if !e.IsStanza() || e.Name.Space != stream.NSClient {
		return &stream.Error{Condition: stream.UnsupportedStanza, Text: "<" + e.Name.Local + "/> is not a stanza of jabber:client"}
	}
	// The server stamps the sender's full JID [RFC 6120 §8.1.2.1]; a client may write its own
	// full or bare JID, nothing else.
	if from := e.Get("from"); from != "" {
		j, err := jid.Parse(from)
		if err != nil || (j.String() != ss.full && j.String() != ss.bare) {
			return &stream.Error{Condition: stream.InvalidFrom, Text: "'from' must be your own address, " + ss.full}
		}
	}
	ss.out.handled()
	e.Set("from", ss.full)
	to := e.Get("to")
	if to != "" {
		if j, err := jid.Parse(to); err == nil {
			to = j.String()
			e.Set("to", to)
		}
	}
	switch e.Name.Local {
	case "presence":
		if to == "" && !ss.rate.take(ss.srv.mono()) {
			// Broadcast presence fans out to every contact: it counts against the limit.
			ss.srv.m.refused.WithLabelValues("sender-rate").Inc()
			ss.srv.bounceText(e, ss, "policy-violation", "wait", "too many stanzas; slow down")
			return nil
		}
		ss.presence(e, to)
		if to == "" {
			return nil // broadcast presence: sent to the contacts by presence()
		}
	case "iq":
		if text := checkIQ(e); text != "" {
			ss.deliver(errorReply(e, "", stream.StanzaError{Type: "modify", Condition: "bad-request", Text: text}))
			return nil
		}
		if to == "" || to == ss.bare {
			ss.accountIQ(e)
			return nil
		}
	case "message":
		if to == "" {
			e.Set("to", ss.bare) // a message without 'to' is for the sender's own account
		}
	}
	if ss.guest && !ss.guestMayAddress(e, to) {
		ss.srv.m.refused.WithLabelValues("guest").Inc()
		ss.srv.bounceText(e, ss, "forbidden", "auth", "a guest may address only its meeting's Call Bridge")
		return nil
	}
	if !ss.mayRoute(e, to) {
		return nil
	}
	if e.Name.Local == "presence" {
		switch typ := e.Get("type"); typ {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			// Subscriptions between users of this server: handled here, on both rosters.
			if j, err := jid.Parse(to); err == nil && ss.srv.isLocalUser(j.Bare().String()) {
				ss.subscription(typ, j.Bare().String())
				return nil
			}
		case "probe":
			return nil // the server answers probes itself, at initial presence
		}
	}
	ss.srv.route(e, ss)
	return nil
}

// guestMayAddress says whether a guest may send e to: the server, its own account, and the
// Call Bridge that authenticated it (its domain and the addresses at it: its meeting's space
// and participants, which the Call Bridge itself admits or refuses). Errors and iq results
// are answers and may go anywhere. Anything else, any user by bare or full JID or another
// component, is refused.
func (ss *session) guestMayAddress(e *stream.Element, to string) bool {
	switch typ := e.Get("type"); {
	case typ == "error", typ == "result" && e.Name.Local == "iq":
		return true
	}
	if to == "" || to == ss.srv.domain || to == ss.bare || strings.HasPrefix(to, ss.bare+"/") {
		return true
	}
	if ss.cb == nil {
		return false
	}
	j, err := jid.Parse(to)
	return err == nil && j.Domainpart() == ss.cb.JID()
}

// mayRoute applies the sender's limit to a stanza for someone else (the server and the
// sender's own account are not limited): over it, the stanza is refused with
// policy-violation and the flood is logged once in a while.
func (ss *session) mayRoute(e *stream.Element, to string) bool {
	s := ss.srv
	if to == "" || to == s.domain || to == ss.bare || strings.HasPrefix(to, ss.bare+"/") {
		return true
	}
	if ss.rate.take(s.mono()) {
		return true
	}
	s.m.refused.WithLabelValues("sender-rate").Inc()
	s.limitLog.warn(s.log, "sender-rate:"+ss.bare, "client over its stanza rate; stanzas refused with policy-violation",
		"user", ss.bare, "jid", ss.full, "rate_per_second", s.cfg.SenderRate, "burst", s.cfg.SenderBurst)
	s.bounceText(e, ss, "policy-violation", "wait", fmt.Sprintf("too many stanzas: at most %g a second; slow down", s.cfg.SenderRate))
	return false
}

// presence tracks the session's availability and its directed presence [RFC 6121 §4.6].
func (ss *session) presence(e *stream.Element, to string) {
	typ := e.Get("type")
	if to == "" {
		switch typ {
		case "":
			inner := e.Inner
			ss.lastPresence.Store(&inner)
			initial := !ss.available.Swap(true)
			ss.broadcastPresence("", inner, initial)
		case "unavailable":
			ss.lastPresence.Store(nil)
			if ss.available.Swap(false) {
				ss.broadcastPresence("unavailable", e.Inner, false)
			}
		}
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch typ {
	case "":
		if ss.directed == nil {
			ss.directed = make(map[string]struct{})
		}
		ss.directed[to] = struct{}{}
	case "unavailable":
		delete(ss.directed, to)
	}
}

// accountIQ answers an iq the client sent to its own account (no 'to', or its bare JID).
func (ss *session) accountIQ(e *stream.Element) {
	typ := e.Get("type")
	if typ != "get" && typ != "set" {
		return // answers to the server's pings
	}
	if ss.rosterIQ(e, typ) {
		return
	}
	ss.srv.serverStanza(e, ss)
}
