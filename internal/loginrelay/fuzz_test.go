package loginrelay

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/throttle"
)

// fuzzResponder is a Responder over a small directory, with throttling off so that the
// fuzzer keeps reaching the SASL code.
func fuzzResponder(tb testing.TB) *Responder {
	tb.Helper()
	dir := NewMemoryDirectory(domain)
	if err := dir.Add("alice", "correct horse"); err != nil {
		tb.Fatal(err)
	}
	if err := dir.AddPlainOnly("lara", "ldap-secret"); err != nil {
		tb.Fatal(err)
	}
	return &Responder{Domain: domain, Dir: dir,
		AccountThrottle: throttle.Config{Off: true}, SourceThrottle: throttle.Config{Off: true}}
}

var passwords = map[string]string{"alice": "correct horse", "lara": "ldap-secret"}

// checkAnswer parses what HandleIQ wrote for request req and returns its payload's kind
// ("challenge", "success", "failure", or "error" for an IQ error).
func checkAnswer(t *testing.T, req *stream.Element, ans []byte) string {
	t.Helper()
	el, err := stream.Parse(ans, stream.NSComponent, stream.Limits{})
	if err != nil {
		t.Fatalf("the responder wrote unparseable XML: %v\n%s", err, ans)
	}
	if el.Name.Local != "iq" || el.Get("id") != req.Get("id") || el.Get("to") != req.Get("from") {
		t.Fatalf("answer %s does not answer %s", el, req)
	}
	switch el.Get("type") {
	case "error":
		return "error"
	case "result":
	default:
		t.Fatalf("answer of type %q", el.Get("type"))
	}
	var v struct {
		Challenge *challengePayload
		Success   *successPayload
		Failure   *failurePayload
	}
	if err := el.Decode(&v); err != nil {
		t.Fatalf("answer does not decode: %v\n%s", err, ans)
	}
	switch {
	case v.Challenge != nil:
		return KindChallenge
	case v.Success != nil:
		return KindSuccess
	case v.Failure != nil:
		if v.Failure.Condition == "" {
			t.Fatalf("failure without a condition: %s", ans)
		}
		return KindFailure
	}
	t.Fatalf("result without a payload: %s", ans)
	return ""
}

// plainIsRight reports whether a base64 PLAIN message carries a right password.
func plainIsRight(data string) bool {
	b, err := decode64(data)
	if err != nil {
		return false
	}
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 {
		return false
	}
	user := strings.TrimSuffix(string(parts[1]), "@"+domain)
	p, ok := passwords[user]
	return ok && p == string(parts[2])
}

// FuzzResponderIQ hands the Call Bridge's Responder arbitrary stanzas, as a component link
// would deliver them, and checks that every answer is a well-formed IQ answering the request
// and that nothing but the right PLAIN password succeeds.
func FuzzResponderIQ(f *testing.F) {
	const head = `<iq type="set" id="r1" from="example.com" to="cb1.example.com">`
	for _, s := range []string{
		head + `<auth xmlns="urn:confab:login:1" session="s1" mechanism="PLAIN" addr="192.0.2.1:5000">AGFsaWNlAGNvcnJlY3QgaG9yc2U=</auth></iq>`,
		head + `<auth xmlns="urn:confab:login:1" session="s1" mechanism="PLAIN">AGFsaWNlAHdyb25n</auth></iq>`,
		head + `<auth xmlns="urn:confab:login:1" session="s1" mechanism="SCRAM-SHA-256">biwsbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnYyOXhrbFE=</auth></iq>`,
		head + `<auth xmlns="urn:confab:login:1" session="s1" mechanism="SCRAM-SHA-1">=</auth></iq>`,
		head + `<response xmlns="urn:confab:login:1" session="s1">Yz1iaXdzLHI9</response></iq>`,
		head + `<abort xmlns="urn:confab:login:1" session="s1"/></iq>`,
		head + `<auth xmlns="urn:confab:login:1" session="" mechanism="X"/></iq>`,
		head + `<auth xmlns="urn:confab:login:1" session="s1" mechanism="PLAIN">!!!</auth></iq>`,
		`<iq type="set" id="r2" from="alice@example.com/x" to="cb1.example.com"><auth xmlns="urn:confab:login:1" session="s" mechanism="PLAIN"/></iq>`,
		`<iq type="get" id="r3" from="example.com"><auth xmlns="urn:confab:login:1"/></iq>`,
		`<message from="example.com"><session-end xmlns="urn:confab:login:1" jid="alice@example.com/r"/></message>`,
	} {
		f.Add([]byte(s))
	}
	r := fuzzResponder(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := stream.Parse(data, stream.NSComponent, stream.Limits{MaxStanza: 64 << 10})
		if err != nil {
			return // the link's reader refuses it before the Responder sees it
		}
		if el.Name.Local == "message" {
			r.HandleMessage(el)
			return
		}
		ans := r.HandleIQ(ctx, el)
		if ans == nil {
			return
		}
		if checkAnswer(t, el, ans) == KindSuccess {
			var v struct{ Auth *authPayload }
			if el.Decode(&v) != nil || v.Auth == nil || v.Auth.Mechanism != MechPLAIN || !plainIsRight(v.Auth.Data) {
				t.Fatalf("success for %s", data)
			}
		}
		if n := r.Sessions(); n > 10000 {
			t.Fatalf("%d sessions held", n)
		}
	})
}

