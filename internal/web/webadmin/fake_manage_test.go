package webadmin_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"confab.dev/confab/internal/web/webadmin"
)

// The fake's management state: spaces' members, local users' passwords, LDAP objects,
// log records. Everything is guarded by fakeBackend.mu.
type fakeManage struct {
	members   map[string][]webadmin.MemberView // by space id
	passwords map[string]string                // by user id
	ldap      webadmin.LDAPView
	records   []webadmin.LogRecord // oldest first
	nextID    int
	ended     []string // calls ended
	removed   []string // participants removed
}

func (b *fakeBackend) id(prefix string) string {
	b.m.nextID++
	return fmt.Sprintf("%s-%d", prefix, b.m.nextID)
}

func (b *fakeBackend) Space(_ context.Context, id string) (webadmin.SpaceDetail, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sp := range b.spaces {
		if sp.ID != id {
			continue
		}
		d := webadmin.SpaceDetail{SpaceView: sp, MemberList: slices.Clone(b.m.members[id])}
		for i := range b.calls {
			if b.calls[i].SpaceID == id {
				c := b.calls[i]
				d.Call = &c
			}
		}
		return d, nil
	}
	return webadmin.SpaceDetail{}, fmt.Errorf("space %s: %w", id, webadmin.ErrNotFound)
}

// validSpace checks what the meeting service would.
func (b *fakeBackend) validSpace(id string, in webadmin.SpaceInput) error {
	if strings.ContainsAny(in.URI, " /@") {
		return &webadmin.FieldError{Field: "uri", Message: "Use letters, digits and . _ + - only"}
	}
	for _, sp := range b.spaces {
		if sp.ID != id && in.URI != "" && strings.EqualFold(sp.URI, in.URI) {
			return &webadmin.FieldError{Field: "uri", Message: "Another space already has this URI"}
		}
		if sp.ID != id && in.CallID != "" && sp.CallID == in.CallID {
			return &webadmin.FieldError{Field: "callId", Message: "Another space already has this call ID"}
		}
	}
	return nil
}

func (b *fakeBackend) CreateSpace(_ context.Context, in webadmin.SpaceInput) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.validSpace("", in); err != nil {
		return "", err
	}
	sp := webadmin.SpaceView{ID: b.id("space"), Name: in.Name, URI: in.URI, CallID: in.CallID, NonMemberAccess: in.NonMemberAccess,
		PasscodeSet: in.Passcode != nil && *in.Passcode != ""}
	if sp.CallID == "" {
		sp.CallID = strconv.Itoa(100000000 + b.m.nextID)
	}
	b.spaces = append(b.spaces, sp)
	return sp.ID, nil
}

func (b *fakeBackend) UpdateSpace(_ context.Context, id string, in webadmin.SpaceInput) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.validSpace(id, in); err != nil {
		return err
	}
	for i := range b.spaces {
		if sp := &b.spaces[i]; sp.ID == id {
			sp.Name, sp.URI, sp.CallID, sp.NonMemberAccess = in.Name, in.URI, in.CallID, in.NonMemberAccess
			if in.Passcode != nil {
				sp.PasscodeSet = *in.Passcode != ""
			}
			return nil
		}
	}
	return webadmin.ErrNotFound
}

func (b *fakeBackend) DeleteSpace(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.spaces)
	b.spaces = slices.DeleteFunc(b.spaces, func(sp webadmin.SpaceView) bool { return sp.ID == id })
	if len(b.spaces) == n {
		return webadmin.ErrNotFound
	}
	b.calls = slices.DeleteFunc(b.calls, func(c webadmin.CallView) bool { return c.SpaceID == id })
	delete(b.m.members, id)
	return nil
}

func (b *fakeBackend) AddMember(_ context.Context, spaceID, jid, role string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !strings.Contains(jid, "@") || strings.ContainsAny(jid, " /") {
		return &webadmin.FieldError{Field: "jid", Message: "Not a JID: want user@domain"}
	}
	for _, m := range b.m.members[spaceID] {
		if m.JID == strings.ToLower(jid) {
			return &webadmin.FieldError{Field: "jid", Message: jid + " is a member already"}
		}
	}
	if b.m.members == nil {
		b.m.members = map[string][]webadmin.MemberView{}
	}
	b.m.members[spaceID] = append(b.m.members[spaceID], webadmin.MemberView{ID: b.id("member"), JID: strings.ToLower(jid), Role: role})
	for i := range b.spaces {
		if b.spaces[i].ID == spaceID {
			b.spaces[i].Members = len(b.m.members[spaceID])
		}
	}
	return nil
}

func (b *fakeBackend) RemoveMember(_ context.Context, spaceID, memberID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m.members[spaceID] = slices.DeleteFunc(b.m.members[spaceID], func(m webadmin.MemberView) bool { return m.ID == memberID })
	for i := range b.spaces {
		if b.spaces[i].ID == spaceID {
			b.spaces[i].Members = len(b.m.members[spaceID])
		}
	}
	return nil
}

