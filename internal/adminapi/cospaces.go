package adminapi

import (
	"encoding/xml"
	"errors"
	"net/http"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
)

// spaceRoutes registers /coSpaces, /coSpaces/{id}/coSpaceUsers, /calls, /callLegs (the
// last two in calls.go). The spaces logic is meeting.Service's; this file maps it to CMS
// documents and failures.
func (s *server) spaceRoutes() {
	if s.meetings == nil {
		// Spaces are still served without the rest of the Call Bridge; calls stay empty.
		s.meetings = meeting.New(meeting.Options{Store: s.store, Logger: s.log, Now: s.now})
	}
	s.handle("GET /api/v1/coSpaces", s.listCoSpaces)
	s.handle("POST /api/v1/coSpaces", s.createCoSpace)
	s.handle("GET /api/v1/coSpaces/{id}", s.getCoSpace)
	s.handle("PUT /api/v1/coSpaces/{id}", s.updateCoSpace)
	s.handle("DELETE /api/v1/coSpaces/{id}", s.deleteCoSpace)
	s.handle("GET /api/v1/coSpaces/{id}/coSpaceUsers", s.listCoSpaceUsers)
	s.handle("POST /api/v1/coSpaces/{id}/coSpaceUsers", s.addCoSpaceUser)
	s.handle("GET /api/v1/coSpaces/{id}/coSpaceUsers/{userId}", s.getCoSpaceUser)
	s.handle("PUT /api/v1/coSpaces/{id}/coSpaceUsers/{userId}", s.updateCoSpaceUser)
	s.handle("DELETE /api/v1/coSpaces/{id}/coSpaceUsers/{userId}", s.deleteCoSpaceUser)
	s.accessRoutes()
	s.profileRoutes()
	s.callRoutes()
}

// spaceFailure translates the errors of meeting.Service's space methods into CMS failures;
// anything else is returned as it is (a 500).
func spaceFailure(err error) error {
	var ie *meeting.InvalidError
	var ref *store.RefError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return ParameterError(ie.Field, "invalidValue", ie.Reason)
	case errors.As(err, &ref):
		// A profile named by a parameter: CMS's <kind>DoesNotExist, as a 400.
		return &Failure{Status: http.StatusBadRequest, Name: ref.Kind + "DoesNotExist", Reason: err.Error()}
	case errors.Is(err, store.ErrCallIDPasscodeTaken):
		return &Failure{Status: http.StatusBadRequest, Name: "duplicateCoSpaceIdPasscode", Reason: err.Error()}
	case errors.Is(err, store.ErrURIPasscodeTaken):
		return &Failure{Status: http.StatusBadRequest, Name: "duplicateCoSpaceUriPasscode", Reason: err.Error()}
	case errors.Is(err, store.ErrNoAccessMethod):
		return DoesNotExist("accessMethodDoesNotExist")
	case errors.Is(err, store.ErrCoSpaceURITaken):
		return &Failure{Status: http.StatusBadRequest, Name: "duplicateCoSpaceUri", Reason: err.Error()}
	case errors.Is(err, store.ErrCallIDTaken):
		return &Failure{Status: http.StatusBadRequest, Name: "duplicateCoSpaceId", Reason: err.Error()}
	case errors.Is(err, store.ErrNoCoSpaceMember):
		return DoesNotExist("coSpaceUserDoesNotExist")
	case errors.Is(err, store.ErrNotFound):
		return DoesNotExist("coSpaceDoesNotExist")
	case errors.Is(err, store.ErrExists):
		return &Failure{Status: http.StatusBadRequest, Name: "duplicateCoSpaceUser", Reason: err.Error()}
	}
	return err
}

// PageSize is the most objects one page of a list holds, as on CMS: a list without limit
// holds at most PageSize objects, and a larger limit is reduced to it. total always counts
// every match, so a client pages on with offset until it has them all.
const PageSize = 20

// listWindow reads the CMS paging parameters offset and limit (see PageSize).
func listWindow(r *http.Request) (offset, limit int, err error) {
	o, err := queryUint(r, "offset", 0)
	if err != nil {
		return 0, 0, err
	}
	l, err := queryUint(r, "limit", PageSize)
	if err != nil {
		return 0, 0, err
	}
	if l == 0 || l > PageSize {
		l = PageSize
	}
	const most = 1 << 31
	return int(min(o, most)), int(l), nil
}

// coSpacesDoc is GET /coSpaces.
type coSpacesDoc struct {
	XMLName  xml.Name         `xml:"coSpaces" json:"-"`
	Total    int              `xml:"total,attr" json:"total"`
	CoSpaces []coSpaceSummary `xml:"coSpace" json:"coSpace"`
}

