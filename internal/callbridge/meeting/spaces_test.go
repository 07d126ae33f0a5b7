package meeting

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

func TestCreateSpace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sp, err := e.svc.CreateSpace(ctx, store.CoSpace{Name: "Demo", OwnerJID: "Alice@Example.COM"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(sp.ID) {
		t.Errorf("id %q is not a GUID", sp.ID)
	}
	if !regexp.MustCompile(`^[1-9][0-9]{8}$`).MatchString(sp.CallID) {
		t.Errorf("generated call ID %q, want nine digits", sp.CallID)
	}
	if sp.Secret.IsZero() || sp.OwnerJID != "alice@example.com" {
		t.Errorf("space = %+v, want a generated secret and the owner in lower case", sp)
	}
	if jid, _ := e.svc.SpaceJID(ctx, sp.ID); jid != sp.ID+"@"+cbJID {
		t.Errorf("SpaceJID = %q", jid)
	}

	tests := []struct {
		name      string
		c         store.CoSpace
		wantField string
		wantErr   error
	}{
		{"name with a control character", store.CoSpace{Name: "a\x01"}, "name", nil},
		{"uri with a space", store.CoSpace{URI: "a b"}, "uri", nil},
		{"uri with a leading dot", store.CoSpace{URI: ".a"}, "uri", nil},
		{"secondary uri with @", store.CoSpace{SecondaryURI: "a@b"}, "secondaryUri", nil},
		{"call ID with letters", store.CoSpace{CallID: "12a"}, "callId", nil},
		{"call ID too long", store.CoSpace{CallID: "123456789012345678901"}, "callId", nil},
		{"passcode with letters", store.CoSpace{Passcode: secret.New("abc")}, "passcode", nil},
		{"secret with a space", store.CoSpace{Secret: secret.New("a b")}, "secret", nil},
		{"owner with a resource", store.CoSpace{OwnerJID: "a@b/c"}, "ownerJid", nil},
		{"owner without localpart", store.CoSpace{OwnerJID: "example.com"}, "ownerJid", nil},
		{"unknown layout", store.CoSpace{DefaultLayout: "grid"}, "defaultLayout", nil},
		{"call ID taken", store.CoSpace{CallID: sp.CallID}, "", store.ErrCallIDTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.CreateSpace(ctx, tt.c)
			var ie *InvalidError
			switch {
			case tt.wantField != "" && (!errors.As(err, &ie) || ie.Field != tt.wantField):
				t.Errorf("CreateSpace = %v, want an InvalidError of %s", err, tt.wantField)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("CreateSpace = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, total, _ := e.svc.ListSpaces(ctx, store.CoSpaceFilter{}); total != 1 {
		t.Errorf("%d spaces after refused creations, want 1", total)
	}

	up, err := e.svc.UpdateSpace(ctx, sp.ID, func(c *store.CoSpace) error { c.Name = "Renamed"; return nil })
	if err != nil || up.Name != "Renamed" || up.CallID != sp.CallID {
		t.Errorf("UpdateSpace = %+v, %v", up, err)
	}
	var ie *InvalidError
	if _, err := e.svc.UpdateSpace(ctx, sp.ID, func(c *store.CoSpace) error { c.URI = "bad uri"; return nil }); !errors.As(err, &ie) {
		t.Errorf("UpdateSpace with a bad URI = %v, want InvalidError", err)
	}

	// A call in progress takes the new name.
	e.send(t, joinXML(aliceFull, sp.ID+"@"+cbJID, "Alice"))
	if _, err := e.svc.UpdateSpace(ctx, sp.ID, func(c *store.CoSpace) error { c.Name = "Third"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c, ok := e.svc.CallOfSpace(sp.ID); !ok || c.Name != "Third" {
		t.Errorf("call = %+v, %v; want it named Third", c, ok)
	}
}

func TestMembers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sp := e.space(t, store.CoSpace{Name: "Demo"})
	m, err := e.svc.AddMember(ctx, sp.ID, "Bob@Example.com", "")
	if err != nil || m.UserJID != "bob@example.com" || m.Role != RoleMember {
		t.Fatalf("AddMember = %+v, %v", m, err)
	}
	var ie *InvalidError
	if _, err := e.svc.AddMember(ctx, sp.ID, "not a jid@", ""); !errors.As(err, &ie) || ie.Field != "userJid" {
		t.Errorf("AddMember(bad JID) = %v, want InvalidError of userJid", err)
	}
	if _, err := e.svc.AddMember(ctx, sp.ID, "carol@example.com", "boss"); !errors.As(err, &ie) || ie.Field != "role" {
		t.Errorf("AddMember(bad role) = %v, want InvalidError of role", err)
	}
	if _, err := e.svc.AddMember(ctx, sp.ID, "bob@example.com", ""); !errors.Is(err, store.ErrExists) {
		t.Errorf("AddMember twice = %v, want ErrExists", err)
	}
	if up, err := e.svc.UpdateMember(ctx, sp.ID, m.ID, RoleOwner); err != nil || up.Role != RoleOwner {
		t.Errorf("UpdateMember = %+v, %v", up, err)
	}
	if list, total, err := e.svc.Members(ctx, sp.ID, 0, 0); err != nil || total != 1 || list[0].ID != m.ID {
		t.Errorf("Members = %+v, %d, %v", list, total, err)
	}
	if got, err := e.svc.SpacesFor(ctx, "BOB@example.com"); err != nil || len(got) != 1 {
		t.Errorf("SpacesFor(bob) = %+v, %v", got, err)
	}
	if err := e.svc.RemoveMember(ctx, sp.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Member(ctx, sp.ID, m.ID); !errors.Is(err, store.ErrNoCoSpaceMember) {
		t.Errorf("Member after removal = %v, want ErrNoCoSpaceMember", err)
	}
}
