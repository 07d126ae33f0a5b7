package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"confab.dev/confab/internal/secret"
)

func coSpaceIDs(cs []CoSpace) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestCoSpaceCRUD(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	in := CoSpace{
		ID: "a1", Name: "Alpha", URI: "alpha", SecondaryURI: "alpha.2", CallID: "1001",
		Passcode: secret.New("1234"), Secret: secret.New("s3"), OwnerJID: "alice@example.com",
		NonMemberAccess: true, DefaultLayout: "speakerOnly",
	}
	got, err := s.CreateCoSpace(ctx, in)
	if err != nil {
		t.Fatalf("CreateCoSpace: %v", err)
	}
	if got.Created.IsZero() || got.Updated.IsZero() {
		t.Errorf("created space has no timestamps: %+v", got)
	}
	got.Created, got.Updated = in.Created, in.Updated
	if got != in {
		t.Errorf("CreateCoSpace returned %+v, want %+v", got, in)
	}
	if got, err := s.CoSpace(ctx, "a1"); err != nil || got.Passcode.Reveal() != "1234" || got.Secret.Reveal() != "s3" || !got.NonMemberAccess {
		t.Errorf("CoSpace(a1) = %+v, %v", got, err)
	}
	if got, err := s.CoSpaceByCallID(ctx, "1001"); err != nil || got.ID != "a1" {
		t.Errorf("CoSpaceByCallID(1001) = %+v, %v", got, err)
	}
	for _, id := range []string{"", "9999"} {
		if _, err := s.CoSpaceByCallID(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("CoSpaceByCallID(%q) error = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := s.CreateCoSpace(ctx, CoSpace{ID: "a1"}); !errors.Is(err, ErrExists) {
		t.Errorf("CreateCoSpace with a used id: %v, want ErrExists", err)
	}

	up, err := s.UpdateCoSpace(ctx, "a1", func(c *CoSpace) error {
		c.Name, c.CallID, c.NonMemberAccess, c.Passcode = "Alpha 2", "", false, secret.Secret{}
		return nil
	})
	if err != nil || up.Name != "Alpha 2" || up.CallID != "" || up.NonMemberAccess || !up.Passcode.IsZero() || up.URI != "alpha" {
		t.Errorf("UpdateCoSpace = %+v, %v", up, err)
	}
	refuse := errors.New("no")
	if _, err := s.UpdateCoSpace(ctx, "a1", func(c *CoSpace) error { c.Name = "x"; return refuse }); !errors.Is(err, refuse) {
		t.Errorf("UpdateCoSpace with a refusing fn: %v", err)
	}
	if got, _ := s.CoSpace(ctx, "a1"); got.Name != "Alpha 2" {
		t.Errorf("a refused update was written: name %q", got.Name)
	}
	if _, err := s.UpdateCoSpace(ctx, "nope", func(*CoSpace) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateCoSpace(nope): %v, want ErrNotFound", err)
	}
	if err := s.DeleteCoSpace(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCoSpace(ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteCoSpace: %v, want ErrNotFound", err)
	}
	if _, err := s.CoSpace(ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CoSpace after delete: %v, want ErrNotFound", err)
	}
}

func TestCoSpaceUniqueness(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	if _, err := s.CreateCoSpace(ctx, CoSpace{ID: "a", URI: "Demo", SecondaryURI: "demo2", CallID: "100"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCoSpace(ctx, CoSpace{ID: "b", URI: "other", CallID: "200"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    CoSpace
		want error
	}{
		{"same call ID", CoSpace{ID: "c", CallID: "100"}, ErrCallIDTaken},
		{"same URI, other case", CoSpace{ID: "c", URI: "dEMO"}, ErrCoSpaceURITaken},
		{"URI equal to a secondary URI", CoSpace{ID: "c", URI: "demo2"}, ErrCoSpaceURITaken},
		{"secondary URI equal to a URI", CoSpace{ID: "c", SecondaryURI: "demo"}, ErrCoSpaceURITaken},
		{"own URI twice", CoSpace{ID: "c", URI: "x", SecondaryURI: "X"}, ErrCoSpaceURITaken},
		{"empty values repeat", CoSpace{ID: "c"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateCoSpace(ctx, tt.c)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("CreateCoSpace(%+v) = %v, want %v", tt.c, err, tt.want)
			}
			if err != nil && !errors.Is(err, ErrExists) {
				t.Errorf("error %v does not match ErrExists", err)
			}
			if err == nil {
				s.DeleteCoSpace(ctx, tt.c.ID)
			}
		})
	}
	// An update is checked against the others, not against the space itself.
	if _, err := s.UpdateCoSpace(ctx, "a", func(c *CoSpace) error { c.URI = "DEMO"; return nil }); err != nil {
		t.Errorf("changing only the case of its own URI: %v", err)
	}
	if _, err := s.UpdateCoSpace(ctx, "b", func(c *CoSpace) error { c.CallID = "100"; return nil }); !errors.Is(err, ErrCallIDTaken) {
		t.Errorf("taking another space's call ID: %v, want ErrCallIDTaken", err)
	}
}

func TestListCoSpaces(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	for _, c := range []CoSpace{
		{ID: "1", Name: "beta", URI: "b", CallID: "555"},
		{ID: "2", Name: "Alpha", URI: "sales.room"},
		{ID: "3", Name: "gamma 100%", CallID: "777"},
		{ID: "4", Name: "delta_x", SecondaryURI: "Sales2"},
	} {
		if _, err := s.CreateCoSpace(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		f         CoSpaceFilter
		want      []string
		wantTotal int
	}{
		{"all, by name ignoring case", CoSpaceFilter{}, []string{"2", "1", "4", "3"}, 4},
		{"offset and limit", CoSpaceFilter{Offset: 1, Limit: 2}, []string{"1", "4"}, 4},
		{"offset past the end", CoSpaceFilter{Offset: 10}, nil, 4},
		{"name", CoSpaceFilter{Text: "ALP"}, []string{"2"}, 1},
		{"uri and secondary uri", CoSpaceFilter{Text: "sales"}, []string{"2", "4"}, 2},
		{"call id", CoSpaceFilter{Text: "77"}, []string{"3"}, 1},
		{"percent is literal", CoSpaceFilter{Text: "%"}, []string{"3"}, 1},
		{"underscore is literal", CoSpaceFilter{Text: "_"}, []string{"4"}, 1},
		{"no match", CoSpaceFilter{Text: "zzz"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := s.ListCoSpaces(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if ids := coSpaceIDs(got); !slices.Equal(ids, tt.want) || total != tt.wantTotal {
				t.Errorf("ListCoSpaces(%+v) = %v total %d, want %v total %d", tt.f, ids, total, tt.want, tt.wantTotal)
			}
		})
	}
}

func TestCoSpaceMembers(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	for _, c := range []CoSpace{
		{ID: "own", Name: "a owned", OwnerJID: "alice@example.com"},
		{ID: "mem", Name: "b member"},
		{ID: "open", Name: "c open", NonMemberAccess: true},
		{ID: "closed", Name: "d closed"},
	} {
		if _, err := s.CreateCoSpace(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	m, err := s.AddCoSpaceMember(ctx, CoSpaceMember{ID: "m1", CoSpaceID: "mem", UserJID: "alice@example.com"})
	if err != nil || m.Role != "member" || m.Created.IsZero() {
		t.Fatalf("AddCoSpaceMember = %+v, %v", m, err)
	}
	if _, err := s.AddCoSpaceMember(ctx, CoSpaceMember{ID: "m2", CoSpaceID: "mem", UserJID: "alice@example.com"}); !errors.Is(err, ErrExists) {
		t.Errorf("adding a member twice: %v, want ErrExists", err)
	}
	if _, err := s.AddCoSpaceMember(ctx, CoSpaceMember{ID: "m3", CoSpaceID: "nope", UserJID: "bob@example.com"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("adding to a missing space: %v, want ErrNotFound", err)
	}
	if _, err := s.AddCoSpaceMember(ctx, CoSpaceMember{ID: "m4", CoSpaceID: "mem", UserJID: "bob@example.com", Role: "owner"}); err != nil {
		t.Fatal(err)
	}

	got, err := s.CoSpacesFor(ctx, "alice@example.com")
	if ids := coSpaceIDs(got); err != nil || !slices.Equal(ids, []string{"own", "mem", "open"}) {
		t.Errorf("CoSpacesFor(alice) = %v, %v; want own, mem, open", ids, err)
	}
	got, err = s.CoSpacesFor(ctx, "carol@example.com")
	if ids := coSpaceIDs(got); err != nil || !slices.Equal(ids, []string{"open"}) {
		t.Errorf("CoSpacesFor(carol) = %v, %v; want open", ids, err)
	}

	if got, err := s.CoSpaceMemberByJID(ctx, "mem", "bob@example.com"); err != nil || got.ID != "m4" || got.Role != "owner" {
		t.Errorf("CoSpaceMemberByJID = %+v, %v", got, err)
	}
	if _, err := s.CoSpaceMemberByJID(ctx, "mem", "carol@example.com"); !errors.Is(err, ErrNoCoSpaceMember) {
		t.Errorf("CoSpaceMemberByJID(non-member) = %v, want ErrNoCoSpaceMember", err)
	}
	if _, err := s.CoSpaceMember(ctx, "nope", "m1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CoSpaceMember in a missing space = %v, want ErrNotFound", err)
	}
	if _, err := s.CoSpaceMember(ctx, "own", "m1"); !errors.Is(err, ErrNoCoSpaceMember) {
		t.Errorf("CoSpaceMember of another space = %v, want ErrNoCoSpaceMember", err)
	}
	if up, err := s.UpdateCoSpaceMember(ctx, "mem", "m1", func(m *CoSpaceMember) error { m.Role = "owner"; return nil }); err != nil || up.Role != "owner" || up.UserJID != "alice@example.com" {
		t.Errorf("UpdateCoSpaceMember = %+v, %v", up, err)
	}

	list, total, err := s.ListCoSpaceMembers(ctx, "mem", 0, 0)
	if err != nil || total != 2 || len(list) != 2 || list[0].UserJID != "alice@example.com" {
		t.Errorf("ListCoSpaceMembers = %+v, %d, %v", list, total, err)
	}
	if list, total, _ := s.ListCoSpaceMembers(ctx, "mem", 1, 1); total != 2 || len(list) != 1 || list[0].ID != "m4" {
		t.Errorf("ListCoSpaceMembers(offset 1, limit 1) = %+v, %d", list, total)
	}
	if _, _, err := s.ListCoSpaceMembers(ctx, "nope", 0, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListCoSpaceMembers(missing space) = %v, want ErrNotFound", err)
	}

	if err := s.DeleteCoSpaceMember(ctx, "mem", "m1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCoSpaceMember(ctx, "mem", "m1"); !errors.Is(err, ErrNoCoSpaceMember) {
		t.Errorf("second DeleteCoSpaceMember: %v, want ErrNoCoSpaceMember", err)
	}
	// Deleting the space deletes its memberships.
	if err := s.DeleteCoSpace(ctx, "mem"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM cospace_members`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d memberships left after deleting their space (%v)", n, err)
	}
}
