package adminapi

import (
	"encoding/xml"
	"errors"
	"net/http"
	"time"

	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/store"
)

// ldapRoutes registers /ldapServers, /ldapMappings, /ldapSources and /ldapSyncs.
func (s *server) ldapRoutes() {
	s.handle("GET /api/v1/ldapServers", s.listLDAPServers)
	s.handle("POST /api/v1/ldapServers", s.createLDAPServer)
	s.handle("GET /api/v1/ldapServers/{id}", s.getLDAPServer)
	s.handle("PUT /api/v1/ldapServers/{id}", s.updateLDAPServer)
	s.handle("DELETE /api/v1/ldapServers/{id}", s.deleteLDAPServer)

	s.handle("GET /api/v1/ldapMappings", s.listLDAPMappings)
	s.handle("POST /api/v1/ldapMappings", s.createLDAPMapping)
	s.handle("GET /api/v1/ldapMappings/{id}", s.getLDAPMapping)
	s.handle("PUT /api/v1/ldapMappings/{id}", s.updateLDAPMapping)
	s.handle("DELETE /api/v1/ldapMappings/{id}", s.deleteLDAPMapping)

	s.handle("GET /api/v1/ldapSources", s.listLDAPSources)
	s.handle("POST /api/v1/ldapSources", s.createLDAPSource)
	s.handle("GET /api/v1/ldapSources/{id}", s.getLDAPSource)
	s.handle("PUT /api/v1/ldapSources/{id}", s.updateLDAPSource)
	s.handle("DELETE /api/v1/ldapSources/{id}", s.deleteLDAPSource)

	s.handle("GET /api/v1/ldapSyncs", s.listLDAPSyncs)
	s.handle("POST /api/v1/ldapSyncs", s.createLDAPSync)
	s.handle("GET /api/v1/ldapSyncs/{id}", s.getLDAPSync)
	s.handle("DELETE /api/v1/ldapSyncs/{id}", s.deleteLDAPSync)
}

// ldapFailure translates the errors of users.Service's LDAP methods into CMS failures. path
// is the kind of object the URL names ("ldapServer", …): a missing one is a 404; a missing
// object named by a parameter (a source's server or mapping) is a 400 with the same name.
func ldapFailure(err error, path string) error {
	var fe *users.FieldError
	var ref *store.RefError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fieldFailure(fe)
	case errors.As(err, &ref):
		f := DoesNotExist(ref.Kind + "DoesNotExist")
		if ref.Kind != path {
			f.Status = http.StatusBadRequest
		}
		return f
	case errors.Is(err, store.ErrInUse):
		// No CMS name: Confab's ldapServerInUse, ldapMappingInUse.
		return &Failure{Status: http.StatusBadRequest, Name: path + "InUse", Reason: err.Error()}
	}
	return err
}

// ldapServersDoc is GET /ldapServers.
type ldapServersDoc struct {
	XMLName xml.Name        `xml:"ldapServers" json:"-"`
	Total   int             `xml:"total,attr" json:"total"`
	Servers []ldapServerDoc `xml:"ldapServer" json:"ldapServer"`
}

// ldapServerDoc is an LDAP server; the password is write-only.
type ldapServerDoc struct {
	XMLName    xml.Name `xml:"ldapServer" json:"-"`
	ID         string   `xml:"id,attr" json:"id"`
	Address    string   `xml:"address" json:"address"`
	PortNumber int      `xml:"portNumber" json:"portNumber"`
	Username   string   `xml:"username,omitempty" json:"username,omitempty"`
	Secure     bool     `xml:"secure" json:"secure"`
}

func serverDoc(v users.LDAPServer) ldapServerDoc {
	return ldapServerDoc{ID: v.ID, Address: v.Address, PortNumber: v.PortNumber, Username: v.Username, Secure: v.Secure}
}

func (s *server) listLDAPServers(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	vs, total, err := s.users.LDAPServers(r.Context(), offset, limit)
	if err != nil {
		return nil, err
	}
	doc := ldapServersDoc{Total: total, Servers: []ldapServerDoc{}}
	for _, v := range vs {
		doc.Servers = append(doc.Servers, serverDoc(v))
	}
	return doc, nil
}

func (s *server) getLDAPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	v, err := s.users.LDAPServer(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, ldapFailure(err, "ldapServer")
	}
	return serverDoc(v), nil
}

