// Package link is the Call Bridge's link to its XMPP server: steps 2 to 11 of the signalling
// flow in docs/signalling.md. A Link reads the four XMPP settings (uniqueName, domain,
// serverAddressOverride, sharedSecret), finds the XMPP server (the override, else DNS SRV
// _xmpp-component._tcp.<domain>), connects over TLS on the component port, checks that the
// server's certificate names both the XMPP domain and the server, registers as the
// component <uniqueName>.<domain> [XEP-0114], and then keeps exactly one link alive with
// XEP-0199 pings, reconnecting with capped, jittered exponential backoff when it is lost.
//
// Every step of every attempt is an observable linkstate.Event: it goes to the Link's trace
// (for the API, the web admin and `confab diagnose`), to slog, and to Prometheus. Failures
// raise the CMS alarm xmppRegistrationFailure, classified as dnsFailure, connectFailure
// (with the TLS cause) or authenticationFailure; registration clears it.
//
// One function, Attempt, runs the steps of a single attempt; the Link and package diagnose
// both call it.
//
// # Goroutines
//
// Run owns every goroutine the Link starts and returns only after they have ended: while a
// link is active, a reader (which answers the server's pings and queues the rest), a
// dispatcher (which calls Options.Handler, in order), and a pinger.
package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// Defaults for the zero fields of Options.
const (
	DefaultKeepAlive  = 30 * time.Second
	DefaultMissed     = 3
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
)

// Options configure a Link. The zero value is usable: system resolver and trust store,
// default timeouts, no handler (IQ requests are answered service-unavailable), logs
// discarded, metrics unregistered.
type Options struct {
	// Resolver looks up SRV and A/AAAA records: the system resolver (nil) or one for a
	// configured DNS server (discover.NewResolver).
	Resolver *net.Resolver
	// RootCAs verify the XMPP server's certificate chain; nil means the system roots.
	RootCAs *x509.CertPool
	// ClientCert is presented when the XMPP server asks for one (mutual TLS).
	ClientCert *tls.Certificate
	// DNSTimeout bounds each lookup (5s), ConnectTimeout each TCP connect (10s), TLSTimeout
	// each TLS handshake (10s), HandshakeTimeout each XEP-0114 negotiation (10s).
	DNSTimeout, ConnectTimeout, TLSTimeout, HandshakeTimeout time.Duration
	// KeepAlive is the interval of XEP-0199 pings on an active link (30s). The peer is
	// declared dead when nothing at all arrives for Missed (3) intervals.
	KeepAlive time.Duration
	Missed    int
	// BackoffMin and BackoffMax bound the wait between failed attempts (1s, 1m). The wait
	// doubles with each failure, is jittered between half and all of its value, and resets
	// once a link has stayed up for BackoffMax.
	//
	// One exception keeps a restart of the XMPP server short: when the server ends a link
	// with <system-shutdown/> or the connection drops, the server is most likely restarting,
	// so for the next BackoffMax the Link retries every BackoffMin/4 to BackoffMin/2 while
	// nothing accepts connections at the server's address, and is back within about half a
	// BackoffMin of the server. Any other failure in that window (DNS, TLS, authentication),
	// or the window's end, returns to the exponential backoff. A link that flaps (lost again
	// within BackoffMin of coming up, in the BackoffMax after a window opened) opens no new
	// window; nor does one the server closed with another stream error, such as <conflict/>.
	BackoffMin, BackoffMax time.Duration
	// Limits bound the stanzas the XMPP server may send (512 KiB by default).
	Limits stream.Limits
	// Handler receives every element from the server other than the pings the Link answers
	// itself and its own ping answers: login relay IQs, later meeting traffic. It is called
	// from one goroutine, in the order the elements arrived; a handler that blocks delays the
	// elements behind it (not the keepalive), so hand long work to a goroutine. The context
	// ends when the link does. Nil answers IQ get/set requests with service-unavailable and
	// drops the rest.
	Handler func(ctx context.Context, c *component.Conn, e *stream.Element)
	// Logger receives one record per step and per change of state (default: discarded).
	Logger *slog.Logger
	// Metrics registers confab_callbridge_link_* (default: not registered).
	Metrics prometheus.Registerer
	// Now is the clock for timestamps (default time.Now). Timers use the real clock.
	Now func() time.Time
	// TraceSize is how many events the trace keeps (default 512).
	TraceSize int
}

