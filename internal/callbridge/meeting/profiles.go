package meeting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"confab.dev/confab/internal/store"
)

// Profiles are CMS's call leg profiles and call profiles: named sets of settings, each
// setting set or unset. They are attached to the system (/system/profiles), to spaces and to
// access methods; for a participant, each setting takes the value of the most specific level
// that sets it, below the overrides the API sets on its call leg:
//
//	call leg profile: system < space's defaultLayout < space's < access method's < call leg's own
//	call profile:     system < space's < the call's own (PUT /calls/{id})
//
// The settings that act in Confab today are listed in Applied; the others are kept and shown
// as given, for the media and SIP sides to come.

// FieldKind is the type of a setting's value.
type FieldKind int

// Kinds of settings.
const (
	KindBool   FieldKind = iota // true or false
	KindEnum                    // one of Field.Values
	KindInt                     // a decimal integer from Field.Min to Field.Max
	KindString                  // up to Field.Max characters, no control characters
)

// Field is one setting of a profile, by its CMS name.
type Field struct {
	Name     string
	Kind     FieldKind
	Values   []string // KindEnum
	Min, Max int      // KindInt bounds; KindString's longest
}

// Valid checks a value of the field; the empty value (unset) is always valid.
func (f Field) Valid(v string) error {
	if v == "" {
		return nil
	}
	switch f.Kind {
	case KindBool:
		if v != "true" && v != "false" {
			return errors.New("want true or false")
		}
	case KindEnum:
		if !slices.Contains(f.Values, v) {
			return fmt.Errorf("want one of %s", strings.Join(f.Values, ", "))
		}
	case KindInt:
		n, err := strconv.Atoi(v)
		if err != nil || n < f.Min || n > f.Max {
			return fmt.Errorf("want an integer from %d to %d", f.Min, f.Max)
		}
	case KindString:
		if len([]rune(v)) > f.Max {
			return fmt.Errorf("longer than %d characters", f.Max)
		}
		return ValidName(v)
	}
	return nil
}

func boolField(name string) Field { return Field{Name: name, Kind: KindBool} }

func enumField(name string, values ...string) Field {
	return Field{Name: name, Kind: KindEnum, Values: values}
}

func intField(name string, lo, hi int) Field {
	return Field{Name: name, Kind: KindInt, Min: lo, Max: hi}
}

// CallLegProfileFields are the settings of a call leg profile (CMS callLegProfile), which are
// also the settings a call leg can override (PUT /callLegs/{id}).
var CallLegProfileFields = []Field{
	{Name: "name", Kind: KindString, Max: 200},
	boolField("needsActivation"),
	{Name: "defaultLayout", Kind: KindEnum, Values: Layouts},
	boolField("changeLayoutAllowed"),
	boolField("participantLabels"),
	enumField("presentationDisplayMode", "dualStream", "singleStream"),
	boolField("presentationContributionAllowed"),
	boolField("allowAllPresentationContributionAllowed"),
	boolField("presentationViewingAllowed"),
	boolField("endCallAllowed"),
	boolField("disconnectOthersAllowed"),
	boolField("muteOthersAllowed"),
	boolField("videoMuteOthersAllowed"),
	boolField("muteSelfAllowed"),
	boolField("videoMuteSelfAllowed"),
	boolField("changeJoinAudioMuteOverrideAllowed"),
	boolField("allowAllMuteSelfAllowed"),
	intField("joinToneParticipantThreshold", 0, 100),
	intField("leaveToneParticipantThreshold", 0, 100),
	enumField("videoMode", "auto", "disabled"),
	boolField("rxAudioMute"),
	boolField("txAudioMute"),
	boolField("rxVideoMute"),
	boolField("txVideoMute"),
	enumField("sipMediaEncryption", "optional", "required", "prohibited"),
	intField("audioPacketSizeMs", 10, 60),
	enumField("deactivationMode", "deactivate", "disconnect", "remainActivated"),
	intField("deactivationModeTime", 0, 86400),
	boolField("telepresenceCallsAllowed"),
	boolField("sipPresentationChannelEnabled"),
	enumField("bfcpMode", "serverOnly", "serverAndClient"),
	boolField("callLockAllowed"),
	boolField("setImportanceAllowed"),
	boolField("recordingControlAllowed"),
	boolField("streamingControlAllowed"),
	intField("maxCallDurationTime", 0, 1<<31-1),
	enumField("qualityMain", "unrestricted", "max1080p30", "max720p30", "max480p30"),
	enumField("qualityPresentation", "unrestricted", "max1080p30", "max720p5"),
	enumField("participantCounter", "never", "auto", "always"),
	boolField("controlRemoteCameraAllowed"),
	enumField("audioGainMode", "agc", "disabled"),
}