func readLDAPServer(f *Form, v *users.LDAPServer) error {
	f.String("address", &v.Address, nil)
	f.Int("portNumber", &v.PortNumber, 1, 65535)
	f.String("username", &v.Username, nil)
	f.Secret("password", &v.Password, nil)
	f.Bool("secure", &v.Secure)
	return f.Err()
}

func (s *server) createLDAPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var v users.LDAPServer
	if err := readLDAPServer(f, &v); err != nil {
		return nil, err
	}
	v, err = s.users.CreateLDAPServer(r.Context(), v)
	if err != nil {
		return nil, ldapFailure(err, "ldapServer")
	}
	s.log.Info("ldap server created", "user", user(r), "id", v.ID, "address", v.Address, "portNumber", v.PortNumber, "secure", v.Secure)
	w.Header().Set("Location", "/api/v1/ldapServers/"+v.ID)
	return nil, nil
}

func (s *server) updateLDAPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	v, err := s.users.UpdateLDAPServer(r.Context(), r.PathValue("id"), func(v *users.LDAPServer) error {
		return readLDAPServer(f, v)
	})
	if err != nil {
		return nil, ldapFailure(err, "ldapServer")
	}
	s.log.Info("ldap server changed", "user", user(r), "id", v.ID, "address", v.Address, "portNumber", v.PortNumber,
		"secure", v.Secure, "passwordChanged", f.Has("password"))
	return nil, nil
}

func (s *server) deleteLDAPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.users.DeleteLDAPServer(r.Context(), id); err != nil {
		return nil, ldapFailure(err, "ldapServer")
	}
	s.log.Info("ldap server deleted", "user", user(r), "id", id)
	return nil, nil
}

// ldapMappingsDoc is GET /ldapMappings.
type ldapMappingsDoc struct {
	XMLName  xml.Name         `xml:"ldapMappings" json:"-"`
	Total    int              `xml:"total,attr" json:"total"`
	Mappings []ldapMappingDoc `xml:"ldapMapping" json:"ldapMapping"`
}

type ldapMappingDoc struct {
	XMLName       xml.Name `xml:"ldapMapping" json:"-"`
	ID            string   `xml:"id,attr" json:"id"`
	JIDMapping    string   `xml:"jidMapping,omitempty" json:"jidMapping,omitempty"`
	NameMapping   string   `xml:"nameMapping,omitempty" json:"nameMapping,omitempty"`
	EmailMapping  string   `xml:"emailMapping,omitempty" json:"emailMapping,omitempty"` // Confab's extension
	CDRTagMapping string   `xml:"cdrTagMapping,omitempty" json:"cdrTagMapping,omitempty"`
}

func mappingDoc(v users.LDAPMapping) ldapMappingDoc {
	return ldapMappingDoc{ID: v.ID, JIDMapping: v.JIDMapping, NameMapping: v.NameMapping, EmailMapping: v.EmailMapping,
		CDRTagMapping: v.CDRTagMapping}
}

func (s *server) listLDAPMappings(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	vs, total, err := s.users.LDAPMappings(r.Context(), offset, limit)
	if err != nil {
		return nil, err
	}
	doc := ldapMappingsDoc{Total: total, Mappings: []ldapMappingDoc{}}
	for _, v := range vs {
		doc.Mappings = append(doc.Mappings, mappingDoc(v))
	}
	return doc, nil
}

func (s *server) getLDAPMapping(w http.ResponseWriter, r *http.Request) (any, error) {
	v, err := s.users.LDAPMapping(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, ldapFailure(err, "ldapMapping")
	}
	return mappingDoc(v), nil
}

func readLDAPMapping(f *Form, v *users.LDAPMapping) error {
	f.String("jidMapping", &v.JIDMapping, nil)
	f.String("nameMapping", &v.NameMapping, nil)
	f.String("emailMapping", &v.EmailMapping, nil)
	f.String("cdrTagMapping", &v.CDRTagMapping, nil)
	return f.Err()
}

func (s *server) createLDAPMapping(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var v users.LDAPMapping
	if err := readLDAPMapping(f, &v); err != nil {
		return nil, err
	}
	v, err = s.users.CreateLDAPMapping(r.Context(), v)
	if err != nil {
		return nil, ldapFailure(err, "ldapMapping")
	}
	s.log.Info("ldap mapping created", "user", user(r), "id", v.ID, "jidMapping", v.JIDMapping)
	w.Header().Set("Location", "/api/v1/ldapMappings/"+v.ID)
	return nil, nil
}

