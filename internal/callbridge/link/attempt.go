package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// Defaults for the zero fields of AttemptOptions.
const (
	DefaultDNSTimeout       = 5 * time.Second
	DefaultConnectTimeout   = 10 * time.Second
	DefaultTLSTimeout       = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultPort is the XMPP server's component port (TLS from the first byte).
	DefaultPort = discover.DefaultPort
)

// AttemptOptions configure one registration attempt. The zero value uses the system
// resolver and trust store and the default timeouts.
type AttemptOptions struct {
	// Resolver looks up SRV and A/AAAA records; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// RootCAs verify the XMPP server's chain; nil means the system roots.
	RootCAs *x509.CertPool
	// ClientCert is presented when the XMPP server asks for one (mutual TLS).
	ClientCert *tls.Certificate
	// DNSTimeout bounds each lookup, ConnectTimeout each TCP connect, TLSTimeout each TLS
	// handshake and HandshakeTimeout each XEP-0114 negotiation.
	DNSTimeout, ConnectTimeout, TLSTimeout, HandshakeTimeout time.Duration
	// Limits bound the stanzas the XMPP server may send on the link.
	Limits stream.Limits
	// Now is the clock for event timestamps and certificate validity; nil is time.Now.
	Now func() time.Time
	// Emit receives each step's event as the step ends, in flow order. It may be nil.
	Emit func(linkstate.Event)
	// NoRegister stops after step 8: steps 9 and 10 are skipped and the Registration has
	// no Conn. It lets `confab diagnose` check everything up to registration without
	// displacing a running Call Bridge of the same name.
	NoRegister bool
	// KnownDomains are XMPP domains this Call Bridge registered with before (the Link keeps
	// them): a domain DNS does not know that looks like one of them is reported as a likely
	// typo of the Domain field.
	KnownDomains []string
	// Probe marks the handshake as a test (component.Probe): a Confab XMPP server then never
	// lets it replace a live Call Bridge of the same name, whatever its duplicate policy,
	// and refuses it with <conflict/> instead. confab diagnose sets it.
	Probe bool
}

// Registration is a successful attempt: an active component link and where it goes.
type Registration struct {
	// Conn is the active link (nil after an attempt with NoRegister).
	Conn *component.Conn
	// Target is the server the link goes to (from the override or the SRV lookup).
	Target discover.Target
	// Address is the IP address and port connected to.
	Address netip.AddrPort
	// Certificate is the XMPP server's leaf certificate.
	Certificate *x509.Certificate
}

// Server returns the target as host:port.
func (r *Registration) Server() string { return r.Target.Addr() }

// Failure is why an attempt failed, classified as CMS classifies the xmppRegistrationFailure
// alarm. Attempt returns the failure of the target that got furthest through the flow.
type Failure struct {
	// Step is the step that failed.
	Step linkstate.Step
	// Reason is the alarm's failureReason: linkstate.ReasonDNS, ReasonConnect,
	// ReasonAuthentication or ReasonConfiguration.
	Reason string
	// Cause classifies the failure within its step ("nxdomain", "connection-refused",
	// "unknown-authority", "missing-san", "not-authorized", ...).
	Cause string
	// TLSCause is the TLS cause (a certs.Cause* value) for TLS and SAN failures.
	TLSCause string
	// Target is what the step was working on (a DNS name, host:port).
	Target string
	// Detail says what was looked up, what came back or what was checked.
	Detail string
	// Remedy is the likely fix.
	Remedy string
	// Err is the underlying error, if any.
	Err error
}

