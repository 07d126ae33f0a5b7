package xmppd

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/throttle"
)

// Component handshake outcomes (besides the stream error conditions), as counted.
const (
	outcomeSuccess = "success"
	outcomeTLS     = "tls-error"
)

// pendingComponent is a component connection still in its TLS or XEP-0114 handshake.
type pendingComponent struct {
	nc     net.Conn
	cancel context.CancelFunc
}

func (p *pendingComponent) shutdown() { p.cancel() } // Accept answers system-shutdown
func (p *pendingComponent) kill()     { _ = p.nc.Close() }
func (p *pendingComponent) String() string {
	return "component handshake from " + p.nc.RemoteAddr().String()
}

// handleComponent runs one connection on the component port: TLS, the XEP-0114 handshake
// against the registry, then the link until it ends.
func (s *Server) handleComponent(nc net.Conn) {
	log := s.log.With("transport", "component", "remote", nc.RemoteAddr().String())
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	p := &pendingComponent{nc: nc, cancel: cancel}
	if !s.track(p) {
		_ = nc.Close()
		return
	}
	c, sec, err := s.acceptComponent(ctx, nc, log)
	s.untrack(p)
	if err != nil {
		return
	}
	l := &componentSession{
		srv:    s,
		c:      c,
		raw:    nc,
		name:   c.Name(),
		jid:    c.JID(),
		secret: sec,
		since:  time.Now(),
		done:   make(chan struct{}),
	}
	l.out.init()
	l.log = log.With("callbridge", l.name, "jid", l.jid)
	l.lastRead.start(s.mono)
	if !s.track(l) {
		_ = c.Close(stream.SystemShutdown, "the XMPP server is shutting down")
		return
	}
	defer s.untrack(l)
	l.run()
}

