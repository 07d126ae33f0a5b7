package adminapi

import (
	"encoding/xml"
	"errors"
	"net/http"
	"time"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/store"
)

// xmppConfigDoc is GET /system/configuration/xmpp. The shared secret is write-only and has no
// field here. Unset fields are left out.
type xmppConfigDoc struct {
	XMLName               xml.Name `xml:"xmpp" json:"-"`
	UniqueName            string   `xml:"uniqueName,omitempty" json:"uniqueName,omitempty"`
	Domain                string   `xml:"domain,omitempty" json:"domain,omitempty"`
	ServerAddressOverride string   `xml:"serverAddressOverride,omitempty" json:"serverAddressOverride,omitempty"`
}

func (s *server) getXMPPConfig(w http.ResponseWriter, r *http.Request) (any, error) {
	c, err := s.store.XMPPSettings(r.Context())
	if err != nil {
		return nil, err
	}
	return xmppConfigDoc{UniqueName: c.UniqueName, Domain: c.Domain, ServerAddressOverride: c.ServerAddressOverride}, nil
}

// setXMPPSettings is PUT and POST /system/configuration/xmpp: validate, store, apply to the link.
func (s *server) setXMPPSettings(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	before, c, err := s.settings.Update(r.Context(), func(c *store.XMPPSettings) error {
		f.String("uniqueName", &c.UniqueName, link.ValidUniqueName)
		f.String("domain", &c.Domain, link.ValidDomain)
		f.String("serverAddressOverride", &c.ServerAddressOverride, link.ValidOverride)
		f.Secret("sharedSecret", &c.SharedSecret, link.ValidSecret)
		return f.Err()
	})
	var se *link.SettingError
	if errors.As(err, &se) {
		return nil, ParameterError(se.Field, "invalidValue", se.Error())
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("xmpp settings changed", "user", user(r),
		"uniqueName", c.UniqueName, "domain", c.Domain, "serverAddressOverride", c.ServerAddressOverride,
		"sharedSecretChanged", c.SharedSecret != before.SharedSecret, "sharedSecretSet", !c.SharedSecret.IsZero())
	return nil, nil
}

// alarmsDoc is GET /system/alarms.
type alarmsDoc struct {
	XMLName xml.Name   `xml:"alarms" json:"-"`
	Total   int        `xml:"total,attr" json:"total"`
	Alarms  []alarmDoc `xml:"alarm" json:"alarm"`
}

type alarmDoc struct {
	ID                string `xml:"id,attr" json:"id"`
	Type              string `xml:"type" json:"type"`
	ActiveTimeSeconds int64  `xml:"activeTimeSeconds" json:"activeTimeSeconds"`
	FailureReason     string `xml:"failureReason,omitempty" json:"failureReason,omitempty"`
	// Confab's extensions: the TLS failure named, and what was seen.
	TLSFailureCause string `xml:"tlsFailureCause,omitempty" json:"tlsFailureCause,omitempty"`
	Detail          string `xml:"detail,omitempty" json:"detail,omitempty"`
}

func (s *server) getAlarms(w http.ResponseWriter, r *http.Request) (any, error) {
	now := s.now()
	doc := alarmsDoc{Alarms: []alarmDoc{}}
	for _, a := range s.link.Alarms() {
		doc.Alarms = append(doc.Alarms, alarmDoc{
			ID: a.ID, Type: a.Type, ActiveTimeSeconds: seconds(now.Sub(a.ActiveSince)),
			FailureReason: a.FailureReason, TLSFailureCause: a.TLSCause, Detail: a.Detail,
		})
	}
	doc.Total = len(doc.Alarms)
	return doc, nil
}

// statusDoc is GET /system/status: the CMS fields that apply to Confab, and the XMPP link.
type statusDoc struct {
	XMLName              xml.Name `xml:"status" json:"-"`
	SoftwareVersion      string   `xml:"softwareVersion" json:"softwareVersion"`
	UptimeSeconds        int64    `xml:"uptimeSeconds" json:"uptimeSeconds"`
	Activated            bool     `xml:"activated" json:"activated"`
	ClusterEnabled       bool     `xml:"clusterEnabled" json:"clusterEnabled"`
	CallLegsActive       int      `xml:"callLegsActive" json:"callLegsActive"`
	CallLegsMaxActive    int      `xml:"callLegsMaxActive" json:"callLegsMaxActive"`
	CallLegsCompleted    int      `xml:"callLegsCompleted" json:"callLegsCompleted"`
	AudioBitRateOutgoing int      `xml:"audioBitRateOutgoing" json:"audioBitRateOutgoing"`
	VideoBitRateOutgoing int      `xml:"videoBitRateOutgoing" json:"videoBitRateOutgoing"`
	AudioBitRateIncoming int      `xml:"audioBitRateIncoming" json:"audioBitRateIncoming"`
	VideoBitRateIncoming int      `xml:"videoBitRateIncoming" json:"videoBitRateIncoming"`
	XMPPLink             linkDoc  `xml:"xmppLink" json:"xmppLink"`
}

// linkDoc is Confab's extension of the status: the Call Bridge's link to its XMPP server.
type linkDoc struct {
	State        string `xml:"state" json:"state"`
	Server       string `xml:"server,omitempty" json:"server,omitempty"`
	Address      string `xml:"address,omitempty" json:"address,omitempty"`
	Since        string `xml:"since,omitempty" json:"since,omitempty"`
	ComponentJID string `xml:"componentJid,omitempty" json:"componentJid,omitempty"`
	Attempt      uint64 `xml:"attempt,omitempty" json:"attempt,omitempty"`
	NextAttempt  string `xml:"nextAttempt,omitempty" json:"nextAttempt,omitempty"`
	LastError    string `xml:"lastError,omitempty" json:"lastError,omitempty"`
}

func (s *server) getStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	st := s.link.Status()
	if st.State == "" {
		st.State = linkstate.Unavailable // a link that has not started yet
	}
	doc := statusDoc{
		SoftwareVersion: s.version,
		UptimeSeconds:   seconds(s.now().Sub(s.started)),
		Activated:       true,
		XMPPLink: linkDoc{
			State: string(st.State), Server: st.Server, Address: st.Address, Since: stamp(st.Since),
			ComponentJID: st.ComponentJID, Attempt: st.Attempt, NextAttempt: stamp(st.NextAttempt),
			LastError: st.LastError,
		},
	}
	if s.media != nil {
		doc.AudioBitRateIncoming, doc.VideoBitRateIncoming, doc.AudioBitRateOutgoing, doc.VideoBitRateOutgoing = s.media.Totals()
	}
	return doc, nil
}

