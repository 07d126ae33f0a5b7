package adminapi

import (
	"encoding/xml"
	"errors"
	"net/http"

	"confab.dev/confab/internal/callbridge/cdr"
	"confab.dev/confab/internal/store"
)

// cdrRoutes registers /system/cdrReceivers (CMS's receivers of Call Detail Records) and the
// older single-receiver nodes /system/cdrReceiver and /system/configuration/cdr.
func (s *server) cdrRoutes() {
	if s.cdr == nil {
		s.cdr = cdr.New(cdr.Options{Store: s.store, Logger: s.log, Now: s.now})
	}
	s.handle("GET /api/v1/system/cdrReceivers", s.listCDRReceivers)
	s.handle("POST /api/v1/system/cdrReceivers", s.createCDRReceiver)
	s.handle("PUT /api/v1/system/cdrReceivers", s.createCDRReceiver)
	s.handle("GET /api/v1/system/cdrReceivers/{id}", s.getCDRReceiver)
	s.handle("PUT /api/v1/system/cdrReceivers/{id}", s.updateCDRReceiver)
	s.handle("DELETE /api/v1/system/cdrReceivers/{id}", s.deleteCDRReceiver)
	for _, path := range []string{"/api/v1/system/cdrReceiver", "/api/v1/system/configuration/cdr"} {
		s.handle("GET "+path, s.getLegacyCDRReceiver)
		s.handle("PUT "+path, s.setLegacyCDRReceiver)
		s.handle("POST "+path, s.setLegacyCDRReceiver)
	}
}

// cdrReceiversDoc is GET /system/cdrReceivers; maximum is how many may be configured.
type cdrReceiversDoc struct {
	XMLName   xml.Name         `xml:"cdrReceivers" json:"-"`
	Total     int              `xml:"total,attr" json:"total"`
	Maximum   int              `xml:"maximum,attr" json:"maximum"`
	Receivers []cdrReceiverDoc `xml:"cdrReceiver" json:"cdrReceiver"`
}

// cdrReceiverDoc is one receiver. The query of its URI may hold a token (CMM's do), but CMS
// shows the URI whole, and so does Confab: it is what an administrator configured.
type cdrReceiverDoc struct {
	XMLName xml.Name `xml:"cdrReceiver" json:"-"`
	ID      string   `xml:"id,attr,omitempty" json:"id,omitempty"`
	URI     string   `xml:"uri,omitempty" json:"uri,omitempty"`
	// Confab's extensions: how delivery goes.
	Queued      *int   `xml:"queued,omitempty" json:"queued,omitempty"`
	LastError   string `xml:"lastError,omitempty" json:"lastError,omitempty"`
	LastSuccess string `xml:"lastSuccess,omitempty" json:"lastSuccess,omitempty"`
}

func receiverDoc(r cdr.Receiver, detail bool) cdrReceiverDoc {
	d := cdrReceiverDoc{ID: r.ID, URI: r.URI}
	if detail {
		d.Queued, d.LastError, d.LastSuccess = &r.Queued, r.LastError, stamp(r.LastSuccess)
	}
	return d
}

// cdrFailure maps the errors of the receiver methods.
func cdrFailure(err error, param string) error {
	var bad *cdr.InvalidURIError
	var ref *store.RefError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &bad):
		return ParameterError(param, "invalidValue", bad.Reason)
	case errors.Is(err, cdr.ErrTooManyReceivers):
		return &Failure{Status: http.StatusBadRequest, Name: "tooManyCdrReceivers", Reason: err.Error()}
	case errors.As(err, &ref):
		return DoesNotExist("cdrReceiverDoesNotExist")
	}
	return err
}

// readURI reads a receiver's URI: CMS's parameter is uri, and its documentation also says
// url; either is taken (uri when both).
func readURI(f *Form) (uri, param string, present bool) {
	for _, name := range []string{"uri", "url"} {
		if f.Has(name) {
			f.String(name, &uri, nil)
			return uri, name, true
		}
	}
	return "", "uri", false
}

func (s *server) listCDRReceivers(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	rs, total, err := s.cdr.Receivers(r.Context(), offset, limit)
	if err != nil {
		return nil, err
	}
	doc := cdrReceiversDoc{Total: total, Maximum: cdr.MaxReceivers, Receivers: []cdrReceiverDoc{}}
	for _, rc := range rs {
		doc.Receivers = append(doc.Receivers, receiverDoc(rc, false))
	}
	return doc, nil
}

// createCDRReceiver is POST (and, as on CMS, PUT) /system/cdrReceivers: a receiver with the
// uri given, or none yet.
func (s *server) createCDRReceiver(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	uri, param, _ := readURI(f)
	if err := f.Err(); err != nil {
		return nil, err
	}
	rc, err := s.cdr.CreateReceiver(r.Context(), uri)
	if err != nil {
		return nil, cdrFailure(err, param)
	}
	s.log.Info("cdr receiver created", "user", user(r), "id", rc.ID)
	w.Header().Set("Location", "/api/v1/system/cdrReceivers/"+rc.ID)
	return nil, nil
}

func (s *server) getCDRReceiver(w http.ResponseWriter, r *http.Request) (any, error) {
	rc, err := s.cdr.Receiver(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, cdrFailure(err, "")
	}
	return receiverDoc(rc, true), nil
}

// updateCDRReceiver is PUT /system/cdrReceivers/{id}: uri (empty: the receiver stays, with no
// URI, and gets nothing).
func (s *server) updateCDRReceiver(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	uri, param, present := readURI(f)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if !present {
		if _, err := s.cdr.Receiver(r.Context(), id); err != nil {
			return nil, cdrFailure(err, "")
		}
		return nil, nil
	}
	if _, err := s.cdr.SetReceiverURI(r.Context(), id, uri); err != nil {
		return nil, cdrFailure(err, param)
	}
	s.log.Info("cdr receiver changed", "user", user(r), "id", id)
	return nil, nil
}

func (s *server) deleteCDRReceiver(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.cdr.DeleteReceiver(r.Context(), id); err != nil {
		return nil, cdrFailure(err, "")
	}
	s.log.Info("cdr receiver deleted", "user", user(r), "id", id)
	return nil, nil
}

// getLegacyCDRReceiver is GET /system/cdrReceiver and /system/configuration/cdr: the one
// receiver of CMS's older API, <cdrReceiver><uri>…</uri></cdrReceiver>, empty when unset.
func (s *server) getLegacyCDRReceiver(w http.ResponseWriter, r *http.Request) (any, error) {
	rc, err := s.cdr.LegacyReceiver(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		return cdrReceiverDoc{}, nil
	}
	if err != nil {
		return nil, err
	}
	return cdrReceiverDoc{ID: rc.ID, URI: rc.URI}, nil
}

// setLegacyCDRReceiver is PUT and POST of the older node: uri sets the one receiver (made when
// needed, and listed in /system/cdrReceivers), an empty uri removes it.
func (s *server) setLegacyCDRReceiver(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	uri, param, present := readURI(f)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if !present {
		return nil, nil
	}
	if err := s.cdr.SetLegacyReceiver(r.Context(), uri); err != nil {
		return nil, cdrFailure(err, param)
	}
	s.log.Info("cdr receiver (single) set", "user", user(r), "set", uri != "")
	return nil, nil
}