func (f *Failure) Error() string {
	s := fmt.Sprintf("xmpp link step %d (%s) failed", int(f.Step), f.Step)
	if f.Target != "" {
		s += " for " + f.Target
	}
	s += ": " + f.Cause
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// Unwrap returns the underlying error.
func (f *Failure) Unwrap() error { return f.Err }

// Alarm returns the CMS alarm the failure raises (without ID or activation time).
func (f *Failure) Alarm() linkstate.Alarm {
	d := f.Detail
	if f.Target != "" && !strings.Contains(d, f.Target) {
		d = f.Target + ": " + d
	}
	return linkstate.Alarm{
		Type:          AlarmType,
		FailureReason: f.Reason,
		TLSCause:      f.TLSCause,
		Detail:        fmt.Sprintf("step %d (%s): %s", int(f.Step), f.Step, d),
	}
}

// CauseDomainMismatch is the cause of a failure at step 8 or 10 that the Domain field
// explains: the XMPP server presents (in its certificate, or in its answer to the stream
// header) another domain than the one configured.
const CauseDomainMismatch = "domain-mismatch"

// AlarmType is the CMS alarm type for a failed XMPP registration.
const AlarmType = "xmppRegistrationFailure"

// Missing returns the settings that cfg lacks for a link, by their CMS API names.
func Missing(cfg store.XMPPSettings) []string {
	var m []string
	if strings.TrimSpace(cfg.UniqueName) == "" {
		m = append(m, "uniqueName")
	}
	if strings.TrimSpace(cfg.Domain) == "" {
		m = append(m, "domain")
	}
	if cfg.SharedSecret.IsZero() {
		m = append(m, "sharedSecret")
	}
	return m
}

// ComponentJID returns the component JID a Call Bridge registers as: <uniqueName>.<domain>.
func ComponentJID(cfg store.XMPPSettings) string {
	return strings.ToLower(strings.TrimSpace(cfg.UniqueName) + "." + strings.TrimSuffix(strings.TrimSpace(cfg.Domain), "."))
}

// Attempt runs steps 2 to 10 of the signalling flow once: it reads the settings, finds the
// XMPP server (serverAddressOverride, else SRV _xmpp-component._tcp.<domain> in RFC 2782
// order), resolves each target, connects, verifies the server's chain and its SANs, and
// registers with the XEP-0114 handshake. When a target fails it moves on to the next one;
// within a target, a failed TCP connect moves on to the target's next address.
//
// It returns the active link, or a *Failure: that of the target that got furthest through
// the flow (a certificate problem on one server says more than a refused connection on
// another). Every step emits a linkstate.Event through o.Emit. The Call Bridge's link and
// `confab diagnose` both run this function, so they can never disagree.
func Attempt(ctx context.Context, cfg store.XMPPSettings, o AttemptOptions) (*Registration, error) {
	a := &attempt{o: o.withDefaults(), cfg: cfg}
	reg, f := a.run(ctx)
	if f != nil {
		return nil, f
	}
	return reg, nil
}

func (o AttemptOptions) withDefaults() AttemptOptions {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.DNSTimeout <= 0 {
		o.DNSTimeout = DefaultDNSTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.TLSTimeout <= 0 {
		o.TLSTimeout = DefaultTLSTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.Limits.MaxStanza <= 0 {
		o.Limits.MaxStanza = component.DefaultMaxStanza
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

type attempt struct {
	o    AttemptOptions
	cfg  store.XMPPSettings
	best *Failure
	// server is the target steps 5 to 10 are running against (host:port).
	server string
}

// clock marks the start of a step.
type clock struct {
	wall time.Time
	mono time.Time
}

func (a *attempt) start() clock { return clock{wall: a.o.Now(), mono: time.Now()} }

func (a *attempt) emit(e linkstate.Event, c clock) {
	e.Start = c.wall
	if e.Step >= linkstate.StepResolve && e.Step <= linkstate.StepActive {
		e.Server = a.server
	}
	if !c.mono.IsZero() {
		e.Duration = time.Since(c.mono)
	}
	if a.o.Emit != nil {
		a.o.Emit(e)
	}
}

func (a *attempt) ok(step linkstate.Step, target string, c clock, detail string) {
	a.emit(linkstate.Event{Step: step, Target: target, Outcome: linkstate.OK, Detail: detail}, c)
}

func (a *attempt) skip(step linkstate.Step, target, detail string) {
	a.emit(linkstate.Event{Step: step, Target: target, Outcome: linkstate.Skipped, Detail: detail}, a.start())
}

// fail emits f's event and keeps f if it got further than the failures so far.
func (a *attempt) fail(f *Failure, c clock) *Failure {
	a.emit(linkstate.Event{
		Step: f.Step, Target: f.Target, Outcome: linkstate.Failed,
		Cause: f.Cause, Detail: f.Detail, Remedy: f.Remedy,
	}, c)
	if a.best == nil || f.Step > a.best.Step {
		a.best = f
	}
	return f
}

func (a *attempt) run(ctx context.Context) (*Registration, *Failure) {
	cfg := a.cfg
	c := a.start()
	if f := a.checkConfig(); f != nil {
		return nil, a.fail(f, c)
	}
	a.ok(linkstate.StepConfig, "", c, describeConfig(cfg))
	componentJID := ComponentJID(cfg)
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(cfg.Domain), "."))

	var targets []discover.Target
	if ov := strings.TrimSpace(cfg.ServerAddressOverride); ov != "" {
		c := a.start()
		host, port, err := discover.ParseOverride(ov)
		if err != nil {
			return nil, a.fail(&Failure{
				Step: linkstate.StepOverride, Reason: linkstate.ReasonConfiguration, Cause: "invalid-override",
				Target: ov, Detail: fmt.Sprintf("serverAddressOverride %q cannot be used: %v", ov, err),
				Remedy: "set serverAddressOverride to host, host:port, IPv4, IPv4:port or [IPv6]:port (for example xmpp.example.com or 192.0.2.10:5223), or clear it to use DNS SRV",
				Err:    err,
			}, c)
		}
		t := discover.Target{Host: host, Port: port}
		detail := fmt.Sprintf("serverAddressOverride %q: connect to %s", ov, t.Addr())
		if !hasPort(ov) {
			detail += fmt.Sprintf(" (port %d by default)", port)
		}
		a.ok(linkstate.StepOverride, t.Addr(), c, detail)
		a.skip(linkstate.StepSRV, srvName(domain), "not needed: serverAddressOverride is set")
		targets = []discover.Target{t}
	} else {
		a.skip(linkstate.StepOverride, "", "serverAddressOverride not set: finding the XMPP server through DNS SRV")
		c := a.start()
		dctx, cancel := context.WithTimeoutCause(ctx, a.o.DNSTimeout, fmt.Errorf("SRV lookup of %s took longer than %s", srvName(domain), a.o.DNSTimeout))
		ts, err := discover.Targets(dctx, a.o.Resolver, domain, "")
		cancel()
		if err == nil && len(ts) == 0 {
			err = &discover.Error{Op: discover.OpSRV, Name: srvName(domain), Kind: discover.KindNoRecords}
		}
		if err != nil {
			return nil, a.fail(a.srvFailure(ctx, domain, err), c)
		}
		a.ok(linkstate.StepSRV, srvName(domain), c, describeTargets(domain, ts))
		targets = ts
	}

	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		if reg := a.target(ctx, t, domain, componentJID); reg != nil {
			return reg, nil
		}
	}
	if err := ctx.Err(); err != nil && (a.best == nil || a.best.Cause != "canceled") {
		// Cancelled (the settings changed, or shutdown): say so rather than blame a step.
		f := &Failure{Step: linkstate.StepConnect, Reason: linkstate.ReasonConnect, Cause: "canceled",
			Detail: "the attempt was abandoned: " + context.Cause(ctx).Error(), Err: err}
		if a.best != nil {
			f.Step, f.Reason, f.Target = a.best.Step, a.best.Reason, a.best.Target
		}
		return nil, f
	}
	return nil, a.best
}

func hasPort(s string) bool {
	if strings.HasPrefix(s, "[") {
		return strings.Contains(s, "]:")
	}
	return strings.Count(s, ":") == 1
}

func (a *attempt) checkConfig() *Failure {
	cfg := a.cfg
	if missing := Missing(cfg); len(missing) > 0 {
		return &Failure{
			Step: linkstate.StepConfig, Reason: linkstate.ReasonConfiguration, Cause: "configuration-incomplete",
			Detail: "missing " + strings.Join(missing, ", ") + " (" + describeConfig(cfg) + ")",
			Remedy: "set " + strings.Join(missing, ", ") + " with the API (PUT /api/v1/system/configuration/xmpp) or the web admin (Configuration > General > XMPP server settings)",
		}
	}
	name := strings.TrimSpace(cfg.UniqueName)
	if strings.ContainsAny(name, "@/. \t") {
		return &Failure{
			Step: linkstate.StepConfig, Reason: linkstate.ReasonConfiguration, Cause: "invalid-setting",
			Detail: fmt.Sprintf("uniqueName %q must be a single DNS label (no dots, spaces, @ or /): the component JID is <uniqueName>.<domain>", name),
			Remedy: "set uniqueName to the name registered on the XMPP server (e.g. cb1)",
		}
	}
	if _, err := jid.Parse(ComponentJID(cfg)); err != nil {
		return &Failure{
			Step: linkstate.StepConfig, Reason: linkstate.ReasonConfiguration, Cause: "invalid-setting",
			Detail: fmt.Sprintf("component JID %q is not a valid XMPP domain: %v", ComponentJID(cfg), err),
			Remedy: "set domain to the XMPP server's domain (e.g. example.com) and uniqueName to a plain name (e.g. cb1)",
			Err:    err,
		}
	}
	return nil
}

func describeConfig(cfg store.XMPPSettings) string {
	val := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "(not set)"
		}
		return strings.TrimSpace(s)
	}
	sec := "(not set)"
	if !cfg.SharedSecret.IsZero() {
		sec = "(set)"
	}
	return fmt.Sprintf("uniqueName %s, domain %s, serverAddressOverride %s, sharedSecret %s",
		val(cfg.UniqueName), val(cfg.Domain), val(cfg.ServerAddressOverride), sec)
}

