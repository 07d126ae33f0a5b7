package meeting

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// InvalidError reports a field of a space or membership that cannot be stored. Field is the
// API's name for it (callId, uri, ...).
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return "meeting: invalid " + e.Field + ": " + e.Reason }

// Layouts are the values of a space's defaultLayout, as CMS names them.
var Layouts = []string{
	"allEqual", "speakerOnly", "telepresence", "stacked", "allEqualQuarters", "allEqualNinths",
	"allEqualSixteenths", "allEqualTwentyFifths", "onePlusFive", "onePlusSeven", "onePlusNine",
	"automatic", "onePlusN",
}

// The validators below accept a non-empty value of a space's field (empty always means
// unset) and say what is wrong with it otherwise. The REST API applies the same ones.

// ValidName accepts a space's name: up to 200 characters, no control characters.
func ValidName(s string) error {
	if utf8.RuneCountInString(s) > 200 {
		return errors.New("longer than 200 characters")
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return errors.New("contains a control character")
	}
	return nil
}

// ValidURI accepts the user part of a space's URI: up to 200 letters, digits and . _ + -,
// not starting or ending with a dot.
func ValidURI(s string) error {
	if len(s) > 200 {
		return errors.New("longer than 200 characters")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._+-", c)) {
			return fmt.Errorf("character %q not allowed (use letters, digits and . _ + -)", c)
		}
	}
	if s[0] == '.' || s[len(s)-1] == '.' {
		return errors.New("starts or ends with a dot")
	}
	return nil
}

// ValidCallID accepts a call ID: 1 to 20 digits.
func ValidCallID(s string) error { return digits(s, 20) }

// ValidPasscode accepts a passcode: 1 to 32 digits, so that it can be typed on any keypad.
func ValidPasscode(s string) error { return digits(s, 32) }

func digits(s string, n int) error {
	if len(s) > n {
		return fmt.Errorf("longer than %d digits", n)
	}
	if strings.Trim(s, "0123456789") != "" {
		return errors.New("not all digits")
	}
	return nil
}

// ValidSecret accepts a space's secret: 1 to 128 printable ASCII characters, no spaces.
func ValidSecret(s string) error {
	if len(s) > 128 {
		return errors.New("longer than 128 characters")
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return errors.New("only printable ASCII without spaces")
		}
	}
	return nil
}

// ValidJID accepts a user's bare JID.
func ValidJID(s string) error {
	_, err := NormalizeJID(s)
	return err
}

// NormalizeJID returns the canonical form of a bare JID with a localpart (lower case), as
// memberships and owners are stored.
func NormalizeJID(s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a valid JID: %w", err)
	}
	if j.Localpart() == "" || j.Resourcepart() != "" {
		return "", errors.New("want a bare JID, user@domain")
	}
	return j.String(), nil
}

// ValidLayout accepts one of Layouts.
func ValidLayout(s string) error {
	if !slices.Contains(Layouts, s) {
		return fmt.Errorf("unknown layout (want one of %s)", strings.Join(Layouts, ", "))
	}
	return nil
}

// ValidCDRTag accepts a space's CDR tag: up to 100 characters, no control characters.
func ValidCDRTag(s string) error {
	if utf8.RuneCountInString(s) > 100 {
		return errors.New("longer than 100 characters")
	}
	return ValidName(s)
}

// ValidRole accepts a member's role: member or owner.
func ValidRole(s string) error {
	if s != RoleMember && s != RoleOwner {
		return errors.New("want member or owner")
	}
	return nil
}