// Link is a Call Bridge's link to its XMPP server. Its methods are safe for concurrent use.
type Link struct {
	o       Options
	log     *slog.Logger
	m       *metrics
	trace   linkstate.Trace
	running atomic.Bool
	applied chan struct{} // a token when Apply changed the settings

	mu      sync.Mutex
	cfg     store.XMPPSettings
	gen     uint64 // incremented by every Apply that changes cfg or asks for a retry
	status  linkstate.Status
	alarm   *linkstate.Alarm
	conn    *component.Conn
	changed chan struct{} // closed and replaced at every change
	// known is the domain of the last registration, for the advice on a mistyped domain.
	known string
}

// New returns a Link for cfg. It does nothing until Run.
func New(cfg store.XMPPSettings, o Options) *Link {
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.Missed <= 0 {
		o.Missed = DefaultMissed
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Link{
		o:       o,
		log:     o.Logger.With("component", "xmpp-link"),
		m:       newMetrics(o.Metrics),
		applied: make(chan struct{}, 1),
		cfg:     cfg,
		changed: make(chan struct{}),
	}
	l.trace.Max = o.TraceSize
	l.status = linkstate.Status{State: linkstate.Unavailable, ComponentJID: componentJIDOf(cfg), Since: o.Now()}
	return l
}

func componentJIDOf(cfg store.XMPPSettings) string {
	if len(Missing(cfg)) > 0 && (cfg.UniqueName == "" || cfg.Domain == "") {
		return ""
	}
	return ComponentJID(cfg)
}

// Status returns a snapshot of the link's state.
func (l *Link) Status() linkstate.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	if l.alarm != nil {
		a := *l.alarm
		s.Alarm = &a
	}
	return s
}

// Alarms returns the active alarms: none, or the xmppRegistrationFailure alarm.
func (l *Link) Alarms() []linkstate.Alarm {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.alarm == nil {
		return nil
	}
	return []linkstate.Alarm{*l.alarm}
}

// Trace returns the events with a sequence number above after, oldest first.
func (l *Link) Trace(after uint64) []linkstate.Event { return l.trace.Events(after) }

// LastEvents returns the latest event of each step, for the signal-flow diagram.
func (l *Link) LastEvents() map[linkstate.Step]linkstate.Event { return l.trace.Last() }

// Conn returns the active link, or nil.
func (l *Link) Conn() *component.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn
}

