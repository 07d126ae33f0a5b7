// Package loginrelay implements Confab's login relay protocol (namespace urn:confab:login:1),
// with which the XMPP server hands every client SASL exchange [RFC 6120 §6] to a Call Bridge
// over the Call Bridge's component link, so that the XMPP server itself stores no passwords.
//
// The XMPP server runs a Client: for each login it picks a connected Call Bridge (round
// robin), sends the client's mechanism and initial response in an <auth/> IQ, and relays
// challenges and responses until the Call Bridge answers <success/> or <failure/>. The whole
// exchange stays on the link it started on; if that link goes away, the exchange fails with
// ErrBridgeLost rather than starting over elsewhere, because SASL state lives on the Call Bridge.
//
// The Call Bridge runs a Responder, which is the SASL server: SCRAM-SHA-1 and SCRAM-SHA-256
// [RFC 5802, RFC 7677] against stored keys, and PLAIN [RFC 4616] against whatever its
// Directory checks (a stored hash, an LDAP bind). docs/protocol.md describes the wire format.
package loginrelay

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// NS is the namespace of the login relay protocol.
const NS = "urn:confab:login:1"

// Errors of the XMPP server's side. Each means the client's login fails with SASL
// temporary-auth-failure; FailureReply gives the text to show.
var (
	// ErrNoCallBridge: no Call Bridge link is attached, so nobody can check the login.
	ErrNoCallBridge = errors.New("no Call Bridge is connected to the XMPP server")
	// ErrBridgeLost: the link carrying the exchange went away (or failed a write) mid-exchange.
	ErrBridgeLost = errors.New("the Call Bridge handling this login disconnected")
	// ErrTimeout: the Call Bridge did not answer a step in time.
	ErrTimeout = errors.New("the Call Bridge did not answer in time")
	// ErrBridgeRefused: the component answered a relay request with an IQ error (it does not
	// speak the login relay, or not now). A first step is moved to the next Call Bridge.
	ErrBridgeRefused = errors.New("the component answered the login relay with an error")
	// ErrNotABridge: Probe found that a component does not speak the login relay.
	ErrNotABridge = errors.New("the component does not speak the login relay")
)

// Errors a Directory returns.
var (
	// ErrUnknownUser: no such user. Reported to the client exactly like ErrBadPassword.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUsernameNotRecognized: the username cannot belong to this domain at all (not a
	// valid localpart, or a JID of another domain). It wraps ErrUnknownUser; since it says
	// nothing about which accounts exist, the client is told "Username is not recognized".
	ErrUsernameNotRecognized = fmt.Errorf("username is not recognized: %w", ErrUnknownUser)
	// ErrBadPassword: the password is wrong.
	ErrBadPassword = errors.New("wrong password")
	// ErrNoSCRAM: the user exists but has no SCRAM keys (e.g. an LDAP user whose password
	// only a bind can check); the client must use PLAIN.
	ErrNoSCRAM = errors.New("no SCRAM credentials for this user")
	// ErrAccountDisabled: the account exists but may not log in. A Directory should return it
	// from CheckPlain only once the password has been verified, since it reveals the account.
	ErrAccountDisabled = errors.New("account disabled")
)

// SASL mechanisms the Responder implements.
const (
	MechPLAIN       = "PLAIN"
	MechSCRAMSHA1   = "SCRAM-SHA-1"
	MechSCRAMSHA256 = "SCRAM-SHA-256"
)

// Mechanisms lists the mechanisms the Responder implements, strongest first, in the order an
// XMPP server should offer them.
func Mechanisms() []string { return []string{MechSCRAMSHA256, MechSCRAMSHA1, MechPLAIN} }

// SASL failure conditions [RFC 6120 §6.5] that appear in <failure/>.
const (
	CondAborted            = "aborted"
	CondAccountDisabled    = "account-disabled"
	CondInvalidAuthzid     = "invalid-authzid"
	CondInvalidMechanism   = "invalid-mechanism"
	CondMalformedRequest   = "malformed-request"
	CondNotAuthorized      = "not-authorized"
	CondTemporaryAuthFail  = "temporary-auth-failure"
	textInvalidCredentials = "Invalid username or password"
	textNotRecognized      = "Username is not recognized"
)

