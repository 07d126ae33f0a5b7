package xmppd

import (
	"sync"

	"confab.dev/confab/internal/stream"
	"mellium.im/xmpp/jid"
)

// Routing destinations, as labelled in metrics.
const (
	destClient      = "client"
	destComponent   = "component"
	destServer      = "server"
	destUnavailable = "unavailable"
)

// endpoint is where a stanza can be delivered: a client session or a component link.
type endpoint interface {
	// deliver queues e for the peer without blocking; a peer whose queue is full is
	// disconnected.
	deliver(e *stream.Element)
}

// router maps addresses to the sessions and links that serve them.
type router struct {
	mu         sync.RWMutex
	sessions   map[string]map[string]*session // bare JID -> resource -> session
	components map[string]*componentSession   // component JID -> its stream
}

func (r *router) init() {
	r.sessions = make(map[string]map[string]*session)
	r.components = make(map[string]*componentSession)
}

// bind registers s under its full JID and returns the session it replaces, if any.
func (r *router) bind(s *session) (old *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.sessions[s.bare]
	if res == nil {
		res = make(map[string]*session)
		r.sessions[s.bare] = res
	}
	old = res[s.resource]
	res[s.resource] = s
	return old
}

// unbind removes s, if it is still the session of its full JID.
func (r *router) unbind(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.sessions[s.bare]
	if res[s.resource] != s {
		return
	}
	delete(res, s.resource)
	if len(res) == 0 {
		delete(r.sessions, s.bare)
	}
}

// resourceTaken reports whether a session is bound to bare/resource.
func (r *router) resourceTaken(bare, resource string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.sessions[bare][resource]
	return ok
}

func (r *router) session(bare, resource string) *session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sessions[bare][resource]
}

// userSessions returns the sessions of a bare JID; only the available ones if available.
func (r *router) userSessions(bare string, available bool) []*session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*session
	for _, s := range r.sessions[bare] {
		if !available || s.available.Load() {
			out = append(out, s)
		}
	}
	return out
}

// addComponent registers l. If a link with the same JID is connected, it is replaced and
// returned (replace), or l is not registered and the connected link is returned.
func (r *router) addComponent(l *componentSession, replace bool) (existing *componentSession, added bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	existing = r.components[l.jid]
	if existing != nil && !replace {
		return existing, false
	}
	r.components[l.jid] = l
	return existing, true
}

// removeComponent removes l if it is still the link of its JID, and reports whether it was.
func (r *router) removeComponent(l *componentSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.components[l.jid] == l {
		delete(r.components, l.jid)
		return true
	}
	return false
}

// allSessions returns every bound session.
func (r *router) allSessions() []*session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*session
	for _, res := range r.sessions {
		for _, s := range res {
			out = append(out, s)
		}
	}
	return out
}

func (r *router) component(domain string) *componentSession {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.components[domain]
}

func (r *router) allComponents() []*componentSession {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*componentSession, 0, len(r.components))
	for _, l := range r.components {
		out = append(out, l)
	}
	return out
}

// route delivers e, whose from is already stamped, on behalf of src. The server's own
// addresses are handled by s.serverStanza; unknown targets get service-unavailable [RFC 6120
// §8.3.3.19] (never in answer to an error, nor to an iq result) and presence to them is
// dropped.
func (s *Server) route(e *stream.Element, src endpoint) {
	kind := e.Name.Local
	to := e.Get("to")
	if to == "" {
		s.serverStanza(e, src)
		return
	}
	j, err := jid.Parse(to)
	if err != nil {
		s.m.routed.WithLabelValues(kind, destUnavailable).Inc()
		s.bounce(e, src, "jid-malformed", "modify")
		return
	}
	switch domain := j.Domainpart(); {
	case domain == s.domain && j.Localpart() == "":
		s.serverStanza(e, src)
	case domain == s.domain:
		s.routeLocal(e, j, src)
	default:
		l := s.router.component(domain)
		if l == nil {
			s.m.routed.WithLabelValues(kind, destUnavailable).Inc()
			s.bounce(e, src, "service-unavailable", "cancel")
			return
		}
		ss, fromClient := src.(*session)
		if !fromClient {
			s.m.routed.WithLabelValues(kind, destComponent).Inc()
			l.deliver(e)
			return
		}
		if err := l.deliverFrom(e, ss); err != nil {
			s.m.refused.WithLabelValues("component-queue").Inc()
			s.bounceText(e, src, "resource-constraint", "wait", "the service is busy; try again later")
			return
		}
		s.m.routed.WithLabelValues(kind, destComponent).Inc()
	}
}

// routeLocal delivers to a user of this server [RFC 6121 §8.5].
func (s *Server) routeLocal(e *stream.Element, to jid.JID, src endpoint) {
	kind, typ := e.Name.Local, e.Get("type")
	bare := to.Bare().String()
	if res := to.Resourcepart(); res != "" {
		if t := s.router.session(bare, res); t != nil {
			s.m.routed.WithLabelValues(kind, destClient).Inc()
			t.deliver(e)
			return
		}
		// No such resource: a chat or normal message goes to the bare JID [RFC 6121
		// §8.5.3.2.1]; anything else is refused (iq) or dropped (presence, other messages).
		if kind != "message" || !(typ == "" || typ == "normal" || typ == "chat") {
			s.m.routed.WithLabelValues(kind, destUnavailable).Inc()
			if kind != "presence" {
				s.bounce(e, src, "service-unavailable", "cancel")
			}
			return
		}
	}
	switch kind {
	case "message":
		targets := s.router.userSessions(bare, true)
		if len(targets) == 0 {
			s.m.routed.WithLabelValues(kind, destUnavailable).Inc()
			s.bounce(e, src, "service-unavailable", "cancel")
			return
		}
		s.m.routed.WithLabelValues(kind, destClient).Inc()
		for _, t := range targets {
			t.deliver(e)
		}
	case "presence":
		targets := s.router.userSessions(bare, false)
		if len(targets) == 0 {
			s.m.routed.WithLabelValues(kind, destUnavailable).Inc()
			return
		}
		s.m.routed.WithLabelValues(kind, destClient).Inc()
		for _, t := range targets {
			t.deliver(e)
		}
	default: // an iq to a bare JID is the server's to answer on the user's behalf
		s.m.routed.WithLabelValues(kind, destServer).Inc()
		s.bounce(e, src, "service-unavailable", "cancel")
	}
}