func (s *server) updateLDAPMapping(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	v, err := s.users.UpdateLDAPMapping(r.Context(), r.PathValue("id"), func(v *users.LDAPMapping) error {
		return readLDAPMapping(f, v)
	})
	if err != nil {
		return nil, ldapFailure(err, "ldapMapping")
	}
	s.log.Info("ldap mapping changed", "user", user(r), "id", v.ID, "jidMapping", v.JIDMapping)
	return nil, nil
}

func (s *server) deleteLDAPMapping(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.users.DeleteLDAPMapping(r.Context(), id); err != nil {
		return nil, ldapFailure(err, "ldapMapping")
	}
	s.log.Info("ldap mapping deleted", "user", user(r), "id", id)
	return nil, nil
}

// ldapSourcesDoc is GET /ldapSources.
type ldapSourcesDoc struct {
	XMLName xml.Name        `xml:"ldapSources" json:"-"`
	Total   int             `xml:"total,attr" json:"total"`
	Sources []ldapSourceDoc `xml:"ldapSource" json:"ldapSource"`
}

type ldapSourceDoc struct {
	XMLName xml.Name `xml:"ldapSource" json:"-"`
	ID      string   `xml:"id,attr" json:"id"`
	Server  string   `xml:"server" json:"server"`
	Mapping string   `xml:"mapping" json:"mapping"`
	BaseDN  string   `xml:"baseDn" json:"baseDn"`
	Filter  string   `xml:"filter,omitempty" json:"filter,omitempty"`
}

func sourceDoc(v users.LDAPSource) ldapSourceDoc {
	return ldapSourceDoc{ID: v.ID, Server: v.Server, Mapping: v.Mapping, BaseDN: v.BaseDN, Filter: v.Filter}
}

func (s *server) listLDAPSources(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	vs, total, err := s.users.LDAPSources(r.Context(), offset, limit)
	if err != nil {
		return nil, err
	}
	doc := ldapSourcesDoc{Total: total, Sources: []ldapSourceDoc{}}
	for _, v := range vs {
		doc.Sources = append(doc.Sources, sourceDoc(v))
	}
	return doc, nil
}

func (s *server) getLDAPSource(w http.ResponseWriter, r *http.Request) (any, error) {
	v, err := s.users.LDAPSource(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, ldapFailure(err, "ldapSource")
	}
	return sourceDoc(v), nil
}

func readLDAPSource(f *Form, v *users.LDAPSource) error {
	f.String("server", &v.Server, nil)
	f.String("mapping", &v.Mapping, nil)
	f.String("baseDn", &v.BaseDN, nil)
	f.String("filter", &v.Filter, nil)
	return f.Err()
}

func (s *server) createLDAPSource(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var v users.LDAPSource
	if err := readLDAPSource(f, &v); err != nil {
		return nil, err
	}
	v, err = s.users.CreateLDAPSource(r.Context(), v)
	if err != nil {
		return nil, ldapFailure(err, "ldapSource")
	}
	s.log.Info("ldap source created", "user", user(r), "id", v.ID, "server", v.Server, "mapping", v.Mapping, "baseDn", v.BaseDN)
	w.Header().Set("Location", "/api/v1/ldapSources/"+v.ID)
	return nil, nil
}

func (s *server) updateLDAPSource(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	v, err := s.users.UpdateLDAPSource(r.Context(), r.PathValue("id"), func(v *users.LDAPSource) error {
		return readLDAPSource(f, v)
	})
	if err != nil {
		return nil, ldapFailure(err, "ldapSource")
	}
	s.log.Info("ldap source changed", "user", user(r), "id", v.ID, "server", v.Server, "mapping", v.Mapping, "baseDn", v.BaseDN)
	return nil, nil
}

func (s *server) deleteLDAPSource(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.users.DeleteLDAPSource(r.Context(), id); err != nil {
		return nil, ldapFailure(err, "ldapSource")
	}
	s.log.Info("ldap source deleted", "user", user(r), "id", id)
	return nil, nil
}

// ldapSyncsDoc is GET /ldapSyncs.
type ldapSyncsDoc struct {
	XMLName xml.Name      `xml:"ldapSyncs" json:"-"`
	Total   int           `xml:"total,attr" json:"total"`
	Syncs   []ldapSyncDoc `xml:"ldapSync" json:"ldapSync"`
}