// acceptComponent runs TLS and the component handshake; on failure the connection is
// closed and counted.
func (s *Server) acceptComponent(ctx context.Context, nc net.Conn, log *slog.Logger) (*component.Conn, secret.Secret, error) {
	tc := tls.Server(nc, s.tlsComp)
	hctx, cancel := context.WithTimeoutCause(ctx, s.cfg.TLSTimeout, fmt.Errorf("tls handshake took longer than %s", s.cfg.TLSTimeout))
	err := tc.HandshakeContext(hctx)
	// The handshake's own error names what went wrong (an untrusted client certificate, a
	// protocol version); the context's cause only when the context ended it (the timeout,
	// shutdown). Read before cancel, which would make every cause 'context canceled'.
	if err != nil && hctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", context.Cause(hctx), err)
	}
	cancel()
	if err != nil {
		_ = nc.Close()
		s.m.handshakes.WithLabelValues(outcomeTLS).Inc()
		cause, detail := certs.ClassifyTLSError(err)
		log.Info("component tls handshake failed", "cause", cause, "detail", detail, "err", err)
		return nil, secret.Secret{}, err
	}
	var (
		mu        sync.Mutex
		sec       secret.Secret
		throttled bool
		claimed   string // the component JID the peer asked for
	)
	source := throttle.SourceKey(nc.RemoteAddr().String())
	c, err := component.Accept(ctx, tc, component.AcceptConfig{
		Domain: s.domain,
		Screen: func(string) error {
			wait := s.compFails.Blocked(source)
			if wait <= 0 {
				return nil
			}
			mu.Lock()
			throttled = true
			mu.Unlock()
			return &stream.Error{Condition: stream.PolicyViolation, Text: blockedText(wait, time.Now().Add(wait))}
		},
		// With DuplicateComponent reject (the default), or for a probe (confab diagnose),
		// a second link of a connected name is refused in answer to its handshake (step 10),
		// not after <handshake/>: its secret was right. Two handshakes of the same name at
		// the same instant can both pass this check; run then refuses the later.
		Admit: func(componentJID, name string, probe bool) error {
			if s.cfg.DuplicateComponent != Reject && !probe {
				return nil
			}
			if existing := s.router.component(componentJID); existing != nil {
				return existing.refuseDuplicate(nc.RemoteAddr().String(), probe)
			}
			return nil
		},
		Lookup: func(componentJID string) (string, secret.Secret, bool) {
			mu.Lock()
			claimed = componentJID
			mu.Unlock()
			name, ok := strings.CutSuffix(componentJID, "."+s.domain)
			if !ok || name == "" {
				return "", secret.Secret{}, false
			}
			v, ok := s.cfg.Registry.Lookup(name)
			mu.Lock()
			sec = v
			mu.Unlock()
			return name, v, ok
		},
		Limits:       stream.Limits{MaxStanza: s.cfg.MaxStanzaComponent},
		Timeout:      s.cfg.OpenTimeout,
		WriteTimeout: s.cfg.WriteTimeout,
	})
	var closed *component.ClosedError
	if errors.As(err, &closed) {
		// Nothing was sent: the peer hung up. After TLS and before any stream header, that
		// is a Call Bridge that rejected this server's certificate (its step 8), or
		// `confab diagnose -no-register`, or a health check: not a protocol error.
		s.m.handshakes.WithLabelValues(component.OutcomeClosed).Inc()
		attrs := []any{"outcome", component.OutcomeClosed, "err", err}
		if closed.HeaderRead {
			attrs = append(attrs, "jid", closed.JID)
		} else {
			attrs = append(attrs, "hint", "after TLS, before a stream header: a Call Bridge that rejected this server's certificate closes so (its step 8 says why), and so does confab diagnose -no-register")
		}
		log.Info("component connection closed by the peer before the handshake", attrs...)
		return nil, secret.Secret{}, err
	}
	if err != nil {
		outcome := "error"
		var se *stream.Error
		if errors.As(err, &se) {
			outcome = se.Condition
			s.m.streamErrs.WithLabelValues(se.Condition).Inc()
		}
		// Counted before the metric, so that a test that sees the metric sees the count.
		mu.Lock()
		wasThrottled, jid := throttled, claimed
		mu.Unlock()
		var block time.Duration
		if !wasThrottled && (outcome == stream.NotAuthorized || outcome == stream.HostUnknown) {
			block = s.compFails.Fail(source)
		}
		s.m.handshakes.WithLabelValues(outcome).Inc()
		attrs := []any{"outcome", outcome, "err", err}
		if jid != "" {
			// Which Call Bridge: the name it claimed (for a wrong secret, the one whose
			// administrator must fix it).
			name, _ := strings.CutSuffix(jid, "."+s.domain)
			attrs = append(attrs, "callbridge", name, "jid", jid)
		}
		if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
			attrs = append(attrs, "client_cert", cs.PeerCertificates[0].Subject.String())
		}
		log.Info("component handshake failed", attrs...)
		if jid != "" {
			s.noteSource(source, strings.TrimSuffix(jid, "."+s.domain))
		}
		if block > 0 {
			until := time.Now().Add(block)
			log.Warn("ALARM: too many failed component handshakes from this address; it is blocked, even with the right secret",
				"source", source, "callbridge", s.sourceName(source), "blocked_for", block, "blocked_until", until.UTC().Format(time.RFC3339),
				"clear_with", "confab xmpp callbridge unblock "+orDefault(s.sourceName(source), source), "throttle", s.compFails.Config())
		}
		return nil, secret.Secret{}, err
	}
	s.compFails.Reset(source)
	mu.Lock()
	defer mu.Unlock()
	return c, sec, nil
}

// componentSession is a component's stream (a Call Bridge's link, as the Call Bridge calls it)
// once its handshake succeeded.
type componentSession struct {
	srv    *Server
	c      *component.Conn
	raw    net.Conn
	name   string
	jid    string
	secret secret.Secret
	since  time.Time
	log    *slog.Logger

	out      compQueue
	done     chan struct{} // closed when the link's handler ends: the writer stops
	lastRead activity      // when the last element arrived

	closeOnce sync.Once
	up        atomic.Bool // a Call Bridge attached to the login relay
	known     atomic.Bool // asked whether it speaks the login relay: listed by Server.Components

	dupMu    sync.Mutex // guards the duplicates refused while this component is connected
	dupN     int
	dupFrom  string
	dupAt    time.Time
	dupCheck *time.Timer // a liveness check under way (checkAlive)
	dupDone  bool        // the component has ended: no more checks
}