func srvName(domain string) string { return discover.SRVName(domain) }

// exampleSRV is an SRV record an administrator can copy into the zone.
func exampleSRV(domain string) string {
	return fmt.Sprintf("%s. 86400 IN SRV 10 50 %d xmpp.%s.", srvName(domain), DefaultPort, domain)
}

func describeTargets(domain string, ts []discover.Target) string {
	var b strings.Builder
	fromSRV := false
	for _, t := range ts {
		fromSRV = fromSRV || t.FromSRV
	}
	if !fromSRV {
		fmt.Fprintf(&b, "no SRV record for %s; using ", srvName(domain))
	} else {
		fmt.Fprintf(&b, "%s: %d target", srvName(domain), len(ts))
		if len(ts) != 1 {
			b.WriteString("s")
		}
		b.WriteString(" in RFC 2782 order: ")
	}
	for i, t := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		if t.FromSRV {
			fmt.Fprintf(&b, "%s (priority %d, weight %d)", t.Addr(), t.Priority, t.Weight)
		} else {
			b.WriteString(t.Addr())
		}
	}
	return b.String()
}

// describeDNSError says what a lookup of what (e.g. "SRV _xmpp-component._tcp.example.com")
// got back.
func describeDNSError(err error, what string) string {
	var de *discover.Error
	if errors.As(err, &de) {
		return err.Error() // discover's errors start with what was looked up
	}
	return what + ": " + err.Error()
}

