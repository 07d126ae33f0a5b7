package adminapi

import (
	"encoding/xml"
	"errors"
	"net/http"

	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// userRoutes registers /users (CMS's GET, and Confab's POST, PUT and DELETE for local users)
// and the LDAP endpoints (ldap.go), when the API has a users.Service.
func (s *server) userRoutes() {
	if s.users == nil {
		return
	}
	s.handle("GET /api/v1/users", s.listUsers)
	s.handle("POST /api/v1/users", s.createUser)
	s.handle("GET /api/v1/users/{id}", s.getUser)
	s.handle("PUT /api/v1/users/{id}", s.updateUser)
	s.handle("DELETE /api/v1/users/{id}", s.deleteUser)
	s.ldapRoutes()
}

// userFailure translates the errors of users.Service into CMS failures; anything else is
// returned as it is (a 500).
func userFailure(err error) error {
	var fe *users.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fieldFailure(fe)
	case errors.Is(err, users.ErrNotLocal):
		// CMS answers invalidOperation to a DELETE of a user an LDAP sync made.
		return &Failure{Status: http.StatusBadRequest, Name: "invalidOperation", Reason: err.Error()}
	case errors.Is(err, store.ErrExists):
		return &Failure{Status: http.StatusBadRequest, Name: "duplicateUserJid", Reason: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return DoesNotExist("userDoesNotExist")
	}
	return err
}

// fieldFailure is a parameterError for a users.FieldError: "required" for a missing value,
// "invalidValue" otherwise.
func fieldFailure(fe *users.FieldError) *Failure {
	problem := "invalidValue"
	if errors.Is(fe.Err, users.ErrRequired) {
		problem = "required"
	}
	return ParameterError(fe.Field, problem, fe.Err.Error())
}

// usersDoc is GET /users.
type usersDoc struct {
	XMLName xml.Name      `xml:"users" json:"-"`
	Total   int           `xml:"total,attr" json:"total"`
	Users   []userSummary `xml:"user" json:"user"`
}

type userSummary struct {
	ID      string `xml:"id,attr" json:"id"`
	UserJID string `xml:"userJid" json:"userJid"`
	Name    string `xml:"name,omitempty" json:"name,omitempty"`
	Email   string `xml:"email,omitempty" json:"email,omitempty"`
	Kind    string `xml:"kind" json:"kind"` // Confab's extension: local or ldap
}

// userDoc is GET /users/{id}. A local user's credentials are never sent.
type userDoc struct {
	XMLName xml.Name `xml:"user" json:"-"`
	ID      string   `xml:"id,attr" json:"id"`
	UserJID string   `xml:"userJid" json:"userJid"`
	Name    string   `xml:"name,omitempty" json:"name,omitempty"`
	Email   string   `xml:"email,omitempty" json:"email,omitempty"`
	CDRTag  string   `xml:"cdrTag,omitempty" json:"cdrTag,omitempty"`
	// Confab's extensions: where the user comes from.
	Kind       string `xml:"kind" json:"kind"`
	LDAPSource string `xml:"ldapSource,omitempty" json:"ldapSource,omitempty"`
	LDAPDN     string `xml:"ldapDn,omitempty" json:"ldapDn,omitempty"`
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	us, total, err := s.users.List(r.Context(), r.URL.Query().Get("filter"), offset, limit)
	if err != nil {
		return nil, err
	}
	doc := usersDoc{Total: total, Users: []userSummary{}}
	for _, u := range us {
		doc.Users = append(doc.Users, userSummary{ID: u.ID, UserJID: u.JID, Name: u.Name, Email: u.Email, Kind: string(u.Kind)})
	}
	return doc, nil
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) (any, error) {
	u, err := s.users.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, userFailure(err)
	}
	return userDoc{ID: u.ID, UserJID: u.JID, Name: u.Name, Email: u.Email, CDRTag: u.CDRTag, Kind: string(u.Kind),
		LDAPSource: u.LDAPSource, LDAPDN: u.LDAPDN}, nil
}

// createUser is POST /users (Confab's extension): a local user from username (a localpart,
// or a bare JID of the XMPP domain) and password (both required), name and email.
func (s *server) createUser(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var lu users.LocalUser
	var pw secret.Secret
	f.String("username", &lu.Username, nil)
	f.String("name", &lu.Name, nil)
	f.String("email", &lu.Email, nil)
	f.Secret("password", &pw, nil)
	if err := f.Err(); err != nil {
		return nil, err
	}
	switch {
	case lu.Username == "":
		return nil, ParameterError("username", "required", "no username given")
	case pw.IsZero():
		return nil, ParameterError("password", "required", "no password given")
	}
	u, err := s.users.CreateLocal(r.Context(), lu, pw)
	if err != nil {
		return nil, userFailure(err)
	}
	s.log.Info("user created", "user", user(r), "id", u.ID, "userJid", u.JID)
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	return nil, nil
}

// updateUser is PUT /users/{id} (Confab's extension): a local user's name, email, password.
func (s *server) updateUser(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var ch users.Change
	var name, email string
	var pw secret.Secret
	f.String("name", &name, nil)
	f.String("email", &email, nil)
	f.Secret("password", &pw, nil)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if f.Has("name") {
		ch.Name = &name
	}
	if f.Has("email") {
		ch.Email = &email
	}
	if f.Has("password") {
		ch.Password = &pw
	}
	u, err := s.users.Modify(r.Context(), r.PathValue("id"), ch)
	if err != nil {
		return nil, userFailure(err)
	}
	s.log.Info("user changed", "user", user(r), "id", u.ID, "userJid", u.JID, "passwordChanged", ch.Password != nil)
	return nil, nil
}

// deleteUser is DELETE /users/{id} (Confab's extension): local users only.
func (s *server) deleteUser(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.users.Delete(r.Context(), id); err != nil {
		return nil, userFailure(err)
	}
	s.log.Info("user deleted", "user", user(r), "id", id)
	return nil, nil
}
