package loginrelay

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/throttle"
)

// Bridge is a Call Bridge's component link as the Client sees it. *component.Conn satisfies it.
type Bridge interface {
	// JID is the component's JID, e.g. cb1.example.com.
	JID() string
	// Write sends serialised XML on the link.
	Write(b []byte) error
}

// DefaultTimeout bounds each round trip to the Call Bridge when NewClient is given zero.
const DefaultTimeout = 10 * time.Second

// idPrefix marks the IQ ids the Client sends, so that HandleIQ recognises late answers too.
const idPrefix = "confab-login-"

// Client is the XMPP server's side of the login relay. It is safe for concurrent use.
type Client struct {
	domain  string
	timeout time.Duration
	log     *slog.Logger

	// guard throttles guessing across every Call Bridge behind this server (SetThrottle).
	guard guard

	mu      sync.Mutex
	bridges []Bridge         // attached links, in attach order
	next    int              // round-robin position in links
	pending map[string]*call // by IQ id
}

// call is one IQ waiting for its answer.
type call struct {
	bridge  Bridge
	session string
	ch      chan callResult // buffered: whoever removes the call from pending sends once
}

type callResult struct {
	reply Reply
	err   error
}

// NewClient returns a Client for the XMPP domain (the 'from' of its requests). timeout bounds
// each round trip to the Call Bridge (DefaultTimeout if zero); logger may be nil.
func NewClient(domain string, timeout time.Duration, logger *slog.Logger) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{domain: domain, timeout: timeout, log: logger, pending: make(map[string]*call),
		guard: newGuard(throttle.Config{}, throttle.Config{}, time.Now, "XMPP server", "")}
}

// SetThrottle replaces the Client's login throttles; call it before the first Begin. The
// Client counts failed logins (not-authorized) per username and per client address over
// every Call Bridge it relays to, and answers a login whose name or address failed too often
// itself, with temporary-auth-failure and the same text a Call Bridge would give, without
// asking any Call Bridge: guessing spread over several Call Bridges (round robin) is counted
// as one, and blocked attempts cost the Call Bridges nothing. The configs mean what
// Responder.AccountThrottle and SourceThrottle mean, with the same defaults (zero fields);
// now is the clock (time.Now if nil).
func (c *Client) SetThrottle(account, source throttle.Config, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	c.guard = newGuard(account, source, now, "XMPP server", "")
}

// Attach adds a Call Bridge link to those that take logins. Attaching a link twice is a no-op.
func (c *Client) Attach(l Bridge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.bridges {
		if x == l {
			return
		}
	}
	c.bridges = append(c.bridges, l)
}

// Detach removes a link. Every exchange pending on it fails with ErrBridgeLost, and so does any
// later step of an exchange that started on it.
func (c *Client) Detach(l Bridge) {
	c.mu.Lock()
	for i, x := range c.bridges {
		if x == l {
			c.bridges = append(c.bridges[:i], c.bridges[i+1:]...)
			if c.next > i {
				c.next--
			}
			break
		}
	}
	var lost []*call
	for id, p := range c.pending {
		if p.bridge == l {
			lost = append(lost, p)
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
	for _, p := range lost {
		p.ch <- callResult{err: ErrBridgeLost}
	}
}

// Links returns the number of attached links.
func (c *Client) Bridges() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bridges)
}

func (c *Client) attached(l Bridge) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.bridges {
		if x == l {
			return true
		}
	}
	return false
}

// byJID returns an attached link of the given component JID, or nil.
func (c *Client) byJID(jid string) Bridge {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.bridges {
		if x.JID() == jid {
			return x
		}
	}
	return nil
}

// pickExcept returns the next link in round-robin order that is not in except.
func (c *Client) pickExcept(except []Bridge) (Bridge, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range c.bridges {
		if c.next >= len(c.bridges) {
			c.next = 0
		}
		l := c.bridges[c.next]
		c.next++
		if !slices.Contains(except, l) {
			return l, true
		}
	}
	return nil, false
}