// dnsCause returns the discover error kind of err, or a cause of its own.
func dnsCause(err error) string {
	var de *discover.Error
	if errors.As(err, &de) && de.Kind != "" {
		return de.Kind
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return discover.KindNotFound
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		return discover.KindTimeout
	case errors.Is(err, context.Canceled):
		return discover.KindCanceled
	}
	return discover.KindServerFailure
}

// srvFailure classifies a failed SRV lookup. A name DNS does not know may be a mistyped
// domain rather than a missing record, so its remedy asks to check the Domain field first,
// with what is known: the domains registered with before, and whether the domain itself
// exists (one more lookup, within the same DNS timeout).
func (a *attempt) srvFailure(ctx context.Context, domain string, err error) *Failure {
	kind := dnsCause(err)
	name := srvName(domain)
	f := &Failure{Step: linkstate.StepSRV, Reason: linkstate.ReasonDNS, Cause: kind, Target: name, Err: err}
	create := "create the SRV record, for example `" + exampleSRV(domain) + "` (one per XMPP server), or set serverAddressOverride to the XMPP server's address"
	f.Detail = "looked up " + describeDNSError(err, "SRV "+name)
	switch kind {
	case discover.KindNXDomain, discover.KindNoRecords, discover.KindNotFound:
		exists, known := true, false
		if kind != discover.KindNoRecords {
			dctx, cancel := context.WithTimeout(ctx, a.o.DNSTimeout)
			exists, known = discover.DomainExists(dctx, a.o.Resolver, domain)
			cancel()
		}
		f.Remedy = checkDomainFirst(domain, a.o.KnownDomains, exists, known) + "; if it is right, " + create
	default:
		f.Remedy = dnsRemedy(kind, err, "the zone for "+domain, domain) + ", or set serverAddressOverride"
		if kind == discover.KindUnavailable {
			f.Remedy = "replace the \".\" SRV record with one naming the XMPP server, for example `" + exampleSRV(domain) + "`"
		}
	}
	return f
}

// dnsRemedy is the remedy for a lookup the DNS server itself failed: it names the server
// and its port, as configured, and says what that server did.
// zone says which zone a SERVFAIL points at; name is what was looked up.
func dnsRemedy(kind string, err error, zone, name string) string {
	server := dnsServer(err)
	who := dnsServerWords(server)
	switch kind {
	case discover.KindTimeout:
		return fmt.Sprintf("%s does not answer: check that it is running and reachable from the Call Bridge (UDP and TCP port %s)", who, dnsPort(server))
	case discover.KindConnRefused:
		return fmt.Sprintf("nothing listens at %s: start the DNS server, or correct the Call Bridge's DNS server ([xmpp] dns_server) to the address and port of a running one", server)
	case discover.KindRefused:
		return fmt.Sprintf("%s refuses to answer: allow the Call Bridge to query it (its access list, or recursion for a zone it does not hold), or use a DNS server that answers for %s", who, name)
	case discover.KindServerFailure:
		var de *discover.Error
		if errors.As(err, &de) && de.RCode() == "SERVFAIL" {
			return fmt.Sprintf("%s answers SERVFAIL: check %s on it (it may be broken, or its DNSSEC signatures invalid)", who, zone)
		}
		return fmt.Sprintf("the lookup through %s failed (see the detail): check that server and the network path to it", who)
	}
	return fmt.Sprintf("check %s and %s", who, zone)
}

func resolveFailure(t discover.Target, err error) *Failure {
	kind := dnsCause(err)
	f := &Failure{Step: linkstate.StepResolve, Reason: linkstate.ReasonDNS, Cause: kind, Target: t.Host, Err: err}
	create := fmt.Sprintf("create an A (IPv4) or AAAA (IPv6) record for %s, or correct the name in the SRV record or serverAddressOverride", t.Host)
	f.Detail = "looked up " + describeDNSError(err, "A/AAAA "+t.Host)
	switch kind {
	case discover.KindNXDomain, discover.KindNoRecords, discover.KindNotFound:
		f.Remedy = create
	default:
		f.Remedy = dnsRemedy(kind, err, "the zone holding "+t.Host, t.Host)
	}
	return f
}

