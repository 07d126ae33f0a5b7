package adminapi

import (
	"encoding/xml"
	"net/http"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
)

// accessRoutes registers /coSpaces/{id}/accessMethods: other URIs, call IDs and passcodes
// into a space, each with an optional call leg profile.
func (s *server) accessRoutes() {
	s.handle("GET /api/v1/coSpaces/{id}/accessMethods", s.listAccessMethods)
	s.handle("POST /api/v1/coSpaces/{id}/accessMethods", s.createAccessMethod)
	s.handle("GET /api/v1/coSpaces/{id}/accessMethods/{amId}", s.getAccessMethod)
	s.handle("PUT /api/v1/coSpaces/{id}/accessMethods/{amId}", s.updateAccessMethod)
	s.handle("DELETE /api/v1/coSpaces/{id}/accessMethods/{amId}", s.deleteAccessMethod)
}

// accessMethodsDoc is GET /coSpaces/{id}/accessMethods.
type accessMethodsDoc struct {
	XMLName xml.Name          `xml:"accessMethods" json:"-"`
	Total   int               `xml:"total,attr" json:"total"`
	Items   []accessMethodDoc `xml:"accessMethod" json:"accessMethod"`
}

// accessMethodDoc is one access method. The passcode and the secret are write-only (CMS shows
// them; Confab shows no secret).
type accessMethodDoc struct {
	XMLName        xml.Name `xml:"accessMethod" json:"-"`
	ID             string   `xml:"id,attr" json:"id"`
	Name           string   `xml:"name,omitempty" json:"name,omitempty"`
	URI            string   `xml:"uri,omitempty" json:"uri,omitempty"`
	CallID         string   `xml:"callId,omitempty" json:"callId,omitempty"`
	CallLegProfile string   `xml:"callLegProfile,omitempty" json:"callLegProfile,omitempty"`
	Scope          string   `xml:"scope,omitempty" json:"scope,omitempty"`
}

func amDoc(a store.AccessMethod) accessMethodDoc {
	return accessMethodDoc{ID: a.ID, Name: a.Name, URI: a.URI, CallID: a.CallID, CallLegProfile: a.CallLegProfile, Scope: a.Scope}
}

func (s *server) listAccessMethods(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	ams, total, err := s.meetings.AccessMethods(r.Context(), r.PathValue("id"), store.AccessMethodFilter{
		Text: q.Get("filter"), CallLegProfile: q.Get("callLegProfileFilter"), Offset: offset, Limit: limit})
	if err != nil {
		return nil, spaceFailure(err)
	}
	doc := accessMethodsDoc{Total: total, Items: []accessMethodDoc{}}
	for _, a := range ams {
		doc.Items = append(doc.Items, amDoc(a))
	}
	return doc, nil
}

// readAccessMethod applies a form to a: absent parameters leave fields alone, empty ones
// unset them. CMS spells the call ID both callId and callID.
func readAccessMethod(f *Form, a *store.AccessMethod) error {
	f.String("name", &a.Name, meeting.ValidName)
	f.String("uri", &a.URI, meeting.ValidURI)
	if f.Has("callID") && !f.Has("callId") {
		f.String("callID", &a.CallID, meeting.ValidCallID)
	} else {
		f.String("callId", &a.CallID, meeting.ValidCallID)
	}
	f.Secret("passcode", &a.Passcode, meeting.ValidPasscode)
	f.Secret("secret", &a.Secret, meeting.ValidSecret)
	f.String("callLegProfile", &a.CallLegProfile, nil)
	f.String("scope", &a.Scope, meeting.ValidScope)
	var regenerate bool
	f.Bool("regenerateSecret", &regenerate)
	if regenerate {
		a.Secret = meeting.NewSecret()
	}
	return f.Err()
}

func (s *server) createAccessMethod(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	a := store.AccessMethod{CoSpaceID: r.PathValue("id")}
	if err := readAccessMethod(f, &a); err != nil {
		return nil, err
	}
	a, err = s.meetings.CreateAccessMethod(r.Context(), a)
	if err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("access method created", "user", user(r), "coSpace", a.CoSpaceID, "accessMethod", a.ID)
	w.Header().Set("Location", "/api/v1/coSpaces/"+a.CoSpaceID+"/accessMethods/"+a.ID)
	return nil, nil
}

func (s *server) getAccessMethod(w http.ResponseWriter, r *http.Request) (any, error) {
	a, err := s.meetings.AccessMethod(r.Context(), r.PathValue("id"), r.PathValue("amId"))
	if err != nil {
		return nil, spaceFailure(err)
	}
	return amDoc(a), nil
}

func (s *server) updateAccessMethod(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	a, err := s.meetings.UpdateAccessMethod(r.Context(), r.PathValue("id"), r.PathValue("amId"), func(a *store.AccessMethod) error {
		return readAccessMethod(f, a)
	})
	if err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("access method changed", "user", user(r), "coSpace", a.CoSpaceID, "accessMethod", a.ID)
	return nil, nil
}

func (s *server) deleteAccessMethod(w http.ResponseWriter, r *http.Request) (any, error) {
	space, id := r.PathValue("id"), r.PathValue("amId")
	if err := s.meetings.DeleteAccessMethod(r.Context(), space, id); err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("access method deleted", "user", user(r), "coSpace", space, "accessMethod", id)
	return nil, nil
}
