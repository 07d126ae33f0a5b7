package link

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"confab.dev/confab/internal/discover"
)

// This file holds what the remedies need to fit the fault rather than the step: which DNS
// server failed, and whether a domain the XMPP server rejects is a typo of the one it
// presents.

// dnsServer returns the DNS server a lookup asked ("127.0.0.1:5353"), or "" when unknown.
func dnsServer(err error) string {
	var de *discover.Error
	if errors.As(err, &de) && de.Server != "" {
		return de.Server
	}
	var ne *net.DNSError
	if errors.As(err, &ne) {
		return ne.Server
	}
	return ""
}

// dnsServerWords names the DNS server for a sentence: "the DNS server 127.0.0.1:5353", or
// "the DNS server" when it is not known.
func dnsServerWords(server string) string {
	if server == "" {
		return "the DNS server"
	}
	return "the DNS server " + server
}

// dnsPort returns the port of a DNS server's address, "53" when it has none.
func dnsPort(server string) string {
	if _, port, err := net.SplitHostPort(server); err == nil {
		return port
	}
	return "53"
}

// editDistance is the Levenshtein distance between a and b (bytes; domains are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// looksLikeTypo reports whether a, the configured domain, is a likely misspelling of b: a
// few characters apart, and not the same.
func looksLikeTypo(a, b string) bool {
	a, b = normDomain(a), normDomain(b)
	if a == b || a == "" || b == "" {
		return false
	}
	return editDistance(a, b) <= max(2, min(len(a), len(b))/5)
}

func normDomain(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// presentedDomain returns the XMPP domain a certificate that does not cover domain seems
// to be for, or "" when it names none: among its DNS subjectAltNames other than host (the
// server's own name), localhost, wildcards and single labels, a parent domain of host
// (xmpp.example.com is a server of example.com), else the certificate's common name, else a
// name that domain looks like a misspelling of.
func presentedDomain(leaf *x509.Certificate, domain, host string) string {
	if leaf == nil {
		return ""
	}
	domain, host = normDomain(domain), normDomain(host)
	cn := normDomain(leaf.Subject.CommonName)
	var byParent, byCN, byTypo string
	for _, n := range leaf.DNSNames {
		n = normDomain(n)
		if n == domain || n == host || n == "localhost" || strings.HasPrefix(n, "*.") || !strings.Contains(n, ".") {
			continue
		}
		switch {
		case strings.HasSuffix(host, "."+n) && byParent == "":
			byParent = n
		case n == cn && byCN == "":
			byCN = n
		case looksLikeTypo(domain, n) && byTypo == "":
			byTypo = n
		}
	}
	switch {
	case byParent != "":
		return byParent
	case byCN != "":
		return byCN
	}
	return byTypo
}

// checkDomainFirst is the start of a remedy for a domain that DNS does not know: the Domain
// field may be mistyped, which no record would fix. known are the domains this Call Bridge
// registered with before; exists says whether the domain itself exists in DNS (known is
// false when that could not be told).
func checkDomainFirst(domain string, known []string, exists, existsKnown bool) string {
	var why []string
	for _, k := range known {
		if normDomain(k) == normDomain(domain) {
			continue
		}
		if looksLikeTypo(domain, k) {
			why = append(why, fmt.Sprintf("it looks like a misspelling of %s, with which this Call Bridge registered before", k))
		} else {
			why = append(why, fmt.Sprintf("this Call Bridge registered with %s before", k))
		}
		break
	}
	if existsKnown && !exists {
		why = append(why, fmt.Sprintf("%s itself does not exist in DNS", domain))
	}
	s := fmt.Sprintf("first check that the Domain field (%s) is the XMPP server's domain, the part after @ in users' addresses", domain)
	if len(why) > 0 {
		s += " (" + strings.Join(why, "; ") + ")"
	}
	return s
}