// Config returns the settings in use.
func (l *Link) Config() store.XMPPSettings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Changes returns a channel that is closed at the next change: an event, a change of state,
// an alarm raised or cleared. Call it again after it fires; several watchers may wait at
// once. To miss nothing, take the channel before reading the state it announces changes of.
func (l *Link) Changes() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// notify wakes the watchers; l.mu must be held.
func (l *Link) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Apply makes new settings take effect at once: the active link (or the attempt in
// progress, or the wait before the next one) is dropped and a new attempt starts
// immediately, without backoff. Applying the settings already in use cuts a backoff wait
// short (retry now) and otherwise changes nothing.
func (l *Link) Apply(cfg store.XMPPSettings) {
	l.mu.Lock()
	same := sameConfig(cfg, l.cfg)
	if same && l.status.State != linkstate.Backoff {
		l.mu.Unlock()
		return
	}
	l.cfg = cfg
	l.gen++
	l.notifyLocked()
	l.mu.Unlock()
	if same {
		l.log.Info("xmpp link: retry asked")
	} else {
		l.log.Info("xmpp link: new settings", "uniqueName", cfg.UniqueName, "domain", cfg.Domain,
			"serverAddressOverride", cfg.ServerAddressOverride, "sharedSecret", cfg.SharedSecret)
	}
	select {
	case l.applied <- struct{}{}:
	default: // a token is already waiting
	}
}

func sameConfig(a, b store.XMPPSettings) bool {
	return a.UniqueName == b.UniqueName && a.Domain == b.Domain &&
		a.ServerAddressOverride == b.ServerAddressOverride && a.SharedSecret.Reveal() == b.SharedSecret.Reveal()
}

// ErrRunning is returned by Run when the Link is already running.
var ErrRunning = errors.New("xmpp link: already running")

// errApplied cancels an attempt or a link when the settings change.
var errApplied = errors.New("the XMPP settings changed")

// Run connects, registers, keeps the link alive and reconnects with backoff until ctx ends;
// then it closes the link, waits for its goroutines and returns nil. While the settings
// are incomplete it raises the alarm and waits for Apply.
func (l *Link) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer l.running.Store(false)
	defer func() {
		l.setState(linkstate.Unavailable, func(s *linkstate.Status) { s.NextAttempt = time.Time{} })
		l.m.up.Set(0)
	}()

	failures := 0 // consecutive attempts without a stable link
	// Until restarting, after a link that was up was lost, a server that does not accept
	// connections is retried quickly (see Options.BackoffMin); opened is when that window
	// last opened.
	var restarting, opened time.Time
	for ctx.Err() == nil {
		l.mu.Lock()
		cfg, gen := l.cfg, l.gen
		l.mu.Unlock()

		if missing := Missing(cfg); len(missing) > 0 {
			l.disabled(cfg)
			if !l.waitApply(ctx, gen, nil) {
				break
			}
			failures = 0
			continue
		}

		actx, cancel := context.WithCancelCause(ctx)
		stopWatch := l.watchApply(actx, gen, cancel)
		reg, err := l.attempt(actx, cfg)
		stable, lost := false, false
		if err == nil {
			start := time.Now()
			why := l.serve(actx, reg, domainOf(cfg))
			up := time.Since(start)
			stable = up >= l.o.BackoffMax
			lost = serverGone(why) && (up >= l.o.BackoffMin || time.Since(opened) >= l.o.BackoffMax)
		}
		stopWatch()
		cancel(nil)
		if ctx.Err() != nil {
			break
		}
		l.mu.Lock()
		reapplied := l.gen != gen
		l.mu.Unlock()
		if reapplied {
			failures = 0
			continue // new settings: try them at once
		}
		var f *Failure
		if errors.As(err, &f) && f.Reason == linkstate.ReasonConfiguration {
			// Settings that cannot work will not start working by themselves.
			l.setState(linkstate.Disabled, nil)
			if !l.waitApply(ctx, gen, nil) {
				break
			}
			failures = 0
			continue
		}
		if stable {
			failures = 0
		}
		if lost {
			opened = time.Now()
			restarting = opened.Add(l.o.BackoffMax)
		}
		var delay time.Duration
		if (lost || notListening(err)) && time.Now().Before(restarting) {
			delay = l.restartDelay() // not counted: the exponential backoff resumes where it was
		} else {
			restarting = time.Time{}
			failures++
			delay = l.backoff(failures)
		}
		next := time.Now().Add(delay)
		l.setState(linkstate.Backoff, func(s *linkstate.Status) { s.NextAttempt = l.o.Now().Add(delay) })
		l.log.Info("xmpp link: next attempt", "in", delay.Round(time.Millisecond), "failures", failures,
			"serverRestarting", !restarting.IsZero())
		if !l.waitApply(ctx, gen, &next) {
			break
		}
		l.mu.Lock()
		if l.gen != gen {
			failures = 0
		}
		l.mu.Unlock()
	}
	return nil
}

