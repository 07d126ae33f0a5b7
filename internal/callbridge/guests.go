package callbridge

import (
	"context"
	"errors"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/web/webapp"
)

// guestJoiner adapts the meeting service to the web app's guest endpoints.
type guestJoiner struct{ m *meeting.Service }

func (g guestJoiner) JoinAsGuest(ctx context.Context, callID, passcode, name, remote string) (webapp.GuestGrant, error) {
	gr, err := g.m.JoinAsGuest(ctx, callID, passcode, name, remote)
	return webGrant(gr, err)
}

func (g guestJoiner) RejoinGuest(ctx context.Context, credential, remote string) (webapp.GuestGrant, error) {
	gr, err := g.m.RejoinGuest(ctx, credential, remote)
	return webGrant(gr, err)
}

// webGrant turns the meeting service's answer into the web app's.
func webGrant(gr meeting.Grant, err error) (webapp.GuestGrant, error) {
	var te *meeting.ThrottledError
	switch {
	case err == nil:
		return webapp.GuestGrant{JID: gr.JID, Password: gr.Password.Reveal(), SpaceJID: gr.SpaceJID, SpaceName: gr.SpaceName,
			Name: gr.Name, Rejoin: gr.Rejoin.Reveal(), RejoinExpires: gr.RejoinExpires}, nil
	case errors.Is(err, meeting.ErrInvalidCallID):
		return webapp.GuestGrant{}, webapp.ErrInvalidCallID
	case errors.Is(err, meeting.ErrNoCallBridge):
		return webapp.GuestGrant{}, webapp.ErrNoCallBridge
	case errors.Is(err, meeting.ErrRejoinExpired):
		return webapp.GuestGrant{}, webapp.ErrRejoinExpired
	case errors.Is(err, meeting.ErrRejoinChanged):
		return webapp.GuestGrant{}, webapp.ErrRejoinChanged
	case errors.Is(err, meeting.ErrRejoinInvalid):
		return webapp.GuestGrant{}, webapp.ErrRejoinInvalid
	case errors.As(err, &te):
		return webapp.GuestGrant{}, &webapp.ThrottledError{RetryAfter: te.RetryAfter}
	}
	return webapp.GuestGrant{}, err
}