// ldapSyncDoc is a sync with CMS's fields and Confab's counts and times.
type ldapSyncDoc struct {
	XMLName                xml.Name `xml:"ldapSync" json:"-"`
	ID                     string   `xml:"id,attr" json:"id"`
	State                  string   `xml:"state" json:"state"`
	LDAPSource             string   `xml:"ldapSource,omitempty" json:"ldapSource,omitempty"`
	FailureReason          string   `xml:"failureReason,omitempty" json:"failureReason,omitempty"`
	ClashingUserJID        string   `xml:"clashingUserJid,omitempty" json:"clashingUserJid,omitempty"`
	NumUsersImported       int      `xml:"numUsersImported" json:"numUsersImported"`
	NumLDAPSourcesComplete int      `xml:"numLdapSourcesComplete,omitempty" json:"numLdapSourcesComplete,omitempty"`
	// Confab's extensions.
	RemoveWhenFinished bool   `xml:"removeWhenFinished" json:"removeWhenFinished"`
	UsersCreated       int    `xml:"usersCreated" json:"usersCreated"`
	UsersUpdated       int    `xml:"usersUpdated" json:"usersUpdated"`
	UsersDeleted       int    `xml:"usersDeleted" json:"usersDeleted"`
	EntriesSkipped     int    `xml:"entriesSkipped" json:"entriesSkipped"`
	Detail             string `xml:"detail,omitempty" json:"detail,omitempty"`
	CreatedTime        string `xml:"createdTime,omitempty" json:"createdTime,omitempty"`
	StartTime          string `xml:"startTime,omitempty" json:"startTime,omitempty"`
	EndTime            string `xml:"endTime,omitempty" json:"endTime,omitempty"`
}

func syncDoc(v users.LDAPSync) ldapSyncDoc {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return ldapSyncDoc{ID: v.ID, State: v.State, LDAPSource: v.Source, FailureReason: v.FailureReason,
		ClashingUserJID: v.ClashingUserJID, NumUsersImported: v.NumUsersImported, NumLDAPSourcesComplete: v.NumSourcesComplete,
		RemoveWhenFinished: v.RemoveWhenFinished, UsersCreated: v.UsersCreated, UsersUpdated: v.UsersUpdated,
		UsersDeleted: v.UsersDeleted, EntriesSkipped: v.EntriesSkipped, Detail: v.Detail,
		CreatedTime: ts(v.Created), StartTime: ts(v.Started), EndTime: ts(v.Finished)}
}

func (s *server) listLDAPSyncs(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	vs, total, err := s.users.LDAPSyncs(r.Context(), offset, limit)
	if err != nil {
		return nil, err
	}
	doc := ldapSyncsDoc{Total: total, Syncs: []ldapSyncDoc{}}
	for _, v := range vs {
		doc.Syncs = append(doc.Syncs, syncDoc(v))
	}
	return doc, nil
}

func (s *server) getLDAPSync(w http.ResponseWriter, r *http.Request) (any, error) {
	v, err := s.users.LDAPSync(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, DoesNotExist("ldapSyncDoesNotExist")
	}
	if err != nil {
		return nil, err
	}
	return syncDoc(v), nil
}

// createLDAPSync is POST /ldapSyncs: queue a sync of ldapSource (or of every source), and
// answer at once with its address in Location.
func (s *server) createLDAPSync(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var source string
	var remove bool
	f.String("ldapSource", &source, nil)
	f.Bool("removeWhenFinished", &remove)
	if err := f.Err(); err != nil {
		return nil, err
	}
	v, err := s.users.StartSync(r.Context(), source, remove)
	switch {
	case errors.Is(err, users.ErrTooManySyncs):
		return nil, &Failure{Status: http.StatusServiceUnavailable, Name: "tooManyLdapSyncs", Reason: err.Error()}
	case err != nil:
		return nil, ldapFailure(err, "ldapSync")
	}
	s.log.Info("ldap sync queued", "user", user(r), "id", v.ID, "ldapSource", source)
	w.Header().Set("Location", "/api/v1/ldapSyncs/"+v.ID)
	return nil, nil
}

// deleteLDAPSync is DELETE /ldapSyncs/{id}: cancel a pending sync, or forget a finished one.
func (s *server) deleteLDAPSync(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	err := s.users.CancelSync(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrInUse):
		return nil, &Failure{Status: http.StatusBadRequest, Name: "ldapSyncCannotBeCancelled", Reason: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return nil, DoesNotExist("ldapSyncDoesNotExist")
	case err != nil:
		return nil, err
	}
	s.log.Info("ldap sync removed", "user", user(r), "id", id)
	return nil, nil
}