// backoff returns the wait after n consecutive failures: BackoffMin doubled n-1 times, capped
// at BackoffMax, then jittered to between half and all of it so that Call Bridges that lost
// the same server do not return in step.
func (l *Link) backoff(n int) time.Duration {
	d := l.o.BackoffMin
	for i := 1; i < n && d < l.o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, l.o.BackoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

// restartDelay returns the wait between attempts while the XMPP server restarts: between a
// quarter and a half of BackoffMin.
func (l *Link) restartDelay() time.Duration {
	d := l.o.BackoffMin / 2
	quarter := d / 2
	return quarter + rand.N(d-quarter+1)
}

// notListening reports whether an attempt failed because nothing accepted the TCP connection
// (refused, unreachable, timed out): what a restarting server looks like.
func notListening(err error) bool {
	var f *Failure
	return errors.As(err, &f) && f.Step == linkstate.StepConnect
}

// serverGone reports whether a link ended the way a restarting or failed server ends it: with
// <system-shutdown/>, or with the connection dropped or gone silent. Other stream errors
// are a decision of a running server (two Call Bridges with one name take the link from
// each other with <conflict/>), which a quick retry would only repeat.
func serverGone(why error) bool {
	var rc *remoteClosed
	if errors.As(why, &rc) {
		return rc.se.Condition == stream.SystemShutdown
	}
	return why != nil && !errors.Is(why, errApplied) && !errors.Is(why, context.Canceled)
}

// waitApply waits for an Apply after generation gen, for until (if not nil), or for ctx. It
// reports false when ctx ended.
func (l *Link) waitApply(ctx context.Context, gen uint64, until *time.Time) bool {
	var timeout <-chan time.Time
	if until != nil {
		t := time.NewTimer(time.Until(*until))
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timeout:
			return true
		case <-l.applied:
			l.mu.Lock()
			newer := l.gen != gen
			l.mu.Unlock()
			if newer {
				return true
			}
		}
	}
}

