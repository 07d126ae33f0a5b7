package webadmin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Longest values the form accepts; the store and the link validate the rest.
const (
	maxName    = 63
	maxDomain  = 253
	maxAddress = 300
	maxSecret  = 1024
)

// confirmSettings is a change of the XMPP settings that would end live calls, waiting for
// the administrator's second confirmation. It is kept on the server, never in the page,
// because it may hold the new shared secret.
type confirmSettings struct {
	Token        string
	Calls        int
	Participants int
	Changed      []string // what changes, in words: "the unique name", ...

	session               string
	uniqueName, domain    string
	serverAddressOverride string
	secret                *string
	expires               time.Time
}

// pendingSettings are the changes waiting for a confirmation, by token.
type pendingSettings struct {
	mu sync.Mutex
	m  map[string]*confirmSettings
}

const (
	pendingTTL = 10 * time.Minute
	maxPending = 256
)

func (p *pendingSettings) put(c *confirmSettings, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*confirmSettings{}
	}
	for k, v := range p.m {
		if now.After(v.expires) || v.session == c.session {
			delete(p.m, k) // one pending change per session
		}
	}
	if len(p.m) >= maxPending {
		for k := range p.m {
			delete(p.m, k)
			break
		}
	}
	c.expires = now.Add(pendingTTL)
	p.m[c.Token] = c
}

// take removes and returns the session's pending change with that token.
func (p *pendingSettings) take(token, session string, now time.Time) *confirmSettings {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.m[token]
	if c == nil || c.session != session {
		return nil
	}
	delete(p.m, token)
	if now.After(c.expires) {
		return nil
	}
	return c
}

func (s *server) saveGeneral(w http.ResponseWriter, r *http.Request, sess *session) {
	f := r.PostForm
	ctx, cancel := reqCtx(r)
	defer cancel()
	if token := f.Get("confirm"); token != "" {
		c := s.pending.take(token, sess.id, s.now())
		if c == nil {
			body := generalBody{Errors: map[string]string{}, Error: "That confirmation has expired: check the settings and save again."}
			if x, err := s.b.XMPPSettings(ctx); err == nil {
				body.UniqueName, body.Domain, body.ServerAddressOverride, body.SecretSet = x.UniqueName, x.Domain, x.ServerAddressOverride, x.SecretSet
			}
			s.render(w, r, http.StatusConflict, "general.html", s.page(sess, "configuration", "Configuration: General", body))
			return
		}
		body := generalBody{UniqueName: c.uniqueName, Domain: c.domain, ServerAddressOverride: c.serverAddressOverride, Errors: map[string]string{}}
		s.applyGeneral(w, r, sess, body, c.secret)
		return
	}
	body := generalBody{
		UniqueName:            strings.TrimSpace(f.Get("uniqueName")),
		Domain:                strings.TrimSpace(f.Get("domain")),
		ServerAddressOverride: strings.TrimSpace(f.Get("serverAddressOverride")),
		Errors:                map[string]string{},
	}
	var newSecret *string
	if sec := f.Get("sharedSecret"); sec != "" {
		newSecret = &sec
		if f.Get("confirmSharedSecret") != sec {
			body.Errors["confirmSharedSecret"] = "The shared secrets differ: type the same secret in both fields"
		}
	} else if f.Get("confirmSharedSecret") != "" {
		body.Errors["sharedSecret"] = "Type the new shared secret here too, or empty both fields to keep the secret"
	} else if f.Get("clearSecret") == "1" {
		empty := ""
		newSecret = &empty
	}
	check := func(field, v string, max int, what string) {
		switch {
		case len(v) > max:
			body.Errors[field] = fmt.Sprintf("%s can have at most %d characters", what, max)
		case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			body.Errors[field] = what + " cannot contain spaces"
		}
	}
	check("uniqueName", body.UniqueName, maxName, "The unique name")
	check("domain", body.Domain, maxDomain, "The domain")
	check("serverAddressOverride", body.ServerAddressOverride, maxAddress, "The server address")
	if newSecret != nil && len(*newSecret) > maxSecret {
		body.Errors["sharedSecret"] = fmt.Sprintf("The shared secret can have at most %d characters", maxSecret)
	}
	if len(body.Errors) > 0 {
		s.generalAgain(w, r, sess, body)
		return
	}
	// A change that drops the link ends every call: say so first, and how many.
	cur, err := s.b.XMPPSettings(ctx)
	if err == nil {
		var changed []string
		if body.UniqueName != cur.UniqueName {
			changed = append(changed, "the unique Call Bridge name")
		}
		if body.Domain != cur.Domain {
			changed = append(changed, "the domain")
		}
		if body.ServerAddressOverride != cur.ServerAddressOverride {
			changed = append(changed, "the server address")
		}
		if newSecret != nil && (*newSecret != "" || cur.SecretSet) {
			changed = append(changed, "the shared secret")
		}
		calls, cerr := s.b.Calls(ctx)
		if len(changed) > 0 && cerr == nil && len(calls) > 0 {
			c := &confirmSettings{Token: randomToken(), Calls: len(calls), Changed: changed, session: sess.id,
				uniqueName: body.UniqueName, domain: body.Domain, serverAddressOverride: body.ServerAddressOverride, secret: newSecret}
			for _, call := range calls {
				c.Participants += len(call.Participants)
			}
			s.pending.put(c, s.now())
			body.Confirm = c
			body.SecretSet = cur.SecretSet
			s.render(w, r, http.StatusConflict, "general.html", s.page(sess, "configuration", "Configuration: General", body))
			return
		}
	}
	s.applyGeneral(w, r, sess, body, newSecret)
}

// applyGeneral saves checked settings, or shows the form again with the Backend's error.
func (s *server) applyGeneral(w http.ResponseWriter, r *http.Request, sess *session, body generalBody, newSecret *string) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.b.SetXMPPSettings(ctx, body.UniqueName, body.Domain, body.ServerAddressOverride, newSecret)
	var fe *FieldError
	switch {
	case err == nil:
		s.log.Info("web admin: XMPP settings saved", "user", sess.user, "unique_name", body.UniqueName,
			"domain", body.Domain, "server_address_override", body.ServerAddressOverride, "secret_changed", newSecret != nil)
		http.Redirect(w, r, "/admin/configuration/general?saved=1", http.StatusSeeOther)
		return
	case errors.As(err, &fe):
		body.Errors[fe.Field] = fe.Message
	default:
		s.log.Error("web admin: save XMPP settings", "user", sess.user, "err", err)
		body.Error = "The settings could not be saved: " + err.Error()
	}
	s.generalAgain(w, r, sess, body)
}

// generalAgain shows the form again with what was typed (never the secret) and the
// current state of the stored secret.
func (s *server) generalAgain(w http.ResponseWriter, r *http.Request, sess *session, body generalBody) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	if x, err := s.b.XMPPSettings(ctx); err == nil {
		body.SecretSet = x.SecretSet
	}
	code := http.StatusUnprocessableEntity
	if body.Error != "" {
		code = http.StatusInternalServerError
	}
	s.render(w, r, code, "general.html", s.page(sess, "configuration", "Configuration: General", body))
}
