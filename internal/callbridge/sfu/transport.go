package sfu

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Transport is the state of a participant's connection as the SFU sees it, for the media
// ladder: when each step happened, the candidates the client gave, the connectivity checks
// that reached the SFU, the pair ICE selected, DTLS, and the first media each way. Times
// are zero for what has not happened.
type Transport struct {
	Joined time.Time // Join
	// Offer is when the client's first offer was taken, Answer when the SFU's answer to it
	// was handed to the Signal.
	Offer, Answer time.Time
	// LocalCandidates are the SFU's own (host) candidates in its answer.
	LocalCandidates []Candidate
	// RemoteCandidates are the client's, from its offer and its trickled candidates,
	// by their first appearance; EndOfCandidates says the client signalled their end.
	RemoteCandidates []CandidateInfo
	// ICEState is the ICE connection state (new, checking, connected, completed,
	// disconnected, failed, closed) since ICESince; ICEChecking and ICEConnected are when
	// it first became checking and connected.
	ICEState                  string
	ICESince                  time.Time
	ICEChecking, ICEConnected time.Time
	// Checks counts the connectivity checks (STUN binding requests) received from the
	// client over all candidate pairs, Responses the answers sent; FirstCheck is when the
	// first arrived. Pairs are the candidate pairs with checks, by remote address.
	Checks, Responses uint64
	FirstCheck        time.Time
	Pairs             []PairInfo
	// Selected is the pair media flows on, nil before ICE selects one; SelectedAt when it
	// was selected.
	Selected   *PairInfo
	SelectedAt time.Time
	// DTLSState (new, connecting, connected, closed, failed) since DTLSSince;
	// DTLSConnected is when it first connected.
	DTLSState     string
	DTLSSince     time.Time
	DTLSConnected time.Time
	// FirstMediaIn is when the first RTP packet of the client's arrived (decrypted: SRTP
	// works inbound), FirstMediaOut when the first was forwarded to it.
	FirstMediaIn, FirstMediaOut time.Time
	// Ended is when the participant left, EndReason why (nil: Leave).
	Ended     time.Time
	EndReason error
}

// CandidateInfo is an ICE candidate as the ladder shows it.
type CandidateInfo struct {
	Type     string // host, srflx, prflx, relay
	Protocol string // udp, tcp
	Address  string // ip:port (an mDNS name for a host candidate a browser hides)
	// TCPType is active, passive or so for a TCP candidate.
	TCPType string
}

// PairInfo is a candidate pair: the SFU's candidate and the client's.
type PairInfo struct {
	Local, Remote     CandidateInfo
	State             string // waiting, in-progress, succeeded, failed
	Nominated         bool
	Checks, Responses uint64
	BytesIn, BytesOut uint64
	// RTT is the round-trip time of the last check (zero when unknown).
	RTT time.Duration
}

// transportState records a participant's Transport as it happens. Its lock is a leaf.
type transportState struct {
	mu    sync.Mutex
	t     Transport
	seen  map[string]bool // remote candidate addresses already recorded
	ended bool
}

var (
	candTypeRE  = regexp.MustCompile(`(?i)\btyp\s+(host|srflx|prflx|relay)\b`)
	candFieldRE = regexp.MustCompile(`^(?:a=)?candidate:\S+\s+\d+\s+(\S+)\s+\d+\s+(\S+)\s+(\d+)`)
	tcpTypeRE   = regexp.MustCompile(`(?i)\btcptype\s+(\S+)`)
)

// parseCandidate reads an SDP candidate line ("candidate:…" with or without "a=").
func parseCandidate(s string) (CandidateInfo, bool) {
	s = strings.TrimSpace(s)
	m := candFieldRE.FindStringSubmatch(s)
	t := candTypeRE.FindStringSubmatch(s)
	if m == nil || t == nil {
		return CandidateInfo{}, false
	}
	c := CandidateInfo{Type: strings.ToLower(t[1]), Protocol: strings.ToLower(m[1]), Address: joinHostPort(m[2], m[3])}
	if tt := tcpTypeRE.FindStringSubmatch(s); tt != nil {
		c.TCPType = tt[1]
	}
	return c, true
}

func joinHostPort(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}

// addRemote records the client's candidates found in text (an SDP, or one candidate).
func (ts *transportState) addRemote(text string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, line := range strings.Split(text, "\n") {
		c, ok := parseCandidate(line)
		if !ok {
			continue
		}
		key := c.Protocol + " " + c.Address
		if ts.seen == nil {
			ts.seen = map[string]bool{}
		}
		if ts.seen[key] {
			continue
		}
		ts.seen[key] = true
		ts.t.RemoteCandidates = append(ts.t.RemoteCandidates, c)
	}
}

// localCandidates records the SFU's candidates in its description.
func (ts *transportState) localCandidates(sdp string) {
	var cs []Candidate
	for _, line := range strings.Split(sdp, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "a=candidate:") {
			cs = append(cs, Candidate{Candidate: strings.TrimPrefix(strings.TrimSpace(line), "a=")})
		}
	}
	ts.mu.Lock()
	if len(cs) > 0 {
		ts.t.LocalCandidates = cs
	}
	ts.mu.Unlock()
}

func (ts *transportState) set(f func(t *Transport)) {
	ts.mu.Lock()
	f(&ts.t)
	ts.mu.Unlock()
}