// watchApply cancels ctx when Apply moves past generation gen. The returned function stops
// watching and waits for the watcher to end.
func (l *Link) watchApply(ctx context.Context, gen uint64, cancel context.CancelCauseFunc) func() {
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-l.applied:
				l.mu.Lock()
				newer := l.gen != gen
				l.mu.Unlock()
				if newer {
					// Put the token back for the loop, then cut the attempt short.
					select {
					case l.applied <- struct{}{}:
					default:
					}
					cancel(errApplied)
					return
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// disabled records that the settings are incomplete.
func (l *Link) disabled(cfg store.XMPPSettings) {
	a := &attempt{o: AttemptOptions{Now: l.o.Now}.withDefaults(), cfg: cfg}
	f := a.checkConfig()
	n := l.nextAttempt()
	l.record(n, linkstate.Event{Step: linkstate.StepConfig, Outcome: linkstate.Failed, Start: l.o.Now(),
		Cause: f.Cause, Detail: f.Detail, Remedy: f.Remedy})
	l.raise(f)
	l.setState(linkstate.Disabled, func(s *linkstate.Status) {
		s.ComponentJID = componentJIDOf(cfg)
		s.LastError = f.Error()
		s.NextAttempt = time.Time{}
	})
}

func (l *Link) nextAttempt() uint64 {
	l.m.attempts.Inc()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status.Attempt++
	return l.status.Attempt
}

// attempt runs one attempt and records its events, its alarm and the state.
func (l *Link) attempt(ctx context.Context, cfg store.XMPPSettings) (*Registration, error) {
	n := l.nextAttempt()
	l.setState(linkstate.Connecting, func(s *linkstate.Status) {
		s.NextAttempt = time.Time{}
		s.ComponentJID = componentJIDOf(cfg)
	})
	var known []string
	l.mu.Lock()
	if l.known != "" {
		known = []string{l.known}
	}
	l.mu.Unlock()
	reg, err := Attempt(ctx, cfg, AttemptOptions{
		KnownDomains: known,
		Resolver:     l.o.Resolver, RootCAs: l.o.RootCAs, ClientCert: l.o.ClientCert,
		DNSTimeout: l.o.DNSTimeout, ConnectTimeout: l.o.ConnectTimeout, TLSTimeout: l.o.TLSTimeout,
		HandshakeTimeout: l.o.HandshakeTimeout, Limits: l.o.Limits, Now: l.o.Now,
		Emit: func(e linkstate.Event) { l.record(n, e) },
	})
	if err != nil {
		var f *Failure
		if errors.As(err, &f) && f.Cause == "canceled" {
			l.log.Info("xmpp link: attempt abandoned", "attempt", n, "why", context.Cause(ctx))
			return nil, err
		}
		if f != nil {
			l.raise(f)
		}
		l.setState(linkstate.Connecting, func(s *linkstate.Status) { s.LastError = err.Error() })
		return nil, err
	}
	l.record(n, linkstate.Event{Step: linkstate.StepActive, Target: reg.Server(), Server: reg.Server(), Outcome: linkstate.OK, Start: l.o.Now(),
		Detail: fmt.Sprintf("registered as %s on %s (%s); XEP-0199 ping every %s, dead after %d missed",
			reg.Conn.JID(), reg.Server(), reg.Address, l.o.KeepAlive, l.o.Missed)})
	l.mu.Lock()
	l.conn = reg.Conn
	l.known = domainOf(cfg)
	l.mu.Unlock()
	l.clear()
	l.m.up.Set(1)
	l.setState(linkstate.Registered, func(s *linkstate.Status) {
		s.Server = reg.Server()
		s.Address = reg.Address.String()
		s.LastError = ""
	})
	return reg, nil
}

// Record adds an event that happens on the link but outside the Link's own steps, such as
// step 12 (a login the XMPP server relayed over the link), to the trace, the log and the
// metrics, numbered with the current attempt. Start defaults to now. It returns the event as
// recorded.
func (l *Link) Record(e linkstate.Event) linkstate.Event {
	if e.Start.IsZero() {
		e.Start = l.o.Now()
	}
	return l.record(l.currentAttempt(), e)
}

// record adds e to the trace, the log and the metrics.
func (l *Link) record(attempt uint64, e linkstate.Event) linkstate.Event {
	e.Attempt = attempt
	e = l.trace.Add(e)
	l.m.steps.WithLabelValues(e.StepName, string(e.Outcome)).Inc()
	attrs := []any{"step", int(e.Step), "name", e.StepName, "attempt", e.Attempt, "outcome", string(e.Outcome)}
	if e.Target != "" {
		attrs = append(attrs, "target", e.Target)
	}
	attrs = append(attrs, "duration", e.Duration.Round(time.Microsecond))
	if e.Cause != "" {
		attrs = append(attrs, "cause", e.Cause)
	}
	if e.Detail != "" {
		attrs = append(attrs, "detail", e.Detail)
	}
	if e.Remedy != "" {
		attrs = append(attrs, "remedy", e.Remedy)
	}
	level := slog.LevelInfo
	switch {
	case e.Step == linkstate.StepLogin:
		// One per login: the Call Bridge's login log line ("successful login request
		// from …") already says it at info; the trace and the metrics keep every one.
		level = slog.LevelDebug
	case e.Outcome == linkstate.Failed:
		level = slog.LevelWarn
	case e.Outcome == linkstate.Skipped:
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, "xmpp link step "+strconv.Itoa(int(e.Step))+" "+e.StepName+": "+string(e.Outcome), attrs...)
	l.mu.Lock()
	l.notifyLocked()
	l.mu.Unlock()
	return e
}

// raise raises (or updates) the alarm for f. The alarm keeps its ID and activation time
// while its failure reason stays the same.
func (l *Link) raise(f *Failure) {
	a := f.Alarm()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.alarm != nil && l.alarm.FailureReason == a.FailureReason {
		a.ID, a.ActiveSince = l.alarm.ID, l.alarm.ActiveSince
	} else {
		a.ID, a.ActiveSince = uuid.NewString(), l.o.Now()
		attrs := []any{"type", a.Type, "failureReason", a.FailureReason}
		if a.TLSCause != "" {
			attrs = append(attrs, "tlsCause", a.TLSCause)
		}
		l.log.Warn("alarm raised", append(attrs, "detail", a.Detail)...)
	}
	l.alarm = &a
	l.notifyLocked()
}

// clear clears the alarm.
func (l *Link) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.alarm == nil {
		return
	}
	l.log.Info("alarm cleared", "type", l.alarm.Type, "failureReason", l.alarm.FailureReason)
	l.alarm = nil
	l.notifyLocked()
}

// setState moves to state (Since changes only when the state does) and applies edit.
func (l *Link) setState(state linkstate.State, edit func(*linkstate.Status)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status.State != state {
		l.log.Debug("xmpp link state", "from", string(l.status.State), "to", string(state))
		l.status.State = state
		l.status.Since = l.o.Now()
	}
	if edit != nil {
		edit(&l.status)
	}
	l.notifyLocked()
}

// ErrDeadPeer is why a link whose peer went silent was closed.
var ErrDeadPeer = errors.New("no traffic from the XMPP server: keepalive pings unanswered")

// serve runs step 11 on reg until the link is lost or ctx ends, and returns why it ended.
// domain is the XMPP server's domain, to which pings go.
func (l *Link) serve(ctx context.Context, reg *Registration, domain string) error {
	c := reg.Conn
	c.SetIdleTimeout(time.Duration(l.o.Missed) * l.o.KeepAlive)
	n := l.currentAttempt()
	start := time.Now()

	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	queue := make(chan *stream.Element, 64)
	wg.Add(3)
	go func() { // reader
		defer wg.Done()
		defer close(queue)
		cancel(l.read(lctx, c, queue))
	}()
	go func() { // dispatcher
		defer wg.Done()
		l.dispatch(lctx, c, queue)
	}()
	go func() { // pinger
		defer wg.Done()
		if err := l.ping(lctx, c, domain); err != nil {
			cancel(err)
		}
	}()
	<-lctx.Done()
	why := context.Cause(lctx)
	// Closing unblocks the reader; a clean close says goodbye first.
	switch {
	case errors.Is(why, errApplied):
		_ = c.Close("", "")
	case ctx.Err() != nil:
		_ = c.Close(stream.SystemShutdown, "Call Bridge shutting down")
	case errors.Is(why, ErrDeadPeer):
		_ = c.Close(stream.ConnectionTimeout, "no answer to keepalive pings")
	default:
		_ = c.Close("", "")
	}
	wg.Wait()

	l.mu.Lock()
	l.conn = nil
	l.mu.Unlock()
	l.m.up.Set(0)
	up := time.Since(start)
	cause, detail, remedy := lossCause(why, l.o)
	ev := linkstate.Event{Step: linkstate.StepActive, Target: reg.Server(), Server: reg.Server(), Outcome: linkstate.Failed, Start: l.o.Now(),
		Duration: up, Cause: cause, Detail: fmt.Sprintf("link to %s (%s) ended after %s: %s", reg.Server(), reg.Address, up.Round(time.Millisecond), detail), Remedy: remedy}
	if errors.Is(why, errApplied) || ctx.Err() != nil {
		ev.Outcome = linkstate.Skipped // not a failure: we closed it
		ev.Remedy = ""
	}
	l.record(n, ev)
	if cause == stream.Conflict && ev.Outcome == linkstate.Failed {
		l.raise(&Failure{Step: linkstate.StepActive, Reason: linkstate.ReasonDuplicateName, Cause: cause,
			Target: reg.Server(), Detail: ev.Detail})
	}
	l.setState(linkstate.Connecting, func(s *linkstate.Status) {
		if ev.Outcome == linkstate.Failed {
			s.LastError = ev.Detail
		}
	})
	return why
}

func (l *Link) currentAttempt() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status.Attempt
}