func (b *fakeBackend) CreateUser(_ context.Context, in webadmin.NewUser) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.ContainsAny(in.Username, " /") {
		return &webadmin.FieldError{Field: "username", Message: "Not a valid username"}
	}
	jid := strings.ToLower(in.Username)
	if !strings.Contains(jid, "@") {
		jid += "@" + b.settings.Domain
	}
	for _, u := range b.users {
		if u.JID == jid {
			return &webadmin.FieldError{Field: "username", Message: "A user " + jid + " exists already"}
		}
	}
	id := b.id("user")
	b.users = append(b.users, webadmin.UserView{ID: id, JID: jid, Name: in.Name, Email: in.Email, Source: "local"})
	if b.m.passwords == nil {
		b.m.passwords = map[string]string{}
	}
	b.m.passwords[id] = in.Password
	return nil
}

func (b *fakeBackend) SetPassword(_ context.Context, userID, password string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m.passwords == nil {
		b.m.passwords = map[string]string{}
	}
	b.m.passwords[userID] = password
	return nil
}

func (b *fakeBackend) password(userID string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.passwords[userID]
}

func (b *fakeBackend) LDAP(context.Context) (webadmin.LDAPView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.m.ldap
	v.Servers, v.Mappings, v.Sources, v.Syncs = slices.Clone(v.Servers), slices.Clone(v.Mappings), slices.Clone(v.Sources), slices.Clone(v.Syncs)
	return v, nil
}

func (b *fakeBackend) CreateLDAPServer(_ context.Context, in webadmin.LDAPServerInput) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	port, _ := strconv.Atoi(in.Port)
	if port < 1 || port > 65535 {
		return &webadmin.FieldError{Field: "port", Message: "Not a port number"}
	}
	b.m.ldap.Servers = append(b.m.ldap.Servers, webadmin.LDAPServerView{ID: b.id("server"), Address: in.Address, Port: port, Username: in.Username, Secure: in.Secure, PasswordSet: in.Password != ""})
	return nil
}

func (b *fakeBackend) CreateLDAPMapping(_ context.Context, in webadmin.LDAPMappingInput) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !strings.Contains(in.JID, "$") {
		return &webadmin.FieldError{Field: "jid", Message: "Uses no attribute, so every user would get the same JID"}
	}
	b.m.ldap.Mappings = append(b.m.ldap.Mappings, webadmin.LDAPMappingView{ID: b.id("mapping"), JID: in.JID, Name: in.Name, Email: in.Email})
	return nil
}

func (b *fakeBackend) CreateLDAPSource(_ context.Context, in webadmin.LDAPSourceInput) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m.ldap.Sources = append(b.m.ldap.Sources, webadmin.LDAPSourceView{ID: b.id("source"), Server: in.Server, Mapping: in.Mapping, BaseDN: in.BaseDN, Filter: in.Filter})
	return nil
}

func (b *fakeBackend) DeleteLDAP(_ context.Context, kind, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch kind {
	case "server":
		b.m.ldap.Servers = slices.DeleteFunc(b.m.ldap.Servers, func(v webadmin.LDAPServerView) bool { return v.ID == id })
	case "mapping":
		b.m.ldap.Mappings = slices.DeleteFunc(b.m.ldap.Mappings, func(v webadmin.LDAPMappingView) bool { return v.ID == id })
	case "source":
		b.m.ldap.Sources = slices.DeleteFunc(b.m.ldap.Sources, func(v webadmin.LDAPSourceView) bool { return v.ID == id })
	}
	return nil
}

func (b *fakeBackend) StartLDAPSync(context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.id("sync")
	b.m.ldap.Syncs = append([]webadmin.LDAPSyncView{{ID: id, State: "complete", Imported: 2, Created: 2, Queued: time.Now(), Finished: time.Now()}}, b.m.ldap.Syncs...)
	return id, nil
}

func (b *fakeBackend) EndCall(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.calls)
	b.calls = slices.DeleteFunc(b.calls, func(c webadmin.CallView) bool { return c.ID == id })
	if len(b.calls) == n {
		return webadmin.ErrNotFound
	}
	b.m.ended = append(b.m.ended, id)
	return nil
}

func (b *fakeBackend) RemoveParticipant(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.calls {
		n := len(b.calls[i].Participants)
		b.calls[i].Participants = slices.DeleteFunc(b.calls[i].Participants, func(p webadmin.ParticipantView) bool { return p.ID == id })
		if len(b.calls[i].Participants) < n {
			b.m.removed = append(b.m.removed, id)
			return nil
		}
	}
	return webadmin.ErrNotFound
}

func (b *fakeBackend) LogRecords() []webadmin.LogRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]webadmin.LogRecord, 0, len(b.m.records))
	for i := len(b.m.records) - 1; i >= 0; i-- {
		out = append(out, b.m.records[i])
	}
	return out
}

func (b *fakeBackend) addRecord(t time.Time, level slog.Level, component, msg string, attrs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := webadmin.LogRecord{Time: t, Level: level, Component: component, Message: msg}
	for i := 0; i+1 < len(attrs); i += 2 {
		r.Attrs = append(r.Attrs, webadmin.LogAttr{Key: attrs[i], Value: attrs[i+1]})
	}
	b.m.records = append(b.m.records, r)
}
