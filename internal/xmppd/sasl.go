package xmppd

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/stream"
)

// mechanisms are the SASL mechanisms offered, strongest first. Channel-binding (-PLUS)
// variants are not offered: the Call Bridge that checks the login does not see this TLS
// connection.
var mechanisms = loginrelay.Mechanisms()

// maxAuthFailures is how many failed SASL attempts a stream may make before it is closed
// [RFC 6120 §6.4.5 asks for a configurable limit of 2 to 5 retries].
const maxAuthFailures = 3

// saslConditions are the failure conditions of RFC 6120 §6.5; anything else the Call Bridge
// says is sent as not-authorized.
var saslConditions = map[string]bool{
	"aborted": true, "account-disabled": true, "credentials-expired": true,
	"encryption-required": true, "incorrect-encoding": true, "invalid-authzid": true,
	"invalid-mechanism": true, "malformed-request": true, "mechanism-too-weak": true,
	"not-authorized": true, "temporary-auth-failure": true,
}

// decodeSASL reads base64 SASL data as sent in <auth/> and <response/> [RFC 6120 §6.4.2]:
// nothing means no data (nil), "=" means empty.
func decodeSASL(inner []byte) ([]byte, error) {
	s := strings.TrimSpace(string(inner))
	switch s {
	case "":
		return nil, nil
	case "=":
		return []byte{}, nil
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}

func encodeSASL(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// authenticate relays one SASL exchange, starting with the client's <auth/>, to a Call
// Bridge. It returns true on success; false after a SASL failure the client may retry; an
// error when the stream must end.
func (ss *session) authenticate(auth *stream.Element, deadline time.Time) (bool, error) {
	s := ss.srv
	mech := auth.Get("mechanism")
	log := ss.log.With("mechanism", mech)
	known := false
	for _, m := range mechanisms {
		known = known || m == mech
	}
	if !known {
		return false, ss.loginFailed(log, "", "invalid-mechanism", "Mechanism "+mech+" is not offered")
	}
	initial, err := decodeSASL(auth.Inner)
	if err != nil {
		return false, ss.loginFailed(log, "", "incorrect-encoding", "The initial response is not valid base64")
	}
	ctx, cancel := context.WithTimeoutCause(ss.ctx, s.cfg.RelayTimeout, loginrelay.ErrTimeout)
	x, reply, err := s.relay.Begin(ctx, mech, initial, ss.t.remoteAddr(), ss.t.kind())
	cancel()
	for {
		if err != nil {
			if ss.ctx.Err() != nil {
				return false, fmt.Errorf("login interrupted: %w", context.Cause(ss.ctx))
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = loginrelay.ErrTimeout
			}
			f := loginrelay.FailureReply(err)
			log.Warn("login could not be relayed", "err", err, "callbridge", linkName(x))
			return false, ss.loginFailed(log, linkName(x), f.Condition, f.Text)
		}
		switch reply.Kind {
		case loginrelay.KindSuccess:
			return ss.loginSucceeded(log, x, reply)
		case loginrelay.KindFailure:
			cond := reply.Condition
			if !saslConditions[cond] {
				cond = "not-authorized"
			}
			return false, ss.loginFailed(log, linkName(x), cond, reply.Text)
		case loginrelay.KindChallenge:
		default:
			x.Abort()
			return false, ss.loginFailed(log, linkName(x), "temporary-auth-failure", "The Call Bridge gave an unusable answer")
		}
		var ch stream.Builder
		if err := ss.write(ch.Elem("challenge", string(encodeSASL(reply.Data)), "xmlns", nsSASL).B); err != nil {
			x.Abort()
			return false, err
		}
		e, rerr := ss.t.next(deadline)
		if rerr != nil {
			x.Abort()
			return false, rerr
		}
		switch e.Name {
		case xname(nsSASL, "response"):
		case xname(nsSASL, "abort"):
			x.Abort()
			return false, ss.loginFailed(log, linkName(x), "aborted", "")
		default:
			x.Abort()
			return false, &stream.Error{Condition: stream.NotAuthorized, Text: "expected a SASL <response/> or <abort/>"}
		}
		data, derr := decodeSASL(e.Inner)
		if derr != nil {
			x.Abort()
			return false, ss.loginFailed(log, linkName(x), "incorrect-encoding", "The response is not valid base64")
		}
		ctx, cancel := context.WithTimeoutCause(ss.ctx, s.cfg.RelayTimeout, loginrelay.ErrTimeout)
		reply, err = x.Respond(ctx, data)
		cancel()
	}
}

func linkName(x *loginrelay.Exchange) string {
	if x == nil || x.Bridge() == nil {
		return ""
	}
	return x.Bridge().JID()
}

// loginSucceeded checks the JID the Call Bridge vouches for and answers <success/>.
func (ss *session) loginSucceeded(log *slog.Logger, x *loginrelay.Exchange, reply loginrelay.Reply) (bool, error) {
	s := ss.srv
	j, err := jid.Parse(reply.JID)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" || j.Domainpart() != s.domain {
		log.Warn("call bridge vouched for an address outside this server; refusing the login", "jid", reply.JID, "callbridge", linkName(x))
		return false, ss.loginFailed(log, linkName(x), "temporary-auth-failure", "The Call Bridge returned an invalid address")
	}
	var ok stream.Builder
	if len(reply.Data) == 0 {
		ok.Empty("success", "xmlns", nsSASL)
	} else {
		ok.Elem("success", string(encodeSASL(reply.Data)), "xmlns", nsSASL)
	}
	if err := ss.write(ok.B); err != nil {
		return false, err
	}
	ss.authed = true
	if ss.unauthCounted {
		s.addrs.authenticated(ss.addrKey)
		ss.unauthCounted = false
	}
	ss.bare = j.String()
	ss.cb = x.Bridge()
	ss.guest = reply.Guest
	s.m.logins.WithLabelValues("success").Inc()
	log.Info("login", "outcome", "success", "user", ss.bare, "callbridge", linkName(x), "guest", ss.guest)
	return true, nil
}

// loginFailed answers <failure/> and counts the attempt; too many close the stream.
func (ss *session) loginFailed(log *slog.Logger, callbridge, cond, text string) error {
	ss.srv.m.logins.WithLabelValues(cond).Inc()
	log.Info("login", "outcome", cond, "text", text, "callbridge", callbridge)
	if err := ss.saslFailure(cond, text); err != nil {
		return err
	}
	if cond == "aborted" {
		return nil
	}
	ss.authFailures++
	if ss.authFailures >= maxAuthFailures {
		return &stream.Error{Condition: stream.PolicyViolation, Text: fmt.Sprintf("%d failed authentication attempts", ss.authFailures)}
	}
	return nil
}

func (ss *session) saslFailure(cond, text string) error {
	var x stream.Builder
	x.Open("failure", "xmlns", nsSASL).Empty(cond)
	if text != "" {
		x.Elem("text", text, "xml:lang", "en")
	}
	return ss.write(x.End("failure").B)
}
