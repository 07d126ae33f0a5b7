package callbridge

import (
	"context"
	"errors"
	"sort"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
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
	c, err := a.b.Store.XMPPConfig(ctx)
	return webadmin.XMPPSettings{UniqueName: c.UniqueName, Domain: c.Domain, ServerAddressOverride: c.ServerAddressOverride, SecretSet: !c.SharedSecret.IsZero()}, err
}

func (a adminBackend) SetXMPPSettings(ctx context.Context, uniqueName, domain, override string, newSecret *string) error {
	_, cfg, err := a.b.Settings.Update(ctx, func(c *store.XMPPConfig) error {
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
		out = append(out, webadmin.UserView{JID: u.JID, Name: u.Name, Email: u.Email, Source: string(u.Kind)})
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
	m := a.b.Meetings
	var out []webadmin.CallView
	for _, c := range m.Calls() {
		v := webadmin.CallView{ID: c.ID, SpaceID: c.CoSpaceID, SpaceName: c.Name, Started: c.Started}
		legs, _ := m.Participants(c.ID)
		for _, l := range legs {
			v.Participants = append(v.Participants, webadmin.ParticipantView{ID: l.ID, Name: l.Name, JID: l.RemoteParty, Role: l.Role, Joined: l.Joined})
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}
