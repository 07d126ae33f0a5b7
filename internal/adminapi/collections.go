package adminapi

import (
	"encoding/xml"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
)

// systemRoutes registers what CMS tools read when they start and Confab has little or none
// of: licensing, load, the cluster's Call Bridges, the Web Bridges, tenants; and the TURN
// servers the browsers are given (with the embedded one's allocations).
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
	s.handle("GET /api/v1/turnServers/{id}/allocations", s.listTURNAllocations)
}

// licenseFeature is one feature of GET /system/licensing.
type licenseFeature struct {
	Status string `xml:"status" json:"status"`
}

// licensingDoc is GET /system/licensing: Confab needs no licence for what it does; what it
// does not do yet (recording, streaming) is noLicense, as on a CMS without those.
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
	f.CallBridge, f.WebBridge, f.Personal, f.Shared, f.Turn = on, on, on, on, on
	f.Branding, f.Recording, f.Streaming, f.CapacityUnits = off, off, off, off
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

// turnFields are a TURN server's settings: CMS's, then Confab's extensions (tlsPortNumber,
// the turns: port; sharedSecret, from which each participant's credentials are issued;
// udpDisabled and tcpDisabled, no turn: over UDP or TCP). password and sharedSecret are
// write-only.
var turnFields = []meeting.Field{
	{Name: "serverAddress", Kind: meeting.KindString, Max: 300},
	{Name: "clientAddress", Kind: meeting.KindString, Max: 300},
	{Name: "username", Kind: meeting.KindString, Max: 300},
	{Name: "password", Kind: meeting.KindString, Max: 300},
	{Name: "type", Kind: meeting.KindEnum, Values: []string{"acano", "cms", "expressway", "lyncEdge", "standard"}},
	{Name: "numRegistrations", Kind: meeting.KindInt, Min: 0, Max: 100},
	{Name: "tcpPortNumberOverride", Kind: meeting.KindInt, Min: 1, Max: 65535},
	{Name: "tlsPortNumber", Kind: meeting.KindInt, Min: 1, Max: 65535},
	{Name: "sharedSecret", Kind: meeting.KindString, Max: 300},
	{Name: "udpDisabled", Kind: meeting.KindBool},
	{Name: "tcpDisabled", Kind: meeting.KindBool},
}

// turnEmbedded marks the TURN server the Call Bridge runs itself (read-only).
var turnEmbedded = meeting.Field{Name: "embedded", Kind: meeting.KindBool}

// turnShown are the TURN fields a GET shows.
var turnShown = turnFields[:2:2]

func turnDoc(o store.Object, detail bool) objectDoc {
	shown := append(turnShown, turnEmbedded)
	if detail {
		shown = []meeting.Field{turnFields[0], turnFields[1], turnFields[2]}
		for _, f := range turnFields[4:] {
			if f.Name != "sharedSecret" {
				shown = append(shown, f)
			}
		}
		shown = append(shown, turnEmbedded)
	}
	return docOf("turnServer", o.ID, shown, o.Fields)
}

// checkTURNAddresses refuses a serverAddress or clientAddress that is not host[:port].
func checkTURNAddresses(f *Form, values map[string]string) error {
	for _, name := range []string{"serverAddress", "clientAddress"} {
		v := values[name]
		if v == "" {
			continue
		}
		if h, _, ok := splitTURNAddress(v); !ok || h == "" || strings.ContainsAny(h, "/?#@ ") {
			f.setErr(ParameterError(name, "invalidValue", "want host or host:port"))
		}
	}
	return f.Err()
}

