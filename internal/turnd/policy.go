package turnd

import (
	"net"
	"net/netip"
)

// peerPolicy decides which peer addresses a client may relay to (CreatePermission,
// ChannelBind). The allow list overrides everything; then loopback, link-local,
// unspecified ("this network", 0.0.0.0/8 and ::) and multicast (with the IPv4 broadcast
// address) are denied, then the deny list.
type peerPolicy struct {
	allow, deny []netip.Prefix
}

var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// check returns the cause that denies ip, or "" when it may be relayed to.
func (p *peerPolicy) check(ip netip.Addr) Cause {
	ip = ip.Unmap()
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
