package cdr

import (
	"fmt"
	"strconv"
	"time"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/stream"
)

// recordBody is the content of the <record> element of an event: a <call> or <callLeg>
// element with CMS's fields for its type. Fields CMS leaves out when they do not apply are
// left out; Confab adds the mute states and layout to callLegUpdate.
func recordBody(e meeting.Event) (string, error) {
	var x stream.Builder
	tf := func(b bool) string { return strconv.FormatBool(b) }
	switch e.Type {
	case meeting.CallStart:
		x.Open("call", "id", e.CallID)
		x.Elem("name", e.CallName)
		if e.OwnerName != "" {
			x.Elem("ownerName", e.OwnerName)
		}
		x.Elem("callType", "coSpace")
		x.Elem("coSpace", e.CoSpaceID)
		x.Elem("callCorrelator", e.CallCorrelator)
		if e.CDRTag != "" {
			x.Elem("cdrTag", e.CDRTag)
		}
		x.End("call")
	case meeting.CallEnd:
		x.Open("call", "id", e.CallID)
		x.Elem("callLegsCompleted", strconv.Itoa(e.CallLegsCompleted))
		x.Elem("callLegsMaxActive", strconv.Itoa(e.CallLegsMaxActive))
		x.Elem("durationSeconds", seconds(e.CallDuration))
		x.End("call")
	case meeting.CallLegStart:
		x.Open("callLeg", "id", e.LegID)
		x.Elem("displayName", e.DisplayName)
		x.Elem("remoteParty", e.RemoteParty)
		x.Elem("remoteAddress", e.RemoteParty)
		x.Elem("localAddress", e.LocalAddress)
		if e.Guest {
			x.Elem("guestConnection", "true")
		}
		x.Elem("type", "acano")
		x.Elem("direction", "incoming")
		x.Elem("call", e.CallID)
		x.Elem("recording", "false")
		x.Elem("streaming", "false")
		x.Elem("canMove", "false")
		x.End("callLeg")
	case meeting.CallLegUpdate:
		x.Open("callLeg", "id", e.LegID)
		x.Elem("displayName", e.DisplayName)
		if e.State != "" {
			x.Elem("state", e.State)
		}
		x.Elem("call", e.CallID)
		x.Elem("deactivated", "false")
		// Confab's extension: the leg's media settings as they now are.
		x.Elem("rxAudioMute", tf(e.RxAudioMute))
		x.Elem("txAudioMute", tf(e.TxAudioMute))
		x.Elem("rxVideoMute", tf(e.RxVideoMute))
		x.Elem("txVideoMute", tf(e.TxVideoMute))
		x.Elem("layout", e.Layout)
		x.End("callLeg")
	case meeting.CallLegEnd:
		x.Open("callLeg", "id", e.LegID)
		x.Elem("reason", e.Reason)
		x.Elem("remoteTeardown", tf(e.RemoteTeardown))
		x.Elem("durationSeconds", seconds(e.LegDuration))
		x.Elem("activatedDuration", seconds(e.LegDuration))
		x.Elem("call", e.CallID)
		x.End("callLeg")
	default:
		return "", fmt.Errorf("cdr: no record for an event of type %q", e.Type)
	}
	return string(x.B), nil
}

func seconds(d time.Duration) string { return strconv.FormatInt(max(int64(d/time.Second), 0), 10) }