// checkAlive makes sure the connected component is alive when another connection asks for
// its name: its own old link may be half-open (the Call Bridge lost it without the server
// noticing), and with reject the Call Bridge would be locked out until the idle timeout. The
// component is pinged; if nothing arrives from it within min(5 s, IdleTimeout/2), it is
// closed, so that the newcomer's next attempt gets in. Called with dupMu held (a leaf: the
// ping is queued by the caller, after it unlocks); it reports whether to ping.
func (l *componentSession) checkAliveLocked() (ping bool) {
	if l.dupCheck != nil || l.dupDone {
		return false
	}
	mark := l.srv.mono()
	wait := min(5*time.Second, l.srv.cfg.IdleTimeout/2)
	l.dupCheck = time.AfterFunc(wait, func() {
		l.dupMu.Lock()
		l.dupCheck = nil
		l.dupMu.Unlock()
		if l.lastRead.last() > mark {
			return // it answered (or sent something): alive
		}
		l.log.Warn("component silent since another connection asked for its name; closing it as dead", "waited", wait)
		l.close(stream.ConnectionTimeout, fmt.Sprintf("no answer to a ping within %s", wait))
		_ = l.raw.Close()
	})
	return true
}

// stopChecks stops a liveness check; called when the component ends.
func (l *componentSession) stopChecks() {
	l.dupMu.Lock()
	defer l.dupMu.Unlock()
	l.dupDone = true
	if l.dupCheck != nil {
		l.dupCheck.Stop()
		l.dupCheck = nil
	}
}

// refuseDuplicate records and logs that a second connection from remote asked for this
// component's name, and returns the conflict it is refused with. The administrator sees it
// in the log (once per 10 s), in confab_xmpp_component_handshakes_total{outcome="conflict"}
// and in the admin listener's /callbridges (duplicatesRefused, lastDuplicateFrom/At); the
// newcomer, a Call Bridge, raises its own alarm from the conflict's text.
func (l *componentSession) refuseDuplicate(remote string, probe bool) error {
	l.dupMu.Lock()
	l.dupN++
	l.dupFrom, l.dupAt = remote, time.Now()
	n := l.dupN
	ping := l.checkAliveLocked()
	l.dupMu.Unlock()
	if ping {
		l.out.pushOwn(newStanza("iq", "get", "confab-alive-"+newID()[:8], l.srv.domain, l.jid, pingPayload()).AppendTo(nil, stream.NSComponent))
	}
	if probe {
		l.log.Info("test connection (confab diagnose) for a connected Call Bridge's name refused; the live link is kept", "from", remote)
		return &stream.Error{Condition: stream.Conflict, Text: fmt.Sprintf(
			"a Call Bridge named %s is connected (from %s since %s): this test connection does not replace it; the shared secret is right",
			l.name, l.c.RemoteAddr(), l.since.UTC().Format(time.RFC3339))}
	}
	l.srv.limitLog.warn(l.log, "duplicate:"+l.jid,
		"ALARM: another connection asked for this Call Bridge's name and was refused (conflict): two Call Bridges share a name, or this one's old link is still up",
		"from", remote, "refused_so_far", n, "policy", l.srv.cfg.DuplicateComponent)
	return &stream.Error{Condition: stream.Conflict, Text: fmt.Sprintf(
		"another Call Bridge named %s is connected (from %s since %s); give each Call Bridge its own name (if it is this one's old link and does not answer a ping within %s, it is dropped and the next attempt gets in)",
		l.name, l.c.RemoteAddr(), l.since.UTC().Format(time.RFC3339), min(5*time.Second, l.srv.cfg.IdleTimeout/2))}
}

// JID implements loginrelay.Bridge.
func (l *componentSession) JID() string { return l.jid }

