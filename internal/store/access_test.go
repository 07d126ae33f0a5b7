package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"confab.dev/confab/internal/secret"
)

func TestAccessMethods(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	a1, err := s.CreateCoSpace(ctx, CoSpace{ID: "a1", URI: "alpha", CallID: "100", Passcode: secret.New("1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCoSpace(ctx, CoSpace{ID: "b1", URI: "beta", CallID: "200"}); err != nil {
		t.Fatal(err)
	}
	host, err := s.CreateAccessMethod(ctx, AccessMethod{ID: "h", CoSpaceID: "a1", Name: "host", CallID: "100",
		Passcode: secret.New("9"), Secret: secret.New("s"), Scope: "private"})
	if err != nil {
		t.Fatalf("an access method sharing the space's call ID with another passcode: %v", err)
	}
	if host.Name != "host" || host.Passcode.Reveal() != "9" || host.Created.IsZero() {
		t.Errorf("created %+v", host)
	}
	tests := []struct {
		name string
		am   AccessMethod
		want error
	}{
		{"the space's call ID and passcode", AccessMethod{ID: "x", CoSpaceID: "a1", CallID: "100", Passcode: secret.New("1")}, ErrCallIDPasscodeTaken},
		{"another access method's call ID and passcode", AccessMethod{ID: "x", CoSpaceID: "a1", CallID: "100", Passcode: secret.New("9")}, ErrCallIDPasscodeTaken},
		{"another space's call ID", AccessMethod{ID: "x", CoSpaceID: "a1", CallID: "200"}, ErrCallIDTaken},
		{"another space's URI", AccessMethod{ID: "x", CoSpaceID: "a1", URI: "BETA"}, ErrCoSpaceURITaken},
		{"the space's URI and passcode", AccessMethod{ID: "x", CoSpaceID: "a1", URI: "Alpha", Passcode: secret.New("1")}, ErrURIPasscodeTaken},
		{"a missing profile", AccessMethod{ID: "x", CoSpaceID: "a1", CallLegProfile: "nope"}, ErrNotFound},
		{"a missing space", AccessMethod{ID: "x", CoSpaceID: "nope"}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.CreateAccessMethod(ctx, tt.am); !errors.Is(err, tt.want) {
				t.Errorf("CreateAccessMethod = %v, want %v", err, tt.want)
			}
		})
	}
	// The same URI with another passcode is another way in.
	if _, err := s.CreateAccessMethod(ctx, AccessMethod{ID: "g", CoSpaceID: "a1", URI: "alpha", CallID: "101"}); err != nil {
		t.Fatalf("the space's URI with another passcode: %v", err)
	}
	// A space may not take an access method's call ID (another space's) or its pair.
	if _, err := s.CreateCoSpace(ctx, CoSpace{ID: "c1", CallID: "101"}); !errors.Is(err, ErrCallIDTaken) {
		t.Errorf("a space with another space's access method's call ID: %v", err)
	}
	if _, err := s.UpdateCoSpace(ctx, "a1", func(c *CoSpace) error { c.Passcode = secret.New("9"); return nil }); !errors.Is(err, ErrCallIDPasscodeTaken) {
		t.Errorf("a space taking its access method's call ID and passcode: %v", err)
	}

	sp, ams, err := s.SpaceByCallID(ctx, "100")
	if err != nil || sp.ID != "a1" || len(ams) != 1 || ams[0].ID != "h" {
		t.Errorf("SpaceByCallID(100) = %s %+v %v", sp.ID, ams, err)
	}
	sp, ams, err = s.SpaceByCallID(ctx, "101")
	if err != nil || sp.ID != "a1" || len(ams) != 1 || ams[0].ID != "g" {
		t.Errorf("SpaceByCallID(101) = %s %+v %v", sp.ID, ams, err)
	}
	if _, _, err := s.SpaceByCallID(ctx, "999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SpaceByCallID(999) = %v", err)
	}

	up, err := s.UpdateAccessMethod(ctx, "a1", "h", func(a *AccessMethod) error { a.Passcode = secret.New("8"); a.Name = ""; return nil })
	if err != nil || up.Passcode.Reveal() != "8" || up.Name != "" || up.Scope != "private" {
		t.Errorf("UpdateAccessMethod = %+v, %v", up, err)
	}
	if _, err := s.UpdateAccessMethod(ctx, "a1", "nope", func(*AccessMethod) error { return nil }); !errors.Is(err, ErrNoAccessMethod) {
		t.Errorf("update of a missing access method: %v", err)
	}
	list, total, err := s.ListAccessMethods(ctx, "a1", AccessMethodFilter{Limit: 1, Offset: 1})
	if err != nil || total != 2 || len(list) != 1 || list[0].ID != "g" {
		t.Errorf("ListAccessMethods = %+v %d %v", list, total, err)
	}
	if n, _ := s.CountAccessMethods(ctx, "a1"); n != 2 {
		t.Errorf("CountAccessMethods = %d", n)
	}
	if err := s.DeleteAccessMethod(ctx, "a1", "h"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessMethod(ctx, "a1", "h"); !errors.Is(err, ErrNoAccessMethod) {
		t.Errorf("read after delete: %v", err)
	}
	// Deleting the space deletes its access methods.
	if err := s.DeleteCoSpace(ctx, a1.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SpaceByCallID(ctx, "101"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SpaceByCallID after the space was deleted: %v", err)
	}
}

func TestObjects(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	p, err := s.CreateObject(ctx, Object{ID: "p1", Kind: KindCallLegProfile, Fields: map[string]string{"rxAudioMute": "true"}})
	if err != nil || p.Fields["rxAudioMute"] != "true" {
		t.Fatalf("CreateObject = %+v, %v", p, err)
	}
	if _, err := s.CreateObject(ctx, Object{ID: "p2", Kind: KindCallLegProfile}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Object(ctx, KindCallProfile, "p1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an object of another kind: %v", err)
	}
	up, err := s.UpdateObject(ctx, KindCallLegProfile, "p1", func(o *Object) error {
		delete(o.Fields, "rxAudioMute")
		o.Fields["defaultLayout"] = "speakerOnly"
		return nil
	})
	if err != nil || len(up.Fields) != 1 || up.Fields["defaultLayout"] != "speakerOnly" {
		t.Errorf("UpdateObject = %+v, %v", up, err)
	}
	if _, err := s.CreateCoSpace(ctx, CoSpace{ID: "c", CallLegProfile: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a space naming a missing profile: %v", err)
	}
	if _, err := s.CreateCoSpace(ctx, CoSpace{ID: "c", CallLegProfile: "p1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSystemProfiles(ctx, func(sp *SystemProfiles) error { sp.CallLegProfile = "p2"; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		usage string
		want  int
	}{{UsageAny, 2}, {UsageReferenced, 2}, {UsageUnreferenced, 0}} {
		if _, total, err := s.ListObjects(ctx, KindCallLegProfile, tt.usage, 0, 0); err != nil || total != tt.want {
			t.Errorf("ListObjects(usage %q) total %d, %v; want %d", tt.usage, total, err, tt.want)
		}
	}
	// Deleting a profile unsets it wherever it was named.
	if err := s.DeleteObject(ctx, KindCallLegProfile, "p1"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.CoSpace(ctx, "c"); c.CallLegProfile != "" {
		t.Errorf("the space still names the deleted profile: %q", c.CallLegProfile)
	}
	if _, total, _ := s.ListObjects(ctx, KindCallLegProfile, UsageUnreferenced, 0, 0); total != 0 {
		t.Errorf("unreferenced after delete: %d, want 0 (p2 is the system's)", total)
	}
	s.DeleteObject(ctx, KindCallLegProfile, "p2")
	if sp, _ := s.SystemProfiles(ctx); sp.CallLegProfile != "" {
		t.Errorf("system profiles still name p2: %+v", sp)
	}
	if _, err := s.UpdateSystemProfiles(ctx, func(sp *SystemProfiles) error { sp.CallProfile = "nope"; return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("system profiles naming a missing profile: %v", err)
	}
}

func TestCDRQueue(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	for i := 0; i < 2; i++ {
		if _, err := s.CreateCDRReceiver(ctx, CDRReceiver{ID: fmt.Sprint("r", i), URI: "http://x/"}, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateCDRReceiver(ctx, CDRReceiver{ID: "r9"}, 2); !errors.Is(err, ErrTooManyCDRReceivers) {
		t.Errorf("a third receiver: %v", err)
	}
	var recs []CDRRecord
	for i := int64(1); i <= 5; i++ {
		recs = append(recs, CDRRecord{ReceiverID: "r0", Session: "s", RecordIndex: i, Type: "callStart", Body: fmt.Sprint(i)},
			CDRRecord{ReceiverID: "gone", Session: "s", RecordIndex: i, Type: "callStart"})
	}
	if err := s.EnqueueCDRs(ctx, recs, 3); err != nil {
		t.Fatal(err)
	}
	got, err := s.PendingCDRs(ctx, "r0", 10)
	if err != nil || len(got) != 3 || got[0].RecordIndex != 3 || got[0].Missing != 2 || got[2].RecordIndex != 5 {
		t.Fatalf("PendingCDRs = %+v, %v; want 3..5, the first missing 2", got, err)
	}
	if err := s.AckCDRs(ctx, "r0", got[1].Seq); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountPendingCDRs(ctx, "r0"); n != 1 {
		t.Errorf("pending after ack: %d, want 1", n)
	}
	if err := s.DeleteCDRReceiver(ctx, "r0"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountPendingCDRs(ctx, "r0"); n != 0 {
		t.Errorf("pending after the receiver went: %d", n)
	}
}
