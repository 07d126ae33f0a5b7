package adminapi

import (
	"encoding/xml"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
)

// systemRoutes registers what CMS tools read when they start and Confab has little or none
// of: licensing, load, the cluster's Call Bridges, the Web Bridges, tenants, and the TURN
// servers (kept as configured, for the TURN support to come).
func (s *server) systemRoutes() {
	s.handle("GET /api/v1/system/licensing", s.getLicensing)
	s.handle("GET /api/v1/system/multipartyLicensing", s.getMultipartyLicensing)
	s.handle("GET /api/v1/system/load", s.getLoad)
	s.handle("GET /api/v1/callBridges", s.listCallBridges)
	s.handle("GET /api/v1/callBridges/{id}", s.getCallBridge)
	s.handle("GET /api/v1/webBridges", s.listWebBridges)
	s.handle("GET /api/v1/webBridges/{id}", s.getWebBridge)
	s.handle("GET /api/v1/tenants", s.listTenants)
	s.handle("GET /api/v1/tenants/{id}", s.getTenant)
	s.handle("GET /api/v1/turnServers", s.listTURNServers)
	s.handle("POST /api/v1/turnServers", s.createTURNServer)
	s.handle("GET /api/v1/turnServers/{id}", s.getTURNServer)
	s.handle("PUT /api/v1/turnServers/{id}", s.updateTURNServer)
	s.handle("DELETE /api/v1/turnServers/{id}", s.deleteTURNServer)
}

// licenseFeature is one feature of GET /system/licensing.
type licenseFeature struct {
	Status string `xml:"status" json:"status"`
}

// licensingDoc is GET /system/licensing: Confab needs no licence for what it does; what it
// does not do yet (TURN, recording, streaming) is noLicense, as on a CMS without those.
type licensingDoc struct {
	XMLName  xml.Name `xml:"licensing" json:"-"`
	Features struct {
		CallBridge    licenseFeature `xml:"callBridge" json:"callBridge"`
		WebBridge     licenseFeature `xml:"webBridge" json:"webBridge"`
		Turn          licenseFeature `xml:"turn" json:"turn"`
		Branding      licenseFeature `xml:"branding" json:"branding"`
		Recording     licenseFeature `xml:"recording" json:"recording"`
		Streaming     licenseFeature `xml:"streaming" json:"streaming"`
		Personal      licenseFeature `xml:"personal" json:"personal"`
		Shared        licenseFeature `xml:"shared" json:"shared"`
		CapacityUnits licenseFeature `xml:"capacityUnits" json:"capacityUnits"`
	} `xml:"features" json:"features"`
}

func (s *server) getLicensing(w http.ResponseWriter, r *http.Request) (any, error) {
	var d licensingDoc
	on, off := licenseFeature{"activated"}, licenseFeature{"noLicense"}
	f := &d.Features
	f.CallBridge, f.WebBridge, f.Personal, f.Shared = on, on, on, on
	f.Turn, f.Branding, f.Recording, f.Streaming, f.CapacityUnits = off, off, off, off, off
	return d, nil
}

// multipartyLicensingDoc is GET /system/multipartyLicensing: the usage counts Confab has.
type multipartyLicensingDoc struct {
	XMLName            xml.Name `xml:"multipartyLicensing" json:"-"`
	Timestamp          string   `xml:"timestamp" json:"timestamp"`
	Users              int      `xml:"users" json:"users"`
	PersonalLicenses   int      `xml:"personalLicenses" json:"personalLicenses"`
	ParticipantsActive int      `xml:"participantsActive" json:"participantsActive"`
	CallsActive        int      `xml:"callsActive" json:"callsActive"`
}

func (s *server) getMultipartyLicensing(w http.ResponseWriter, r *http.Request) (any, error) {
	users := 0
	if s.users != nil {
		_, n, err := s.users.List(r.Context(), "", 0, 1)
		if err != nil {
			return nil, err
		}
		users = n
	}
	return multipartyLicensingDoc{Timestamp: s.now().UTC().Format(time.RFC3339), Users: users,
		ParticipantsActive: len(s.meetings.CallLegs()), CallsActive: len(s.meetings.Calls())}, nil
}

// loadDoc is GET /system/load. Confab mixes no media yet: the load is 0.
type loadDoc struct {
	XMLName             xml.Name `xml:"load" json:"-"`
	MediaProcessingLoad int      `xml:"mediaProcessingLoad" json:"mediaProcessingLoad"`
}

func (s *server) getLoad(w http.ResponseWriter, r *http.Request) (any, error) {
	return loadDoc{}, nil
}

// emptyList answers a collection Confab has none of, e.g. <tenants total="0"></tenants>.
func emptyList(root string) objectsDoc { return objectsDoc{root: root} }

