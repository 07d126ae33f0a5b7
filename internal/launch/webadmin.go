package launch

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"sort"
	"sync"

	"confab.dev/confab/internal/adminapi"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/web/webadmin"
)

// webAdmin returns the web admin's handler, mounted at /admin/ on the API listener.
func (cb *CallBridge) webAdmin() http.Handler {
	return webadmin.New(webadmin.Options{Backend: adminBackend{cb}, Logger: cb.log})
}

// adminBackend shows the Call Bridge to the web admin.
type adminBackend struct{ cb *CallBridge }

func (b adminBackend) CheckLogin(ctx context.Context, user, password string) error {
	h, err := b.cb.Store.APIUserHash(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		// Verify against a fixed hash anyway, so an unknown account costs the same time.
		h = unknownUserHash()
	} else if err != nil {
		return err
	}
	ok, err := passhash.Verify(h, password)
	if err != nil {
		return err
	}
	if !ok || h == unknownUserHash() {
		return errors.New("sign in failed")
	}
	return nil
}

// unknownUserHash is an Argon2id hash of a random password nobody knows, made on first use.
var unknownUserHash = sync.OnceValue(func() string {
	h, err := passhash.Hash(rand.Text())
	if err != nil {
		panic(err) // Argon2id over a fixed-size input does not fail
	}
	return h
})

func (b adminBackend) XMPPSettings(ctx context.Context) (webadmin.XMPPSettings, error) {
	c, err := b.cb.Store.XMPPConfig(ctx)
	return webadmin.XMPPSettings{UniqueName: c.UniqueName, Domain: c.Domain, ServerAddressOverride: c.ServerAddressOverride, SecretSet: !c.SharedSecret.IsZero()}, err
}

func (b adminBackend) SetXMPPSettings(ctx context.Context, uniqueName, domain, override string, newSecret *string) error {
	fields := [][2]string{{"uniqueName", uniqueName}, {"domain", domain}, {"serverAddressOverride", override}}
	if newSecret != nil {
		fields = append(fields, [2]string{"sharedSecret", *newSecret})
	}
	for _, f := range fields {
		if err := adminapi.ValidateXMPPSetting(f[0], f[1]); err != nil {
			return &webadmin.FieldError{Field: f[0], Message: err.Error()}
		}
	}
	cfg, err := b.cb.Store.UpdateXMPPConfig(ctx, func(c *store.XMPPConfig) error {
		c.UniqueName, c.Domain, c.ServerAddressOverride = uniqueName, domain, override
		if newSecret != nil {
			c.SharedSecret = secret.New(*newSecret)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.cb.Link.Apply(cfg)
	b.cb.log.Info("XMPP settings changed in the web admin", "uniqueName", cfg.UniqueName, "domain", cfg.Domain, "serverAddressOverride", cfg.ServerAddressOverride, "sharedSecretChanged", newSecret != nil)
	return nil
}

func (b adminBackend) LinkStatus() linkstate.Status         { return b.cb.Link.Status() }
func (b adminBackend) Trace(after uint64) []linkstate.Event { return b.cb.Link.Trace(after) }
func (b adminBackend) Alarms() []linkstate.Alarm            { return b.cb.Link.Alarms() }

func (b adminBackend) Users(ctx context.Context) ([]webadmin.UserView, error) {
	us, _, err := b.cb.Users.List(ctx, "", 0, 1000)
	if err != nil {
		return nil, err
	}
	out := make([]webadmin.UserView, 0, len(us))
	for _, u := range us {
		out = append(out, webadmin.UserView{JID: u.JID, Name: u.Name, Email: u.Email, Source: string(u.Kind)})
	}
	return out, nil
}

func (b adminBackend) Spaces(ctx context.Context) ([]webadmin.SpaceView, error) {
	m := b.cb.Meetings
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

func (b adminBackend) Calls(ctx context.Context) ([]webadmin.CallView, error) {
	m := b.cb.Meetings
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
