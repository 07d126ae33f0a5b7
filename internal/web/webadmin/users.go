package webadmin

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// ---- Users: local users and their passwords -----------------------------------------

type usersBody struct {
	Items  []UserView
	Error  string
	Form   formState // add a local user
	Notice string
}

const minPassword = 8

var userWhat = map[string]string{"username": "a username, e.g. alice", "password": "a password", "confirmPassword": "the password again"}

func (s *server) usersPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.renderUsers(w, r, sess, http.StatusOK, usersBody{Form: newForm(), Notice: notice(r)})
}

func (s *server) renderUsers(w http.ResponseWriter, r *http.Request, sess *session, code int, body usersBody) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	u, err := s.b.Users(ctx)
	sort.SliceStable(u, func(i, j int) bool { return u[i].JID < u[j].JID })
	body.Items = u
	if err != nil {
		s.log.Error("web admin: list users", "err", err)
		body.Error = "The list could not be read: " + err.Error()
		code = http.StatusInternalServerError
	}
	s.render(w, r, code, "users.html", s.page(sess, "users", "Users", body))
}

// passwordPair checks a new password and its confirmation.
func passwordPair(f formState, r *http.Request) string {
	pw := r.PostForm.Get("password")
	if pw == "" {
		f.Errors["password"] = "Enter a password"
	} else if len([]rune(pw)) < minPassword {
		f.Errors["password"] = "Use at least 8 characters"
	} else if len(pw) > 1024 {
		f.Errors["password"] = "Use at most 1024 characters"
	}
	if pw != "" && r.PostForm.Get("confirmPassword") != pw {
		f.Errors["confirmPassword"] = "The two passwords differ: type the same password twice"
	}
	return pw
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request, sess *session) {
	f := newForm()
	f.take(r, "username", "name", "email")
	f.need(userWhat, "username")
	f.limit(256, "username", "name", "email")
	pw := passwordPair(f, r)
	code := http.StatusUnprocessableEntity
	if !f.failed() {
		ctx, cancel := reqCtx(r)
		defer cancel()
		err := s.b.CreateUser(ctx, NewUser{Username: f.V("username"), Name: f.V("name"), Email: f.V("email"), Password: pw})
		if err == nil {
			s.log.Info("web admin: local user created", "user", sess.user, "username", f.V("username"))
			http.Redirect(w, r, "/admin/users?done=user-created", http.StatusSeeOther)
			return
		}
		code = f.backendError(err, "username", "name", "email", "password")
	}
	s.renderUsers(w, r, sess, code, usersBody{Form: f})
}

type passwordBody struct {
	User   UserView
	Form   formState
	Notice string
}

// findUser returns the user of the request's {id}.
func (s *server) findUser(w http.ResponseWriter, r *http.Request) (UserView, bool) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	us, err := s.b.Users(ctx)
	if err != nil {
		http.Error(w, "the users could not be read: "+err.Error(), http.StatusInternalServerError)
		return UserView{}, false
	}
	for _, u := range us {
		if u.ID == r.PathValue("id") {
			return u, true
		}
	}
	s.notFound(w, r)
	return UserView{}, false
}

func (s *server) passwordPage(w http.ResponseWriter, r *http.Request, sess *session) {
	u, ok := s.findUser(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "password.html", s.page(sess, "users", "Reset password", passwordBody{User: u, Form: newForm()}))
}

func (s *server) setPassword(w http.ResponseWriter, r *http.Request, sess *session) {
	u, ok := s.findUser(w, r)
	if !ok {
		return
	}
	f := newForm()
	pw := passwordPair(f, r)
	code := http.StatusUnprocessableEntity
	if u.Source != "local" {
		f.Error = "The password of a user imported from LDAP is the directory's: change it there."
	}
	if !f.failed() {
		ctx, cancel := reqCtx(r)
		defer cancel()
		err := s.b.SetPassword(ctx, u.ID, pw)
		if err == nil {
			s.log.Info("web admin: password reset", "user", sess.user, "jid", u.JID)
			http.Redirect(w, r, "/admin/users?done=password-set", http.StatusSeeOther)
			return
		}
		code = f.backendError(err, "password")
	}
	s.render(w, r, code, "password.html", s.page(sess, "users", "Reset password", passwordBody{User: u, Form: f}))
}

// ---- LDAP: servers, mappings, sources, syncs ----------------------------------------

type ldapBody struct {
	LDAP    LDAPView
	Error   string
	Server  formState
	Mapping formState
	Source  formState
	Sync    formState
	Notice  string
	// Running is true while a sync is pending or in progress: the page refreshes itself.
	Running bool
}

func newLDAPBody() ldapBody {
	b := ldapBody{Server: newForm(), Mapping: newForm(), Source: newForm(), Sync: newForm()}
	b.Server.Values["port"] = "389"
	b.Mapping.Values["jid"] = "$uid$@example.com"
	b.Mapping.Values["name"] = "$cn$"
	b.Mapping.Values["email"] = "$mail$"
	return b
}

func (s *server) ldapPage(w http.ResponseWriter, r *http.Request, sess *session) {
	b := newLDAPBody()
	b.Notice = notice(r)
	s.renderLDAP(w, r, sess, http.StatusOK, b)
}