// validateSpace checks every field and normalises the owner's JID.
func validateSpace(c *store.CoSpace) error {
	for _, f := range []struct {
		field, value string
		valid        func(string) error
	}{
		{"name", c.Name, ValidName},
		{"uri", c.URI, ValidURI},
		{"secondaryUri", c.SecondaryURI, ValidURI},
		{"callId", c.CallID, ValidCallID},
		{"passcode", c.Passcode.Reveal(), ValidPasscode},
		{"secret", c.Secret.Reveal(), ValidSecret},
		{"ownerJid", c.OwnerJID, ValidJID},
		{"defaultLayout", c.DefaultLayout, ValidLayout},
		{"cdrTag", c.CDRTag, ValidCDRTag},
	} {
		if f.value == "" {
			continue
		}
		if err := f.valid(f.value); err != nil {
			return &InvalidError{Field: f.field, Reason: err.Error()}
		}
	}
	if c.OwnerJID != "" {
		c.OwnerJID, _ = NormalizeJID(c.OwnerJID)
	}
	return nil
}

// NewCallID draws a call ID as CreateSpace does: nine digits, the first not zero (CMS's
// requireCallId). It may be in use already: storing it then fails with store.ErrCallIDTaken.
func NewCallID() (string, error) { return newCallID() }

// NewSecret draws a secret as CreateSpace does (CMS's regenerateSecret).
func NewSecret() secret.Secret { return secret.New(rand.Text()) }

// newCallID draws a call ID: nine digits, the first not zero.
func newCallID() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(9e8))
	if err != nil {
		return "", fmt.Errorf("meeting: call ID: %w", err)
	}
	return fmt.Sprint(n.Int64() + 1e8), nil
}

// CreateSpace validates and stores a new space and returns it as stored. The ID is chosen
// here; a call ID is generated when c has none, and so is a secret. Errors: *InvalidError,
// store.ErrCoSpaceURITaken, store.ErrCallIDTaken, or a store failure.
func (s *Service) CreateSpace(ctx context.Context, c store.CoSpace) (store.CoSpace, error) {
	if err := validateSpace(&c); err != nil {
		return store.CoSpace{}, err
	}
	c.ID = uuid.NewString()
	if c.Secret.IsZero() {
		c.Secret = secret.New(rand.Text())
	}
	generated := c.CallID == ""
	for attempt := 0; ; attempt++ {
		if generated {
			id, err := newCallID()
			if err != nil {
				return store.CoSpace{}, err
			}
			c.CallID = id
		}
		out, err := s.st.CreateCoSpace(ctx, c)
		if generated && errors.Is(err, store.ErrCallIDTaken) && attempt < 10 {
			continue // drew a call ID in use: draw again
		}
		if err != nil {
			return store.CoSpace{}, fmt.Errorf("meeting: create space: %w", err)
		}
		s.log.Info("space created", "space", out.ID, "name", out.Name, "uri", out.URI, "callId", out.CallID)
		return out, nil
	}
}

// UpdateSpace lets fn change a space, validates the result and stores it, in one
// transaction. The call in progress, if any, takes the new name. Errors are those of
// CreateSpace, store.ErrNotFound, and fn's.
func (s *Service) UpdateSpace(ctx context.Context, id string, fn func(*store.CoSpace) error) (store.CoSpace, error) {
	out, err := s.st.UpdateCoSpace(ctx, id, func(c *store.CoSpace) error {
		if err := fn(c); err != nil {
			return err
		}
		return validateSpace(c)
	})
	if err != nil {
		return store.CoSpace{}, fmt.Errorf("meeting: update space: %w", err)
	}
	s.mu.Lock()
	if c, ok := s.calls[id]; ok {
		c.name = out.Name
	}
	s.mu.Unlock()
	s.log.Info("space changed", "space", out.ID, "name", out.Name, "uri", out.URI, "callId", out.CallID)
	return out, nil
}

// DeleteSpace ends the space's call, if there is one, and deletes the space and its
// memberships. Guests admitted to it can no longer join. It returns store.ErrNotFound if
// there is no such space.
func (s *Service) DeleteSpace(ctx context.Context, id string) error {
	s.spaceMu.Lock()
	defer s.spaceMu.Unlock()
	if err := s.st.DeleteCoSpace(ctx, id); err != nil {
		return fmt.Errorf("meeting: delete space: %w", err)
	}
	s.mu.Lock()
	if c, ok := s.calls[id]; ok {
		s.endCallLocked(c, reasonDeleted)
	}
	for u, g := range s.guests {
		if g.spaceID == id {
			s.dropGuestLocked(u, "space deleted")
		}
	}
	s.mu.Unlock()
	s.flush()
	s.log.Info("space deleted", "space", id)
	return nil
}