// target runs steps 5 to 10 against one target. It returns nil when the target failed.
func (a *attempt) target(ctx context.Context, t discover.Target, domain, componentJID string) *Registration {
	host := strings.TrimSuffix(t.Host, ".")
	t.Host = host
	a.server = t.Addr()
	c := a.start()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
		a.ok(linkstate.StepResolve, host, c, host+" is an IP address: nothing to look up")
	} else {
		dctx, cancel := context.WithTimeoutCause(ctx, a.o.DNSTimeout, fmt.Errorf("A/AAAA lookup of %s took longer than %s", host, a.o.DNSTimeout))
		addrs, err = discover.LookupAddrs(dctx, a.o.Resolver, host)
		cancel()
		if err == nil && len(addrs) == 0 {
			err = &discover.Error{Op: discover.OpResolve, Name: host, Kind: discover.KindNoRecords}
		}
		if err != nil {
			a.fail(resolveFailure(t, err), c)
			return nil
		}
		list := make([]string, len(addrs))
		for i, ip := range addrs {
			list[i] = ip.String()
		}
		a.ok(linkstate.StepResolve, host, c, fmt.Sprintf("looked up A/AAAA %s: %s", host, strings.Join(list, ", ")))
	}

	for _, ip := range addrs {
		if ctx.Err() != nil {
			return nil
		}
		ap := netip.AddrPortFrom(ip, t.Port)
		c := a.start()
		nc, f := a.connect(ctx, t, ap)
		if f != nil {
			a.fail(f, c)
			continue // the next address of this target
		}
		a.ok(linkstate.StepConnect, t.Addr(), c, fmt.Sprintf("TCP connection to %s established from %s", ap, nc.LocalAddr()))
		// Past TCP, a failure is the server's (its certificate, its registry): the next
		// address of the same name is the same server, so move on to the next target.
		reg := a.secure(ctx, nc, t, ap, domain, componentJID)
		return reg
	}
	return nil
}