// traceDoc is GET /system/xmppTrace, Confab's extension: the link's step events.
type traceDoc struct {
	XMLName xml.Name   `xml:"xmppTrace" json:"-"`
	Total   int        `xml:"total,attr" json:"total"`
	Events  []eventDoc `xml:"event" json:"event"`
}

type eventDoc struct {
	Seq        uint64  `xml:"seq,attr" json:"seq"`
	Attempt    uint64  `xml:"attempt,attr" json:"attempt"`
	Step       string  `xml:"step" json:"step"`
	Target     string  `xml:"target,omitempty" json:"target,omitempty"`
	Start      string  `xml:"start" json:"start"`
	DurationMs float64 `xml:"durationMs" json:"durationMs"`
	Outcome    string  `xml:"outcome" json:"outcome"`
	Cause      string  `xml:"cause,omitempty" json:"cause,omitempty"`
	Detail     string  `xml:"detail,omitempty" json:"detail,omitempty"`
	Remedy     string  `xml:"remedy,omitempty" json:"remedy,omitempty"`
}

// getXMPPTrace returns the events after ?after=SEQ (default 0), oldest first, at most
// ?limit=N of them (default all); total counts every event after SEQ, so a client pages on
// with after set to the last seq it got.
func (s *server) getXMPPTrace(w http.ResponseWriter, r *http.Request) (any, error) {
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return nil, err
	}
	limit, err := queryUint(r, "limit", 0)
	if err != nil {
		return nil, err
	}
	events := s.link.Trace(after)
	doc := traceDoc{Total: len(events), Events: []eventDoc{}}
	if limit > 0 && uint64(len(events)) > limit {
		events = events[:limit]
	}
	for _, e := range events {
		step := e.StepName
		if step == "" {
			step = e.Step.String()
		}
		doc.Events = append(doc.Events, eventDoc{
			Seq: e.Seq, Attempt: e.Attempt, Step: step, Target: e.Target,
			Start: e.Start.UTC().Format(time.RFC3339Nano), DurationMs: durationMs(e),
			Outcome: string(e.Outcome), Cause: e.Cause, Detail: e.Detail, Remedy: e.Remedy,
		})
	}
	return doc, nil
}

func durationMs(e linkstate.Event) float64 {
	if e.Millis != 0 || e.Duration == 0 {
		return e.Millis
	}
	return float64(e.Duration.Microseconds()) / 1000
}

func seconds(d time.Duration) int64 { return max(int64(d/time.Second), 0) }

// stamp formats t as RFC 3339 in UTC, or "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
