// Package diagnose runs the Call Bridge's signalling flow once, step by step, and reports
// what each step looked up, what came back and what was checked, with the likely cause and
// the remedy of a failure: the engine of `confab diagnose`.
//
// It runs the very function the Call Bridge's link runs (link.Attempt), so a diagnosis can
// never disagree with what the link does. After a successful registration it sends one
// XEP-0199 ping over the link (step 11) and closes it.
package diagnose

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// Settings are the Call Bridge's XMPP settings and how to reach the XMPP server.
type Settings struct {
	// XMPPSettings holds uniqueName, domain, serverAddressOverride and sharedSecret.
	store.XMPPSettings
	// Resolver looks up SRV and A/AAAA records: the system resolver (nil) or one for a
	// configured DNS server (discover.NewResolver).
	Resolver *net.Resolver
	// RootCAs verify the XMPP server's chain; nil means the system roots.
	RootCAs *x509.CertPool
	// ClientCert is presented when the XMPP server asks for one (mutual TLS).
	ClientCert *tls.Certificate
	// Timeouts of each lookup, TCP connect, TLS handshake and XEP-0114 negotiation (and of
	// the ping); zero takes link's defaults.
	DNSTimeout, ConnectTimeout, TLSTimeout, HandshakeTimeout time.Duration
	// NoRegister stops after step 8 (the certificate's names), so that a Call Bridge
	// already connected under this name keeps its link: registering replaces it, or is
	// refused, depending on the XMPP server's duplicate policy.
	NoRegister bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Results of a row.
const (
	Pass = "PASS"
	Fail = "FAIL"
	Skip = "SKIP"
)

// Row is one line of the report: one step, for one target.
type Row struct {
	Step       linkstate.Step `json:"-"`
	Number     int            `json:"step"`
	Name       string         `json:"name"`
	Title      string         `json:"title"`
	Target     string         `json:"target,omitempty"`
	Result     string         `json:"result"` // PASS, FAIL or SKIP
	DurationMs float64        `json:"durationMs"`
	// Detail is what was looked up, what came back, what was checked.
	Detail string `json:"detail,omitempty"`
	// Cause classifies a failure; Remedy is the likely fix.
	Cause  string `json:"cause,omitempty"`
	Remedy string `json:"remedy,omitempty"`
}

// Failure is why the diagnosis failed, as the alarm would classify it.
type Failure struct {
	Step          int    `json:"step"`
	Name          string `json:"name"`
	FailureReason string `json:"failureReason"` // dnsFailure, connectFailure, authenticationFailure, configurationIncomplete
	Cause         string `json:"cause"`
	TLSCause      string `json:"tlsFailureCause,omitempty"`
	Target        string `json:"target,omitempty"`
	Detail        string `json:"detail"`
	Remedy        string `json:"remedy,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	ComponentJID          string    `json:"componentJid,omitempty"`
	Domain                string    `json:"domain,omitempty"`
	ServerAddressOverride string    `json:"serverAddressOverride,omitempty"`
	Started               time.Time `json:"started"`
	DurationMs            float64   `json:"durationMs"`
	// Server and Address are the target and the address the diagnosis got through to.
	Server  string `json:"server,omitempty"`
	Address string `json:"address,omitempty"`
	// Rows are the steps in the order they ran, then the steps never reached.
	Rows []Row `json:"steps"`
	// Failure is nil when every step needed passed.
	Failure *Failure `json:"failure,omitempty"`
	// Notes are things the reader should know that are not a step's result.
	Notes []string `json:"notes,omitempty"`
}

// Passed reports whether the Call Bridge could register (or, with NoRegister, reach the
// point of registering).
func (r Report) Passed() bool { return r.Failure == nil }

// Run runs steps 2 to 10 of the signalling flow once, then step 11 (one ping over the new
// link, which it then closes) unless NoRegister is set. It never returns an error: every
// failure is in the report.
func Run(ctx context.Context, s Settings) Report {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	started := time.Now()
	r := Report{
		Domain:                strings.TrimSpace(s.Domain),
		ServerAddressOverride: strings.TrimSpace(s.ServerAddressOverride),
		Started:               now(),
	}
	if len(link.Missing(s.XMPPSettings)) == 0 {
		r.ComponentJID = link.ComponentJID(s.XMPPSettings)
	}
	var events []linkstate.Event
	reg, err := link.Attempt(ctx, s.XMPPSettings, link.AttemptOptions{
		Resolver: s.Resolver, RootCAs: s.RootCAs, ClientCert: s.ClientCert,
		DNSTimeout: s.DNSTimeout, ConnectTimeout: s.ConnectTimeout, TLSTimeout: s.TLSTimeout, HandshakeTimeout: s.HandshakeTimeout,
		Now: now, NoRegister: s.NoRegister, Probe: true,
		Emit: func(e linkstate.Event) { events = append(events, e) },
	})
	if err != nil {
		var f *link.Failure
		if !errors.As(err, &f) {
			f = &link.Failure{Step: linkstate.StepConfig, Reason: linkstate.ReasonConnect, Cause: "error", Detail: err.Error()}
		}
		r.Failure = &Failure{
			Step: int(f.Step), Name: f.Step.String(), FailureReason: f.Reason, Cause: f.Cause, TLSCause: f.TLSCause,
			Target: f.Target, Detail: f.Detail, Remedy: f.Remedy,
		}
		if f.Reason == linkstate.ReasonDuplicateName {
			r.Notes = append(r.Notes, "the name is in use: a Call Bridge is connected under it (most likely this one's own live link, when diagnose runs beside it). The test did not disturb it. A Confab XMPP server checks the shared secret before it refuses a name in use, so the secret is right; steps 10 and 11 were not completed")
		}
	} else {
		r.Server, r.Address = reg.Server(), reg.Address.String()
		if reg.Conn == nil {
			events = append(events, linkstate.Event{Step: linkstate.StepActive, Target: reg.Server(), Outcome: linkstate.Skipped, Start: now(),
				Detail: "not run: asked to stop before registering"})
			r.Notes = append(r.Notes, "registration was not tried: steps 9 to 11 are unchecked")
		} else {
			e := ping(ctx, reg, s, now)
			events = append(events, e)
			if e.Outcome == linkstate.Failed {
				r.Failure = &Failure{Step: int(e.Step), Name: e.Step.String(), FailureReason: linkstate.ReasonConnect, Cause: e.Cause,
					Target: e.Target, Detail: e.Detail, Remedy: e.Remedy}
			}
			r.Notes = append(r.Notes, fmt.Sprintf("this test registered as %s as a probe: no Call Bridge was connected under that name (a Confab XMPP server refuses a probe for a connected name rather than replace the live link; another server may replace it, and the live link then reconnects by itself; stop before registering to avoid this)", reg.Conn.JID()))
		}
	}
	r.Rows = rows(events, r.Failure)
	r.DurationMs = float64(time.Since(started).Microseconds()) / 1000
	return r
}

// ping runs step 11 on a fresh registration: one XEP-0199 ping to the XMPP server's domain,
// whose answer (a result, or an error from a server without XEP-0199) proves the link
// carries stanzas both ways. It closes the link.
func ping(ctx context.Context, reg *link.Registration, s Settings, now func() time.Time) linkstate.Event {
	c := reg.Conn
	defer c.Close("", "")
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = link.DefaultHandshakeTimeout
	}
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s.Domain), "."))
	e := linkstate.Event{Step: linkstate.StepActive, Target: reg.Server(), Server: reg.Server(), Start: now()}
	start := time.Now()
	id := "confab-diagnose-" + strconv.FormatInt(start.UnixNano(), 36)
	err := exchangePing(ctx, c, id, domain, timeout)
	e.Duration = time.Since(start)
	if err != nil {
		e.Outcome = linkstate.Failed
		e.Cause = "no-answer"
		e.Detail = fmt.Sprintf("registered as %s, but a ping to %s got no answer: %v", c.JID(), domain, err)
		e.Remedy = "the XMPP server accepted the registration but does not route stanzas back; check its log"
		return e
	}
	e.Outcome = linkstate.OK
	e.Detail = fmt.Sprintf("registered as %s on %s (%s); XEP-0199 ping to %s answered in %s; test link closed",
		c.JID(), reg.Server(), reg.Address, domain, e.Duration.Round(10*time.Microsecond))
	return e
}

func exchangePing(ctx context.Context, c *component.Conn, id, to string, timeout time.Duration) error {
	req := `<iq type="get" id="` + stream.Escape(id) + `" from="` + stream.Escape(c.JID()) + `" to="` + stream.Escape(to) +
		`"><ping xmlns="` + link.NSPing + `"/></iq>`
	if err := c.Write([]byte(req)); err != nil {
		return err
	}
	c.SetIdleTimeout(timeout)
	stop := context.AfterFunc(ctx, func() { _ = c.Close("", "") })
	defer stop()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		e, err := c.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if se, ok := component.RemoteError(e); ok {
			return fmt.Errorf("the server closed the link: %w", se)
		}
		if e.Name.Local == "iq" && e.Get("id") == id {
			if t := e.Get("type"); t == "result" || t == "error" {
				return nil
			}
		}
	}
	return fmt.Errorf("no answer within %s", timeout)
}

// rows turns the events into rows and adds a SKIP row for each step never reached.
func rows(events []linkstate.Event, f *Failure) []Row {
	var out []Row
	last := linkstate.Step(0)
	for _, e := range events {
		out = append(out, Row{
			Step: e.Step, Number: int(e.Step), Name: e.Step.String(), Title: e.Step.Title(), Target: e.Target,
			Result: result(e.Outcome), DurationMs: float64(e.Duration.Microseconds()) / 1000,
			Detail: e.Detail, Cause: e.Cause, Remedy: e.Remedy,
		})
		last = max(last, e.Step)
	}
	for _, s := range linkstate.Steps {
		if s <= last || s == linkstate.StepLogin {
			continue
		}
		why := "not reached"
		if f != nil {
			why = fmt.Sprintf("not reached: step %d failed", f.Step)
		}
		out = append(out, Row{Step: s, Number: int(s), Name: s.String(), Title: s.Title(), Result: Skip, Detail: why})
	}
	return out
}

func result(o linkstate.Outcome) string {
	switch o {
	case linkstate.OK:
		return Pass
	case linkstate.Failed:
		return Fail
	}
	return Skip
}
