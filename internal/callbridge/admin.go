package callbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/eventlog"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/web/webadmin"
)

// adminBackend shows the Call Bridge to the web admin.
type adminBackend struct{ b *Bridge }

// CheckLogin checks a web admin sign-in with the same checker as the REST API: one throttle,
// one dummy hash, one bound on the hashes running at once.
func (a adminBackend) CheckLogin(ctx context.Context, user, password, remoteAddr string) error {
	return a.b.Accounts.Check(ctx, user, password, remoteAddr)
}

func (a adminBackend) XMPPSettings(ctx context.Context) (webadmin.XMPPSettings, error) {
	c, err := a.b.Store.XMPPSettings(ctx)
	return webadmin.XMPPSettings{UniqueName: c.UniqueName, Domain: c.Domain, ServerAddressOverride: c.ServerAddressOverride, SecretSet: !c.SharedSecret.IsZero()}, err
}

func (a adminBackend) SetXMPPSettings(ctx context.Context, uniqueName, domain, override string, newSecret *string) error {
	_, cfg, err := a.b.Settings.Update(ctx, func(c *store.XMPPSettings) error {
		c.UniqueName, c.Domain, c.ServerAddressOverride = uniqueName, domain, override
		if newSecret != nil {
			c.SharedSecret = secret.New(*newSecret)
		}
		return nil
	})
	var se *link.SettingError
	if errors.As(err, &se) {
		return &webadmin.FieldError{Field: se.Field, Message: se.Err.Error()}
	}
	if err != nil {
		return err
	}
	a.b.log.Info("XMPP settings changed in the web admin", "uniqueName", cfg.UniqueName, "domain", cfg.Domain, "serverAddressOverride", cfg.ServerAddressOverride, "sharedSecretChanged", newSecret != nil)
	return nil
}

// API serves the web admin's API browser: a request to the REST API as the signed-in user.
func (a adminBackend) API(ctx context.Context, user, method, path string, form url.Values) webadmin.APIResponse {
	r := a.b.api.Do(ctx, user, method, path, form)
	return webadmin.APIResponse{Status: r.Status, Location: r.Location, Body: r.Body}
}

func (a adminBackend) LinkStatus() linkstate.Status         { return a.b.Link.Status() }
func (a adminBackend) Trace(after uint64) []linkstate.Event { return a.b.Link.Trace(after) }
func (a adminBackend) Alarms() []linkstate.Alarm            { return a.b.Link.Alarms() }

func (a adminBackend) Users(ctx context.Context) ([]webadmin.UserView, error) {
	us, _, err := a.b.Users.List(ctx, "", 0, 1000)
	if err != nil {
		return nil, err
	}
	out := make([]webadmin.UserView, 0, len(us))
	for _, u := range us {
		out = append(out, webadmin.UserView{ID: u.ID, JID: u.JID, Name: u.Name, Email: u.Email, Source: string(u.Kind)})
	}
	return out, nil
}

func (a adminBackend) Spaces(ctx context.Context) ([]webadmin.SpaceView, error) {
	m := a.b.Meetings
	sps, _, err := m.ListSpaces(ctx, store.CoSpaceFilter{Limit: 1000})
	if err != nil {
		return nil, err
	}
	out := make([]webadmin.SpaceView, 0, len(sps))
	for _, s := range sps {
		_, members, err := m.Members(ctx, s.ID, 0, 1)
		if err != nil {
			return nil, err
		}
		out = append(out, webadmin.SpaceView{ID: s.ID, Name: s.Name, URI: s.URI, CallID: s.CallID, OwnerJID: s.OwnerJID,
			Members: members, PasscodeSet: !s.Passcode.IsZero(), NonMemberAccess: s.NonMemberAccess})
	}
	return out, nil
}

