package callbridge

import (
	"context"
	"errors"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/web/webapp"
)

// guestJoiner adapts the meeting service to the web app's guest endpoint.
type guestJoiner struct{ m *meeting.Service }

func (g guestJoiner) JoinAsGuest(ctx context.Context, callID, passcode, name, remote string) (webapp.GuestGrant, error) {
	gr, err := g.m.JoinAsGuest(ctx, callID, passcode, name, remote)
	var te *meeting.ThrottledError
	switch {
	case err == nil:
		return webapp.GuestGrant{JID: gr.JID, Password: gr.Password.Reveal(), SpaceJID: gr.SpaceJID, SpaceName: gr.SpaceName, Name: gr.Name}, nil
	case errors.Is(err, meeting.ErrInvalidCallID):
		return webapp.GuestGrant{}, webapp.ErrInvalidCallID
	case errors.Is(err, meeting.ErrNoCallBridge):
		return webapp.GuestGrant{}, webapp.ErrNoCallBridge
	case errors.As(err, &te):
		return webapp.GuestGrant{}, &webapp.ThrottledError{RetryAfter: te.RetryAfter}
	}
	return webapp.GuestGrant{}, err
}
