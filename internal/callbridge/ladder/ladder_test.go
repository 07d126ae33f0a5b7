package ladder

import (
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

var turnServers = []sfu.ICEServer{{ID: "t1", URLs: []string{
	"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp", "turns:turn.example.com:443?transport=tcp"}}}

// answered is the SFU's record of a participant whose offer was answered, nothing more.
func answered() *sfu.Transport {
	return &sfu.Transport{Joined: at(10), Offer: at(20), Answer: at(30), ICEState: "checking", DTLSState: "new",
		LocalCandidates: []sfu.Candidate{{Candidate: "candidate:1 1 udp 2130706431 203.0.113.10 10000 typ host"},
			{Candidate: "candidate:2 1 tcp 1671430143 203.0.113.10 10000 typ host tcptype passive"}},
		RemoteCandidates: []sfu.CandidateInfo{{Type: "host", Protocol: "udp", Address: "192.168.1.10:50000"}}}
}

func connected(remoteType, proto string) *sfu.Transport {
	tr := answered()
	tr.ICEState, tr.ICEConnected, tr.Checks, tr.Responses, tr.FirstCheck = "connected", at(80), 4, 4, at(50)
	tr.Pairs = []sfu.PairInfo{{Local: sfu.CandidateInfo{Type: "host", Protocol: proto, Address: "203.0.113.10:10000"},
		Remote: sfu.CandidateInfo{Type: remoteType, Protocol: proto, Address: "203.0.113.10:49170"}, Checks: 4}}
	tr.Selected, tr.SelectedAt = &tr.Pairs[0], at(80)
	tr.DTLSState, tr.DTLSConnected, tr.FirstMediaIn, tr.FirstMediaOut = "connected", at(120), at(150), at(160)
	return tr
}

// timedOut is the record of one the connect timeout ended.
func timedOut(checks uint64) *sfu.Transport {
	tr := answered()
	tr.Checks, tr.Responses, tr.Ended, tr.EndReason = checks, checks, at(30000), sfu.ErrConnectTimeout
	if checks > 0 {
		tr.FirstCheck = at(60)
		tr.Pairs = []sfu.PairInfo{{Local: sfu.CandidateInfo{Type: "host", Protocol: "udp", Address: "203.0.113.10:10000"},
			Remote: sfu.CandidateInfo{Type: "prflx", Protocol: "udp", Address: "198.51.100.7:61000"}, Checks: checks}}
	}
	return tr
}

func hostOnly() *Report {
	return &Report{At: at(40), GatheringState: "complete", ICEState: "checking",
		Candidates: []Gathered{{Type: "host", Protocol: "udp", Address: "192.168.1.10:50000"}}}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name      string
		in        Input
		wantState string
		wantPath  string
		wantCause string
		// steps: name → state (only those listed are checked); words: in the text
		steps map[string]string
		text  string
		more  func(t *testing.T, l Ladder)
	}{
		{
			name:      "direct UDP, no TURN configured",
			in:        Input{SessionAsked: true, Transport: connected("srflx", "udp"), ReceivedPackets: 90, OthersPublish: true},
			wantState: StateConnected, wantPath: "direct UDP",
			steps: map[string]string{"servers": Warning, "offer": OK, "gather": OK, "checks": OK, "pair": OK, "dtls": OK, "media-in": OK, "media-out": OK},
		},
		{
			name: "relay over TLS",
			in: Input{SessionAsked: true, ICEServers: turnServers, Transport: connected("relay", "udp"), Report: &Report{At: at(45), GatheringState: "complete",
				Candidates: []Gathered{{Type: "host", Protocol: "udp"}, {Type: "relay", Protocol: "udp", RelayProtocol: "tls", Address: "203.0.113.10:49170", URL: "turns:turn.example.com:443?transport=tcp"}},
				Errors: []GatherErr{{URL: "turn:turn.example.com:3478?transport=udp", Code: 701, Text: "STUN binding request timed out"},
					{URL: "turn:turn.example.com:3478?transport=tcp", Code: 701, Text: "TCP connect failed"}},
				Selected: &Selected{LocalType: "relay", LocalProtocol: "udp", RelayProtocol: "tls", URL: "turns:turn.example.com:443?transport=tcp"}}},
			wantState: StateConnected, wantPath: "relay: TURN over TLS (turns:turn.example.com:443?transport=tcp)",
			steps: map[string]string{"servers": OK, "relay turns:turn.example.com:443?transport=tcp": OK,
				"relay turn:turn.example.com:3478?transport=udp": Failed, "pair": OK, "media-out": OK},
		},
		{
			name: "connected directly, the relays never asked for",
			in: Input{SessionAsked: true, ICEServers: turnServers, Transport: connected("srflx", "udp"),
				Report: &Report{At: at(45), GatheringState: "complete", Candidates: hostOnly().Candidates}},
			wantState: StateConnected, wantPath: "direct UDP",
			steps: map[string]string{"relay turns:turn.example.com:443?transport=tcp": Skipped, "relay turn:turn.example.com:3478?transport=udp": Skipped},
		},
		{
			name:      "ICE-TCP",
			in:        Input{SessionAsked: true, ICEServers: turnServers, Transport: connected("host", "tcp")},
			wantState: StateConnected, wantPath: "ICE-TCP",
		},
		{
			name: "UDP blocked, no TURN",
			in: Input{SessionAsked: true, MediaUDP: "203.0.113.10:10000", MediaTCP: "203.0.113.10:10000",
				Transport: timedOut(0), Report: hostOnly()},
			wantState: StateFailed, wantCause: CauseUDPBlockedNoTURN,
			steps: map[string]string{"checks": Failed, "pair": Failed, "dtls": Failed, "media-in": Skipped},
			text:  "Your network blocks the connection the meeting needs (UDP), and this server offers no relay",
			more: func(t *testing.T, l Ladder) {
				s := find(l, "checks")
				if !strings.Contains(s.Detail, "UDP 10000 or TCP 10000") || !strings.Contains(s.Remedy, "TURN server reachable over TLS on port 443") {
					t.Errorf("checks step %+v", s)
				}
			},
		},
		{
			name: "UDP blocked, TURN over TLS unreachable",
			in: Input{SessionAsked: true, ICEServers: []sfu.ICEServer{{URLs: []string{"turns:turn.example.com:443?transport=tcp"}}},
				MediaUDP: "203.0.113.10:10000", Transport: timedOut(0),
				Report: &Report{At: at(40), GatheringState: "complete", Candidates: hostOnly().Candidates,
					Errors: []GatherErr{{URL: "turns:turn.example.com:443?transport=tcp", Code: 701, Text: "TLS handshake failed"}}}},
			wantState: StateFailed, wantCause: CauseTURNFailed,
			steps: map[string]string{"relay turns:turn.example.com:443?transport=tcp": Failed, "checks": Failed},
			text:  "the meeting's relay server could not be reached either",
			more: func(t *testing.T, l Ladder) {
				s := find(l, "relay turns:turn.example.com:443?transport=tcp")
				if !strings.Contains(s.Remedy, "over TCP (port 443)") || !strings.Contains(s.Detail, "TLS handshake failed") {
					t.Errorf("relay step %+v", s)
				}
				if s.Cause != CauseTURNUnreachable {
					t.Errorf("relay cause %q, want %q", s.Cause, CauseTURNUnreachable)
				}
			},
		},
		{
			name: "wrong shared secret",
			in: Input{SessionAsked: true, ICEServers: []sfu.ICEServer{{URLs: []string{"turns:turn.example.com:443?transport=tcp"}}}, Transport: timedOut(0),
				Report: &Report{At: at(40), GatheringState: "complete", Candidates: hostOnly().Candidates,
					Errors: []GatherErr{{URL: "turns:turn.example.com:443?transport=tcp", Code: 401, Text: "Unauthorized"}}}},
			wantState: StateFailed, wantCause: CauseTURNCredentials,
			text: "the meeting's relay server refused to help",
			more: func(t *testing.T, l Ladder) {
				s := find(l, "relay turns:turn.example.com:443?transport=tcp")
				if s.Cause != CauseTURNCredentials || !strings.Contains(s.Remedy, "shared secret") {
					t.Errorf("relay step %+v", s)
				}
			},
		},
		{
			name: "relay allocated, nothing passes",
			in: Input{SessionAsked: true, ICEServers: turnServers, MediaUDP: "127.0.0.1:10000", Transport: timedOut(0),
				Report: &Report{At: at(40), GatheringState: "complete", Candidates: []Gathered{{Type: "relay", Protocol: "udp", RelayProtocol: "udp", URL: turnServers[0].URLs[0]}}}},
			wantState: StateFailed, wantCause: CauseRelayNotThrough,
			text: "relay server was reached but could not pass",
		},
		{
			name:      "answers lost",
			in:        Input{SessionAsked: true, ICEServers: turnServers, Transport: timedOut(5), Report: hostOnly()},
			wantState: StateFailed, wantCause: CauseAnswersLost,
			steps: map[string]string{"checks": OK, "pair": Failed},
		},
		{
			name: "still connecting",
			in: Input{SessionAsked: true, ICEServers: turnServers, Transport: answered(), Now: at(2000), Deadline: 30 * time.Second,
				Report: &Report{At: at(40), GatheringState: "gathering", Candidates: hostOnly().Candidates}},
			wantState: StateConnecting,
			steps:     map[string]string{"checks": Pending, "relay turns:turn.example.com:443?transport=tcp": Pending, "dtls": Pending},
		},
		{
			name:      "past the deadline without an end",
			in:        Input{SessionAsked: true, ICEServers: turnServers, Transport: answered(), Now: at(40000), Deadline: 30 * time.Second},
			wantState: StateFailed, wantCause: CauseNoChecks,
		},
		{
			name:      "no media yet",
			in:        Input{SessionAsked: true},
			wantState: StateNone,
			steps:     map[string]string{"offer": Pending, "gather": Pending},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in.Started.IsZero() {
				tt.in.Started = t0
			}
			if tt.in.Now.IsZero() {
				tt.in.Now = at(60000)
			}
			l := Build(tt.in)
			if l.State != tt.wantState || l.Path != tt.wantPath || l.Cause != tt.wantCause {
				t.Errorf("state %q path %q cause %q, want %q %q %q\n%s", l.State, l.Path, l.Cause, tt.wantState, tt.wantPath, tt.wantCause, dump(l))
			}
			for name, want := range tt.steps {
				if got := find(l, name); got.State != want {
					t.Errorf("step %s: %q, want %q (%+v)", name, got.State, want, got)
				}
			}
			if tt.text != "" && !strings.Contains(l.Text, tt.text) {
				t.Errorf("text %q, want it to say %q", l.Text, tt.text)
			}
			for _, s := range l.Steps {
				if s.State == Failed && s.Cause != "" && s.Remedy == "" {
					t.Errorf("step %s failed with cause %s and no remedy", s.Name, s.Cause)
				}
				if !s.At.IsZero() && s.Since != s.At.Sub(t0) {
					t.Errorf("step %s: since %v, want %v", s.Name, s.Since, s.At.Sub(t0))
				}
			}
			if tt.more != nil {
				tt.more(t, l)
			}
		})
	}
}

func find(l Ladder, name string) Step {
	for _, s := range l.Steps {
		if s.Name == name {
			return s
		}
	}
	return Step{}
}

func dump(l Ladder) string {
	var b strings.Builder
	for _, s := range l.Steps {
		b.WriteString("  " + s.Name + " " + s.State + " " + s.Cause + ": " + s.Detail + "\n")
	}
	return b.String()
}

func TestWordsForEveryCause(t *testing.T) {
	for _, c := range []string{CauseUDPBlockedNoTURN, CauseTURNFailed, CauseTURNUnreachable, CauseTURNCredentials, CauseTURNRefused,
		CauseTURNNoRelay, CauseRelayNotThrough, CauseNoChecks, CauseAnswersLost, CauseDTLSFailed, CauseNoCandidates, CauseTimeout, CauseLost} {
		if Words(c) == "" {
			t.Errorf("no words for %s", c)
		}
	}
}