func (a adminBackend) Calls(ctx context.Context) ([]webadmin.CallView, error) {
	var out []webadmin.CallView
	for _, c := range a.b.Meetings.Calls() {
		out = append(out, a.callView(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// callView is a call with its participants and, when the media server has them, their
// media statistics.
func (a adminBackend) callView(c meeting.Call) webadmin.CallView {
	v := webadmin.CallView{ID: c.ID, SpaceID: c.CoSpaceID, SpaceName: c.Name, Started: c.Started}
	legs, _ := a.b.Meetings.Participants(c.ID)
	for _, l := range legs {
		p := webadmin.ParticipantView{ID: l.ID, Name: l.Name, JID: l.RemoteParty, Role: l.Role, Joined: l.Joined}
		if a.b.Media != nil {
			if st, ok := a.b.Media.Stats(c.ID, l.ID); ok {
				p.Media = &webadmin.MediaView{RxAudio: streamView(st.RxAudio), RxVideo: streamView(st.RxVideo),
					TxAudio: streamView(st.TxAudio), TxVideo: streamView(st.TxVideo)}
			}
			if lad, ok := a.b.Media.Ladder(l.ID); ok {
				p.Ladder = ladderView(lad)
			}
		}
		v.Participants = append(v.Participants, p)
	}
	return v
}

func ladderView(l ladder.Ladder) *webadmin.LadderView {
	v := &webadmin.LadderView{State: l.State, Path: l.Path, Cause: l.Cause, Text: l.Text}
	for _, s := range l.Steps {
		v.Steps = append(v.Steps, webadmin.LadderStep{Name: s.Name, Title: s.Title, State: s.State, At: s.At, Since: s.Since,
			Detail: s.Detail, Cause: s.Cause, Remedy: s.Remedy})
	}
	return v
}

// TURN shows the TURN servers as browsers get them and the embedded server's allocations.
func (a adminBackend) TURN(ctx context.Context) (webadmin.TURNView, error) {
	objs, _, err := a.b.Store.ListObjects(ctx, store.KindTURNServer, store.UsageAny, 0, 0)
	if err != nil {
		return webadmin.TURNView{}, err
	}
	var v webadmin.TURNView
	for _, o := range objs {
		f := o.Fields
		sv := webadmin.TURNServerView{ID: o.ID, ServerAddress: f["serverAddress"], ClientAddress: f["clientAddress"], Type: f["type"],
			Embedded: f["embedded"] == "true"}
		if is, ok := TURNServerICE(o, "participant", a.b.cfg.Now().Add(CredentialLifetime)); ok {
			sv.URLs = is.URLs
		}
		switch {
		case f["type"] == "lyncEdge":
			sv.Credentials = "not offered to browsers (Lync Edge)"
		case f["sharedSecret"] != "":
			sv.Credentials = "issued for each participant from the shared secret"
		case f["username"] != "" && f["password"] != "":
			sv.Credentials = "static: " + f["username"]
		default:
			sv.Credentials = "none: offered as STUN only"
		}
		v.Servers = append(v.Servers, sv)
	}
	if srv := a.b.TURN(); srv != nil {
		v.Embedded = true
		for _, al := range srv.Allocations() {
			av := webadmin.AllocationView{UserID: al.UserID, Transport: al.Transport, Client: al.Client.String(), Relayed: al.Relayed.String(),
				Since: al.Since, BytesToPeer: al.ToPeer.Bytes, BytesFromPeer: al.FromPeer.Bytes, PacketsToPeer: al.ToPeer.Packets,
				PacketsFromPeer: al.FromPeer.Packets, Dropped: al.ToPeer.Dropped + al.FromPeer.Dropped}
			if l, ok := a.b.Meetings.CallLeg(al.UserID); ok {
				av.Who, av.Leg = l.Name+" ("+l.RemoteParty+")", l.ID
			}
			v.Allocations = append(v.Allocations, av)
		}
	}
	return v, nil
}

func streamView(m sfu.MediaStats) webadmin.StreamView {
	return webadmin.StreamView{Codec: m.Codec, BitRate: m.BitRate, LossFraction: m.LossFraction, Jitter: m.Jitter, Width: m.Width, Height: m.Height}
}

// ---- management: spaces, users, LDAP, calls, the event log -----------------------------

// notFound turns the services' "no such object" errors into the web admin's.
func notFound(err error) error {
	var re *store.RefError
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNoCoSpaceMember) || errors.As(err, &re) ||
		errors.Is(err, meeting.ErrNoSuchCall) || errors.Is(err, meeting.ErrNoSuchCallLeg) {
		return fmt.Errorf("%w: %w", webadmin.ErrNotFound, err)
	}
	return err
}

// spaceError names the form field of a meeting service error.
func spaceError(err error) error {
	var ie *meeting.InvalidError
	switch {
	case errors.As(err, &ie):
		field := ie.Field
		if field == "userJid" {
			field = "jid"
		}
		return &webadmin.FieldError{Field: field, Message: upper(ie.Reason)}
	case errors.Is(err, store.ErrCoSpaceURITaken):
		return &webadmin.FieldError{Field: "uri", Message: "Another space already has this URI"}
	case errors.Is(err, store.ErrCallIDTaken):
		return &webadmin.FieldError{Field: "callId", Message: "Another space already has this call ID"}
	}
	return notFound(err)
}

// upper capitalises a service's reason for the page: "longer than 200 characters" →
// "Longer than 200 characters".
func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (a adminBackend) Space(ctx context.Context, id string) (webadmin.SpaceDetail, error) {
	m := a.b.Meetings
	s, err := m.GetSpace(ctx, id)
	if err != nil {
		return webadmin.SpaceDetail{}, notFound(err)
	}
	members, _, err := m.Members(ctx, id, 0, 0)
	if err != nil {
		return webadmin.SpaceDetail{}, notFound(err)
	}
	d := webadmin.SpaceDetail{SpaceView: webadmin.SpaceView{ID: s.ID, Name: s.Name, URI: s.URI, CallID: s.CallID, OwnerJID: s.OwnerJID,
		Members: len(members), PasscodeSet: !s.Passcode.IsZero(), NonMemberAccess: s.NonMemberAccess}}
	for _, mb := range members {
		d.MemberList = append(d.MemberList, webadmin.MemberView{ID: mb.ID, JID: mb.UserJID, Role: mb.Role})
	}
	if c, ok := m.CallOfSpace(id); ok {
		v := a.callView(c)
		d.Call = &v
	}
	return d, nil
}

func (a adminBackend) CreateSpace(ctx context.Context, in webadmin.SpaceInput) (string, error) {
	c := store.CoSpace{Name: in.Name, URI: in.URI, CallID: in.CallID, NonMemberAccess: in.NonMemberAccess}
	if in.Passcode != nil {
		c.Passcode = secret.New(*in.Passcode)
	}
	out, err := a.b.Meetings.CreateSpace(ctx, c)
	if err != nil {
		return "", spaceError(err)
	}
	return out.ID, nil
}

func (a adminBackend) UpdateSpace(ctx context.Context, id string, in webadmin.SpaceInput) error {
	_, err := a.b.Meetings.UpdateSpace(ctx, id, func(c *store.CoSpace) error {
		c.Name, c.URI, c.CallID, c.NonMemberAccess = in.Name, in.URI, in.CallID, in.NonMemberAccess
		if in.Passcode != nil {
			c.Passcode = secret.New(*in.Passcode)
		}
		return nil
	})
	return spaceError(err)
}

func (a adminBackend) DeleteSpace(ctx context.Context, id string) error {
	return notFound(a.b.Meetings.DeleteSpace(ctx, id))
}

func (a adminBackend) AddMember(ctx context.Context, spaceID, jid, role string) error {
	norm, err := meeting.NormalizeJID(jid)
	if err != nil {
		return &webadmin.FieldError{Field: "jid", Message: upper(err.Error())}
	}
	if _, err := a.b.Users.GetByJID(ctx, norm); errors.Is(err, users.ErrNotFound) {
		return &webadmin.FieldError{Field: "jid", Message: "No user has the JID " + norm + ": add the user first, or check the spelling"}
	} else if err != nil {
		return err
	}
	_, err = a.b.Meetings.AddMember(ctx, spaceID, norm, role)
	if errors.Is(err, store.ErrExists) {
		return &webadmin.FieldError{Field: "jid", Message: norm + " is a member already"}
	}
	return spaceError(err)
}

func (a adminBackend) RemoveMember(ctx context.Context, spaceID, memberID string) error {
	return notFound(a.b.Meetings.RemoveMember(ctx, spaceID, memberID))
}

// userError names the form field of a users service error.
func userError(err error, fields map[string]string) error {
	var fe *users.FieldError
	if errors.As(err, &fe) {
		field := fe.Field
		if f, ok := fields[field]; ok {
			field = f
		}
		return &webadmin.FieldError{Field: field, Message: upper(fe.Err.Error())}
	}
	var re *store.RefError
	if errors.As(err, &re) {
		field := strings.TrimPrefix(strings.ToLower(re.Kind), "ldap")
		return &webadmin.FieldError{Field: field, Message: "It no longer exists: choose another"}
	}
	if errors.Is(err, users.ErrInUse) {
		return &webadmin.FieldError{Field: "", Message: "It is used by a source: delete the source first"}
	}
	return notFound(err)
}

func (a adminBackend) CreateUser(ctx context.Context, in webadmin.NewUser) error {
	_, err := a.b.Users.CreateLocal(ctx, users.LocalUser{Username: in.Username, Name: in.Name, Email: in.Email}, secret.New(in.Password))
	if errors.Is(err, users.ErrExists) {
		return &webadmin.FieldError{Field: "username", Message: "A user with this JID exists already"}
	}
	return userError(err, nil)
}

func (a adminBackend) SetPassword(ctx context.Context, userID, password string) error {
	err := a.b.Users.SetPassword(ctx, userID, secret.New(password))
	if errors.Is(err, users.ErrNotLocal) {
		return &webadmin.FieldError{Field: "password", Message: "This user is imported from LDAP: its password is the directory's"}
	}
	return userError(err, nil)
}

func (a adminBackend) LDAP(ctx context.Context) (webadmin.LDAPView, error) {
	u := a.b.Users
	var v webadmin.LDAPView
	servers, _, err := u.LDAPServers(ctx, 0, 0)
	if err != nil {
		return v, err
	}
	names := map[string]string{}
	for _, s := range servers {
		v.Servers = append(v.Servers, webadmin.LDAPServerView{ID: s.ID, Address: s.Address, Port: s.PortNumber, Username: s.Username,
			Secure: s.Secure, PasswordSet: !s.Password.IsZero()})
		names[s.ID] = net.JoinHostPort(s.Address, strconv.Itoa(s.PortNumber))
	}
	mappings, _, err := u.LDAPMappings(ctx, 0, 0)
	if err != nil {
		return v, err
	}
	for _, m := range mappings {
		v.Mappings = append(v.Mappings, webadmin.LDAPMappingView{ID: m.ID, JID: m.JIDMapping, Name: m.NameMapping, Email: m.EmailMapping})
		names[m.ID] = m.JIDMapping
	}
	sources, _, err := u.LDAPSources(ctx, 0, 0)
	if err != nil {
		return v, err
	}
	for _, s := range sources {
		v.Sources = append(v.Sources, webadmin.LDAPSourceView{ID: s.ID, Server: names[s.Server], Mapping: names[s.Mapping], BaseDN: s.BaseDN, Filter: s.Filter})
	}
	_, n, err := u.LDAPSyncs(ctx, 0, 1)
	if err != nil {
		return v, err
	}
	syncs, _, err := u.LDAPSyncs(ctx, max(0, n-10), 10) // the ten newest
	if err != nil {
		return v, err
	}
	for i := len(syncs) - 1; i >= 0; i-- {
		s := syncs[i]
		v.Syncs = append(v.Syncs, webadmin.LDAPSyncView{ID: s.ID, Source: s.Source, State: s.State, FailureReason: s.FailureReason, Detail: s.Detail,
			Imported: s.NumUsersImported, Created: s.UsersCreated, Updated: s.UsersUpdated, Deleted: s.UsersDeleted, Skipped: s.EntriesSkipped,
			Queued: s.Created, Finished: s.Finished})
	}
	return v, nil
}

func (a adminBackend) CreateLDAPServer(ctx context.Context, in webadmin.LDAPServerInput) error {
	port, err := strconv.Atoi(in.Port)
	if err != nil {
		return &webadmin.FieldError{Field: "port", Message: "Enter a port number from 1 to 65535"}
	}
	_, err = a.b.Users.CreateLDAPServer(ctx, users.LDAPServer{Address: in.Address, PortNumber: port, Username: in.Username,
		Password: secret.New(in.Password), Secure: in.Secure})
	return userError(err, map[string]string{"portNumber": "port"})
}

func (a adminBackend) CreateLDAPMapping(ctx context.Context, in webadmin.LDAPMappingInput) error {
	_, err := a.b.Users.CreateLDAPMapping(ctx, users.LDAPMapping{JIDMapping: in.JID, NameMapping: in.Name, EmailMapping: in.Email})
	return userError(err, map[string]string{"jidMapping": "jid", "nameMapping": "name", "emailMapping": "email"})
}

func (a adminBackend) CreateLDAPSource(ctx context.Context, in webadmin.LDAPSourceInput) error {
	_, err := a.b.Users.CreateLDAPSource(ctx, users.LDAPSource{Server: in.Server, Mapping: in.Mapping, BaseDN: in.BaseDN, Filter: in.Filter})
	return userError(err, nil)
}

func (a adminBackend) DeleteLDAP(ctx context.Context, kind, id string) error {
	u := a.b.Users
	var err error
	switch kind {
	case "server":
		err = u.DeleteLDAPServer(ctx, id)
	case "mapping":
		err = u.DeleteLDAPMapping(ctx, id)
	case "source":
		err = u.DeleteLDAPSource(ctx, id)
	default:
		return webadmin.ErrNotFound
	}
	return userError(err, nil)
}

func (a adminBackend) StartLDAPSync(ctx context.Context) (string, error) {
	v, err := a.b.Users.StartSync(ctx, "", false)
	if err != nil {
		return "", err
	}
	return v.ID, nil
}

func (a adminBackend) EndCall(id string) error {
	return notFound(a.b.Meetings.EndCall(id, "ended by an administrator in the web admin"))
}

func (a adminBackend) RemoveParticipant(id string) error {
	return notFound(a.b.Meetings.RemoveCallLeg(id, "removed by an administrator in the web admin"))
}

// LogRecords are the records kept by the event log handler that New puts in front of the
// Call Bridge's logger.
func (a adminBackend) LogRecords() []webadmin.LogRecord {
	h, ok := a.b.log.Handler().(*eventlog.Handler)
	if !ok {
		return nil
	}
	recs := h.Records()
	out := make([]webadmin.LogRecord, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		v := webadmin.LogRecord{Time: r.Time, Level: r.Level, Component: r.Component, Message: r.Message}
		for _, at := range r.Attrs {
			v.Attrs = append(v.Attrs, webadmin.LogAttr{Key: at.Key, Value: at.Value})
		}
		out = append(out, v)
	}
	return out
}

// ---- the web admin's sessions, kept in the store so that they survive a restart ----------

// adminSessionKey names the store's key of the web admin's sign-in tokens.
const adminSessionKey = "admin-signin"

func (a adminBackend) SessionKey(ctx context.Context) ([]byte, error) {
	return a.b.Store.Secret(ctx, adminSessionKey, 32)
}

func (a adminBackend) AddSession(ctx context.Context, s webadmin.StoredSession) error {
	return a.b.Store.AddAdminSession(ctx, store.AdminSession{IDHash: s.IDHash, User: s.User, CSRF: s.CSRF, Created: s.Created, Seen: s.Seen})
}

func (a adminBackend) Session(ctx context.Context, idHash string) (webadmin.StoredSession, error) {
	s, err := a.b.Store.AdminSessionByHash(ctx, idHash)
	if errors.Is(err, store.ErrNotFound) {
		return webadmin.StoredSession{}, fmt.Errorf("%w: %w", webadmin.ErrNotFound, err)
	}
	if err != nil {
		return webadmin.StoredSession{}, err
	}
	return webadmin.StoredSession{IDHash: s.IDHash, User: s.User, CSRF: s.CSRF, Created: s.Created, Seen: s.Seen}, nil
}

func (a adminBackend) TouchSession(ctx context.Context, idHash string, seen time.Time) error {
	err := a.b.Store.TouchAdminSession(ctx, idHash, seen)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", webadmin.ErrNotFound, err)
	}
	return err
}

func (a adminBackend) DeleteSession(ctx context.Context, idHash string) error {
	return a.b.Store.DeleteAdminSession(ctx, idHash)
}

func (a adminBackend) PruneSessions(ctx context.Context, idleBefore, createdBefore time.Time, keep int) error {
	if _, err := a.b.Store.DeleteExpiredAdminSessions(ctx, idleBefore, createdBefore); err != nil {
		return err
	}
	n, err := a.b.Store.CountAdminSessions(ctx)
	if err != nil {
		return err
	}
	return a.b.Store.DeleteOldestAdminSessions(ctx, n-keep)
}