// callBridgesDoc is GET /callBridges. Confab's Call Bridges are not clustered (each serves
// the meetings that reach it), so, as an unclustered CMS, the list is empty.
func (s *server) listCallBridges(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, _, err := listWindow(r); err != nil {
		return nil, err
	}
	return emptyList("callBridges"), nil
}

func (s *server) getCallBridge(w http.ResponseWriter, r *http.Request) (any, error) {
	return nil, DoesNotExist("callBridgeDoesNotExist")
}

// webBridgeID is the id of the one Web Bridge, the same in every answer of this process.
var webBridgeID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("confab:webBridge")).String()

// listWebBridges is GET /webBridges: the Web Bridge this Call Bridge serves, when its URL is
// known.
func (s *server) listWebBridges(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	var items []objectDoc
	if s.webURL != "" && r.URL.Query().Get("tenantFilter") == "" {
		items = append(items, objectDoc{root: "webBridge", id: webBridgeID, fields: []field{{"url", s.webURL, kindString}}})
	}
	return objectsDoc{root: "webBridges", total: len(items), items: sliceWindow(items, offset, limit)}, nil
}

func (s *server) getWebBridge(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.webURL == "" || r.PathValue("id") != webBridgeID {
		return nil, DoesNotExist("webBridgeDoesNotExist")
	}
	return objectDoc{root: "webBridge", id: webBridgeID, fields: []field{{"url", s.webURL, kindString}}}, nil
}

// listTenants is GET /tenants: Confab has no tenants.
func (s *server) listTenants(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, _, err := listWindow(r); err != nil {
		return nil, err
	}
	return emptyList("tenants"), nil
}

func (s *server) getTenant(w http.ResponseWriter, r *http.Request) (any, error) {
	return nil, DoesNotExist("tenantDoesNotExist")
}

// turnFields are a TURN server's settings (CMS's); password is write-only.
var turnFields = []meeting.Field{
	{Name: "serverAddress", Kind: meeting.KindString, Max: 300},
	{Name: "clientAddress", Kind: meeting.KindString, Max: 300},
	{Name: "username", Kind: meeting.KindString, Max: 300},
	{Name: "password", Kind: meeting.KindString, Max: 300},
	{Name: "type", Kind: meeting.KindEnum, Values: []string{"acano", "cms", "expressway", "lyncEdge", "standard"}},
	{Name: "numRegistrations", Kind: meeting.KindInt, Min: 0, Max: 100},
	{Name: "tcpPortNumberOverride", Kind: meeting.KindInt, Min: 1, Max: 65535},
}

// turnShown are the TURN fields a GET shows.
var turnShown = turnFields[:2:2]

func turnDoc(o store.Object, detail bool) objectDoc {
	shown := turnShown
	if detail {
		shown = append(append(shown, turnFields[2]), turnFields[4:]...)
	}
	return docOf("turnServer", o.ID, shown, o.Fields)
}

func (s *server) turnFailure(err error) error {
	var ref *store.RefError
	if errors.As(err, &ref) {
		return DoesNotExist("turnServerDoesNotExist")
	}
	return err
}

func (s *server) listTURNServers(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	objs, total, err := s.store.ListObjects(r.Context(), store.KindTURNServer, store.UsageAny, offset, limit)
	if err != nil {
		return nil, err
	}
	doc := objectsDoc{root: "turnServers", total: total}
	for _, o := range objs {
		doc.items = append(doc.items, turnDoc(o, false))
	}
	return doc, nil
}

func (s *server) createTURNServer(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	if err := readSettings(f, turnFields, values); err != nil {
		return nil, err
	}
	o, err := s.store.CreateObject(r.Context(), store.Object{ID: uuid.NewString(), Kind: store.KindTURNServer, Fields: values})
	if err != nil {
		return nil, err
	}
	s.log.Info("turn server created", "user", user(r), "id", o.ID)
	w.Header().Set("Location", "/api/v1/turnServers/"+o.ID)
	return nil, nil
}

func (s *server) getTURNServer(w http.ResponseWriter, r *http.Request) (any, error) {
	o, err := s.store.Object(r.Context(), store.KindTURNServer, r.PathValue("id"))
	if err != nil {
		return nil, s.turnFailure(err)
	}
	return turnDoc(o, true), nil
}

func (s *server) updateTURNServer(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if _, err := s.store.UpdateObject(r.Context(), store.KindTURNServer, id, func(o *store.Object) error {
		return readSettings(f, turnFields, o.Fields)
	}); err != nil {
		return nil, s.turnFailure(err)
	}
	s.log.Info("turn server changed", "user", user(r), "id", id)
	return nil, nil
}

func (s *server) deleteTURNServer(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.store.DeleteObject(r.Context(), store.KindTURNServer, id); err != nil {
		return nil, s.turnFailure(err)
	}
	s.log.Info("turn server deleted", "user", user(r), "id", id)
	return nil, nil
}