// iceState records a change of the ICE connection state.
func (ts *transportState) iceState(st webrtc.ICEConnectionState, now time.Time) {
	ts.set(func(t *Transport) {
		t.ICEState, t.ICESince = st.String(), now
		switch st {
		case webrtc.ICEConnectionStateChecking:
			if t.ICEChecking.IsZero() {
				t.ICEChecking = now
			}
		case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
			if t.ICEConnected.IsZero() {
				t.ICEConnected = now
			}
		}
	})
}

// dtlsState records a change of the DTLS transport's state.
func (ts *transportState) dtlsState(st webrtc.DTLSTransportState, now time.Time) {
	ts.set(func(t *Transport) {
		t.DTLSState, t.DTLSSince = st.String(), now
		if st == webrtc.DTLSTransportStateConnected && t.DTLSConnected.IsZero() {
			t.DTLSConnected = now
		}
	})
}

func candidateOf(c webrtc.ICECandidateStats) CandidateInfo {
	return CandidateInfo{Type: c.CandidateType.String(), Protocol: strings.ToLower(c.Protocol), Address: joinHostPort(c.IP, strconv.Itoa(int(c.Port)))}
}

// sampleICE reads the candidate pairs from pion's statistics into the record.
func (ts *transportState) sampleICE(report webrtc.StatsReport) {
	cands := map[string]webrtc.ICECandidateStats{}
	for _, s := range report {
		if c, ok := s.(webrtc.ICECandidateStats); ok {
			cands[c.ID] = c
		}
	}
	var pairs []PairInfo
	var checks, responses uint64
	var first time.Time
	for _, s := range report {
		cp, ok := s.(webrtc.ICECandidatePairStats)
		if !ok {
			continue
		}
		p := PairInfo{Local: candidateOf(cands[cp.LocalCandidateID]), Remote: candidateOf(cands[cp.RemoteCandidateID]),
			State: string(cp.State), Nominated: cp.Nominated, Checks: cp.RequestsReceived, Responses: cp.ResponsesSent,
			BytesIn: cp.BytesReceived, BytesOut: cp.BytesSent,
			RTT: time.Duration(cp.CurrentRoundTripTime * float64(time.Second))}
		checks += cp.RequestsReceived
		responses += cp.ResponsesSent
		if ft := cp.FirstRequestReceivedTimestamp.Time(); cp.RequestsReceived > 0 && !ft.IsZero() && ft.Unix() > 0 && (first.IsZero() || ft.Before(first)) {
			first = ft
		}
		if cp.RequestsReceived > 0 || cp.Nominated || cp.State == webrtc.StatsICECandidatePairStateSucceeded {
			pairs = append(pairs, p)
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Remote.Address < pairs[j].Remote.Address })
	ts.set(func(t *Transport) {
		if checks >= t.Checks {
			t.Checks, t.Responses, t.Pairs = checks, responses, pairs
		}
		if !first.IsZero() && (t.FirstCheck.IsZero() || first.Before(t.FirstCheck)) {
			t.FirstCheck = first
		}
		if t.FirstCheck.IsZero() && checks > 0 {
			t.FirstCheck = time.Now()
		}
		for i := range pairs {
			if t.Selected != nil && pairs[i].Remote.Address == t.Selected.Remote.Address && pairs[i].Local.Address == t.Selected.Local.Address {
				sel := pairs[i]
				t.Selected = &sel
			}
		}
	})
}

// selected records the pair ICE selected.
func (ts *transportState) selected(pair *webrtc.ICECandidatePair, now time.Time) {
	if pair == nil || pair.Local == nil || pair.Remote == nil {
		return
	}
	conv := func(c *webrtc.ICECandidate) CandidateInfo {
		ci := CandidateInfo{Type: c.Typ.String(), Protocol: c.Protocol.String(), Address: joinHostPort(c.Address, strconv.Itoa(int(c.Port)))}
		if c.TCPType != "" {
			ci.TCPType = c.TCPType
		}
		return ci
	}
	p := &PairInfo{Local: conv(pair.Local), Remote: conv(pair.Remote), State: "succeeded", Nominated: true}
	ts.set(func(t *Transport) {
		t.Selected, t.SelectedAt = p, now
	})
}

// snapshot returns a copy of the record.
func (ts *transportState) snapshot() Transport {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.t
	t.LocalCandidates = append([]Candidate(nil), t.LocalCandidates...)
	t.RemoteCandidates = append([]CandidateInfo(nil), t.RemoteCandidates...)
	t.Pairs = append([]PairInfo(nil), t.Pairs...)
	if t.Selected != nil {
		sel := *t.Selected
		t.Selected = &sel
	}
	return t
}

// Transport returns the state of the participant's connection; after it has left, the
// state it left in.
func (p *Participant) Transport() Transport {
	select {
	case <-p.closed:
	default:
		if !p.gone() {
			p.sampleICE()
		}
	}
	t := p.tr.snapshot()
	if ns := p.c.firstIn.Load(); ns != 0 {
		t.FirstMediaIn = time.Unix(0, ns)
	}
	if ns := p.c.firstOut.Load(); ns != 0 {
		t.FirstMediaOut = time.Unix(0, ns)
	}
	return t
}

// ParticipantTransport returns the connection state of one participant.
func (s *SFU) ParticipantTransport(roomID, participantID string) (Transport, error) {
	p, err := s.Participant(roomID, participantID)
	if err != nil {
		return Transport{}, err
	}
	return p.Transport(), nil
}
