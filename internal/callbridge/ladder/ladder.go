// Package ladder is the media ladder: one participant's media path as steps, in the manner
// of the signal flow of the Call Bridge's link (docs/signalling.md) — the ICE servers it was
// given, the offer and answer, the candidates its browser gathered (host, server-reflexive,
// a relay per TURN server URL), the connectivity checks that reached the media server, the
// pair ICE selected and its type, DTLS, and SRTP flowing in and out — each with its time
// and, on failure, the cause and the remedy.
//
// Build derives the steps from what the two ends saw: the SFU's record of the connection
// (sfu.Transport) and the participant's report of its own side (Report, the media
// protocol's <report/>). It is data and words only; the media service, the REST API, the
// web admin, the web app's connection test and `confab diagnose media` all show its result.
package ladder

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
)

// States of a step and of a ladder.
const (
	OK      = "ok"
	Failed  = "failed"
	Pending = "pending" // not yet: it may still happen
	Skipped = "skipped" // does not apply (nothing to send, no report)
	Warning = "warning" // done, but something is missing that will matter to someone
)

// Overall states of a ladder.
const (
	StateNone       = "none" // no media session
	StateConnecting = "connecting"
	StateConnected  = "connected"
	StateFailed     = "failed"
)

// Causes: the short names of what went wrong (Step.Cause, Ladder.Cause), for logs, the API
// and the web app, which has its own words for each (Words).
const (
	CauseNoTURN           = "no-turn"             // warning: no TURN server is offered
	CauseUDPBlockedNoTURN = "udp-blocked-no-turn" // no check arrived and no relay was offered
	CauseTURNFailed       = "udp-blocked-turn-failed"
	CauseTURNUnreachable  = "turn-unreachable" // a TURN URL could not be reached (701)
	CauseTURNCredentials  = "turn-credentials" // 401 from a TURN server
	CauseTURNRefused      = "turn-refused"     // 403, 486, 508 from a TURN server
	CauseTURNNoRelay      = "turn-no-relay"    // gathering ended without a relay candidate from that URL
	CauseRelayNotThrough  = "relay-not-through"
	CauseNoChecks         = "no-checks" // no check arrived, and the participant did not say why
	CauseAnswersLost      = "answers-lost"
	CauseDTLSFailed       = "dtls-failed"
	CauseNoCandidates     = "no-candidates"
	CauseTimeout          = "timeout"
	CauseLost             = "connection-lost" // it connected, then the connection failed
)

// Step is one row of the ladder.
type Step struct {
	Name  string    `json:"name"`
	Title string    `json:"title"`
	State string    `json:"state"`
	At    time.Time `json:"at,omitzero"`
	// Since is At minus the ladder's start (Input.Started), for "+1.2 s" columns.
	Since  time.Duration `json:"sinceMillis,omitempty"`
	Detail string        `json:"detail,omitempty"`
	Cause  string        `json:"cause,omitempty"`
	Remedy string        `json:"remedy,omitempty"`
}