func (s *server) renderLDAP(w http.ResponseWriter, r *http.Request, sess *session, code int, body ldapBody) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	v, err := s.b.LDAP(ctx)
	body.LDAP = v
	if err != nil {
		s.log.Error("web admin: read LDAP configuration", "err", err)
		body.Error = "The LDAP configuration could not be read: " + err.Error()
		code = http.StatusInternalServerError
	}
	for _, sy := range v.Syncs {
		if sy.State == "pending" || sy.State == "inProgress" {
			body.Running = true
		}
	}
	s.render(w, r, code, "ldap.html", s.page(sess, "users", "LDAP", body))
}

func (s *server) createLDAPServer(w http.ResponseWriter, r *http.Request, sess *session) {
	b := newLDAPBody()
	f := &b.Server
	f.take(r, "address", "port", "username")
	f.Values["secure"] = r.PostForm.Get("secure")
	f.need(map[string]string{"address": "the server's host name or IP address", "port": "a port, 389 or 636 for LDAPS"}, "address", "port")
	if p := f.V("port"); p != "" && (strings.Trim(p, "0123456789") != "" || len(p) > 5) {
		f.Errors["port"] = "Enter a port number from 1 to 65535"
	}
	code := http.StatusUnprocessableEntity
	if !f.failed() {
		ctx, cancel := reqCtx(r)
		defer cancel()
		err := s.b.CreateLDAPServer(ctx, LDAPServerInput{Address: f.V("address"), Port: f.V("port"), Username: f.V("username"),
			Password: r.PostForm.Get("password"), Secure: f.V("secure") == "1"})
		if err == nil {
			s.log.Info("web admin: LDAP server added", "user", sess.user, "address", f.V("address"))
			http.Redirect(w, r, "/admin/ldap?done=server-added#servers", http.StatusSeeOther)
			return
		}
		code = f.backendError(err, "address", "port", "username", "password")
	}
	s.renderLDAP(w, r, sess, code, b)
}

func (s *server) createLDAPMapping(w http.ResponseWriter, r *http.Request, sess *session) {
	b := newLDAPBody()
	f := &b.Mapping
	f.take(r, "jid", "name", "email")
	f.need(map[string]string{"jid": "a JID template, e.g. $uid$@example.com"}, "jid")
	f.limit(1024, "jid", "name", "email")
	code := http.StatusUnprocessableEntity
	if !f.failed() {
		ctx, cancel := reqCtx(r)
		defer cancel()
		err := s.b.CreateLDAPMapping(ctx, LDAPMappingInput{JID: f.V("jid"), Name: f.V("name"), Email: f.V("email")})
		if err == nil {
			s.log.Info("web admin: LDAP mapping added", "user", sess.user, "jid", f.V("jid"))
			http.Redirect(w, r, "/admin/ldap?done=mapping-added#mappings", http.StatusSeeOther)
			return
		}
		code = f.backendError(err, "jid", "name", "email")
	}
	s.renderLDAP(w, r, sess, code, b)
}

func (s *server) createLDAPSource(w http.ResponseWriter, r *http.Request, sess *session) {
	b := newLDAPBody()
	f := &b.Source
	f.take(r, "server", "mapping", "baseDn", "filter")
	f.need(map[string]string{"server": "an LDAP server (add one first)", "mapping": "a mapping (add one first)", "baseDn": "the base DN, e.g. ou=people,dc=example,dc=com"}, "server", "mapping", "baseDn")
	f.limit(4096, "baseDn", "filter")
	code := http.StatusUnprocessableEntity
	if !f.failed() {
		ctx, cancel := reqCtx(r)
		defer cancel()
		err := s.b.CreateLDAPSource(ctx, LDAPSourceInput{Server: f.V("server"), Mapping: f.V("mapping"), BaseDN: f.V("baseDn"), Filter: f.V("filter")})
		if err == nil {
			s.log.Info("web admin: LDAP source added", "user", sess.user, "baseDn", f.V("baseDn"))
			http.Redirect(w, r, "/admin/ldap?done=source-added#sources", http.StatusSeeOther)
			return
		}
		code = f.backendError(err, "server", "mapping", "baseDn", "filter")
	}
	s.renderLDAP(w, r, sess, code, b)
}

func (s *server) deleteLDAP(w http.ResponseWriter, r *http.Request, sess *session) {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	if kind != "server" && kind != "mapping" && kind != "source" {
		s.notFound(w, r)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.b.DeleteLDAP(ctx, kind, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		b := newLDAPBody()
		var fe *FieldError
		if errors.As(err, &fe) {
			b.Sync.Error = fe.Message
		} else {
			b.Sync.Error = "It could not be deleted: " + err.Error()
		}
		s.renderLDAP(w, r, sess, http.StatusConflict, b)
		return
	}
	s.log.Info("web admin: LDAP object deleted", "user", sess.user, "kind", kind, "id", id)
	http.Redirect(w, r, "/admin/ldap?done=ldap-deleted", http.StatusSeeOther)
}

func (s *server) startSync(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	id, err := s.b.StartLDAPSync(ctx)
	if err != nil {
		b := newLDAPBody()
		b.Sync.Error = "The sync could not be started: " + err.Error()
		s.renderLDAP(w, r, sess, http.StatusInternalServerError, b)
		return
	}
	s.log.Info("web admin: LDAP sync started", "user", sess.user, "sync", id)
	http.Redirect(w, r, "/admin/ldap?done=sync-started&sync="+url.QueryEscape(id)+"#syncs", http.StatusSeeOther)
}