func (a *attempt) connect(ctx context.Context, t discover.Target, ap netip.AddrPort) (net.Conn, *Failure) {
	d := net.Dialer{Timeout: a.o.ConnectTimeout}
	nc, err := d.DialContext(ctx, "tcp", ap.String())
	if err == nil {
		return nc, nil
	}
	f := &Failure{Step: linkstate.StepConnect, Reason: linkstate.ReasonConnect, Target: t.Addr(), Err: err}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		f.Cause = "connection-refused"
		f.Detail = fmt.Sprintf("TCP connect to %s: connection refused", ap)
		f.Remedy = fmt.Sprintf("nothing listens on %s: start the XMPP server (confab xmpp) or correct the port; the component port is %d", ap, DefaultPort)
	case errors.Is(err, context.Canceled):
		f.Cause = "canceled"
		f.Detail = fmt.Sprintf("TCP connect to %s abandoned", ap)
	case isTimeout(err):
		f.Cause = "timeout"
		f.Detail = fmt.Sprintf("TCP connect to %s: no answer within %s", ap, a.o.ConnectTimeout)
		f.Remedy = fmt.Sprintf("a firewall may be dropping the packets, or the host is down: allow TCP port %d from the Call Bridge to %s", ap.Port(), ap.Addr())
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		f.Cause = "unreachable"
		f.Detail = fmt.Sprintf("TCP connect to %s: %v", ap, err)
		f.Remedy = "there is no route to " + ap.Addr().String() + ": check the address in DNS and the network path"
	default:
		f.Cause = "connect-error"
		f.Detail = fmt.Sprintf("TCP connect to %s: %v", ap, err)
		f.Remedy = "check the address and the network path to the XMPP server"
	}
	return nil, f
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// secure runs steps 7 to 10 on a connected socket, which it owns.
func (a *attempt) secure(ctx context.Context, nc net.Conn, t discover.Target, ap netip.AddrPort, domain, componentJID string) *Registration {
	// Step 7: TLS. The chain is verified here; the names are checked at step 8 so that a
	// missing name is reported as such, with both names checked at once.
	c := a.start()
	tc, leaf, asked, f := a.handshakeTLS(ctx, nc, t, ap, domain)
	if f != nil {
		_ = nc.Close()
		a.fail(f, c)
		return nil
	}
	a.ok(linkstate.StepTLS, t.Addr(), c, describeTLS(tc.ConnectionState(), leaf, a.o, asked))

	// Step 8: both the XMPP domain and the target's name must be subjectAltNames.
	c = a.start()
	if err := certs.CheckSANs(leaf, domain, t.Host); err != nil {
		_ = tc.Close()
		f := &Failure{Step: linkstate.StepSAN, Reason: linkstate.ReasonConnect, Cause: certs.CauseMissingSAN,
			TLSCause: certs.CauseMissingSAN, Target: t.Addr(), Err: err}
		var ms *certs.MissingSANError
		if errors.As(err, &ms) {
			f.Detail = fmt.Sprintf("checked that the certificate covers %s and %s: %v", domain, t.Host, ms)
			f.Remedy = "reissue the XMPP server's certificate with subjectAltName " + ms.Remedy()
			if other := presentedDomain(leaf, domain, t.Host); other != "" && slices.Contains(ms.Missing, domain) {
				// The server is for another domain: most likely the Domain field is wrong,
				// and adding the typo to the certificate would be the wrong fix.
				f.Cause = CauseDomainMismatch
				f.Detail += fmt.Sprintf(": the XMPP server presents the domain %s, not %s", other, domain)
				f.Remedy = fmt.Sprintf("the XMPP server presents %s: is the Domain field (%s) right? If the XMPP domain is %s, set domain to %s (the certificate is then fine)", other, domain, other, other)
				if len(ms.Missing) > 1 || !strings.EqualFold(ms.Missing[0], domain) {
					f.Remedy += fmt.Sprintf(" and check that %s is this server's name", t.Host)
				}
				f.Remedy += fmt.Sprintf("; only if %s is the right domain, reissue the certificate with subjectAltName %s", domain, ms.Remedy())
			}
		} else {
			f.Detail = fmt.Sprintf("checked that the certificate covers %s and %s: %v", domain, t.Host, err)
			f.Remedy = fmt.Sprintf("reissue the XMPP server's certificate with subjectAltName DNS:%s, DNS:%s", domain, t.Host)
		}
		a.fail(f, c)
		return nil
	}
	a.ok(linkstate.StepSAN, t.Addr(), c, fmt.Sprintf("the certificate covers the XMPP domain %s and the server name %s (subjectAltNames: %s)",
		domain, t.Host, strings.Join(sans(leaf), ", ")))

	if a.o.NoRegister {
		_ = tc.Close()
		a.skip(linkstate.StepHandshake, t.Addr(), "not run: asked to stop before registering")
		a.skip(linkstate.StepVerdict, t.Addr(), "not run: asked to stop before registering")
		return &Registration{Target: t, Address: ap, Certificate: leaf}
	}

	// Steps 9 and 10: the XEP-0114 stream, the handshake, and the server's verdict.
	c = a.start()
	hctx, cancel := context.WithTimeoutCause(ctx, a.o.HandshakeTimeout, fmt.Errorf("XEP-0114 handshake with %s took longer than %s", t.Addr(), a.o.HandshakeTimeout))
	handshake := component.Handshake
	if a.o.Probe {
		handshake = component.Probe
	}
	conn, err := handshake(hctx, tc, componentJID, a.cfg.SharedSecret, a.o.Limits)
	cancel()
	if err != nil {
		a.handshakeFailure(err, t, domain, componentJID, c)
		return nil
	}
	a.ok(linkstate.StepHandshake, t.Addr(), c, fmt.Sprintf("opened a component stream to %s (stream id %s) and sent the handshake hex(SHA-1(stream id + sharedSecret))",
		componentJID, conn.StreamID()))
	a.ok(linkstate.StepVerdict, t.Addr(), a.start(), fmt.Sprintf("the XMPP server answered <handshake/>: registered as %s", componentJID))
	return &Registration{Conn: conn, Target: t, Address: ap, Certificate: leaf}
}