// splitTURNAddress splits host[:port] (IPv6 in brackets when a port follows).
func splitTURNAddress(v string) (host string, port int, ok bool) {
	if h, p, err := net.SplitHostPort(v); err == nil {
		n, err := strconv.Atoi(p)
		return h, n, err == nil && n > 0 && n <= 65535
	}
	if strings.Count(v, ":") == 1 {
		return "", 0, false // host:port with a bad port
	}
	return strings.Trim(v, "[]"), 0, true
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
	if err := checkTURNAddresses(f, values); err != nil {
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
		if err := readSettings(f, turnFields, o.Fields); err != nil {
			return err
		}
		return checkTURNAddresses(f, o.Fields)
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

// allocationsDoc is GET /turnServers/{id}/allocations (Confab's): the embedded TURN
// server's current allocations, oldest first.
type allocationsDoc struct {
	XMLName     xml.Name        `xml:"allocations" json:"-"`
	Total       int             `xml:"total,attr" json:"total"`
	TURNServer  string          `xml:"turnServer,attr" json:"turnServer"`
	Allocations []allocationDoc `xml:"allocation" json:"allocation"`
}

// allocationDoc is one allocation: who relays (the call leg whose credentials it used),
// how much, since when.
type allocationDoc struct {
	ID              string `xml:"id,attr" json:"id"` // the relayed transport address
	UserID          string `xml:"userId" json:"userId"`
	CallLeg         string `xml:"callLeg,omitempty" json:"callLeg,omitempty"`
	Name            string `xml:"name,omitempty" json:"name,omitempty"`
	Transport       string `xml:"transport" json:"transport"`
	ClientAddress   string `xml:"clientAddress" json:"clientAddress"`
	ServerAddress   string `xml:"serverAddress" json:"serverAddress"`
	RelayedAddress  string `xml:"relayedAddress" json:"relayedAddress"`
	Since           string `xml:"since" json:"since"`
	DurationSeconds int64  `xml:"durationSeconds" json:"durationSeconds"`
	Expires         string `xml:"credentialExpires,omitempty" json:"credentialExpires,omitempty"`
	BytesToPeer     uint64 `xml:"bytesToPeer" json:"bytesToPeer"`
	BytesFromPeer   uint64 `xml:"bytesFromPeer" json:"bytesFromPeer"`
	PacketsToPeer   uint64 `xml:"packetsToPeer" json:"packetsToPeer"`
	PacketsFromPeer uint64 `xml:"packetsFromPeer" json:"packetsFromPeer"`
	DroppedToPeer   uint64 `xml:"droppedToPeer" json:"droppedToPeer"`
	DroppedFromPeer uint64 `xml:"droppedFromPeer" json:"droppedFromPeer"`
}

// AllocationDocs are the allocations as the API shows them, with the call leg each
// belongs to when its user id names a live one.
func (s *server) allocationDocs(allocs []turnd.Allocation) []allocationDoc {
	out := make([]allocationDoc, 0, len(allocs))
	now := s.now()
	for _, a := range allocs {
		d := allocationDoc{ID: a.Relayed.String(), UserID: a.UserID, Transport: a.Transport,
			ClientAddress: a.Client.String(), ServerAddress: a.Server.String(), RelayedAddress: a.Relayed.String(),
			Since: a.Since.UTC().Format(time.RFC3339), DurationSeconds: seconds(now.Sub(a.Since)),
			BytesToPeer: a.ToPeer.Bytes, BytesFromPeer: a.FromPeer.Bytes, PacketsToPeer: a.ToPeer.Packets,
			PacketsFromPeer: a.FromPeer.Packets, DroppedToPeer: a.ToPeer.Dropped, DroppedFromPeer: a.FromPeer.Dropped}
		if !a.Expires.IsZero() {
			d.Expires = a.Expires.UTC().Format(time.RFC3339)
		}
		if l, ok := s.meetings.CallLeg(a.UserID); ok {
			d.CallLeg, d.Name = l.ID, l.Name
		}
		out = append(out, d)
	}
	return out
}

func (s *server) listTURNAllocations(w http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := listWindow(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if _, err := s.store.Object(r.Context(), store.KindTURNServer, id); err != nil {
		return nil, s.turnFailure(err)
	}
	var srv *turnd.Server
	if s.turn != nil {
		srv = s.turn()
	}
	if id != s.embeddedTURN || srv == nil {
		// An external TURN server (coturn) keeps its allocations to itself.
		return nil, &Failure{Status: http.StatusBadRequest, Name: "allocationsNotAvailable",
			Reason: "only the embedded TURN server's allocations are known to the Call Bridge"}
	}
	items := s.allocationDocs(srv.Allocations())
	return allocationsDoc{Total: len(items), TURNServer: id, Allocations: sliceWindow(items, offset, limit)}, nil
}