// GetSpace returns a space, or store.ErrNotFound.
func (s *Service) GetSpace(ctx context.Context, id string) (store.CoSpace, error) {
	return s.st.CoSpace(ctx, id)
}

// ListSpaces returns the spaces f selects and how many match before paging.
func (s *Service) ListSpaces(ctx context.Context, f store.CoSpaceFilter) ([]store.CoSpace, int, error) {
	return s.st.ListCoSpaces(ctx, f)
}

// SpacesFor returns the spaces a user (bare JID) may enter.
func (s *Service) SpacesFor(ctx context.Context, userJID string) ([]store.CoSpace, error) {
	j, err := NormalizeJID(userJID)
	if err != nil {
		return nil, &InvalidError{Field: "userJid", Reason: err.Error()}
	}
	return s.st.CoSpacesFor(ctx, j)
}

// AddMember makes a user (bare JID) a member of a space with role member (the default when
// empty) or owner. Errors: *InvalidError, store.ErrNotFound (no such space), store.ErrExists
// (a member already).
func (s *Service) AddMember(ctx context.Context, spaceID, userJID, role string) (store.CoSpaceMember, error) {
	j, err := NormalizeJID(userJID)
	if err != nil {
		return store.CoSpaceMember{}, &InvalidError{Field: "userJid", Reason: err.Error()}
	}
	if role == "" {
		role = RoleMember
	}
	if err := ValidRole(role); err != nil {
		return store.CoSpaceMember{}, &InvalidError{Field: "role", Reason: err.Error()}
	}
	m, err := s.st.AddCoSpaceMember(ctx, store.CoSpaceMember{ID: uuid.NewString(), CoSpaceID: spaceID, UserJID: j, Role: role})
	if err != nil {
		return store.CoSpaceMember{}, fmt.Errorf("meeting: add member: %w", err)
	}
	s.log.Info("space member added", "space", spaceID, "jid", j, "role", role)
	return m, nil
}

// UpdateMember changes a member's role. Errors: *InvalidError, store.ErrNotFound (no such
// space), store.ErrNoCoSpaceMember.
func (s *Service) UpdateMember(ctx context.Context, spaceID, id, role string) (store.CoSpaceMember, error) {
	if role == "" {
		role = RoleMember
	}
	if err := ValidRole(role); err != nil {
		return store.CoSpaceMember{}, &InvalidError{Field: "role", Reason: err.Error()}
	}
	m, err := s.st.UpdateCoSpaceMember(ctx, spaceID, id, func(m *store.CoSpaceMember) error {
		m.Role = role
		return nil
	})
	if err != nil {
		return store.CoSpaceMember{}, fmt.Errorf("meeting: update member: %w", err)
	}
	return m, nil
}

// RemoveMember ends a membership (a participant in a call stays until it leaves). Errors:
// store.ErrNotFound (no such space), store.ErrNoCoSpaceMember.
func (s *Service) RemoveMember(ctx context.Context, spaceID, id string) error {
	if err := s.st.DeleteCoSpaceMember(ctx, spaceID, id); err != nil {
		return fmt.Errorf("meeting: remove member: %w", err)
	}
	s.log.Info("space member removed", "space", spaceID, "member", id)
	return nil
}

// Member returns a membership by id, with the errors of RemoveMember.
func (s *Service) Member(ctx context.Context, spaceID, id string) (store.CoSpaceMember, error) {
	return s.st.CoSpaceMember(ctx, spaceID, id)
}

// Members returns a space's members, paged (limit 0: all), and their number.
func (s *Service) Members(ctx context.Context, spaceID string, offset, limit int) ([]store.CoSpaceMember, int, error) {
	return s.st.ListCoSpaceMembers(ctx, spaceID, offset, limit)
}
