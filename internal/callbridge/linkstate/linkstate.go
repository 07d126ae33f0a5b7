// Package linkstate holds the observable state of a Call Bridge's link to its XMPP server:
// the steps of the signalling flow (docs/signalling.md), the events each attempt emits, the
// CMS-style alarm, and a bounded trace. It is data only, so that the link itself, the REST
// API, the web admin and `confab diagnose` can share it without importing each other.
package linkstate

import (
	"sync"
	"time"
)

// Step is one step of the signalling flow (numbered as in docs/signalling.md).
type Step int

// The steps of the flow. Step 1 (a login needs an active link) and step 12 (the XMPP server
// uses the link for logins) are seen from the XMPP server and the login relay.
const (
	StepConfig    Step = 2  // read uniqueName, domain, serverAddressOverride, sharedSecret
	StepOverride  Step = 3  // serverAddressOverride set: host and port (5223 by default)
	StepSRV       Step = 4  // SRV _xmpp-component._tcp.<domain>, RFC 2782 order
	StepResolve   Step = 5  // A/AAAA of the target
	StepConnect   Step = 6  // TCP connect
	StepTLS       Step = 7  // TLS handshake, chain verified against the trust store
	StepSAN       Step = 8  // certificate carries the XMPP domain and the server FQDN
	StepHandshake Step = 9  // XEP-0114 stream + handshake with unique name and secret
	StepVerdict   Step = 10 // the server's answer: <handshake/> or a stream error
	StepActive    Step = 11 // link active, kept alive
	StepLogin     Step = 12 // a login request relayed over the link
)

// Steps lists the steps in flow order.
var Steps = []Step{StepConfig, StepOverride, StepSRV, StepResolve, StepConnect, StepTLS, StepSAN, StepHandshake, StepVerdict, StepActive, StepLogin}

// String returns the step's short name, as used in logs, metrics and the API.
func (s Step) String() string {
	switch s {
	case StepConfig:
		return "config"
	case StepOverride:
		return "override"
	case StepSRV:
		return "srv"
	case StepResolve:
		return "resolve"
	case StepConnect:
		return "connect"
	case StepTLS:
		return "tls"
	case StepSAN:
		return "san"
	case StepHandshake:
		return "handshake"
	case StepVerdict:
		return "verdict"
	case StepActive:
		return "active"
	case StepLogin:
		return "login"
	}
	return "unknown"
}

// Title is the step as docs/signalling.md describes it, for tables and the ladder diagram.
func (s Step) Title() string {
	switch s {
	case StepConfig:
		return "Read XMPP settings (unique name, domain, server address, secret)"
	case StepOverride:
		return "Server address set: use it, port 5223 unless given"
	case StepSRV:
		return "SRV lookup _xmpp-component._tcp.<domain>"
	case StepResolve:
		return "Resolve the target's A/AAAA"
	case StepConnect:
		return "TCP connect to address and port"
	case StepTLS:
		return "TLS handshake, certificates exchanged and verified"
	case StepSAN:
		return "Certificate SANs carry the XMPP domain and the server FQDN"
	case StepHandshake:
		return "Register: component stream and handshake (unique name + secret)"
	case StepVerdict:
		return "XMPP server validates name and secret"
	case StepActive:
		return "Link active"
	case StepLogin:
		return "XMPP server uses the link for a login request"
	}
	return "unknown step"
}

// Outcome is how a step ended.
type Outcome string

// Outcomes.
const (
	OK      Outcome = "ok"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped" // not needed on this path (e.g. SRV when an override is set)
)

// Failure reasons, as CMS names them in the xmppRegistrationFailure alarm.
const (
	ReasonDNS            = "dnsFailure"
	ReasonConnect        = "connectFailure"
	ReasonAuthentication = "authenticationFailure"
	// ReasonConfiguration is Confab's own: the settings are incomplete (CMS shows no alarm
	// reason for it; an administrator needs to know what is missing).
	ReasonConfiguration = "configurationIncomplete"
	// ReasonDuplicateName is Confab's own: the XMPP server refused the link, or took it
	// away, because another Call Bridge with this name is connected (<conflict/>).
	ReasonDuplicateName = "duplicateName"
)

