package webadmin

import (
	"strings"

	"confab.dev/confab/internal/callbridge/meeting"
)

// The API browser's catalogue (Configuration > API, as on CMS): the REST API's collections
// and singletons, and the parameters the page offers when an object is created or edited.
// The API itself checks every value; the page only lays the forms out.

// ParamKind is how the form shows a parameter.
type ParamKind int

// Kinds of parameters.
const (
	ParamText   ParamKind = iota
	ParamBool             // true, false or unset
	ParamEnum             // one of Values, or unset
	ParamSecret           // write-only: never shown, sent only when typed
)

// APIParam is a parameter of a collection's POST and PUT.
type APIParam struct {
	Name       string
	Kind       ParamKind
	Values     []string
	CreateOnly bool // only on POST (a user's username)
}

// APIKind is a kind of object of the API: a collection (Path with {id} for the objects
// above it, e.g. /coSpaces/{id}/accessMethods) or a singleton (/system/status).
type APIKind struct {
	Path      string
	Title     string
	Group     string
	Singleton bool
	Create    bool // POST on the collection
	Edit      bool // PUT on an object (on the singleton itself)
	Delete    bool // DELETE of an object
	Filter    bool // the list takes filter=
	Params    []APIParam
	Children  []string // sub-collections of an object, e.g. accessMethods
}

func text(names ...string) []APIParam {
	out := make([]APIParam, 0, len(names))
	for _, n := range names {
		out = append(out, APIParam{Name: n})
	}
	return out
}

func boolean(name string) APIParam     { return APIParam{Name: name, Kind: ParamBool} }
func secretParam(name string) APIParam { return APIParam{Name: name, Kind: ParamSecret} }
func enum(name string, values ...string) APIParam {
	return APIParam{Name: name, Kind: ParamEnum, Values: values}
}

// fieldParams are the parameters of a profile's settings.
func fieldParams(fields []meeting.Field) []APIParam {
	out := make([]APIParam, 0, len(fields))
	for _, f := range fields {
		switch f.Kind {
		case meeting.KindBool:
			out = append(out, boolean(f.Name))
		case meeting.KindEnum:
			out = append(out, enum(f.Name, f.Values...))
		default:
			out = append(out, APIParam{Name: f.Name})
		}
	}
	return out
}