// Write implements loginrelay.Bridge: it queues what the server itself sends (login relay
// requests, session-end notices) without blocking and without a bound of its own: it is
// bounded by the logins in flight and the sessions open, and a component that stops reading
// is caught by the write timeout, not by the size of its queue. So a burst of session ends
// (10 000 sessions ending at once) is sent in full, however fast it comes.
func (l *componentSession) Write(b []byte) error {
	if !l.out.pushOwn(b) {
		return fmt.Errorf("component %s: %w", l.jid, net.ErrClosed)
	}
	return nil
}

// deliver implements endpoint: e is queued within the routed lane's bounds, or dropped (an
// answer of the server's to the component, or a stanza from another component, while the
// component does not read).
func (l *componentSession) deliver(e *stream.Element) {
	if err := l.out.push(e.AppendTo(nil, stream.NSComponent), nil); err != nil {
		l.srv.limitLog.warn(l.log, "component-queue-full:"+l.jid,
			"outbound queue towards the component full; stanzas to it dropped or refused (the link stays up)",
			"queue", l.out.bounds())
	}
}

// deliverFrom queues e, routed from a client session, for the component. A sender that
// has its share of the queue, or a full queue, gets the stanza back with
// resource-constraint; the link is never closed for a client's sake.
func (l *componentSession) deliverFrom(e *stream.Element, from *session) error {
	err := l.out.push(e.AppendTo(nil, stream.NSComponent), from)
	if err != nil {
		l.srv.limitLog.warn(l.log, "component-queue-refused:"+l.jid+":"+from.bare,
			"stanzas to the component refused: the sender's share of its queue, or the queue, is full",
			"sender", from.bare, "reason", err, "queue", l.out.bounds())
	}
	return err
}

func (l *componentSession) sameSecret(s secret.Secret) bool {
	return subtle.ConstantTimeCompare([]byte(l.secret.Reveal()), []byte(s.Reveal())) == 1
}

func (l *componentSession) info() ComponentInfo {
	l.dupMu.Lock()
	defer l.dupMu.Unlock()
	return ComponentInfo{Name: l.name, JID: l.jid, RemoteAddr: l.c.RemoteAddr().String(), ConnectedSince: l.since, CallBridge: l.up.Load(),
		DuplicatesRefused: l.dupN, LastDuplicateFrom: l.dupFrom, LastDuplicateAt: l.dupAt}
}

func (l *componentSession) String() string {
	return "component " + l.jid + " from " + l.c.RemoteAddr().String()
}

// close ends the link's stream with cond (none if empty); the handler then cleans up.
func (l *componentSession) close(cond, text string) {
	l.closeOnce.Do(func() {
		if cond != "" {
			l.srv.m.streamErrs.WithLabelValues(cond).Inc()
			l.log.Info("closing component link", "stream_error", cond, "text", text)
		}
		_ = l.c.Close(cond, text)
	})
}

func (l *componentSession) shutdown() {
	l.close(stream.SystemShutdown, "the XMPP server is shutting down")
}
func (l *componentSession) kill() { _ = l.raw.Close() }

