package meeting

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// Access methods are other ways into a space (CMS coSpace accessMethods): a URI, a call ID and
// a passcode of their own, and a call leg profile for those who come in that way. A guest who
// gives an access method's call ID and passcode (JoinAsGuest, <lookup/>) joins the space with
// that access method's profile, e.g. a host PIN whose profile may mute others beside a guest
// PIN whose profile joins muted.

// ValidScope accepts an access method's scope: public or private.
func ValidScope(s string) error {
	if s != "public" && s != "private" {
		return errors.New("want public or private")
	}
	return nil
}

// validateAccessMethod checks every field of an access method.
func validateAccessMethod(a *store.AccessMethod) error {
	for _, f := range []struct {
		field, value string
		valid        func(string) error
	}{
		{"name", a.Name, ValidName},
		{"uri", a.URI, ValidURI},
		{"callId", a.CallID, ValidCallID},
		{"passcode", a.Passcode.Reveal(), ValidPasscode},
		{"secret", a.Secret.Reveal(), ValidSecret},
		{"scope", a.Scope, ValidScope},
	} {
		if f.value == "" {
			continue
		}
		if err := f.valid(f.value); err != nil {
			return &InvalidError{Field: f.field, Reason: err.Error()}
		}
	}
	return nil
}

// CreateAccessMethod validates and stores a new access method of a space (a.CoSpaceID) and
// returns it as stored; the ID is chosen here, and a secret when the access method has a
// call ID and none is given, as CMS does. Errors: *InvalidError, store.ErrNotFound (no such
// space), store.ErrCallIDTaken, store.ErrCallIDPasscodeTaken, store.ErrCoSpaceURITaken,
// store.ErrURIPasscodeTaken, a *store.RefError for a missing profile, or a store failure.
func (s *Service) CreateAccessMethod(ctx context.Context, a store.AccessMethod) (store.AccessMethod, error) {
	if err := validateAccessMethod(&a); err != nil {
		return store.AccessMethod{}, err
	}
	a.ID = uuid.NewString()
	if a.Secret.IsZero() && a.CallID != "" {
		a.Secret = secret.New(rand.Text())
	}
	out, err := s.st.CreateAccessMethod(ctx, a)
	if err != nil {
		return store.AccessMethod{}, fmt.Errorf("meeting: create access method: %w", err)
	}
	s.log.Info("access method created", "space", out.CoSpaceID, "accessMethod", out.ID, "uri", out.URI, "callId", out.CallID)
	return out, nil
}

// UpdateAccessMethod lets fn change an access method, validates the result and stores it.
// Errors are those of CreateAccessMethod, store.ErrNoAccessMethod, and fn's.
func (s *Service) UpdateAccessMethod(ctx context.Context, spaceID, id string, fn func(*store.AccessMethod) error) (store.AccessMethod, error) {
	out, err := s.st.UpdateAccessMethod(ctx, spaceID, id, func(a *store.AccessMethod) error {
		if err := fn(a); err != nil {
			return err
		}
		return validateAccessMethod(a)
	})
	if err != nil {
		return store.AccessMethod{}, fmt.Errorf("meeting: update access method: %w", err)
	}
	s.log.Info("access method changed", "space", spaceID, "accessMethod", id)
	return out, nil
}

// DeleteAccessMethod deletes an access method. Guests who came in by it and are in a meeting
// stay; those who have not joined yet join with the space's own profile.
func (s *Service) DeleteAccessMethod(ctx context.Context, spaceID, id string) error {
	if err := s.st.DeleteAccessMethod(ctx, spaceID, id); err != nil {
		return fmt.Errorf("meeting: delete access method: %w", err)
	}
	s.log.Info("access method deleted", "space", spaceID, "accessMethod", id)
	return nil
}

// AccessMethod returns an access method: store.ErrNotFound (no such space),
// store.ErrNoAccessMethod.
func (s *Service) AccessMethod(ctx context.Context, spaceID, id string) (store.AccessMethod, error) {
	return s.st.AccessMethod(ctx, spaceID, id)
}

// AccessMethods lists a space's access methods, paged, with how many match.
func (s *Service) AccessMethods(ctx context.Context, spaceID string, f store.AccessMethodFilter) ([]store.AccessMethod, int, error) {
	return s.st.ListAccessMethods(ctx, spaceID, f)
}

// CountAccessMethods returns how many access methods a space has.
func (s *Service) CountAccessMethods(ctx context.Context, spaceID string) (int, error) {
	return s.st.CountAccessMethods(ctx, spaceID)
}