// Reply is the Call Bridge's answer to one step.
type Reply struct {
	// Kind is "challenge", "success" or "failure".
	Kind string
	// Data is the challenge, or the additional data of a success (the SCRAM server-final
	// message). It is nil when there is none and empty but non-nil for an empty challenge.
	Data []byte
	// JID is the authenticated bare JID (success only).
	JID string
	// Guest says the account is a guest's (success only): a temporary account made by the
	// Call Bridge for one meeting, which the XMPP server lets address only that Call Bridge.
	Guest bool
	// Condition and Text say why a login failed (failure only).
	Condition, Text string
}

// IsGuestName reports whether username has the form reserved for guest accounts:
// guest followed by 8 or more digits (docs/protocol.md, "Guest accounts").
func IsGuestName(username string) bool {
	digits, ok := strings.CutPrefix(username, "guest")
	if !ok || len(digits) < 8 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// GuestDirectory is a Directory that tells guest accounts apart itself; a Responder whose
// Directory does not implement it takes the names IsGuestName accepts for guests.
type GuestDirectory interface {
	IsGuest(username string) bool
}

// Reply kinds.
const (
	KindChallenge = "challenge"
	KindSuccess   = "success"
	KindFailure   = "failure"
)

// FailureReply turns an error from Client.Begin or Exchange.Respond into the SASL failure the
// client should get: temporary-auth-failure with a text that says what happened.
func FailureReply(err error) Reply {
	text := "The login could not be checked"
	switch {
	case errors.Is(err, ErrNoCallBridge):
		text = "No Call Bridge is connected to the XMPP server"
	case errors.Is(err, ErrBridgeLost):
		text = "The Call Bridge handling this login disconnected"
	case errors.Is(err, ErrTimeout):
		text = "The Call Bridge did not answer in time"
	}
	return Reply{Kind: KindFailure, Condition: CondTemporaryAuthFail, Text: text}
}

// Wire types. Every payload carries the session it belongs to.

type authPayload struct {
	XMLName   xml.Name `xml:"urn:confab:login:1 auth"`
	Session   string   `xml:"session,attr"`
	Mechanism string   `xml:"mechanism,attr"`
	Addr      string   `xml:"addr,attr,omitempty"`
	Transport string   `xml:"transport,attr,omitempty"`
	Data      string   `xml:",chardata"`
}

type responsePayload struct {
	XMLName xml.Name `xml:"urn:confab:login:1 response"`
	Session string   `xml:"session,attr"`
	Data    string   `xml:",chardata"`
}

type abortPayload struct {
	XMLName xml.Name `xml:"urn:confab:login:1 abort"`
	Session string   `xml:"session,attr"`
}

type challengePayload struct {
	XMLName xml.Name `xml:"urn:confab:login:1 challenge"`
	Session string   `xml:"session,attr"`
	Data    string   `xml:",chardata"`
}

type successPayload struct {
	XMLName xml.Name `xml:"urn:confab:login:1 success"`
	Session string   `xml:"session,attr"`
	JID     string   `xml:"jid,attr"`
	Guest   string   `xml:"guest,attr,omitempty"` // "true" for a guest account
	Data    string   `xml:",chardata"`
}

type failurePayload struct {
	XMLName   xml.Name `xml:"urn:confab:login:1 failure"`
	Session   string   `xml:"session,attr"`
	Condition string   `xml:"condition,attr"`
	Text      string   `xml:"urn:confab:login:1 text,omitempty"`
}

type sessionEndPayload struct {
	XMLName xml.Name `xml:"urn:confab:login:1 session-end"`
	JID     string   `xml:"jid,attr"`
	Reason  string   `xml:"reason,attr,omitempty"`
}

// iq is the envelope of every request and answer.
type iq struct {
	XMLName xml.Name `xml:"jabber:component:accept iq"`
	Type    string   `xml:"type,attr"`
	ID      string   `xml:"id,attr"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr,omitempty"`
	Payload any
}

type message struct {
	XMLName xml.Name `xml:"jabber:component:accept message"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr,omitempty"`
	Payload any
}

// stanzaError is the <error/> of an IQ error [RFC 6120 §8.3].
type stanzaError struct {
	XMLName   xml.Name `xml:"error"`
	Type      string   `xml:"type,attr"`
	Condition struct {
		XMLName xml.Name
	}
}

// encode64 writes SASL data as XMPP does: "" for none, "=" for empty [RFC 6120 §6.4.2].
func encode64(b []byte) string {
	switch {
	case b == nil:
		return ""
	case len(b) == 0:
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

var errBase64 = errors.New("invalid base64")

// decode64 is the inverse of encode64.
func decode64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return nil, nil
	case "=":
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errBase64
	}
	return b, nil
}

// randomID returns 128 random bits in hex.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b[:])
}