// run registers the link, serves it and cleans up.
func (l *componentSession) run() {
	s := l.srv
	existing, added := s.router.addComponent(l, s.cfg.DuplicateComponent == KickOld && !l.c.Probe())
	if !added {
		s.m.handshakes.WithLabelValues(stream.Conflict).Inc()
		se := existing.refuseDuplicate(l.c.RemoteAddr().String(), l.c.Probe())
		var cerr *stream.Error
		if errors.As(se, &cerr) {
			l.close(cerr.Condition, cerr.Text)
		}
		return
	}
	if existing != nil {
		existing.log.Warn("component link replaced by a new connection of the same Call Bridge", "new_remote", l.c.RemoteAddr().String())
		existing.close(stream.Conflict, "replaced by a new connection of the same Call Bridge")
	}
	s.m.handshakes.WithLabelValues(outcomeSuccess).Inc()
	s.m.links.Inc()
	l.c.SetIdleTimeout(s.cfg.IdleTimeout)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		l.writeLoop()
	}()
	// Only a component that speaks the login relay (a Call Bridge) takes logins: an IRC
	// gateway or a bot registered beside the Call Bridges never does. It is asked once, as
	// it connects, on a goroutine of its own, since its answer arrives through readLoop.
	probeCtx, cancelProbe := context.WithCancel(s.ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		if err := s.relay.Probe(probeCtx, l); err != nil {
			if probeCtx.Err() == nil {
				l.log.Info("component connected; it does not speak the login relay, so it takes no logins", "err", err)
			}
			l.known.Store(true)
			return
		}
		s.relay.Attach(l)
		l.up.Store(true)
		l.known.Store(true)
		l.log.Info("call bridge connected")
		s.componentBack(l.jid)
	}()

	err := l.readLoop()

	cancelProbe()
	<-probeDone
	l.known.Store(false)
	l.up.Store(false)
	s.relay.Detach(l)
	if s.router.removeComponent(l) {
		s.componentGone(l.jid)
	}
	close(l.done)
	<-writerDone
	l.out.close()
	l.stopChecks()
	var se *stream.Error
	switch {
	case errors.As(err, &se):
		l.close(se.Condition, se.Text)
	case errors.Is(err, stream.ErrClosed):
		l.close("", "")
	case isTimeout(err):
		l.close(stream.ConnectionTimeout, fmt.Sprintf("nothing received for %s", s.cfg.IdleTimeout))
	default:
		l.close("", "")
	}
	s.m.links.Dec()
	attrs := []any{"connected_for", time.Since(l.since).Round(time.Millisecond)}
	if err != nil && !errors.Is(err, stream.ErrClosed) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
		attrs = append(attrs, "err", err)
	}
	l.log.Info("call bridge disconnected", attrs...)
}

func (l *componentSession) readLoop() error {
	for {
		e, err := l.c.Next()
		if err != nil {
			return err
		}
		l.lastRead.touch()
		if err := l.handle(e); err != nil {
			return err
		}
	}
}

// handle routes one element from the Call Bridge.
func (l *componentSession) handle(e *stream.Element) error {
	s := l.srv
	if se, ok := component.RemoteError(e); ok {
		l.log.Info("call bridge sent a stream error", "condition", se.Condition, "text", se.Text)
		return stream.ErrClosed
	}
	if !e.IsStanza() || e.Name.Space != stream.NSComponent {
		return &stream.Error{Condition: stream.UnsupportedStanza, Text: "<" + e.Name.Local + "/> is not a stanza of " + stream.NSComponent}
	}
	from, err := jid.Parse(e.Get("from"))
	if err != nil || from.Domainpart() != l.jid {
		return &stream.Error{Condition: stream.InvalidFrom, Text: "'from' must be " + l.jid + " or an address at it"}
	}
	e.Set("from", from.String())
	to := e.Get("to")
	if e.Name.Local == "iq" && (to == s.domain || to == "") {
		if t := e.Get("type"); t == "result" || t == "error" {
			if !s.relay.HandleIQ(l, e) {
				s.m.routed.WithLabelValues("iq", destServer).Inc() // an answer to our ping
			}
			return nil
		}
	}
	s.route(e, l)
	return nil
}

// writeLoop writes what is queued for the Call Bridge, whitespace keepalives when there is
// nothing, and a ping when the Call Bridge has been silent for half the idle timeout.
func (l *componentSession) writeLoop() {
	cfg := l.srv.cfg
	tick := time.NewTicker(max(min(cfg.KeepAlive, cfg.IdleTimeout/4), 5*time.Millisecond))
	defer tick.Stop()
	mono := l.srv.mono
	lastWrite := mono()
	pingedAt := time.Duration(-1)
	pings := 0
	write := func(b []byte) bool {
		if err := l.c.Write(b); err != nil {
			l.log.Info("write to call bridge failed; closing its link", "err", err)
			_ = l.raw.Close()
			return false
		}
		lastWrite = mono()
		return true
	}
	var batch []compItem
	for {
		select {
		case <-l.out.wake:
			batch = l.out.take(batch[:0])
			// Everything queued goes out in writes of up to 64 KiB.
			for i := 0; i < len(batch); {
				buf := batch[i].b
				j := i + 1
				if j < len(batch) && len(buf) < 64<<10 {
					buf = append([]byte(nil), buf...)
					for ; j < len(batch) && len(buf) < 64<<10; j++ {
						buf = append(buf, batch[j].b...)
					}
				}
				ok := write(buf)
				l.out.written(batch[i:j])
				if !ok {
					l.out.written(batch[j:])
					return
				}
				i = j
			}
			clear(batch)
		case <-tick.C:
			lastRead := l.lastRead.last()
			switch {
			case mono()-lastRead >= cfg.IdleTimeout/2 && pingedAt != lastRead:
				pingedAt = lastRead
				pings++
				ping := newStanza("iq", "get", fmt.Sprintf("ping-%d", pings), l.srv.domain, l.jid, pingPayload())
				if !write(ping.AppendTo(nil, stream.NSComponent)) {
					return
				}
			case mono()-lastWrite >= cfg.KeepAlive:
				if !write([]byte(" ")) {
					return
				}
			}
		case <-l.done:
			return
		}
	}
}