// CallProfileFields are the settings of a call profile (CMS callProfile).
var CallProfileFields = []Field{
	intField("participantLimit", 1, 100000),
	boolField("messageBoardEnabled"),
	boolField("locked"),
	enumField("lockMode", "all", "needsActivation"),
	enumField("recordingMode", "disabled", "manual", "automatic"),
	enumField("streamingMode", "disabled", "manual", "automatic"),
	enumField("passcodeMode", "required", "timeout"),
	intField("passcodeTimeout", 0, 3600),
	boolField("gatewayAudioCallOptimization"),
	enumField("lyncConferenceMode", "dualHomeCluster", "dualHomeCallBridge", "gateway"),
	{Name: "sipRecorderUri", Kind: KindString, Max: 500},
	{Name: "sipStreamerUri", Kind: KindString, Max: 500},
}

// CallLegFields are the settings PUT /callLegs/{id} takes besides those of a call leg
// profile: the leg's own layout choice, layout (CMS's older name of defaultLayout), and a name
// to show instead of the participant's.
var CallLegFields = append(slices.Clip(CallLegProfileFields),
	Field{Name: "chosenLayout", Kind: KindEnum, Values: Layouts},
	Field{Name: "layout", Kind: KindEnum, Values: Layouts},
	Field{Name: "nameLabelOverride", Kind: KindString, Max: 50},
)

// Applied names the settings that change what happens in a Confab meeting today.
var Applied = map[string]string{
	"defaultLayout":          "the participant's layout (shown in its presence)",
	"chosenLayout":           "the participant's layout, above defaultLayout",
	"changeLayoutAllowed":    "whether the participant may choose its own layout (<control/>)",
	"rxAudioMute":            "the participant's audio is muted for the others (on joining, and as changed)",
	"txAudioMute":            "the others' audio is muted for the participant",
	"rxVideoMute":            "the participant's video is muted for the others",
	"txVideoMute":            "the others' video is muted for the participant",
	"muteSelfAllowed":        "whether the participant may mute and unmute its own audio (<control/>)",
	"videoMuteSelfAllowed":   "whether the participant may mute and unmute its own video (<control/>)",
	"muteOthersAllowed":      "whether the participant may mute and unmute others' audio (<control/>)",
	"videoMuteOthersAllowed": "whether the participant may mute and unmute others' video (<control/>)",
	"nameLabelOverride":      "the name shown for the participant",
	"participantLimit":       "the next participant beyond it is refused (service-unavailable)",
	"messageBoardEnabled":    "false: chat messages are refused (not-allowed)",
	"locked":                 "true: guests are refused (forbidden) while the call is locked",
}

// legDefaults are CMS's values of the call leg settings that act, where no level sets them.
var legDefaults = map[string]string{
	"changeLayoutAllowed":    "true",
	"muteSelfAllowed":        "true",
	"videoMuteSelfAllowed":   "true",
	"muteOthersAllowed":      "false",
	"videoMuteOthersAllowed": "false",
	"rxAudioMute":            "false",
	"txAudioMute":            "false",
	"rxVideoMute":            "false",
	"txVideoMute":            "false",
}

// FieldsOf returns the settings of a kind of profile: store.KindCallLegProfile or
// store.KindCallProfile.
func FieldsOf(kind string) ([]Field, error) {
	switch kind {
	case store.KindCallLegProfile:
		return CallLegProfileFields, nil
	case store.KindCallProfile:
		return CallProfileFields, nil
	}
	return nil, fmt.Errorf("meeting: no profiles of kind %q", kind)
}

// FieldByName returns the field of fields with that name.
func FieldByName(fields []Field, name string) (Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// validFields checks every set value of fields against the schema; names it does not know
// are refused too, as they could not have come from the API.
func validFields(schema []Field, fields map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		f, ok := FieldByName(schema, name)
		if !ok {
			return &InvalidError{Field: name, Reason: "no such setting"}
		}
		if err := f.Valid(fields[name]); err != nil {
			return &InvalidError{Field: name, Reason: err.Error()}
		}
		if fields[name] == "" {
			delete(fields, name) // empty is unset
		}
	}
	return nil
}

