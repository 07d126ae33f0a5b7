package link_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/callbridge/link"
	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/discover/dnstest"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/xmppd"
	"confab.dev/confab/internal/xmppd/xmppdtest"
)

// These tests run the link against Confab's real XMPP server.

func startXMPP(t *testing.T, o xmppdtest.Options) (*xmppdtest.Harness, store.XMPPSettings) {
	t.Helper()
	o.NoCallBridge = true
	h := xmppdtest.Start(t, o)
	s, ok := h.Registry.Lookup(xmppdtest.DefaultCallBridge)
	if !ok {
		t.Fatal("cb1 is not in the harness registry")
	}
	return h, store.XMPPSettings{UniqueName: xmppdtest.DefaultCallBridge, Domain: h.Domain, ServerAddressOverride: h.ComponentAddr, SharedSecret: s}
}

func xmppOptions(t *testing.T, h *xmppdtest.Harness) link.Options {
	return link.Options{
		RootCAs:    h.Roots,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		ConnectTimeout: 2 * time.Second, TLSTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second,
		Logger: newTestLogger(t),
	}
}

// waitLinks waits until the XMPP server lists exactly jids as connected Call Bridges.
func waitLinks(t *testing.T, h *xmppdtest.Harness, jids ...string) {
	t.Helper()
	want := strings.Join(jids, ",")
	h.WaitLinks(t, func(got []string) bool { return strings.Join(got, ",") == want })
}

// relayHandler answers login relay requests from the harness's directory, as the Call
// Bridge does, and records step 12 on the link.
func relayHandler(h *xmppdtest.Harness, l **link.Link) func(context.Context, *component.Conn, *stream.Element) {
	r := &loginrelay.Responder{Domain: h.Domain, Dir: h.Directory,
		OnLogin: func(jid string, ok bool, reason string) {
			e := linkstate.Event{Step: linkstate.StepLogin, Outcome: linkstate.OK, Detail: "login of " + jid + " relayed over the link: accepted"}
			if !ok {
				e.Outcome, e.Cause, e.Detail = linkstate.Failed, reason, "login of "+jid+" relayed over the link: refused"
			}
			(*l).Record(e)
		},
	}
	return func(ctx context.Context, c *component.Conn, e *stream.Element) {
		switch e.Name.Local {
		case "iq":
			if reply := r.HandleIQ(ctx, e); reply != nil {
				_ = c.Write(reply)
			}
		case "message":
			r.HandleMessage(e)
		}
	}
}

func TestXMPPServerRegistersAndRelaysLogins(t *testing.T) {
	h, cfg := startXMPP(t, xmppdtest.Options{})
	o := xmppOptions(t, h)
	var l *link.Link
	o.Handler = relayHandler(h, &l)
	l = link.New(cfg, o)
	start(t, l)
	st := waitFor(t, l, "registration", registered)
	if st.Alarm != nil {
		t.Errorf("alarm %+v while registered", st.Alarm)
	}
	waitLinks(t, h, "cb1.example.com")

	// Step 12: the XMPP server uses the link for a login.
	alice := h.Login(t, "alice")
	if !strings.HasPrefix(alice.JID, "alice@example.com/") {
		t.Errorf("alice's JID = %q", alice.JID)
	}
	waitFor(t, l, "the login event", func(linkstate.Status) bool { return hasEvent(l, linkstate.StepLogin, linkstate.OK, "") })
}