// FuzzSASL runs one SASL exchange with arbitrary client messages through the Responder: an
// <auth/> with the first (or none), then, after a challenge, a <response/> with the second.
func FuzzSASL(f *testing.F) {
	f.Add(uint8(0), true, []byte("\x00alice\x00correct horse"), []byte(nil))
	f.Add(uint8(0), false, []byte(nil), []byte("alice@example.com\x00alice\x00correct horse"))
	f.Add(uint8(1), true, []byte("n,,n=alice,r=abcdefgh"), []byte("c=biws,r=abcdefgh,p=AAAA"))
	f.Add(uint8(2), true, []byte("n,a=bob,n=alice,r=x"), []byte("c=biws"))
	f.Add(uint8(2), true, []byte("p=tls-unique,,n=alice,r=x"), []byte(""))
	f.Add(uint8(1), true, []byte("n,,n=lara,r=x"), []byte(""))
	f.Add(uint8(3), true, []byte("x"), []byte("y"))
	mechs := []string{MechPLAIN, MechSCRAMSHA1, MechSCRAMSHA256, "DIGEST-MD5"}
	r := fuzzResponder(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, m uint8, initial bool, first, second []byte) {
		mech := mechs[int(m)%len(mechs)]
		session := randomID()
		var data []byte
		if initial {
			data = first
		}
		auth := marshal(iq{Type: "set", ID: "a", From: domain, To: "cb1." + domain,
			Payload: authPayload{Session: session, Mechanism: mech, Addr: "192.0.2.1:5000", Data: encode64(data)}})
		req, err := stream.Parse(auth, stream.NSComponent, stream.Limits{})
		if err != nil {
			t.Fatalf("our own request does not parse: %v", err)
		}
		kind := checkAnswer(t, req, r.HandleIQ(ctx, req))
		for step := 0; kind == KindChallenge && step < 2; step++ {
			msg := second
			if step == 0 && !initial {
				msg = first
			}
			resp := marshal(iq{Type: "set", ID: "b", From: domain, To: "cb1." + domain,
				Payload: responsePayload{Session: session, Data: encode64(append([]byte{}, msg...))}})
			req, err := stream.Parse(resp, stream.NSComponent, stream.Limits{})
			if err != nil {
				t.Fatalf("our own response does not parse: %v", err)
			}
			kind = checkAnswer(t, req, r.HandleIQ(ctx, req))
		}
		switch kind {
		case KindSuccess:
			// The server nonce is random: only PLAIN can succeed without the password's proof.
			if mech != MechPLAIN || !(plainIsRight(encode64(first)) || plainIsRight(encode64(second))) {
				t.Fatalf("%s succeeded with %q, %q", mech, first, second)
			}
		case KindChallenge:
			r.take(session) // an exchange may go on; drop it so the table stays small
		}
		if r.Sessions() != 0 {
			t.Fatalf("a finished exchange left %d sessions", r.Sessions())
		}
	})
}

