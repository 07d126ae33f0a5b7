// Package discover finds where a Call Bridge connects to reach its XMPP server (steps 3 to 5
// of the signalling flow): the configured server address override if there is one, else the
// targets of the SRV record _xmpp-component._tcp.<domain> in [RFC 2782] order, and then the
// A and AAAA addresses of a target.
//
// Lookups go through a *net.Resolver that the caller passes in (NewResolver makes one for a
// configured DNS server), and fail with an *Error whose Kind says what went wrong in terms
// an operator can act on: no such domain, no records, a timeout, a failing server.
//
// [RFC 2782]: https://www.rfc-editor.org/rfc/rfc2782
package discover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the XMPP component port (XEP-0114 over TLS), used when an override names
// no port.
const DefaultPort = 5223

// SRVName returns the SRV owner name looked up for domain: _xmpp-component._tcp.<domain>.
func SRVName(domain string) string {
	return "_xmpp-component._tcp." + strings.TrimSuffix(strings.TrimSpace(domain), ".")
}

// A Target is a place to connect to: a host (name or IP address) and a port.
type Target struct {
	Host             string
	Port             uint16
	Priority, Weight uint16 // from the SRV record; zero for an override
	FromSRV          bool   // found through SRV rather than configured
}

// Addr returns host:port, with an IPv6 host in brackets.
func (t Target) Addr() string {
	return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
}

// Targets returns the targets to try, in order. A non-empty override (see ParseOverride)
// gives exactly one target, without a lookup. Otherwise the SRV record of domain is looked
// up; the resolver returns its targets sorted by priority and, within a priority, shuffled
// by weight as RFC 2782 says, so callers try them in the order given. A lone target "."
// means the service is decidedly not available at domain: an *Error of KindUnavailable.
// A nil r means net.DefaultResolver.
func Targets(ctx context.Context, r *net.Resolver, domain, override string) ([]Target, error) {
	if strings.TrimSpace(override) != "" {
		host, port, err := ParseOverride(override)
		if err != nil {
			return nil, err
		}
		return []Target{{Host: host, Port: port}}, nil
	}
	domain = strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if domain == "" {
		return nil, errors.New("discover: no XMPP domain to look up and no server address override")
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, log := withLookupLog(ctx)
	// The name is rooted so that resolv.conf search domains are not tried: the SRV record of
	// example.com is never _xmpp-component._tcp.example.com.corp.local.
	_, srvs, err := r.LookupSRV(ctx, "xmpp-component", "tcp", domain+".")
	if err != nil && len(srvs) == 0 {
		return nil, classify(OpSRV, SRVName(domain), err, log)
	}
	// With some records left, an error only says that others had invalid targets and were
	// dropped; the rest are usable.
	out := make([]Target, 0, len(srvs))
	for _, s := range srvs {
		if s.Target == "." {
			continue
		}
		out = append(out, Target{
			Host:     strings.TrimSuffix(s.Target, "."),
			Port:     s.Port,
			Priority: s.Priority,
			Weight:   s.Weight,
			FromSRV:  true,
		})
	}
	if len(out) == 0 {
		return nil, &Error{Op: OpSRV, Name: SRVName(domain), Kind: KindUnavailable, Server: log.serverAddr()}
	}
	return out, nil
}

// LookupAddrs returns the IPv4 and IPv6 addresses of host (A and AAAA records), in the
// resolver's order (RFC 6724). An IP address literal, bracketed or not, is returned as it
// is, without a lookup. A nil r means net.DefaultResolver.
func LookupAddrs(ctx context.Context, r *net.Resolver, host string) ([]netip.Addr, error) {
	host = strings.TrimSpace(host)
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return []netip.Addr{a}, nil
	}
	if host == "" {
		return nil, errors.New("discover: empty host name")
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, log := withLookupLog(ctx)
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, classify(OpResolve, strings.TrimSuffix(host, "."), err, log)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap() // A records come back as IPv4, whatever the resolver's slice form
	}
	return addrs, nil
}

// DomainExists reports whether domain exists in DNS (it has records of some type, or names
// below it do), and whether the answer is known at all: only a resolver from NewResolver
// tells NXDOMAIN from NODATA, and a lookup that failed otherwise (a timeout) says nothing.
// It is used to tell a mistyped domain (NXDOMAIN) from a domain without an SRV record.
func DomainExists(ctx context.Context, r *net.Resolver, domain string) (exists, known bool) {
	domain = strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if domain == "" {
		return false, false
	}
	_, err := LookupAddrs(ctx, r, domain+".")
	if err == nil {
		return true, true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false, false
	}
	switch e.Kind {
	case KindNoRecords:
		return true, true
	case KindNXDomain:
		return false, true
	}
	return false, false
}