// remoteClosed is a stream error the XMPP server sent on an active link.
type remoteClosed struct{ se *stream.Error }

func (r *remoteClosed) Error() string { return "the XMPP server closed the link: " + r.se.Error() }

func lossCause(why error, o Options) (cause, detail, remedy string) {
	var rc *remoteClosed
	var ne net.Error
	switch {
	case errors.Is(why, errApplied):
		return "settings-changed", "closed to apply new settings", ""
	case why == nil || errors.Is(why, context.Canceled):
		return "stopped", "the Call Bridge is stopping", ""
	case errors.As(why, &rc):
		cond := rc.se.Condition
		text := ""
		if rc.se.Text != "" {
			text = fmt.Sprintf(" (%q)", rc.se.Text)
		}
		switch cond {
		case stream.Conflict:
			return cond, "the XMPP server replaced this link with another connection under the same name (<conflict/>)" + text,
				"if another Call Bridge uses the same uniqueName, give each its own; two Call Bridges with one name take the link from each other"
		case stream.SystemShutdown:
			return cond, "the XMPP server is shutting down (<system-shutdown/>)" + text, "the link comes back when the XMPP server does"
		case stream.ConnectionTimeout:
			return cond, "the XMPP server timed the link out (<connection-timeout/>)" + text, "check the network between the Call Bridge and the XMPP server"
		}
		return cond, fmt.Sprintf("the XMPP server closed the link with <%s/>%s", cond, text), "check the XMPP server's log"
	case errors.Is(why, ErrDeadPeer), errors.As(why, &ne) && ne.Timeout():
		return "dead-peer", fmt.Sprintf("nothing received from the XMPP server for %s (%d keepalive intervals)", time.Duration(o.Missed)*o.KeepAlive, o.Missed),
			"check the network between the Call Bridge and the XMPP server, and that the XMPP server is running"
	case errors.Is(why, stream.ErrClosed):
		return "stream-closed", "the XMPP server closed the stream", "the XMPP server may have restarted or dropped the Call Bridge from its registry; check its log"
	}
	var se *stream.Error
	if errors.As(why, &se) {
		return "protocol-error", "the XMPP server broke the protocol: " + se.Error(), "check the XMPP server's version and log"
	}
	return "connection-lost", "the connection failed: " + why.Error(), "the XMPP server may have stopped or restarted, or the network failed"
}

