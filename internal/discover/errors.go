package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Operations an *Error can come from.
const (
	OpSRV      = "srv"      // the SRV lookup of the domain
	OpResolve  = "resolve"  // the A/AAAA lookup of a target
	OpOverride = "override" // parsing the server address override
)

// Kinds of failure. They are stable: logs, metrics, alarms and `confab diagnose` use them.
const (
	// KindNXDomain: the name does not exist (NXDOMAIN).
	KindNXDomain = "nxdomain"
	// KindNoRecords: the name exists but has no records of the type asked for (NODATA).
	KindNoRecords = "no-records"
	// KindNotFound: NXDOMAIN or NODATA, when the resolver does not say which (the system
	// resolver; resolvers from NewResolver always say).
	KindNotFound = "not-found"
	// KindTimeout: no answer in time.
	KindTimeout = "timeout"
	// KindServerFailure: the DNS server failed (SERVFAIL or another error code), answered
	// nonsense, or could not be reached in a way not covered by the other kinds.
	KindServerFailure = "server-failure"
	// KindRefused: the DNS server refused the query (REFUSED), e.g. recursion not allowed.
	KindRefused = "refused"
	// KindConnRefused: nothing listens at the DNS server's address: the connection to it
	// was refused (ICMP port unreachable on UDP, RST on TCP). Known only for resolvers from
	// NewResolver; the system resolver's refusal is a KindServerFailure.
	KindConnRefused = "connection-refused"
	// KindUnavailable: the SRV record's only target is ".": the service is decidedly not
	// available at the domain (RFC 2782).
	KindUnavailable = "unavailable"
	// KindCanceled: the caller's context was canceled.
	KindCanceled = "canceled"
	// KindBadOverride: the server address override does not parse.
	KindBadOverride = "bad-override"
)

// An Error is a failed discovery step.
type Error struct {
	Op     string // OpSRV, OpResolve or OpOverride
	Name   string // the name looked up, or the override as given
	Kind   string // one of the Kind constants
	Server string // the DNS server asked, when known
	Err    error  // the underlying error, often a *net.DNSError; nil for KindUnavailable

	rcode int // the server's error response code, when known
}

func (e *Error) Error() string {
	var subject string
	switch e.Op {
	case OpSRV:
		subject = "SRV " + e.Name
	case OpResolve:
		subject = "A/AAAA " + e.Name
	case OpOverride:
		subject = fmt.Sprintf("server address override %q", e.Name)
	default:
		subject = e.Op + " " + e.Name
	}
	return subject + ": " + e.reason()
}

func (e *Error) reason() string {
	records := "SRV records"
	if e.Op == OpResolve {
		records = "A or AAAA records"
	}
	server := "the DNS server"
	if e.Server != "" {
		server += " " + e.Server
	}
	switch e.Kind {
	case KindNXDomain:
		return "no such domain (NXDOMAIN)"
	case KindNoRecords:
		return "the name exists but has no " + records
	case KindNotFound:
		return "no such domain, or no " + records
	case KindTimeout:
		return "no answer from " + server + " (timeout)"
	case KindRefused:
		return server + " refused the query (REFUSED)"
	case KindConnRefused:
		return "nothing answers at " + server + " (connection refused): no DNS server runs at that address and port"
	case KindUnavailable:
		return `the service is decidedly not available at this domain (SRV target ".")`
	case KindCanceled:
		return "lookup canceled"
	case KindServerFailure:
		if name := rcodeName(e.rcode); name != "" {
			return fmt.Sprintf("%s failed to answer (%s)", server, name)
		}
	}
	if e.Err == nil {
		return e.Kind
	}
	var de *net.DNSError
	if errors.As(e.Err, &de) {
		return fmt.Sprintf("lookup through %s failed: %s", server, de.Err)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// RCode returns the mnemonic of the DNS server's error response code ("SERVFAIL",
// "REFUSED", ...), or "" when none was seen (a timeout, a transport error, the system
// resolver).
func (e *Error) RCode() string { return rcodeName(e.rcode) }

// rcodeName returns the mnemonic (RFC 1035 §4.1.1) of an error response code, or "".
func rcodeName(rcode int) string {
	switch rcode {
	case 1:
		return "FORMERR"
	case 2:
		return "SERVFAIL"
	case rcodeNXDomain:
		return "NXDOMAIN"
	case 4:
		return "NOTIMP"
	case rcodeRefused:
		return "REFUSED"
	}
	return ""
}

// classify turns a resolver error into an *Error, using what log saw on the wire (if the
// resolver came from NewResolver) to tell NXDOMAIN from NODATA and REFUSED from SERVFAIL,
// which *net.DNSError does not.
func classify(op, name string, err error, log *lookupLog) *Error {
	e := &Error{Op: op, Name: name, Err: err, Server: log.serverAddr(), rcode: log.lastErrorCode()}
	var de *net.DNSError
	isDNS := errors.As(err, &de)
	if e.Server == "" && isDNS {
		e.Server = de.Server
	}
	switch {
	case errors.Is(err, context.Canceled):
		e.Kind = KindCanceled
	case isDNS && de.IsNotFound:
		switch {
		case log.sawNoError():
			e.Kind = KindNoRecords
		case e.rcode == rcodeNXDomain:
			e.Kind = KindNXDomain
		default:
			e.Kind = KindNotFound
		}
	case log.sawRefused():
		// Before the timeout: a resolver that was refused retries until its deadline.
		e.Kind = KindConnRefused
	case isDNS && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindTimeout
	case e.rcode == rcodeRefused:
		e.Kind = KindRefused
	default:
		e.Kind = KindServerFailure
	}
	return e
}
