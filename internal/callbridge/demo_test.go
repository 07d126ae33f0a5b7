package callbridge

import (
	"context"
	"testing"
)

// TestEnsureDemoSpace: the first call creates the demo space, open to anyone with its call
// ID and a six-digit passcode; the next returns the same space.
func TestEnsureDemoSpace(t *testing.T) {
	b := newBridge(t)
	ctx := context.Background()
	s1, err := b.EnsureDemoSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s1.URI != "demo" || !s1.NonMemberAccess || len(s1.CallID) != 9 || len(s1.Passcode.Reveal()) != 6 ||
		s1.CallID[0] == '0' || s1.Passcode.Reveal()[0] == '0' {
		t.Errorf("demo space: uri %q, open %v, call ID %q, passcode of %d digits", s1.URI, s1.NonMemberAccess, s1.CallID, len(s1.Passcode.Reveal()))
	}
	s2, err := b.EnsureDemoSpace(ctx)
	if err != nil || s2.ID != s1.ID || s2.Passcode != s1.Passcode {
		t.Errorf("second call: %s, %v; want %s again", s2.ID, err, s1.ID)
	}
}