func TestXMPPServerThroughSRV(t *testing.T) {
	// The harness certificate names example.com and localhost, so the SRV target is
	// localhost; its A and AAAA records include ::1, where nothing listens, so this also
	// shows the attempt moving on to the next address of a target.
	h, cfg := startXMPP(t, xmppdtest.Options{})
	_, port, _ := net.SplitHostPort(h.ComponentAddr)
	var p uint16
	fmt.Sscan(port, &p)
	dns := dnstest.Start(t, dnstest.Zone{
		"_xmpp-component._tcp.example.com": {SRV: []dnstest.SRV{{Priority: 0, Weight: 0, Port: p, Target: "localhost"}}},
		"localhost":                        {A: []string{"127.0.0.1"}, AAAA: []string{"::1"}},
	})
	cfg.ServerAddressOverride = ""
	o := xmppOptions(t, h)
	o.Resolver = discover.NewResolver(dns.Addr, time.Second)
	l := link.New(cfg, o)
	start(t, l)
	st := waitFor(t, l, "registration", registered)
	if got, want := st.Server, "localhost:"+port; got != want {
		t.Errorf("Server = %q, want %q", got, want)
	}
	waitLinks(t, h, "cb1.example.com")
}

func TestXMPPServerRefuses(t *testing.T) {
	h, good := startXMPP(t, xmppdtest.Options{})
	wrong := good
	wrong.SharedSecret = secret.New("not-the-secret")
	unknown := good
	unknown.UniqueName = "cb7"
	for _, tc := range []struct {
		name   string
		cfg    store.XMPPSettings
		cause  string
		detail string
	}{
		{"wrong secret", wrong, "not-authorized", "shared secret does not match"},
		{"unknown name", unknown, "host-unknown", "does not know this Call Bridge name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := link.New(tc.cfg, xmppOptions(t, h))
			start(t, l)
			st := waitFor(t, l, "the authentication alarm", alarmed(linkstate.ReasonAuthentication))
			if !strings.Contains(st.Alarm.Detail, tc.cause) || !strings.Contains(st.Alarm.Detail, tc.detail) {
				t.Errorf("alarm detail %q: want %q and %q", st.Alarm.Detail, tc.cause, tc.detail)
			}
			if !hasEvent(l, linkstate.StepVerdict, linkstate.Failed, tc.cause) {
				t.Errorf("no step 10 failure %s:\n%s", tc.cause, summary(l.Trace(0)))
			}
			if l.Conn() != nil {
				t.Error("Conn() != nil while refused")
			}
			// The right settings clear the alarm.
			l.Apply(good)
			waitFor(t, l, "registration", func(s linkstate.Status) bool { return registered(s) && s.Alarm == nil })
		})
	}
}

func TestXMPPServerDuplicateName(t *testing.T) {
	t.Run("kick_old", func(t *testing.T) {
		h, cfg := startXMPP(t, xmppdtest.Options{Config: func(c *xmppd.Config) { c.DuplicateComponent = xmppd.KickOld }})
		old := h.ConnectCallBridge(t, "cb1")
		l := link.New(cfg, xmppOptions(t, h))
		start(t, l)
		waitFor(t, l, "registration", registered)
		select {
		case <-old.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the old link was not replaced")
		}
		if got := old.StreamError(); got != stream.Conflict {
			t.Errorf("old link ended with %q, want conflict", got)
		}
		waitLinks(t, h, "cb1.example.com")
	})
	// reject is the XMPP server's default: the link's alarm says another Call Bridge with
	// this name is connected (failureReason duplicateName, before authenticationFailure).
	t.Run("reject", func(t *testing.T) {
		h, cfg := startXMPP(t, xmppdtest.Options{})
		other := h.ConnectCallBridge(t, "cb1")
		l := link.New(cfg, xmppOptions(t, h))
		start(t, l)
		st := waitFor(t, l, "the duplicate-name alarm", alarmed(linkstate.ReasonDuplicateName))
		if !strings.Contains(st.Alarm.Detail, "conflict") || !strings.Contains(st.Alarm.Detail, "another Call Bridge with this name is connected") {
			t.Errorf("alarm detail %q does not say another Call Bridge with this name is connected", st.Alarm.Detail)
		}
		// The refusal is a conflict at step 10 (a stream error instead of <handshake/>) or,
		// from a server that answers <handshake/> before it looks for duplicates, at once
		// on the active link (step 11).
		var f linkstate.Event
		for _, e := range l.Trace(0) {
			if (e.Step == linkstate.StepVerdict || e.Step == linkstate.StepActive) && e.Outcome == linkstate.Failed {
				f = e
			}
		}
		if f.Cause != stream.Conflict || !strings.Contains(f.Remedy, "uniqueName") {
			t.Errorf("failure %+v: want conflict and a remedy about uniqueName", f)
		}
		// When the other Call Bridge leaves, this one gets in.
		other.Close()
		waitFor(t, l, "registration", func(s linkstate.Status) bool { return registered(s) && s.Alarm == nil })
		waitLinks(t, h, "cb1.example.com")
	})
}