// read reads elements until the link fails, answering pings and queueing the rest.
func (l *Link) read(ctx context.Context, c *component.Conn, queue chan<- *stream.Element) error {
	for {
		e, err := c.Next()
		if err != nil {
			var se *stream.Error
			switch {
			case ctx.Err() != nil:
				return nil // we closed it
			case errors.As(err, &se):
				_ = c.Close(se.Condition, se.Text)
			case isTimeout(err):
				return fmt.Errorf("%w: %w", ErrDeadPeer, err)
			}
			return err
		}
		if se, ok := component.RemoteError(e); ok {
			return &remoteClosed{se: se}
		}
		if e.Name.Local == "iq" && e.Name.Space == stream.NSComponent {
			if isPingResult(e) {
				continue
			}
			if isPingRequest(e) {
				if err := c.Write(stream.Result(e)); err != nil {
					return err
				}
				continue
			}
		}
		select {
		case queue <- e:
		case <-ctx.Done():
			return nil
		}
	}
}

// dispatch hands queued elements to the handler, in order.
func (l *Link) dispatch(ctx context.Context, c *component.Conn, queue <-chan *stream.Element) {
	for e := range queue {
		if ctx.Err() != nil {
			continue // drain: the link is going away
		}
		if l.o.Handler != nil {
			l.o.Handler(ctx, c, e)
			continue
		}
		if e.Name.Local == "iq" && (e.Get("type") == "get" || e.Get("type") == "set") {
			_ = c.Write(stream.ErrorReply(e, stream.StanzaError{Type: stream.ErrCancel, Condition: "service-unavailable"}))
		}
	}
}

// ping sends an XEP-0199 ping every KeepAlive; the reader's idle timeout detects a dead peer.
func (l *Link) ping(ctx context.Context, c *component.Conn, to string) error {
	t := time.NewTicker(l.o.KeepAlive)
	defer t.Stop()
	var seq uint64
	from := c.JID()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			seq++
			if err := c.Write(pingIQ(from, to, seq)); err != nil {
				return fmt.Errorf("keepalive ping: %w", err)
			}
		}
	}
}