// blockedText is the policy-violation text for a source blocked for wait, until until.
func blockedText(wait time.Duration, until time.Time) string {
	return fmt.Sprintf("too many failed handshakes from this address; blocked until %s (retry in %ds); the XMPP server's administrator can clear it with `confab xmpp callbridge unblock NAME`",
		until.UTC().Format(time.RFC3339), int((wait+time.Second-1)/time.Second))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// maxSourceNames bounds the source addresses whose last claimed name is remembered.
const maxSourceNames = 10000

// noteSource remembers the Call Bridge name a failed handshake from source claimed, so that
// an administrator can unblock by name.
func (s *Server) noteSource(source, name string) {
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	if s.srcNames == nil {
		s.srcNames = make(map[string]string)
	}
	if _, ok := s.srcNames[source]; !ok && len(s.srcNames) >= maxSourceNames {
		blocked := map[string]bool{}
		for _, b := range s.compFails.Blocks() {
			blocked[b.Key] = true
		}
		for k := range s.srcNames {
			if !blocked[k] {
				delete(s.srcNames, k)
			}
		}
		if len(s.srcNames) >= maxSourceNames {
			return
		}
	}
	s.srcNames[source] = name
}

func (s *Server) sourceName(source string) string {
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	return s.srcNames[source]
}

// ComponentBlock is a source address the component port refuses after failed handshakes.
type ComponentBlock struct {
	// Source is the address (an IPv4 address, an IPv6 /64) as the throttle keys it.
	Source string `json:"source"`
	// Name is the Call Bridge name its last failed handshake claimed.
	Name  string    `json:"name,omitempty"`
	Until time.Time `json:"until"`
}

// ComponentBlocks lists the sources blocked on the component port now.
func (s *Server) ComponentBlocks() []ComponentBlock {
	var out []ComponentBlock
	for _, b := range s.compFails.Blocks() {
		out = append(out, ComponentBlock{Source: b.Key, Name: s.sourceName(b.Key), Until: b.Until})
	}
	return out
}

// UnblockComponent clears the component port's throttle for target: an address (every
// failure counted from it) or a Call Bridge name (every source whose last failed handshake
// claimed that name). It returns the sources cleared; none is not an error. The rightful
// Call Bridge, once its administrator fixed its secret, is let in at its next attempt
// instead of after its block.
func (s *Server) UnblockComponent(target string) []string {
	target = strings.TrimSpace(target)
	var keys []string
	if _, err := netip.ParseAddr(strings.Trim(target, "[]")); err == nil {
		keys = []string{throttle.SourceKey(strings.Trim(target, "[]"))}
	} else if _, _, err := net.SplitHostPort(target); err == nil {
		keys = []string{throttle.SourceKey(target)}
	} else {
		name := strings.ToLower(target)
		s.srcMu.Lock()
		for src, n := range s.srcNames {
			if n == name {
				keys = append(keys, src)
			}
		}
		s.srcMu.Unlock()
	}
	for _, k := range keys {
		s.compFails.Reset(k)
		s.srcMu.Lock()
		delete(s.srcNames, k)
		s.srcMu.Unlock()
		s.log.Info("component port: source unblocked by the administrator", "source", k, "target", target)
	}
	slices.Sort(keys)
	return keys
}