type coSpaceSummary struct {
	ID           string `xml:"id,attr" json:"id"`
	Name         string `xml:"name,omitempty" json:"name,omitempty"`
	URI          string `xml:"uri,omitempty" json:"uri,omitempty"`
	SecondaryURI string `xml:"secondaryUri,omitempty" json:"secondaryUri,omitempty"`
	CallID       string `xml:"callId,omitempty" json:"callId,omitempty"`
}

// coSpaceDoc is GET /coSpaces/{id}. The passcode and the secret are write-only.
type coSpaceDoc struct {
	XMLName         xml.Name `xml:"coSpace" json:"-"`
	ID              string   `xml:"id,attr" json:"id"`
	Name            string   `xml:"name,omitempty" json:"name,omitempty"`
	URI             string   `xml:"uri,omitempty" json:"uri,omitempty"`
	SecondaryURI    string   `xml:"secondaryUri,omitempty" json:"secondaryUri,omitempty"`
	CallID          string   `xml:"callId,omitempty" json:"callId,omitempty"`
	OwnerJID        string   `xml:"ownerJid,omitempty" json:"ownerJid,omitempty"`
	NonMemberAccess bool     `xml:"nonMemberAccess" json:"nonMemberAccess"`
	DefaultLayout   string   `xml:"defaultLayout,omitempty" json:"defaultLayout,omitempty"`
	CDRTag          string   `xml:"cdrTag,omitempty" json:"cdrTag,omitempty"`
	CallLegProfile  string   `xml:"callLegProfile,omitempty" json:"callLegProfile,omitempty"`
	CallProfile     string   `xml:"callProfile,omitempty" json:"callProfile,omitempty"`
	// numAccessMethods is given when the space has access methods, as on CMS.
	NumAccessMethods int `xml:"numAccessMethods,omitempty" json:"numAccessMethods,omitempty"`
	// Confab's extension: the space's XMPP address, when the XMPP settings are complete.
	JID string `xml:"jid,omitempty" json:"jid,omitempty"`
}

func (s *server) listCoSpaces(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	if q.Get("tenantFilter") != "" {
		// Confab has no tenants: no space belongs to one.
		return coSpacesDoc{CoSpaces: []coSpaceSummary{}}, nil
	}
	spaces, total, err := s.meetings.ListSpaces(r.Context(), store.CoSpaceFilter{
		Text: q.Get("filter"), CallLegProfile: q.Get("callLegProfileFilter"), Offset: offset, Limit: limit,
	})
	if err != nil {
		return nil, err
	}
	doc := coSpacesDoc{Total: total, CoSpaces: []coSpaceSummary{}}
	for _, c := range spaces {
		doc.CoSpaces = append(doc.CoSpaces, coSpaceSummary{ID: c.ID, Name: c.Name, URI: c.URI, SecondaryURI: c.SecondaryURI, CallID: c.CallID})
	}
	return doc, nil
}

func (s *server) getCoSpace(w http.ResponseWriter, r *http.Request) (any, error) {
	c, err := s.meetings.GetSpace(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, spaceFailure(err)
	}
	doc := coSpaceDoc{ID: c.ID, Name: c.Name, URI: c.URI, SecondaryURI: c.SecondaryURI, CallID: c.CallID,
		OwnerJID: c.OwnerJID, NonMemberAccess: c.NonMemberAccess, DefaultLayout: c.DefaultLayout,
		CDRTag: c.CDRTag, CallLegProfile: c.CallLegProfile, CallProfile: c.CallProfile}
	if doc.NumAccessMethods, err = s.meetings.CountAccessMethods(r.Context(), c.ID); err != nil {
		return nil, err
	}
	doc.JID, _ = s.meetings.SpaceJID(r.Context(), c.ID)
	return doc, nil
}

// readCoSpace applies a coSpace form to c: absent parameters leave fields alone, empty ones
// unset them.
func readCoSpace(f *Form, c *store.CoSpace) error {
	f.String("name", &c.Name, meeting.ValidName)
	f.String("uri", &c.URI, meeting.ValidURI)
	f.String("secondaryUri", &c.SecondaryURI, meeting.ValidURI)
	f.String("callId", &c.CallID, meeting.ValidCallID)
	f.Secret("passcode", &c.Passcode, meeting.ValidPasscode)
	f.Secret("secret", &c.Secret, meeting.ValidSecret)
	f.String("ownerJid", &c.OwnerJID, meeting.ValidJID)
	f.Bool("nonMemberAccess", &c.NonMemberAccess)
	f.String("defaultLayout", &c.DefaultLayout, meeting.ValidLayout)
	f.String("cdrTag", &c.CDRTag, meeting.ValidCDRTag)
	f.String("callLegProfile", &c.CallLegProfile, nil)
	f.String("callProfile", &c.CallProfile, nil)
	// CMS's requireCallId (give the space a call ID if it has none) and regenerateSecret.
	var requireCallID, regenerate bool
	f.Bool("requireCallId", &requireCallID)
	f.Bool("regenerateSecret", &regenerate)
	if err := f.Err(); err != nil {
		return err
	}
	if requireCallID && c.CallID == "" && c.ID != "" {
		id, err := meeting.NewCallID()
		if err != nil {
			return err
		}
		c.CallID = id
	}
	if regenerate {
		c.Secret = meeting.NewSecret()
	}
	return nil
}

