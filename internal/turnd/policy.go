package turnd

import (
	"net"
	"net/netip"
)

// peerPolicy decides which peer addresses a client may relay to (CreatePermission,
// ChannelBind). The allow list overrides everything; then loopback, link-local,
// unspecified ("this network", 0.0.0.0/8 and ::) and multicast (with the IPv4 broadcast
// address) are denied, then the deny list. An address of the exact list (an IP and a port)
// is permitted whatever the rest says, but only to its ports: a datagram to another port of
// an IP that only the exact list lets through is dropped (portAllowed).
type peerPolicy struct {
	allow, deny []netip.Prefix
	exact       map[netip.Addr]map[uint16]bool
}

func newPeerPolicy(allow, deny []netip.Prefix, exact []netip.AddrPort) peerPolicy {
	p := peerPolicy{allow: masked(allow), deny: masked(deny)}
	for _, ap := range exact {
		if p.exact == nil {
			p.exact = map[netip.Addr]map[uint16]bool{}
		}
		ip := ap.Addr().Unmap()
		if p.exact[ip] == nil {
			p.exact[ip] = map[uint16]bool{}
		}
		p.exact[ip][ap.Port()] = true
	}
	return p
}

var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// check returns the cause that denies ip, or "" when it may be relayed to.
func (p *peerPolicy) check(ip netip.Addr) Cause {
	ip = ip.Unmap()
	if p.exact[ip] != nil {
		return ""
	}
	return p.checkIP(ip)
}

// portAllowed reports whether a datagram may go to ap: always, unless its IP is permitted
// by the exact list alone and the port is not one of it.
func (p *peerPolicy) portAllowed(ap netip.AddrPort) bool {
	ports := p.exact[ap.Addr().Unmap()]
	if ports == nil || ports[ap.Port()] {
		return true
	}
	return p.checkIP(ap.Addr().Unmap()) == ""
}

// checkIP is check without the exact list.
func (p *peerPolicy) checkIP(ip netip.Addr) Cause {
	for _, a := range p.allow {
		if a.Contains(ip) {
			return ""
		}
	}
	switch {
	case !ip.IsValid():
		return CauseBadRequest
	case ip.IsLoopback():
		return CausePeerLoopback
	case ip.IsLinkLocalUnicast():
		return CausePeerLinkLocal
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return CausePeerUnspecified
	case ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return CausePeerMulticast
	}
	for _, d := range p.deny {
		if d.Contains(ip) {
			return CausePeerDenyList
		}
	}
	return ""
}

// addrOf converts a net.IP, as pion passes it.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