// CreateProfile stores a new profile of kind (store.KindCallLegProfile,
// store.KindCallProfile) with the settings given (empty values are unset). Errors:
// *InvalidError or a store failure.
func (s *Service) CreateProfile(ctx context.Context, kind string, fields map[string]string) (store.Object, error) {
	schema, err := FieldsOf(kind)
	if err != nil {
		return store.Object{}, err
	}
	fields = maps.Clone(fields)
	if fields == nil {
		fields = map[string]string{}
	}
	if err := validFields(schema, fields); err != nil {
		return store.Object{}, err
	}
	o, err := s.st.CreateObject(ctx, store.Object{ID: uuid.NewString(), Kind: kind, Fields: fields})
	if err != nil {
		return store.Object{}, fmt.Errorf("meeting: create %s: %w", kind, err)
	}
	s.log.Info("profile created", "kind", kind, "id", o.ID)
	return o, nil
}

// UpdateProfile lets fn change a profile's settings, validates and stores them. Errors:
// *InvalidError, a *store.RefError for a missing profile, fn's, or a store failure. Calls in
// progress see the change at their next join.
func (s *Service) UpdateProfile(ctx context.Context, kind, id string, fn func(fields map[string]string) error) (store.Object, error) {
	schema, err := FieldsOf(kind)
	if err != nil {
		return store.Object{}, err
	}
	o, err := s.st.UpdateObject(ctx, kind, id, func(o *store.Object) error {
		if err := fn(o.Fields); err != nil {
			return err
		}
		return validFields(schema, o.Fields)
	})
	if err != nil {
		return store.Object{}, fmt.Errorf("meeting: update %s: %w", kind, err)
	}
	s.log.Info("profile changed", "kind", kind, "id", id)
	return o, nil
}

// DeleteProfile deletes a profile; spaces, access methods and the system profiles that named
// it name none afterwards.
func (s *Service) DeleteProfile(ctx context.Context, kind, id string) error {
	if err := s.st.DeleteObject(ctx, kind, id); err != nil {
		return fmt.Errorf("meeting: delete %s: %w", kind, err)
	}
	s.log.Info("profile deleted", "kind", kind, "id", id)
	return nil
}

// Profile returns a profile, or a *store.RefError.
func (s *Service) Profile(ctx context.Context, kind, id string) (store.Object, error) {
	return s.st.Object(ctx, kind, id)
}

// Profiles lists the profiles of a kind (usage: store.UsageAny, UsageReferenced,
// UsageUnreferenced), paged, with how many match.
func (s *Service) Profiles(ctx context.Context, kind, usage string, offset, limit int) ([]store.Object, int, error) {
	return s.st.ListObjects(ctx, kind, usage, offset, limit)
}

// SystemProfiles returns the system-wide profiles.
func (s *Service) SystemProfiles(ctx context.Context) (store.SystemProfiles, error) {
	return s.st.SystemProfiles(ctx)
}

// UpdateSystemProfiles changes the system-wide profiles; a profile that does not exist is a
// *store.RefError.
func (s *Service) UpdateSystemProfiles(ctx context.Context, fn func(*store.SystemProfiles) error) (store.SystemProfiles, error) {
	p, err := s.st.UpdateSystemProfiles(ctx, fn)
	if err != nil {
		return store.SystemProfiles{}, fmt.Errorf("meeting: update system profiles: %w", err)
	}
	return p, nil
}

// resolved is the settings in force for one participant at its join: its call leg settings
// (the layers merged) and its call's call settings.
type resolved struct {
	leg  map[string]string
	call map[string]string
}

// resolve merges the profiles for a participant joining sp through the access method am (nil:
// the space itself). A profile that has disappeared since it was named counts as empty.
func (s *Service) resolve(ctx context.Context, sp store.CoSpace, am *store.AccessMethod) (resolved, error) {
	sys, err := s.st.SystemProfiles(ctx)
	if err != nil {
		return resolved{}, err
	}
	r := resolved{leg: map[string]string{}, call: map[string]string{}}
	layer := func(dst map[string]string, kind, id string) error {
		if id == "" {
			return nil
		}
		o, err := s.st.Object(ctx, kind, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		maps.Copy(dst, o.Fields)
		return nil
	}
	if err := layer(r.leg, store.KindCallLegProfile, sys.CallLegProfile); err != nil {
		return resolved{}, err
	}
	if sp.DefaultLayout != "" {
		r.leg["defaultLayout"] = sp.DefaultLayout
	}
	if err := layer(r.leg, store.KindCallLegProfile, sp.CallLegProfile); err != nil {
		return resolved{}, err
	}
	if am != nil {
		if err := layer(r.leg, store.KindCallLegProfile, am.CallLegProfile); err != nil {
			return resolved{}, err
		}
	}
	delete(r.leg, "name") // the profile's own name is not a setting of the leg
	if err := layer(r.call, store.KindCallProfile, sys.CallProfile); err != nil {
		return resolved{}, err
	}
	if err := layer(r.call, store.KindCallProfile, sp.CallProfile); err != nil {
		return resolved{}, err
	}
	return r, nil
}