// handshakeTLS runs the TLS handshake. The SNI is the XMPP domain, whatever address was
// dialled (an SRV target, serverAddressOverride), as XEP-0368 §3 and RFC 6120 §13.7.2.1 ask:
// a server with several hosts picks its certificate by it. The names are checked at step 8.
func (a *attempt) handshakeTLS(ctx context.Context, nc net.Conn, t discover.Target, ap netip.AddrPort, domain string) (*tls.Conn, *x509.Certificate, bool, *Failure) {
	cfg, err := certs.ClientConfig(certs.ClientOptions{RootCAs: a.o.RootCAs, ServerName: domain})
	if err != nil {
		return nil, nil, false, &Failure{Step: linkstate.StepTLS, Reason: linkstate.ReasonConnect, Cause: certs.CauseHandshakeFailure,
			TLSCause: certs.CauseHandshakeFailure, Target: t.Addr(), Detail: err.Error(), Err: err}
	}
	var leaf *x509.Certificate
	var chainErr error
	asked := false
	// Verify the chain ourselves (VerifyConnection runs even with InsecureSkipVerify) so that
	// names are left to step 8.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			chainErr = errors.New("the server sent no certificate")
			return chainErr
		}
		leaf = cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, chainErr = leaf.Verify(x509.VerifyOptions{
			Roots:         a.o.RootCAs,
			Intermediates: inter,
			CurrentTime:   a.o.Now(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		return chainErr
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		if a.o.ClientCert == nil {
			return &tls.Certificate{}, nil
		}
		return a.o.ClientCert, nil
	}
	tc := tls.Client(nc, cfg)
	tctx, cancel := context.WithTimeoutCause(ctx, a.o.TLSTimeout, fmt.Errorf("TLS handshake with %s took longer than %s", ap, a.o.TLSTimeout))
	defer cancel()
	err = tc.HandshakeContext(tctx)
	if err == nil {
		return tc, leaf, asked, nil
	}
	if chainErr != nil {
		err = chainErr
	}
	cause, detail := certs.ClassifyTLSError(err)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		cause, detail = "canceled", "TLS handshake abandoned"
	}
	f := &Failure{Step: linkstate.StepTLS, Reason: linkstate.ReasonConnect, Cause: cause, TLSCause: cause,
		Target: t.Addr(), Detail: fmt.Sprintf("TLS handshake with %s: %s", ap, detail), Err: err}
	f.Remedy = tlsRemedy(cause, t, a.o, asked, leaf)
	return nil, nil, false, f
}

func tlsRemedy(cause string, t discover.Target, o AttemptOptions, asked bool, leaf *x509.Certificate) string {
	switch cause {
	case certs.CauseUnknownAuthority:
		if leaf != nil {
			return fmt.Sprintf("add the CA that issued the XMPP server's certificate (%q) to the Call Bridge's trust store, or install a certificate on the XMPP server issued by a CA the Call Bridge trusts", leaf.Issuer.CommonName)
		}
		return "add the CA that issued the XMPP server's certificate to the Call Bridge's trust store"
	case certs.CauseExpired:
		return "renew the XMPP server's certificate (and check both machines' clocks)"
	case certs.CauseBadCertificate:
		if o.ClientCert == nil {
			return "the XMPP server requires a client certificate: configure one for the Call Bridge, issued by a CA the XMPP server trusts"
		}
		return "the XMPP server rejected the Call Bridge's client certificate: issue it from a CA in the XMPP server's client CA list, for client authentication"
	case certs.CauseNotTLS:
		return fmt.Sprintf("%s does not speak TLS: point the Call Bridge at the XMPP server's component port (%d), which expects TLS from the first byte", t.Addr(), DefaultPort)
	case certs.CauseProtocolVersion:
		return "enable TLS 1.2 or 1.3 on the XMPP server"
	case certs.CauseTimeout:
		return fmt.Sprintf("something accepts TCP on %s but does not answer TLS: check that it is the XMPP server's component port", t.Addr())
	case certs.CauseEOF:
		if asked && o.ClientCert == nil {
			return "the XMPP server closed the connection after asking for a client certificate: configure one for the Call Bridge"
		}
		return "the XMPP server closed the connection during the TLS handshake: check its log, and that this is its component port"
	}
	return "check the XMPP server's TLS configuration and its log"
}

func describeTLS(cs tls.ConnectionState, leaf *x509.Certificate, o AttemptOptions, asked bool) string {
	roots := "the system trust store"
	if o.RootCAs != nil {
		roots = "the configured trust store"
	}
	s := fmt.Sprintf("%s, %s; certificate %q issued by %q, valid until %s; chain verified against %s",
		tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite),
		leaf.Subject.CommonName, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339), roots)
	switch {
	case asked && o.ClientCert != nil:
		s += "; the server asked for a client certificate and got ours"
	case asked:
		s += "; the server asked for a client certificate, none configured"
	}
	return s
}