// Ladder is a participant's media path.
type Ladder struct {
	State string `json:"state"`
	// Path says how media flows once connected: "direct UDP", "ICE-TCP", "relay: TURN over
	// TLS (turns:…)"; empty before.
	Path string `json:"path,omitempty"`
	// Cause and Text are the first failure's cause and what the participant is told.
	Cause   string    `json:"cause,omitempty"`
	Text    string    `json:"text,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Steps   []Step    `json:"steps"`
}

// Report is the participant's own view of its connection (the media protocol's
// <report/>; a probe's JSON).
type Report struct {
	At time.Time `json:"-"`
	// GatheringState is new, gathering or complete; ICEState and ConnectionState the
	// RTCPeerConnection's; DTLSState the DTLS transport's.
	GatheringState  string      `json:"gathering,omitempty"`
	ICEState        string      `json:"ice,omitempty"`
	ConnectionState string      `json:"connection,omitempty"`
	DTLSState       string      `json:"dtls,omitempty"`
	Candidates      []Gathered  `json:"candidates,omitempty"`
	Errors          []GatherErr `json:"errors,omitempty"`
	Selected        *Selected   `json:"selected,omitempty"`
	// ChecksSent and ChecksAnswered sum the candidate pairs' requests sent and responses
	// received.
	ChecksSent      uint64 `json:"checksSent,omitempty"`
	ChecksAnswered  uint64 `json:"checksAnswered,omitempty"`
	PacketsSent     uint64 `json:"packetsSent,omitempty"`
	PacketsReceived uint64 `json:"packetsReceived,omitempty"`
	// Final says the participant has given up waiting (a connection test's path whose
	// time is up): what has not happened will not.
	Final bool `json:"final,omitempty"`
}

// Gathered is a candidate the participant gathered.
type Gathered struct {
	Type          string `json:"type"`                    // host, srflx, prflx, relay
	Protocol      string `json:"protocol"`                // udp, tcp
	RelayProtocol string `json:"relayProtocol,omitempty"` // how it reaches its TURN server: udp, tcp, tls
	Address       string `json:"address,omitempty"`
	URL           string `json:"url,omitempty"` // the STUN or TURN URL it came from
}

// GatherErr is an icecandidateerror: a STUN or TURN server that failed.
type GatherErr struct {
	URL  string `json:"url"`
	Code int    `json:"code"`
	Text string `json:"text,omitempty"`
}

// Selected is the participant's selected candidate pair.
type Selected struct {
	LocalType      string `json:"localType"`
	LocalProtocol  string `json:"localProtocol"`
	RelayProtocol  string `json:"relayProtocol,omitempty"`
	URL            string `json:"url,omitempty"`
	RemoteType     string `json:"remoteType,omitempty"`
	RemoteProtocol string `json:"remoteProtocol,omitempty"`
	RemoteAddress  string `json:"remoteAddress,omitempty"`
}

// Input is what Build reads.
type Input struct {
	Now time.Time
	// Started is when the participant asked for its ICE servers (or, without that, when
	// its media started): the ladder's zero.
	Started time.Time
	// SessionAsked says whether the participant asked for its ICE servers (<session/>);
	// ICEServers are those it was given.
	SessionAsked bool
	ICEServers   []sfu.ICEServer
	// MediaUDP and MediaTCP are the media server's ports as clients reach them ("" for
	// ICE-TCP off), for the words.
	MediaUDP, MediaTCP string
	// Transport is the SFU's record, nil before the first offer.
	Transport *sfu.Transport
	// Report is the participant's latest report, nil when it sent none.
	Report *Report
	// ReceivedPackets counts the media received from the participant; OthersPublish says
	// whether anyone else publishes (something to send to it).
	ReceivedPackets uint64
	OthersPublish   bool
	// Deadline is how long a connection may take before a missing step is a failure
	// (the SFU's connect timeout).
	Deadline time.Duration
	// Probe says the ladder is a connection test's path: its ICE servers are the one it
	// tries, not all a participant would get.
	Probe bool
}

// Build derives the ladder from in.
func Build(in Input) Ladder {
	b := builder{in: in, l: Ladder{Started: in.Started}}
	b.selected = in.Transport != nil && in.Transport.Selected != nil
	b.servers()
	b.offer()
	b.gather()
	b.relays()
	b.checks()
	b.pair()
	b.dtls()
	b.mediaIn()
	b.mediaOut()
	b.finish()
	return b.l
}

type builder struct {
	in Input
	l  Ladder
	// facts found along the way
	relayURLs   map[string]bool // TURN URLs that gave a relay candidate
	turnFailed  []string        // TURN URLs that failed, with why
	turnCauses  []string
	anyRelay    bool
	over        bool // the connection's time is up (ended, failed, past the deadline)
	connected   bool
	checksIn    bool
	dtlsOK      bool
	remoteRelay bool // the SFU saw a relay candidate of the client's
	selected    bool // ICE selected a pair
}

func (b *builder) add(s Step) {
	if !s.At.IsZero() && !b.in.Started.IsZero() {
		s.Since = s.At.Sub(b.in.Started)
	}
	b.l.Steps = append(b.l.Steps, s)
}

// turnURLs are the turn: and turns: URLs offered, in order.
func (b *builder) turnURLs() []string {
	var out []string
	for _, s := range b.in.ICEServers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
				out = append(out, u)
			}
		}
	}
	return out
}

// Describe names a TURN URL's transport in words: "TURN over TLS".
func Describe(u string) string {
	switch {
	case strings.HasPrefix(u, "turns:"):
		return "TURN over TLS"
	case strings.Contains(u, "transport=tcp"):
		return "TURN over TCP"
	case strings.HasPrefix(u, "turn:"):
		return "TURN over UDP"
	case strings.HasPrefix(u, "stun:"):
		return "STUN"
	}
	return u
}

// hostPortOf is the host:port of a STUN or TURN URL, and its transport.
func hostPortOf(u string) (hostport, transport string) {
	scheme, rest, _ := strings.Cut(u, ":")
	hp, q, _ := strings.Cut(rest, "?")
	v, _ := url.ParseQuery(q)
	transport = v.Get("transport")
	switch {
	case scheme == "turns":
		transport = "tls"
	case transport == "":
		transport = "udp"
	}
	return hp, transport
}

func (b *builder) servers() {
	s := Step{Name: "servers", Title: "ICE servers given to the participant"}
	urls := b.turnURLs()
	switch {
	case !b.in.SessionAsked:
		s.State, s.Detail = Skipped, "The participant did not ask for ICE servers (<session/>): it uses none."
		if len(urls) == 0 {
			break
		}
	case len(urls) == 0:
		s.State, s.At = Warning, b.in.Started
		s.Cause = CauseNoTURN
		s.Detail = "No TURN server is configured: a participant whose network blocks UDP to the media port cannot connect."
		s.Remedy = "Add a TURN server reachable over TLS on port 443 (POST /api/v1/turnServers, or the embedded one of confab up: -turn-tls with port 443)."
	default:
		s.State, s.At = OK, b.in.Started
		var parts []string
		for _, u := range urls {
			parts = append(parts, u+" ("+Describe(u)+")")
		}
		s.Detail = fmt.Sprintf("%d TURN URL(s), credentials issued for this participant: %s", len(urls), strings.Join(parts, ", "))
		if b.in.Probe {
			s.Detail = "This test relays through " + strings.Join(parts, ", ") + ", with credentials issued for it."
		}
		if !hasTLS(urls) && !b.in.Probe {
			s.State = Warning
			s.Cause = CauseNoTURN
			s.Detail += ". None is TURN over TLS: a network that lets only HTTPS out (TCP 443) cannot reach them."
			s.Remedy = "Offer TURN over TLS on port 443 as well (the turnServer's tlsPortNumber)."
		}
	}
	b.add(s)
}

func hasTLS(urls []string) bool {
	for _, u := range urls {
		if strings.HasPrefix(u, "turns:") {
			return true
		}
	}
	return false
}

func (b *builder) offer() {
	s := Step{Name: "offer", Title: "Offer taken, answer sent with the media server's candidates"}
	tr := b.in.Transport
	if tr == nil || tr.Answer.IsZero() {
		s.State, s.Detail = Pending, "No offer from the participant yet."
		b.add(s)
		return
	}
	s.State, s.At = OK, tr.Answer
	var cands []string
	for _, c := range tr.LocalCandidates {
		if ci, ok := parseCandidateText(c.Candidate); ok && !containsStr(cands, ci) {
			cands = append(cands, ci)
		}
	}
	s.Detail = "The media server (ICE-lite) answered with its candidates: " + strings.Join(cands, ", ")
	b.add(s)
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// parseCandidateText describes an SDP candidate: "udp 203.0.113.10:10000 (host)".
func parseCandidateText(c string) (string, bool) {
	f := strings.Fields(strings.TrimPrefix(c, "a="))
	if len(f) < 8 {
		return "", false
	}
	host := f[4]
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	out := strings.ToLower(f[2]) + " " + host + ":" + f[5]
	for i := 6; i+1 < len(f); i++ {
		if f[i] == "typ" {
			out += " (" + f[i+1] + ")"
		}
		if f[i] == "tcptype" {
			out += " " + f[i+1]
		}
	}
	return out, true
}

func (b *builder) timeUp() bool {
	tr := b.in.Transport
	switch {
	case tr != nil && !tr.Ended.IsZero():
		return true
	case tr != nil && (tr.ICEState == "failed" || tr.DTLSState == "failed"):
		return true
	case b.in.Report != nil && (b.in.Report.ICEState == "failed" || b.in.Report.ConnectionState == "failed" || b.in.Report.Final):
		return true
	case tr != nil && b.in.Deadline > 0 && !tr.Joined.IsZero() && b.in.Now.Sub(tr.Joined) > b.in.Deadline:
		return true
	}
	return false
}

func (b *builder) gather() {
	b.over = b.timeUp()
	s := Step{Name: "gather", Title: "Candidates gathered by the participant (host, server-reflexive, relay)"}
	counts := map[string]int{}
	var protos []string
	rep := b.in.Report
	source := "as it reported them"
	if rep != nil {
		for _, c := range rep.Candidates {
			counts[c.Type]++
			if !containsStr(protos, c.Type+" "+c.Protocol) {
				protos = append(protos, c.Type+" "+c.Protocol)
			}
		}
	}
	if len(counts) == 0 && b.in.Transport != nil {
		source = "as the media server received them"
		for _, c := range b.in.Transport.RemoteCandidates {
			counts[c.Type]++
			if !containsStr(protos, c.Type+" "+c.Protocol) {
				protos = append(protos, c.Type+" "+c.Protocol)
			}
		}
	}
	if b.in.Transport != nil {
		for _, c := range b.in.Transport.RemoteCandidates {
			if c.Type == "relay" {
				b.remoteRelay = true
			}
		}
	}
	b.anyRelay = counts["relay"] > 0 || b.remoteRelay
	total := 0
	for _, n := range counts {
		total += n
	}
	switch {
	case total > 0:
		s.State = OK
		if rep != nil {
			s.At = rep.At
		}
		s.Detail = fmt.Sprintf("%d host, %d server-reflexive, %d relay (%s; %s)", counts["host"], counts["srflx"], counts["relay"],
			strings.Join(protos, ", "), source)
		if rep != nil && rep.GatheringState != "" && rep.GatheringState != "complete" {
			s.Detail += "; still gathering"
		}
	case b.over && (rep != nil && len(rep.Errors) > 0 || b.in.Probe && len(b.turnURLs()) > 0):
		s.State = Failed
		s.Detail = "The participant gave no candidate: its STUN and TURN servers failed (see below)."
	case b.over:
		s.State, s.Cause = Failed, CauseNoCandidates
		s.Detail = "The participant gave no candidate at all."
		s.Remedy = "The browser may block WebRTC (an extension or policy) or hide its addresses; try another browser."
	default:
		s.State, s.Detail = Pending, "No candidate from the participant yet."
	}
	b.add(s)
}

// relays adds a step per TURN URL offered: did the participant get a relay from it?
func (b *builder) relays() {
	rep := b.in.Report
	b.relayURLs = map[string]bool{}
	if rep != nil {
		for _, c := range rep.Candidates {
			if c.Type == "relay" && c.URL != "" {
				b.relayURLs[c.URL] = true
			}
		}
	}
	for _, u := range b.turnURLs() {
		hp, transport := hostPortOf(u)
		s := Step{Name: "relay " + u, Title: "Relay allocated at " + u + " (" + Describe(u) + ")"}
		var relay *Gathered
		if rep != nil {
			for i, c := range rep.Candidates {
				if c.Type == "relay" && (c.URL == u || c.URL == "" && c.RelayProtocol == transport && !b.relayURLs[u]) {
					relay = &rep.Candidates[i]
					break
				}
			}
		}
		var gerr *GatherErr
		if rep != nil {
			for i, e := range rep.Errors {
				if e.URL == u {
					gerr = &rep.Errors[i]
				}
			}
		}
		switch {
		case relay != nil:
			s.State, s.At = OK, rep.At
			s.Detail = "Relayed address " + relay.Address
			if relay.Address == "" {
				s.Detail = "A relay candidate"
			}
			b.relayURLs[u] = true
		case gerr != nil:
			s.State, s.At = Failed, rep.At
			s.Cause, s.Detail, s.Remedy = turnFailure(u, hp, transport, *gerr)
			b.turnFailed = append(b.turnFailed, u)
			b.turnCauses = append(b.turnCauses, s.Cause)
		case rep == nil:
			s.State = Skipped
			s.Detail = "The participant sent no report of its candidates."
			if b.remoteRelay {
				s.Detail += " The media server received a relay candidate from it."
			}
		case b.selected:
			// Browsers stop gathering once a pair works: a relay that was not needed may
			// never have been asked for.
			s.State, s.At = Skipped, rep.At
			s.Detail = "Not needed: media already flows on another path (a browser stops gathering once a pair works)."
		case rep.GatheringState == "complete" || b.over:
			s.State, s.At, s.Cause = Failed, rep.At, CauseTURNNoRelay
			s.Detail = "Gathering ended without a relay candidate from " + u + "."
			s.Remedy = reachRemedy(hp, transport)
			b.turnFailed = append(b.turnFailed, u)
			b.turnCauses = append(b.turnCauses, s.Cause)
		default:
			s.State, s.Detail = Pending, "Still gathering."
		}
		b.add(s)
	}
}

func reachRemedy(hp, transport string) string {
	port := hp[strings.LastIndexByte(hp, ':')+1:]
	switch transport {
	case "tls":
		return "Let the participant's network reach " + hp + " over TCP (port " + port + "), with a certificate the browser trusts for that name; check that the TURN server listens there."
	case "tcp":
		return "Let the participant's network reach " + hp + " over TCP (port " + port + "); check that the TURN server listens there."
	}
	return "Let the participant's network reach " + hp + " over UDP (port " + port + "), or offer TURN over TLS on 443; check that the TURN server listens there."
}

// turnFailure explains an icecandidateerror.
func turnFailure(u, hp, transport string, e GatherErr) (cause, detail, remedy string) {
	text := e.Text
	if text == "" {
		text = "no reason given"
	}
	detail = fmt.Sprintf("%s failed with %d: %s", u, e.Code, text)
	switch {
	case e.Code == 401:
		return CauseTURNCredentials, detail + " (the TURN server refused the credentials)",
			"Give the turnServer the TURN server's shared secret (sharedSecret = coturn's static-auth-secret, and the same realm) or its username and password."
	case e.Code == 403 || e.Code == 486 || e.Code == 508:
		return CauseTURNRefused, detail + " (the TURN server refused the allocation)",
			"Check the TURN server's quotas and peer rules (486: too many allocations for this user; 508: the server is full)."
	}
	return CauseTURNUnreachable, detail + " (the participant could not reach the TURN server)", reachRemedy(hp, transport)
}

func (b *builder) checks() {
	s := Step{Name: "checks", Title: "Connectivity checks reached the media server"}
	tr := b.in.Transport
	if tr != nil && tr.Checks > 0 {
		b.checksIn = true
		s.State, s.At = OK, tr.FirstCheck
		var from []string
		for _, p := range tr.Pairs {
			if p.Checks > 0 {
				from = append(from, fmt.Sprintf("%s %s %s → %s (%d)", p.Remote.Type, p.Remote.Protocol, p.Remote.Address, p.Local.Address, p.Checks))
			}
		}
		sort.Strings(from)
		s.Detail = fmt.Sprintf("%d checks received, %d answered", tr.Checks, tr.Responses)
		if len(from) > 0 {
			s.Detail += ": from " + strings.Join(from, ", ")
		}
		b.add(s)
		return
	}
	if tr == nil || !b.over {
		s.State, s.Detail = Pending, "No check has reached the media server yet."
		if b.in.Report != nil && b.in.Report.ChecksSent > 0 {
			s.Detail += fmt.Sprintf(" The participant has sent %d.", b.in.Report.ChecksSent)
		}
		b.add(s)
		return
	}
	s.State = Failed
	s.Cause, s.Detail, s.Remedy = b.noChecks()
	b.add(s)
}

// noChecks explains why no check reached the media server.
func (b *builder) noChecks() (cause, detail, remedy string) {
	ports := "UDP " + portOf(b.in.MediaUDP)
	if b.in.MediaUDP == "" {
		ports = "its media port"
	} else if b.in.MediaTCP != "" {
		ports += " or TCP " + portOf(b.in.MediaTCP)
	}
	detail = "No connectivity check from the participant reached the media server (" + ports + ")"
	if b.in.Report != nil && b.in.Report.ChecksSent > 0 {
		detail += fmt.Sprintf("; the participant sent %d", b.in.Report.ChecksSent)
	}
	urls := b.turnURLs()
	switch {
	case b.anyRelay:
		return CauseRelayNotThrough, detail + ", although the participant had a relay: the TURN server did not pass its checks on.",
			"Let the TURN server reach the media server's UDP port " + portOf(b.in.MediaUDP) + " (its peer rules, [turn.peers] allow, or coturn's allowed-peer-ip; a firewall between them)."
	case len(urls) == 0:
		return CauseUDPBlockedNoTURN, detail + ", and this server offers no TURN relay: the participant's network blocks UDP to the media server.",
			"Configure a TURN server reachable over TLS on port 443 (POST /api/v1/turnServers, or confab up's embedded one), or open " + ports + " to the media server from the participants' networks."
	case len(b.turnFailed) > 0:
		cause := CauseTURNFailed
		if len(b.turnCauses) > 0 && b.turnCauses[0] == CauseTURNCredentials {
			cause = CauseTURNCredentials
		}
		return cause, detail + ", and no relay could be allocated (" + strings.Join(b.turnFailed, ", ") + " failed): the participant's network blocks UDP to the media server and the TURN server could not be used either.",
			"See the failed relay steps above; TURN over TLS on port 443 passes most firewalls."
	case b.in.Report == nil:
		return CauseNoChecks, detail + "; the participant sent no report, so its side is not known.",
			"Open " + ports + " to the media server from the participants' networks, or make sure they can use the TURN servers offered."
	}
	return CauseNoChecks, detail + ".", "Open " + ports + " to the media server from the participants' networks, or offer TURN over TLS on 443."
}

func portOf(hp string) string {
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		return hp[i+1:]
	}
	return hp
}

// pathOf names how media flows over the selected pair.
func (b *builder) pathOf(sel *sfu.PairInfo) string {
	rep := b.in.Report
	if rep != nil && rep.Selected != nil && rep.Selected.LocalType == "relay" {
		how := "TURN"
		switch rep.Selected.RelayProtocol {
		case "tls":
			how = "TURN over TLS"
		case "tcp":
			how = "TURN over TCP"
		case "udp":
			how = "TURN over UDP"
		}
		if rep.Selected.URL != "" {
			return "relay: " + how + " (" + rep.Selected.URL + ")"
		}
		return "relay: " + how
	}
	if sel.Local.Protocol == "tcp" {
		return "ICE-TCP"
	}
	if sel.Remote.Type == "relay" {
		return "relay"
	}
	return "direct UDP"
}

func (b *builder) pair() {
	s := Step{Name: "pair", Title: "Candidate pair selected"}
	tr := b.in.Transport
	if tr != nil && tr.Selected != nil {
		b.connected = true
		sel := tr.Selected
		s.State, s.At = OK, tr.SelectedAt
		b.l.Path = b.pathOf(sel)
		s.Detail = fmt.Sprintf("%s: participant %s %s %s ↔ media server %s %s %s", b.l.Path, sel.Remote.Type, sel.Remote.Protocol,
			sel.Remote.Address, sel.Local.Type, sel.Local.Protocol, sel.Local.Address)
		if sel.RTT > 0 {
			s.Detail += fmt.Sprintf(", round trip %d ms", sel.RTT.Milliseconds())
		}
		b.add(s)
		return
	}
	switch {
	case b.checksIn && b.over:
		s.State, s.Cause = Failed, CauseAnswersLost
		s.Detail = fmt.Sprintf("The media server answered %d checks, but the participant selected no pair: the answers do not get back to it.", tr.Responses)
		s.Remedy = "Let UDP from the media server's port back into the participant's network (a firewall that allows only outgoing packets, or one that expires the NAT mapping at once), or offer TURN over TLS on 443."
	case b.over && !b.checksIn:
		s.State, s.Detail = Failed, "No pair: no check reached the media server."
	default:
		s.State, s.Detail = Pending, "ICE has not selected a pair yet."
	}
	b.add(s)
}

func (b *builder) dtls() {
	s := Step{Name: "dtls", Title: "DTLS handshake (the keys of SRTP)"}
	tr := b.in.Transport
	switch {
	case tr != nil && !tr.DTLSConnected.IsZero():
		b.dtlsOK = true
		s.State, s.At, s.Detail = OK, tr.DTLSConnected, "DTLS connected: media is encrypted with SRTP."
	case tr != nil && tr.DTLSState == "failed" || b.connected && b.over:
		s.State, s.Cause = Failed, CauseDTLSFailed
		if tr != nil && tr.DTLSState == "failed" {
			s.At = tr.DTLSSince
		}
		s.Detail = "ICE connected but the DTLS handshake did not complete."
		s.Remedy = "Something between the participant and the media server drops or alters DTLS (a deep-inspecting firewall); TURN over TLS on 443 carries it inside TLS."
	case b.over:
		s.State, s.Detail = Failed, "Not reached: no pair was selected."
	default:
		s.State, s.Detail = Pending, "Waiting for a pair."
	}
	b.add(s)
}

func (b *builder) mediaIn() {
	s := Step{Name: "media-in", Title: "SRTP from the participant"}
	tr := b.in.Transport
	switch {
	case tr != nil && !tr.FirstMediaIn.IsZero():
		s.State, s.At = OK, tr.FirstMediaIn
		s.Detail = fmt.Sprintf("%d packets received", b.in.ReceivedPackets)
	case !b.dtlsOK:
		s.State, s.Detail = Pending, "Waiting for DTLS."
		if b.over {
			s.State, s.Detail = Skipped, "Not reached."
		}
	default:
		s.State, s.Detail = Pending, "Nothing received yet: the participant sends no audio or video (muted, no devices, or chat only)."
	}
	b.add(s)
}

func (b *builder) mediaOut() {
	s := Step{Name: "media-out", Title: "SRTP to the participant"}
	tr := b.in.Transport
	switch {
	case tr != nil && !tr.FirstMediaOut.IsZero():
		s.State, s.At = OK, tr.FirstMediaOut
		if rep := b.in.Report; rep != nil && rep.PacketsReceived > 0 {
			s.Detail = fmt.Sprintf("the participant has received %d packets", rep.PacketsReceived)
		} else {
			s.Detail = "forwarding"
		}
	case !b.in.OthersPublish:
		s.State, s.Detail = Skipped, "Nothing to send: no one else publishes."
	case !b.dtlsOK:
		s.State, s.Detail = Pending, "Waiting for DTLS."
		if b.over {
			s.State, s.Detail = Skipped, "Not reached."
		}
	default:
		s.State, s.Detail = Pending, "Nothing sent yet."
	}
	b.add(s)
}

func (b *builder) finish() {
	l := &b.l
	tr := b.in.Transport
	switch {
	case tr == nil:
		l.State = StateNone
	case b.dtlsOK:
		l.State = StateConnected
	default:
		l.State = StateConnecting
	}
	if b.dtlsOK {
		// A path works: the relays that failed are worth fixing, but media flows. A client
		// that closed its connection itself has not lost it.
		if tr != nil && !tr.Ended.IsZero() && tr.EndReason != nil && !errors.Is(tr.EndReason, sfu.ErrConnectionClosed) {
			l.State, l.Cause, l.Text = StateFailed, CauseLost, Words(CauseLost)
		}
		return
	}
	// The decisive failure is the connection's (its causes take the relays into account).
	for _, name := range []string{"gather", "checks", "pair", "dtls"} {
		for _, s := range l.Steps {
			if s.Name == name && s.State == Failed && s.Cause != "" {
				l.State, l.Cause, l.Text = StateFailed, s.Cause, Words(s.Cause)
				return
			}
		}
	}
	if b.over {
		l.State, l.Cause, l.Text = StateFailed, CauseTimeout, Words(CauseTimeout)
	}
}

// Words says in words a participant understands what a cause means for it.
func Words(cause string) string {
	switch cause {
	case CauseUDPBlockedNoTURN:
		return "Your network blocks the connection the meeting needs (UDP), and this server offers no relay. Try another network (a mobile hotspot, say), or ask the meeting's organiser to have a TURN server set up."
	case CauseTURNFailed, CauseTURNUnreachable, CauseTURNNoRelay:
		return "Your network blocks the connection the meeting needs (UDP), and the meeting's relay server could not be reached either. Try another network, or tell the meeting's organiser."
	case CauseTURNCredentials, CauseTURNRefused:
		return "Your network blocks the connection the meeting needs (UDP), and the meeting's relay server refused to help. Tell the meeting's organiser: the server is misconfigured."
	case CauseRelayNotThrough:
		return "The meeting's relay server was reached but could not pass your audio and video on. Tell the meeting's organiser."
	case CauseAnswersLost:
		return "Your network lets the meeting's connection out but not back in. Try another network."
	case CauseDTLSFailed:
		return "The secure audio and video connection could not be set up; something on your network interferes. Try another network."
	case CauseNoCandidates:
		return "Your browser offered no way to connect audio and video (WebRTC may be blocked by an extension or a policy)."
	case CauseLost:
		return "The audio and video connection was lost."
	case CauseNoChecks, CauseTimeout:
		return "Audio and video could not connect: your network blocks the connection the meeting needs. Try another network."
	}
	return ""
}