func TestXMPPServerRestart(t *testing.T) {
	h, cfg := startXMPP(t, xmppdtest.Options{})
	l := link.New(cfg, xmppOptions(t, h))
	start(t, l)
	waitFor(t, l, "registration", registered)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	waitFor(t, l, "the connect alarm", alarmed(linkstate.ReasonConnect))
	if !hasEvent(l, linkstate.StepActive, linkstate.Failed, stream.SystemShutdown) {
		t.Errorf("no record of the server's shutdown:\n%s", summary(l.Trace(0)))
	}

	// A new server on the same address: the link comes back by itself.
	c := h.Config
	c.Metrics = prometheus.NewRegistry()
	srv, err := xmppd.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", h.ComponentAddr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", h.ComponentAddr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeComponents(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, xmppd.ErrServerClosed) {
			t.Errorf("ServeComponents = %v", err)
		}
	})
	waitFor(t, l, "registration with the restarted server", func(s linkstate.Status) bool { return registered(s) && s.Alarm == nil })
	xmppdtest.Eventually(t, 5*time.Second, "cb1.example.com linked to the restarted server", func() bool {
		links := srv.Components()
		return len(links) == 1 && links[0].JID == "cb1.example.com"
	})
}

func TestXMPPServerApply(t *testing.T) {
	h, cfg := startXMPP(t, xmppdtest.Options{})
	s2, err := h.Registry.Add("cb2")
	if err != nil {
		t.Fatal(err)
	}
	h.Server.RegistryChanged()
	l := link.New(cfg, xmppOptions(t, h))
	start(t, l)
	waitFor(t, l, "registration", registered)
	waitLinks(t, h, "cb1.example.com")

	cb2 := cfg
	cb2.UniqueName, cb2.SharedSecret = "cb2", s2
	l.Apply(cb2)
	waitFor(t, l, "registration as cb2", func(s linkstate.Status) bool { return registered(s) && s.ComponentJID == "cb2.example.com" })
	waitLinks(t, h, "cb2.example.com")
	if !hasEvent(l, linkstate.StepActive, linkstate.Skipped, "settings-changed") {
		t.Errorf("no record of the link going down for the new settings:\n%s", summary(l.Trace(0)))
	}
}

func TestXMPPServerMutualTLS(t *testing.T) {
	h, cfg := startXMPP(t, xmppdtest.Options{MutualTLS: true})
	t.Run("without a client certificate", func(t *testing.T) {
		l := link.New(cfg, xmppOptions(t, h))
		start(t, l)
		st := waitFor(t, l, "the connect alarm", alarmed(linkstate.ReasonConnect))
		if st.Alarm.TLSCause != "bad-certificate" {
			t.Errorf("TLS cause = %q, want bad-certificate (%s)\n%s", st.Alarm.TLSCause, st.Alarm.Detail, summary(l.Trace(0)))
		}
	})
	t.Run("with a client certificate", func(t *testing.T) {
		o := xmppOptions(t, h)
		cert := h.ClientCert.Cert
		o.ClientCert = &cert
		l := link.New(cfg, o)
		start(t, l)
		waitFor(t, l, "registration", registered)
		var tlsEvent linkstate.Event
		for _, e := range l.Trace(0) {
			if e.Step == linkstate.StepTLS {
				tlsEvent = e
			}
		}
		if !strings.Contains(tlsEvent.Detail, "asked for a client certificate and got ours") {
			t.Errorf("TLS detail %q does not say the client certificate was presented", tlsEvent.Detail)
		}
	})
}