// APICatalog lists what the API browser offers, in the order it shows them.
var APICatalog = []APIKind{
	{Path: "/coSpaces", Title: "Spaces (coSpaces)", Group: "Spaces", Create: true, Edit: true, Delete: true, Filter: true,
		Params: append(append(text("name", "uri", "secondaryUri", "callId"), secretParam("passcode"), secretParam("secret")),
			append(append(text("ownerJid"), boolean("nonMemberAccess"), enum("defaultLayout", meeting.Layouts...)),
				text("cdrTag", "callLegProfile", "callProfile")...)...),
		Children: []string{"accessMethods", "coSpaceUsers"}},
	{Path: "/coSpaces/{id}/accessMethods", Title: "Access methods", Group: "Spaces", Create: true, Edit: true, Delete: true, Filter: true,
		Params: append(append(text("name", "uri", "callId"), secretParam("passcode"), secretParam("secret")),
			APIParam{Name: "callLegProfile"}, enum("scope", "public", "private"))},
	{Path: "/coSpaces/{id}/coSpaceUsers", Title: "Space members", Group: "Spaces", Create: true, Edit: true, Delete: true,
		Params: []APIParam{{Name: "userJid", CreateOnly: true}, enum("role", meeting.RoleMember, meeting.RoleOwner)}},
	{Path: "/callLegProfiles", Title: "Call leg profiles", Group: "Profiles", Create: true, Edit: true, Delete: true,
		Params: fieldParams(meeting.CallLegProfileFields)},
	{Path: "/callProfiles", Title: "Call profiles", Group: "Profiles", Create: true, Edit: true, Delete: true,
		Params: fieldParams(meeting.CallProfileFields)},
	{Path: "/system/profiles", Title: "System profiles", Group: "Profiles", Singleton: true, Edit: true,
		Params: text("callLegProfile", "callProfile")},
	{Path: "/calls", Title: "Calls", Group: "Meetings", Create: true, Edit: true, Delete: true,
		Params: []APIParam{{Name: "coSpace", CreateOnly: true}, boolean("locked"), boolean("joinAudioMuteOverride"),
			boolean("allowAllMuteSelf"), {Name: "messageText"}},
		Children: []string{"callLegs", "participants"}},
	{Path: "/calls/{id}/callLegs", Title: "Call legs of a call", Group: "Meetings"},
	{Path: "/calls/{id}/participants", Title: "Participants of a call", Group: "Meetings"},
	{Path: "/callLegs", Title: "Call legs", Group: "Meetings", Edit: true, Delete: true, Filter: true,
		Params: []APIParam{boolean("rxAudioMute"), boolean("txAudioMute"), boolean("rxVideoMute"), boolean("txVideoMute"),
			enum("chosenLayout", meeting.Layouts...), {Name: "nameLabelOverride"}}},
	{Path: "/participants", Title: "Participants", Group: "Meetings", Delete: true, Filter: true, Children: []string{"callLegs"}},
	{Path: "/participants/{id}/callLegs", Title: "Call legs of a participant", Group: "Meetings"},
	{Path: "/users", Title: "Users", Group: "Users", Create: true, Edit: true, Delete: true, Filter: true,
		Params: []APIParam{{Name: "username", CreateOnly: true}, secretParam("password"), {Name: "name"}, {Name: "email"}}},
	{Path: "/ldapServers", Title: "LDAP servers", Group: "Users", Create: true, Edit: true, Delete: true,
		Params: append(text("address", "portNumber", "username"), secretParam("password"), boolean("secure"))},
	{Path: "/ldapMappings", Title: "LDAP mappings", Group: "Users", Create: true, Edit: true, Delete: true,
		Params: text("jidMapping", "nameMapping", "emailMapping", "cdrTagMapping")},
	{Path: "/ldapSources", Title: "LDAP sources", Group: "Users", Create: true, Edit: true, Delete: true,
		Params: text("server", "mapping", "baseDn", "filter")},
	{Path: "/ldapSyncs", Title: "LDAP syncs", Group: "Users", Create: true, Delete: true,
		Params: []APIParam{{Name: "ldapSource"}, boolean("removeWhenFinished")}},
	{Path: "/system/status", Title: "Status", Group: "System", Singleton: true},
	{Path: "/system/alarms", Title: "Alarms", Group: "System"},
	{Path: "/system/configuration/xmpp", Title: "XMPP settings", Group: "System", Singleton: true, Edit: true,
		Params: append(text("uniqueName", "domain", "serverAddressOverride"), secretParam("sharedSecret"))},
	{Path: "/system/cdrReceivers", Title: "CDR receivers", Group: "System", Create: true, Edit: true, Delete: true,
		Params: text("uri")},
	{Path: "/system/licensing", Title: "Licensing", Group: "System", Singleton: true},
	{Path: "/system/multipartyLicensing", Title: "Multiparty licensing", Group: "System", Singleton: true},
	{Path: "/system/load", Title: "Load", Group: "System", Singleton: true},
	{Path: "/turnServers", Title: "TURN servers", Group: "System", Create: true, Edit: true, Delete: true,
		Params: append(append(text("serverAddress", "clientAddress", "username"), secretParam("password")),
			enum("type", "acano", "cms", "expressway", "lyncEdge", "standard"), APIParam{Name: "numRegistrations"},
			APIParam{Name: "tcpPortNumberOverride"}, APIParam{Name: "tlsPortNumber"}, secretParam("sharedSecret"), boolean("udpDisabled"), boolean("tcpDisabled"))},
	{Path: "/callBridges", Title: "Call Bridges", Group: "System"},
	{Path: "/webBridges", Title: "Web Bridges", Group: "System"},
	{Path: "/tenants", Title: "Tenants", Group: "System"},
}

// apiTarget is what a path of the API browser names.
type apiTarget struct {
	kind   *APIKind
	object bool   // an object of the collection (its last segment is the id)
	list   string // the collection's path, with the ids filled in
}

// resolveAPIPath finds the catalogue's kind of a path: a collection, one of its objects, or a
// singleton. ok is false for anything else.
func resolveAPIPath(path string) (apiTarget, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range APICatalog {
		k := &APICatalog[i]
		tpl := strings.Split(strings.Trim(k.Path, "/"), "/")
		match := func(n int) bool {
			for j := 0; j < n; j++ {
				if tpl[j] == "{id}" {
					if !validID(segs[j]) {
						return false
					}
				} else if tpl[j] != segs[j] {
					return false
				}
			}
			return true
		}
		switch {
		case len(segs) == len(tpl) && match(len(tpl)):
			return apiTarget{kind: k, list: "/" + strings.Join(segs, "/")}, true
		case !k.Singleton && len(segs) == len(tpl)+1 && match(len(tpl)) && validID(segs[len(segs)-1]):
			return apiTarget{kind: k, object: true, list: "/" + strings.Join(segs[:len(tpl)], "/")}, true
		}
	}
	return apiTarget{}, false
}

// validID accepts what an object id of the API may be: letters, digits and hyphens.
func validID(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