// createCoSpace is POST /coSpaces: 200 with the new space's address in Location. A call ID
// and a secret are generated when none is given.
func (s *server) createCoSpace(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var c store.CoSpace
	if err := readCoSpace(f, &c); err != nil {
		return nil, err
	}
	c, err = s.meetings.CreateSpace(r.Context(), c)
	if err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("coSpace created", "user", user(r), "coSpace", c.ID, "name", c.Name)
	w.Header().Set("Location", "/api/v1/coSpaces/"+c.ID)
	return nil, nil
}

func (s *server) updateCoSpace(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	c, err := s.meetings.UpdateSpace(r.Context(), r.PathValue("id"), func(c *store.CoSpace) error {
		return readCoSpace(f, c)
	})
	if err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("coSpace changed", "user", user(r), "coSpace", c.ID)
	return nil, nil
}

func (s *server) deleteCoSpace(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.meetings.DeleteSpace(r.Context(), id); err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("coSpace deleted", "user", user(r), "coSpace", id)
	return nil, nil
}

// coSpaceUsersDoc is GET /coSpaces/{id}/coSpaceUsers.
type coSpaceUsersDoc struct {
	XMLName xml.Name         `xml:"coSpaceUsers" json:"-"`
	Total   int              `xml:"total,attr" json:"total"`
	Users   []coSpaceUserDoc `xml:"coSpaceUser" json:"coSpaceUser"`
}

// coSpaceUserDoc is one member; GET /coSpaces/{id}/coSpaceUsers/{userId} sends it alone.
type coSpaceUserDoc struct {
	XMLName xml.Name `xml:"coSpaceUser" json:"-"`
	ID      string   `xml:"id,attr" json:"id"`
	UserJID string   `xml:"userJid" json:"userJid"`
	Role    string   `xml:"role" json:"role"`
}

func memberDoc(m store.CoSpaceMember) coSpaceUserDoc {
	return coSpaceUserDoc{ID: m.ID, UserJID: m.UserJID, Role: m.Role}
}

func (s *server) listCoSpaceUsers(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	ms, total, err := s.meetings.Members(r.Context(), r.PathValue("id"), offset, limit)
	if err != nil {
		return nil, spaceFailure(err)
	}
	doc := coSpaceUsersDoc{Total: total, Users: []coSpaceUserDoc{}}
	for _, m := range ms {
		doc.Users = append(doc.Users, memberDoc(m))
	}
	return doc, nil
}

// addCoSpaceUser is POST /coSpaces/{id}/coSpaceUsers: userJid (required) and role (member,
// the default, or owner).
func (s *server) addCoSpaceUser(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	var jid, role string
	f.String("userJid", &jid, meeting.ValidJID)
	f.String("role", &role, meeting.ValidRole)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if jid == "" {
		return nil, ParameterError("userJid", "required", "no userJid given")
	}
	spaceID := r.PathValue("id")
	m, err := s.meetings.AddMember(r.Context(), spaceID, jid, role)
	if err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("coSpace user added", "user", user(r), "coSpace", spaceID, "userJid", m.UserJID, "role", m.Role)
	w.Header().Set("Location", "/api/v1/coSpaces/"+spaceID+"/coSpaceUsers/"+m.ID)
	return nil, nil
}

func (s *server) getCoSpaceUser(w http.ResponseWriter, r *http.Request) (any, error) {
	m, err := s.meetings.Member(r.Context(), r.PathValue("id"), r.PathValue("userId"))
	if err != nil {
		return nil, spaceFailure(err)
	}
	return memberDoc(m), nil
}

// updateCoSpaceUser is PUT /coSpaces/{id}/coSpaceUsers/{userId}: role (empty: member).
func (s *server) updateCoSpaceUser(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	spaceID, id := r.PathValue("id"), r.PathValue("userId")
	m, err := s.meetings.Member(r.Context(), spaceID, id)
	if err != nil {
		return nil, spaceFailure(err)
	}
	role := m.Role
	f.String("role", &role, meeting.ValidRole)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if _, err := s.meetings.UpdateMember(r.Context(), spaceID, id, role); err != nil {
		return nil, spaceFailure(err)
	}
	return nil, nil
}

func (s *server) deleteCoSpaceUser(w http.ResponseWriter, r *http.Request) (any, error) {
	spaceID, id := r.PathValue("id"), r.PathValue("userId")
	if err := s.meetings.RemoveMember(r.Context(), spaceID, id); err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("coSpace user removed", "user", user(r), "coSpace", spaceID, "member", id)
	return nil, nil
}