// Event is what one step of one attempt did.
type Event struct {
	Seq      uint64 `json:"seq" xml:"seq,attr"`
	Attempt  uint64 `json:"attempt" xml:"attempt,attr"`
	Step     Step   `json:"-" xml:"-"`
	StepName string `json:"step" xml:"step"`
	Target   string `json:"target,omitempty" xml:"target,omitempty"`
	// Server is the XMPP server (host:port, from the override or an SRV target) that steps
	// 5 to 11 were run against, so that an attempt that tried several SRV targets can be
	// read one server at a time. Empty for the other steps.
	Server   string        `json:"server,omitempty" xml:"server,omitempty"`
	Start    time.Time     `json:"start" xml:"start"`
	Duration time.Duration `json:"-" xml:"-"`
	Millis   float64       `json:"durationMs" xml:"durationMs"`
	Outcome  Outcome       `json:"outcome" xml:"outcome"`
	// Cause classifies a failure (e.g. "nxdomain", "connection-refused", "unknown-authority",
	// "missing-san", "not-authorized").
	Cause string `json:"cause,omitempty" xml:"cause,omitempty"`
	// Detail says what was looked up, what came back or what was checked.
	Detail string `json:"detail,omitempty" xml:"detail,omitempty"`
	// Remedy is the likely fix for a failure, in words an administrator can act on.
	Remedy string `json:"remedy,omitempty" xml:"remedy,omitempty"`
}

// Alarm is the CMS xmppRegistrationFailure alarm.
type Alarm struct {
	ID            string    `json:"id" xml:"id,attr"`
	Type          string    `json:"type" xml:"type"` // "xmppRegistrationFailure"
	FailureReason string    `json:"failureReason" xml:"failureReason"`
	TLSCause      string    `json:"tlsFailureCause,omitempty" xml:"tlsFailureCause,omitempty"`
	Detail        string    `json:"detail,omitempty" xml:"detail,omitempty"`
	ActiveSince   time.Time `json:"activeTimeSeconds" xml:"-"`
}

// State is the link's state.
type State string

// Link states.
const (
	Disabled    State = "disabled"    // settings incomplete
	Connecting  State = "connecting"  // an attempt is in progress
	Registered  State = "registered"  // active link
	Backoff     State = "backoff"     // waiting before the next attempt
	Unavailable State = "unavailable" // stopped
)

// Status is a snapshot of the link.
type Status struct {
	State        State     `json:"state"`
	ComponentJID string    `json:"componentJid,omitempty"`
	Server       string    `json:"server,omitempty"`  // host:port the link is (or was last) connected to
	Address      string    `json:"address,omitempty"` // resolved IP:port
	Since        time.Time `json:"since"`
	Attempt      uint64    `json:"attempt"`
	NextAttempt  time.Time `json:"nextAttempt,omitempty"`
	LastError    string    `json:"lastError,omitempty"`
	Alarm        *Alarm    `json:"alarm,omitempty"`
}

// Trace is a bounded, concurrency-safe ring of events. The zero value holds 512 events.
type Trace struct {
	mu     sync.Mutex
	events []Event
	next   uint64
	Max    int
}

// Add records e, assigning its sequence number and derived fields, and returns it.
func (t *Trace) Add(e Event) Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	e.Seq = t.next
	e.StepName = e.Step.String()
	e.Millis = float64(e.Duration.Microseconds()) / 1000
	max := t.Max
	if max <= 0 {
		max = 512
	}
	if len(t.events) >= max {
		copy(t.events, t.events[1:])
		t.events = t.events[:len(t.events)-1]
	}
	t.events = append(t.events, e)
	return e
}

// Events returns the events with a sequence number above after, oldest first.
func (t *Trace) Events(after uint64) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Event
	for _, e := range t.events {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out
}

// Last returns the most recent event of each step, for the signal-flow diagram.
func (t *Trace) Last() map[Step]Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[Step]Event)
	for _, e := range t.events {
		m[e.Step] = e
	}
	return m
}
