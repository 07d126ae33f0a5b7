package adminapi

import (
	"encoding/xml"
	"errors"
	"net/http"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
)

// profileRoutes registers /callLegProfiles, /callProfiles and /system/profiles.
func (s *server) profileRoutes() {
	for _, kind := range []string{store.KindCallLegProfile, store.KindCallProfile} {
		p := profileKind{kind: kind, fields: mustFields(kind)}
		base := "/api/v1/" + kind + "s"
		s.handle("GET "+base, s.listProfiles(p))
		s.handle("POST "+base, s.createProfile(p))
		s.handle("GET "+base+"/{id}", s.getProfile(p))
		s.handle("PUT "+base+"/{id}", s.updateProfile(p))
		s.handle("DELETE "+base+"/{id}", s.deleteProfile(p))
	}
	s.handle("GET /api/v1/system/profiles", s.getSystemProfiles)
	s.handle("PUT /api/v1/system/profiles", s.setSystemProfiles)
	s.handle("POST /api/v1/system/profiles", s.setSystemProfiles)
}

type profileKind struct {
	kind   string // store.KindCallLegProfile, store.KindCallProfile
	fields []meeting.Field
}

func mustFields(kind string) []meeting.Field {
	f, err := meeting.FieldsOf(kind)
	if err != nil {
		panic(err)
	}
	return f
}

// docOf is an object's document: its set fields, in the schema's order.
func docOf(kind, id string, schema []meeting.Field, values map[string]string) objectDoc {
	d := objectDoc{root: kind, id: id}
	for _, f := range schema {
		v, ok := values[f.Name]
		if !ok {
			continue
		}
		k := kindString
		switch f.Kind {
		case meeting.KindBool:
			k = kindBool
		case meeting.KindInt:
			k = kindInt
		}
		d.fields = append(d.fields, field{f.Name, v, k})
	}
	return d
}

// profileFailure maps the errors of the profile methods; path is the kind the URL names.
func profileFailure(err error, kind string) error {
	var ref *store.RefError
	var ie *meeting.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return ParameterError(ie.Field, "invalidValue", ie.Reason)
	case errors.As(err, &ref) && ref.Kind == kind:
		return DoesNotExist(kind + "DoesNotExist")
	}
	return spaceFailure(err)
}

// readSettings reads the schema's parameters present in f into values (an empty value
// unsets); unknown parameters are ignored, as CMS does.
func readSettings(f *Form, schema []meeting.Field, values map[string]string) error {
	for _, fd := range schema {
		v, ok := f.value(fd.Name)
		if !ok {
			continue
		}
		if err := fd.Valid(v); err != nil {
			f.setErr(ParameterError(fd.Name, "invalidValue", err.Error()))
			continue
		}
		if v == "" {
			delete(values, fd.Name)
		} else {
			values[fd.Name] = v
		}
	}
	return f.Err()
}

func (s *server) listProfiles(p profileKind) handler {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		offset, limit, err := listWindow(r)
		if err != nil {
			return nil, err
		}
		usage := r.URL.Query().Get("usageFilter")
		if usage != store.UsageAny && usage != store.UsageReferenced && usage != store.UsageUnreferenced {
			return nil, ParameterError("usageFilter", "invalidValue", "want referenced or unreferenced")
		}
		objs, total, err := s.meetings.Profiles(r.Context(), p.kind, usage, offset, limit)
		if err != nil {
			return nil, err
		}
		doc := objectsDoc{root: p.kind + "s", total: total}
		for _, o := range objs {
			doc.items = append(doc.items, docOf(p.kind, o.ID, p.fields, o.Fields))
		}
		return doc, nil
	}
}

func (s *server) createProfile(p profileKind) handler {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		f, err := parseForm(r)
		if err != nil {
			return nil, err
		}
		values := map[string]string{}
		if err := readSettings(f, p.fields, values); err != nil {
			return nil, err
		}
		o, err := s.meetings.CreateProfile(r.Context(), p.kind, values)
		if err != nil {
			return nil, profileFailure(err, p.kind)
		}
		s.log.Info(p.kind+" created", "user", user(r), "id", o.ID)
		w.Header().Set("Location", "/api/v1/"+p.kind+"s/"+o.ID)
		return nil, nil
	}
}

func (s *server) getProfile(p profileKind) handler {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		o, err := s.meetings.Profile(r.Context(), p.kind, r.PathValue("id"))
		if err != nil {
			return nil, profileFailure(err, p.kind)
		}
		return docOf(p.kind, o.ID, p.fields, o.Fields), nil
	}
}

func (s *server) updateProfile(p profileKind) handler {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		f, err := parseForm(r)
		if err != nil {
			return nil, err
		}
		id := r.PathValue("id")
		if _, err := s.meetings.UpdateProfile(r.Context(), p.kind, id, func(values map[string]string) error {
			return readSettings(f, p.fields, values)
		}); err != nil {
			return nil, profileFailure(err, p.kind)
		}
		s.log.Info(p.kind+" changed", "user", user(r), "id", id)
		return nil, nil
	}
}

func (s *server) deleteProfile(p profileKind) handler {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		id := r.PathValue("id")
		if err := s.meetings.DeleteProfile(r.Context(), p.kind, id); err != nil {
			return nil, profileFailure(err, p.kind)
		}
		s.log.Info(p.kind+" deleted", "user", user(r), "id", id)
		return nil, nil
	}
}

// systemProfilesDoc is GET /system/profiles: the profiles in force where nothing more specific
// names one.
type systemProfilesDoc struct {
	XMLName        xml.Name `xml:"profiles" json:"-"`
	CallLegProfile string   `xml:"callLegProfile,omitempty" json:"callLegProfile,omitempty"`
	CallProfile    string   `xml:"callProfile,omitempty" json:"callProfile,omitempty"`
}

func (s *server) getSystemProfiles(w http.ResponseWriter, r *http.Request) (any, error) {
	p, err := s.meetings.SystemProfiles(r.Context())
	if err != nil {
		return nil, err
	}
	return systemProfilesDoc{CallLegProfile: p.CallLegProfile, CallProfile: p.CallProfile}, nil
}

// setSystemProfiles is PUT /system/profiles: callLegProfile and callProfile (CMS's other
// profiles are ignored: Confab has none of those kinds).
func (s *server) setSystemProfiles(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	p, err := s.meetings.UpdateSystemProfiles(r.Context(), func(p *store.SystemProfiles) error {
		f.String("callLegProfile", &p.CallLegProfile, nil)
		f.String("callProfile", &p.CallProfile, nil)
		return f.Err()
	})
	if err != nil {
		return nil, spaceFailure(err)
	}
	s.log.Info("system profiles changed", "user", user(r), "callLegProfile", p.CallLegProfile, "callProfile", p.CallProfile)
	return nil, nil
}