// answerLink is a Bridge that answers each request of the Client with a scripted payload.
type answerLink struct {
	c       *Client
	typ     string
	payload []byte
	t       *testing.T
}

func (l *answerLink) JID() string { return "cb1." + domain }

func (l *answerLink) Write(b []byte) error {
	req, err := stream.Parse(b, stream.NSComponent, stream.Limits{})
	if err != nil {
		l.t.Fatalf("the client wrote unparseable XML: %v\n%s", err, b)
	}
	if req.Get("type") != "set" {
		return nil // an abort
	}
	var ans []byte
	ans = append(ans, `<iq type="`+l.typ+`" id="`...)
	ans = stream.AppendEscaped(ans, req.Get("id"))
	ans = append(ans, `" from="cb1.example.com" to="example.com">`...)
	ans = append(ans, bytes.ReplaceAll(l.payload, []byte("SESSION"), []byte(sessionOf(req)))...)
	ans = append(ans, "</iq>"...)
	el, err := stream.Parse(ans, stream.NSComponent, stream.Limits{})
	if err != nil {
		// The link's reader would end the link: the exchange is lost.
		go l.c.Detach(l)
		return nil
	}
	if !l.c.HandleIQ(l, el) {
		l.t.Fatalf("the client did not take the answer to its own request: %s", ans)
	}
	return nil
}

func sessionOf(req *stream.Element) string {
	var v struct {
		Auth     *authPayload
		Response *responsePayload
	}
	_ = req.Decode(&v)
	switch {
	case v.Auth != nil:
		return v.Auth.Session
	case v.Response != nil:
		return v.Response.Session
	}
	return ""
}

// FuzzClientAnswer hands the XMPP server's Client arbitrary answers from a Call Bridge and
// checks that each step ends with a reply it can act on or an error, never a hang or a reply
// of an unknown kind.
func FuzzClientAnswer(f *testing.F) {
	for _, s := range []struct {
		typ     bool
		payload string
	}{
		{true, `<challenge xmlns="urn:confab:login:1" session="SESSION">cj1hYmM=</challenge>`},
		{true, `<success xmlns="urn:confab:login:1" session="SESSION" jid="alice@example.com">dj1hYmM=</success>`},
		{true, `<success xmlns="urn:confab:login:1" session="SESSION"/>`},
		{true, `<failure xmlns="urn:confab:login:1" session="SESSION" condition="not-authorized"><text>no</text></failure>`},
		{true, `<failure xmlns="urn:confab:login:1" session="other"/>`},
		{true, `<challenge xmlns="urn:confab:login:1" session="SESSION">!!</challenge>`},
		{false, `<error type="cancel"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>`},
		{true, ``},
	} {
		f.Add(s.typ, []byte(s.payload))
	}
	kinds := []string{KindChallenge, KindSuccess, KindFailure}
	f.Fuzz(func(t *testing.T, result bool, payload []byte) {
		c := NewClient(domain, 0, nil)
		l := &answerLink{c: c, typ: "error", payload: payload, t: t}
		if result {
			l.typ = "result"
		}
		c.Attach(l)
		x, r, err := c.Begin(context.Background(), MechSCRAMSHA256, []byte("n,,n=alice,r=x"), "192.0.2.1:5000", "tcp")
		for step := 0; err == nil && r.Kind == KindChallenge && step < 2; step++ {
			r, err = x.Respond(context.Background(), []byte("c=biws"))
		}
		if err != nil {
			if f := FailureReply(err); f.Kind != KindFailure || f.Condition != CondTemporaryAuthFail {
				t.Fatalf("FailureReply(%v) = %+v", err, f)
			}
			return
		}
		if !slices.Contains(kinds, r.Kind) {
			t.Fatalf("reply of kind %q", r.Kind)
		}
		if r.Kind == KindSuccess && r.JID == "" {
			t.Fatal("success without a JID")
		}
		if r.Kind == KindFailure && r.Condition == "" {
			t.Fatal("failure without a condition")
		}
		if r.Kind == KindChallenge {
			x.Abort()
		}
	})
}