// Probe asks a newly connected component whether it speaks the login relay, before it is
// attached: it sends an <abort/> for a session nobody has, which a Responder answers with a
// <failure condition='aborted'/> result. Anything else (an IQ error such as
// service-unavailable from an IRC gateway or a bot, or no answer within the Client's
// timeout) is ErrNotABridge, and the caller does not Attach the component, so it never
// takes a share of the logins. The answer comes back through HandleIQ.
func (c *Client) Probe(ctx context.Context, b Bridge) error {
	id := idPrefix + randomID()
	session := "probe-" + randomID()
	p := &call{bridge: b, session: session, ch: make(chan callResult, 1)}
	c.mu.Lock()
	c.pending[id] = p
	c.mu.Unlock()
	defer c.forget(id)
	if err := b.Write(marshal(iq{Type: "set", ID: id, From: c.domain, To: b.JID(), Payload: abortPayload{Session: session}})); err != nil {
		return fmt.Errorf("%w: %w", ErrBridgeLost, err)
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case res := <-p.ch:
		if res.err != nil {
			return fmt.Errorf("%w: %w", ErrNotABridge, res.err)
		}
		if res.reply.Kind != KindFailure || res.reply.Condition != CondAborted {
			return fmt.Errorf("%w: it answered %s %s", ErrNotABridge, res.reply.Kind, res.reply.Condition)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: no answer within %s", ErrNotABridge, c.timeout)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Exchange is one SASL exchange relayed to one Call Bridge.
type Exchange struct {
	c       *Client
	bridge  Bridge
	session string
	mech    string
	source  string // throttle key of the client's address
	user    string // the name the client authenticates as, once its first message is seen
	named   bool   // the first message was seen

	mu   sync.Mutex
	done bool // success, failure, abort or a relay error ended it
}

// Bridge returns the link the exchange is pinned to.
func (x *Exchange) Bridge() Bridge { return x.bridge }

// Session returns the exchange's session id, as sent on the wire.
func (x *Exchange) Session() string { return x.session }

// Begin starts an exchange: it picks a link (round robin), sends the client's mechanism and
// initial response (nil if the client sent none) with the client's address and transport
// ("tcp" or "websocket"), and returns the Call Bridge's first answer. It returns
// ErrNoCallBridge (and a nil Exchange) when no link is attached, and ErrBridgeLost, ErrTimeout
// or ctx's error when the step could not complete; FailureReply maps these for the client.
//
// When the link is lost before the Call Bridge answers (its write fails, or it is detached
// while the step is pending), or the component answers the step with an IQ error
// (ErrBridgeRefused), the step is sent to the next attached link, each at most once; the
// last error is returned when none is left. Later steps stay on the link that answered.
//
// A login whose name or address is blocked by the Client's throttle (SetThrottle) gets a
// failure Reply from the Client itself; its Exchange is over and has no link.
func (c *Client) Begin(ctx context.Context, mech string, initial []byte, addr, transport string) (*Exchange, Reply, error) {
	x := &Exchange{c: c, session: randomID(), mech: mech, source: sourceOf(addr)}
	if r, blocked := x.check(initial); blocked {
		return x, r, nil
	}
	// A Call Bridge lost before it answered the first step holds nothing of this exchange
	// worth keeping: the step goes to the next one, each at most once, so that a Call Bridge
	// dying under load costs the logins it was in the middle of, not the ones just starting.
	var tried []Bridge
	var lastErr error
	for {
		l, ok := c.pickExcept(tried)
		if !ok {
			if len(tried) == 0 {
				return nil, Reply{}, ErrNoCallBridge
			}
			return x, Reply{}, lastErr
		}
		tried = append(tried, l)
		x = &Exchange{c: c, bridge: l, session: randomID(), mech: mech, source: x.source, user: x.user, named: x.named}
		r, err := x.roundTrip(ctx, authPayload{
			Session: x.session, Mechanism: mech, Addr: addr, Transport: transport, Data: encode64(initial),
		})
		if !(errors.Is(err, ErrBridgeLost) || errors.Is(err, ErrBridgeRefused)) || ctx.Err() != nil {
			return x, r, err
		}
		lastErr = err
		c.log.Info("login relay: the Call Bridge was lost or refused the first step; trying another", "link", l.JID(), "err", err)
	}
}

// Respond sends the client's response to the last challenge, on the exchange's link, and
// returns the Call Bridge's answer.
func (x *Exchange) Respond(ctx context.Context, data []byte) (Reply, error) {
	if data == nil {
		data = []byte{} // a response is never absent, only empty
	}
	if r, blocked := x.check(data); blocked {
		x.sendAbort()
		return r, nil
	}
	return x.roundTrip(ctx, responsePayload{Session: x.session, Data: encode64(data)})
}

// Abort tells the Call Bridge the client gave up (SASL <abort/>) and ends the exchange.
// It does not wait for the answer. Aborting a finished exchange does nothing.
func (x *Exchange) Abort() {
	if x.finish() {
		x.sendAbort()
	}
}

// check looks at the client's first SASL message (nil: not sent yet) for the name it logs in
// as, and reports whether the throttle blocks the login, with the failure to answer. A
// blocked exchange is over.
func (x *Exchange) check(msg []byte) (Reply, bool) {
	if !x.named && msg != nil {
		x.named = true
		x.user = saslUsername(x.mech, msg, x.c.domain)
	}
	wait := x.c.guard.wait(x.source, x.user)
	if wait <= 0 {
		return Reply{}, false
	}
	x.finish()
	x.c.log.Info("login refused at the XMPP server: too many failed attempts", "user", x.user, "source", x.source, "retry_in", wait.Round(time.Millisecond))
	return Reply{Kind: KindFailure, Condition: CondTemporaryAuthFail, Text: throttledText(wait)}, true
}

// counted feeds an exchange's outcome to the Client's throttle.
func (x *Exchange) counted(r Reply) {
	switch {
	case r.Kind == KindSuccess:
		x.c.guard.succeeded(x.user)
	case r.Kind == KindFailure && r.Condition == CondNotAuthorized:
		x.c.guard.failed(x.c.log, x.source, x.user)
	}
}

// finish marks the exchange over and reports whether it was still open.
func (x *Exchange) finish() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	open := !x.done
	x.done = true
	return open
}

func (x *Exchange) sendAbort() {
	b := marshal(iq{Type: "set", ID: idPrefix + randomID(), From: x.c.domain, To: x.bridge.JID(),
		Payload: abortPayload{Session: x.session}})
	if err := x.bridge.Write(b); err != nil {
		x.c.log.Debug("login relay: abort not sent", "link", x.bridge.JID(), "session", x.session, "err", err)
	}
}

func (x *Exchange) roundTrip(ctx context.Context, payload any) (Reply, error) {
	c := x.c
	x.mu.Lock()
	done := x.done
	x.mu.Unlock()
	if done {
		return Reply{}, errors.New("loginrelay: the exchange is over")
	}
	id := idPrefix + randomID()
	p := &call{bridge: x.bridge, session: x.session, ch: make(chan callResult, 1)}
	c.mu.Lock()
	stillAttached := false
	for _, l := range c.bridges {
		stillAttached = stillAttached || l == x.bridge
	}
	if stillAttached {
		c.pending[id] = p
	}
	c.mu.Unlock()
	if !stillAttached {
		x.finish()
		return Reply{}, ErrBridgeLost
	}

	b := marshal(iq{Type: "set", ID: id, From: c.domain, To: x.bridge.JID(), Payload: payload})
	if err := x.bridge.Write(b); err != nil {
		c.forget(id)
		x.finish()
		return Reply{}, fmt.Errorf("%w: %w", ErrBridgeLost, err)
	}

	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case res := <-p.ch:
		if res.err != nil || res.reply.Kind != KindChallenge {
			x.finish()
		}
		if res.err == nil {
			x.counted(res.reply)
		}
		return res.reply, res.err
	case <-timer.C:
		c.forget(id)
		if x.finish() {
			x.sendAbort()
		}
		c.log.Warn("login relay: the Call Bridge did not answer in time", "link", x.bridge.JID(), "session", x.session, "timeout", c.timeout)
		return Reply{}, ErrTimeout
	case <-ctx.Done():
		c.forget(id)
		if x.finish() {
			x.sendAbort()
		}
		return Reply{}, context.Cause(ctx)
	}
}

func (c *Client) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// HandleIQ takes an IQ of type result or error that arrived on link from and is addressed to
// the server's domain. It reports whether the IQ was an answer to the login relay (including
// a late one, which it drops); the caller handles it otherwise.
func (c *Client) HandleIQ(from Bridge, el *stream.Element) bool {
	if el.Name.Local != "iq" {
		return false
	}
	typ, id := el.Get("type"), el.Get("id")
	if (typ != "result" && typ != "error") || !strings.HasPrefix(id, idPrefix) {
		return false
	}
	c.mu.Lock()
	p := c.pending[id]
	if p != nil && p.bridge == from {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	switch {
	case p == nil:
		c.log.Debug("login relay: late or unexpected answer dropped", "link", bridgeJID(from), "id", id)
		return true
	case p.bridge != from:
		c.log.Warn("login relay: answer arrived on the wrong link; dropped", "link", bridgeJID(from), "want", p.bridge.JID(), "id", id)
		return true
	}
	r, err := parseAnswer(el, p.session)
	if err != nil {
		err = fmt.Errorf("loginrelay: answer from %s: %w", p.bridge.JID(), err)
		c.log.Warn("login relay: bad answer", "link", p.bridge.JID(), "err", err)
	}
	p.ch <- callResult{reply: r, err: err}
	return true
}

func bridgeJID(l Bridge) string {
	if l == nil {
		return ""
	}
	return l.JID()
}

// parseAnswer reads the Call Bridge's answer to a request of the given session.
func parseAnswer(el *stream.Element, session string) (Reply, error) {
	if el.Get("type") == "error" {
		var v struct {
			Error struct {
				Children []struct{ XMLName xml.Name } `xml:",any"`
			} `xml:"error"`
		}
		cond := "unknown"
		if el.Decode(&v) == nil {
			for _, ch := range v.Error.Children {
				if ch.XMLName.Local != "text" {
					cond = ch.XMLName.Local
					break
				}
			}
		}
		return Reply{}, fmt.Errorf("%w (%s)", ErrBridgeRefused, cond)
	}
	v, err := decodeAnswer(el)
	if err != nil {
		return Reply{}, fmt.Errorf("malformed answer: %w", err)
	}
	var (
		r       Reply
		sess    string
		payload string
	)
	switch {
	case v.Challenge != nil:
		r.Kind, sess, payload = KindChallenge, v.Challenge.Session, v.Challenge.Data
	case v.Success != nil:
		r.Kind, sess, payload, r.JID = KindSuccess, v.Success.Session, v.Success.Data, v.Success.JID
		r.Guest = v.Success.Guest == "true"
		if r.JID == "" {
			return Reply{}, errors.New("success without a jid")
		}
	case v.Failure != nil:
		r.Kind, sess = KindFailure, v.Failure.Session
		r.Condition, r.Text = v.Failure.Condition, v.Failure.Text
		if r.Condition == "" {
			r.Condition = CondTemporaryAuthFail
		}
	default:
		return Reply{}, errors.New("answer has no challenge, success or failure")
	}
	if sess != session {
		return Reply{}, fmt.Errorf("answer for session %q, want %q", sess, session)
	}
	data, derr := decode64(payload)
	if derr != nil {
		return Reply{}, fmt.Errorf("%s: %w", r.Kind, derr)
	}
	r.Data = data
	return r, nil
}

// SessionEnded tells the Call Bridge on l that an authenticated session of fullJID ended
// ("closed", "timeout" or "error"), so that it can remove a guest account. l is normally the
// Bridge of the exchange that authenticated the session. If l has been detached, the message
// goes to an attached link of the same Call Bridge (it reconnected), or nowhere.
func (c *Client) SessionEnded(l Bridge, fullJID, reason string) {
	if l == nil {
		return
	}
	if !c.attached(l) {
		if l = c.byJID(l.JID()); l == nil {
			c.log.Debug("login relay: session-end not sent, its Call Bridge is gone", "jid", fullJID)
			return
		}
	}
	b := marshal(message{From: c.domain, To: l.JID(), Payload: sessionEndPayload{JID: fullJID, Reason: reason}})
	if err := l.Write(b); err != nil {
		c.log.Warn("login relay: session-end not sent", "link", l.JID(), "jid", fullJID, "err", err)
	}
}