func sans(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.DNSNames {
		out = append(out, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	return out
}

// isVerdict reports whether a handshake answer is the XMPP server's verdict on the name and
// secret (CMS authenticationFailure); anything else means it never judged them.
func isVerdict(condition string) bool {
	switch condition {
	case stream.NotAuthorized, stream.HostUnknown, stream.Conflict, stream.InvalidFrom, "improper-addressing":
		return true
	}
	return false
}

func (a *attempt) handshakeFailure(err error, t discover.Target, domain, componentJID string, c clock) {
	var he *component.HandshakeError
	if !errors.As(err, &he) {
		he = &component.HandshakeError{Condition: "eof", Text: err.Error(), Err: err}
	}
	name := strings.TrimSpace(a.cfg.UniqueName)
	f := &Failure{Target: t.Addr(), Cause: he.Condition, Err: err}
	said := ""
	if he.Text != "" {
		said = fmt.Sprintf(" (%q)", he.Text)
	}
	if he.Err != nil && !isVerdict(he.Condition) {
		// Under TLS 1.3 the server checks our certificate after the client's side of the
		// TLS handshake is done, so its refusal arrives as an alert on the first read.
		if cause, detail := certs.ClassifyTLSError(he.Err); cause == certs.CauseBadCertificate {
			f.Step, f.Reason, f.Cause, f.TLSCause = linkstate.StepHandshake, linkstate.ReasonConnect, cause, cause
			f.Detail = "the XMPP server ended the TLS session when the component stream opened: " + detail
			f.Remedy = tlsRemedy(cause, t, a.o, true, nil)
			a.fail(f, c)
			return
		}
	}
	if isVerdict(he.Condition) {
		// The stream was opened and answered: step 9 worked, step 10 is the refusal.
		a.ok(linkstate.StepHandshake, t.Addr(), c, fmt.Sprintf("opened a component stream to %s and sent the handshake", componentJID))
		c = a.start()
		f.Step, f.Reason = linkstate.StepVerdict, linkstate.ReasonAuthentication
		f.Detail = fmt.Sprintf("the XMPP server refused %s with <%s/>%s", componentJID, he.Condition, said)
		switch he.Condition {
		case stream.NotAuthorized:
			f.Detail = fmt.Sprintf("the XMPP server refused %s with <not-authorized/>%s: the shared secret does not match (some servers, ejabberd among them, also answer so for a name they do not know)", componentJID, said)
			f.Remedy = fmt.Sprintf("make sharedSecret match the secret the XMPP server holds for %s: set it there with `confab xmpp callbridge add-secret %s` (MMP `xmpp callbridge add-secret %s`), or copy the one `xmpp callbridge add %s` printed into sharedSecret; and check that %s is registered on the XMPP server at all", name, name, name, name, componentJID)
		case stream.HostUnknown:
			f.Detail = fmt.Sprintf("the XMPP server refused %s with <host-unknown/>%s: it does not know this Call Bridge name", componentJID, said)
			f.Remedy = fmt.Sprintf("register the Call Bridge on the XMPP server with `confab xmpp callbridge add %s` (MMP `xmpp callbridge add %s`), and check that domain is the XMPP server's domain", name, name)
			if other := he.ServerDomain; other != "" && !strings.EqualFold(other, domain) {
				// Not an unknown name: a component of a domain the server does not serve.
				f.Cause = CauseDomainMismatch
				f.Detail = fmt.Sprintf("the XMPP server refused %s with <host-unknown/>%s: it serves the domain %s, not %s", componentJID, said, other, domain)
				f.Remedy = fmt.Sprintf("the XMPP server presents %s: is the Domain field (%s) right? If the XMPP domain is %s, set domain to %s (the Call Bridge then registers as %s.%s)", other, domain, other, other, name, other)
			}
		case stream.Conflict:
			f.Reason = linkstate.ReasonDuplicateName
			f.Detail = fmt.Sprintf("the XMPP server refused %s with <conflict/>%s: another Call Bridge with this name is connected", componentJID, said)
			f.Remedy = fmt.Sprintf("give every Call Bridge its own uniqueName (and register each on the XMPP server); if the other %s is this one's old link, it will time out", name)
		default:
			f.Remedy = "check the XMPP server's log for why it refused the component"
		}
	} else {
		f.Step, f.Reason = linkstate.StepHandshake, linkstate.ReasonConnect
		switch he.Condition {
		case stream.PolicyViolation:
			// Confab's XMPP server blocks an address after repeated failed handshakes (a wrong
			// secret), and says until when; the block holds even for the right secret.
			f.Reason = linkstate.ReasonAuthentication
			f.Detail = fmt.Sprintf("the XMPP server refused %s with <policy-violation/>%s: it blocks this Call Bridge's address after too many failed handshakes (a wrong sharedSecret), even with the right one, until the time it gives", componentJID, said)
			f.Remedy = fmt.Sprintf("make sharedSecret right, then have the XMPP server's administrator run `confab xmpp callbridge unblock %s` (or wait until the block ends)", name)
		case "timeout":
			f.Detail = fmt.Sprintf("opened a component stream to %s: the server did not answer in time%s", componentJID, said)
			f.Remedy = fmt.Sprintf("check that %s is an XMPP server's component port, and the XMPP server's log", t.Addr())
		case "no-stream":
			f.Detail = fmt.Sprintf("opened a component stream to %s: the server did not answer with a component stream%s", componentJID, said)
			f.Remedy = fmt.Sprintf("%s is not an XMPP component port: point the Call Bridge at the XMPP server's component port (%d)", t.Addr(), DefaultPort)
		case "canceled":
			f.Detail = "handshake abandoned"
		default:
			f.Detail = fmt.Sprintf("opened a component stream to %s: <%s/>%s", componentJID, he.Condition, said)
			f.Remedy = "check the XMPP server's log"
		}
	}
	a.fail(f, c)
}
