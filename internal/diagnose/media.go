package diagnose

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"confab.dev/confab/internal/callbridge/ladder"
)

// MediaSettings configure `confab diagnose media`: from where it runs, connect to the Call
// Bridge's media server the ways a browser would — directly over UDP, over ICE-TCP, and
// through each TURN URL the server offers — using the web app's connection test, and
// report each path as the server's media ladder saw it.
type MediaSettings struct {
	// URL is the web app's address (https://meet.example.com:8443).
	URL string
	// RootCAs verify the web app's and the TURN servers' certificates (nil: the system's).
	RootCAs *x509.CertPool
	// Timeout bounds each path (default 12 s).
	Timeout time.Duration
	// Only keeps the paths whose name contains it ("udp", "tcp", "turns:", a host).
	Only string
	// Logf, when set, receives pion's warnings (why a TURN server could not be used).
	Logf func(format string, args ...any)
}

// MediaReport is what a media diagnosis found.
type MediaReport struct {
	URL        string      `json:"url"`
	ICEServers []string    `json:"iceServers"`
	Paths      []MediaPath `json:"paths"`
	Verdict    string      `json:"verdict"` // direct, relay, blocked, blocked-no-turn, error
	Message    string      `json:"message"`
	Error      string      `json:"error,omitempty"`
	Started    time.Time   `json:"started"`
	Duration   float64     `json:"durationMs"`
}

// MediaPath is one way in.
type MediaPath struct {
	Name   string        `json:"name"` // udp, tcp, or the TURN URL
	Title  string        `json:"title"`
	Result string        `json:"result"` // PASS, FAIL
	Ladder ladder.Ladder `json:"ladder"`
	Error  string        `json:"error,omitempty"`
	// DurationMs is how long the path took to connect, or to fail.
	DurationMs float64 `json:"durationMs"`
}

// Passed reports whether media can get through some way.
func (r MediaReport) Passed() bool { return r.Verdict == "direct" || r.Verdict == "relay" }

type iceServerJSON struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
}

// mediaClient talks to the web app's connection test.
type mediaClient struct {
	base   string
	origin string
	http   *http.Client
}

func (c *mediaClient) post(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Origin", c.origin)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("POST %s: %s: %s", path, res.Status, e.Error)
	}
	return json.Unmarshal(b, out)
}

// mediaPathSpec is a path to try.
type mediaPathSpec struct {
	name, title string
	keep        string // "udp" or "tcp": the server's candidates kept (a direct path)
	server      *iceServerJSON
	url         *stun.URI
}

// RunMedia runs the media diagnosis.
func RunMedia(ctx context.Context, s MediaSettings) MediaReport {
	start := time.Now()
	rep := MediaReport{URL: s.URL, Started: start}
	defer func() { rep.Duration = float64(time.Since(start).Microseconds()) / 1000 }()
	if s.Timeout <= 0 {
		s.Timeout = 12 * time.Second
	}
	u, err := url.Parse(strings.TrimRight(s.URL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		rep.Verdict, rep.Error = "error", fmt.Sprintf("the web app's URL %q: want https://host[:port]", s.URL)
		return rep
	}
	c := &mediaClient{base: u.Scheme + "://" + u.Host, origin: u.Scheme + "://" + u.Host,
		http: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.RootCAs}}}}
	var test struct {
		Test       string          `json:"test"`
		ICEServers []iceServerJSON `json:"iceServers"`
	}
	if err := c.post(ctx, "/api/webapp/connection-test", nil, &test); err != nil {
		rep.Verdict, rep.Error = "error", err.Error()
		return rep
	}
	specs := []mediaPathSpec{
		{name: "udp", title: "Directly over UDP to the media port", keep: "udp"},
		{name: "tcp", title: "Directly over TCP to the media port (ICE-TCP)", keep: "tcp"},
	}
	relays := 0
	for i := range test.ICEServers {
		is := &test.ICEServers[i]
		for _, raw := range is.URLs {
			rep.ICEServers = append(rep.ICEServers, raw)
			su, err := stun.ParseURI(raw)
			if err != nil || (su.Scheme != stun.SchemeTypeTURN && su.Scheme != stun.SchemeTypeTURNS) {
				continue
			}
			relays++
			specs = append(specs, mediaPathSpec{name: raw, title: "Through " + ladder.Describe(raw) + " " + net.JoinHostPort(su.Host, fmt.Sprint(su.Port)), server: is, url: su})
		}
	}
	for _, sp := range specs {
		if s.Only != "" && !strings.Contains(sp.name, s.Only) {
			continue
		}
		rep.Paths = append(rep.Paths, runMediaPath(ctx, c, test.Test, sp, s))
	}
	var works []MediaPath
	triedUDP := false
	for _, p := range rep.Paths {
		if p.Result == Pass {
			works = append(works, p)
		}
		triedUDP = triedUDP || p.Name == "udp"
	}
	switch {
	case len(works) > 0 && works[0].Name == "udp":
		rep.Verdict, rep.Message = "direct", "Media can go straight to the media server over UDP."
	case len(works) > 0 && !triedUDP:
		rep.Verdict, rep.Message = "relay", "Media can go "+strings.ToLower(works[0].Title[:1])+works[0].Title[1:]+" (direct UDP not tried)."
	case len(works) > 0:
		rep.Verdict, rep.Message = "relay", "UDP to the media server does not get through from here, but media can go "+strings.ToLower(works[0].Title[:1])+works[0].Title[1:]+"."
	case relays == 0:
		rep.Verdict, rep.Message = "blocked-no-turn", ladder.Words(ladder.CauseUDPBlockedNoTURN)
	default:
		rep.Verdict, rep.Message = "blocked", ladder.Words(ladder.CauseTURNFailed)
	}
	return rep
}

// turnDialer dials a TURN server for pion (its proxy dialer): TCP, and TLS for turns:
// with the diagnosis's roots; it keeps the error, for the report.
type turnDialer struct {
	tls    bool
	host   string
	roots  *x509.CertPool
	lastEr error
}

func (d *turnDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		d.lastEr = err
		return nil, err
	}
	if !d.tls {
		return c, nil
	}
	tc := tls.Client(c, &tls.Config{ServerName: d.host, RootCAs: d.roots, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		d.lastEr = fmt.Errorf("TLS: %w", err)
		return nil, d.lastEr
	}
	return tc, nil
}

// runMediaPath connects over one path and returns what the server's ladder says of it.
func runMediaPath(ctx context.Context, c *mediaClient, test string, sp mediaPathSpec, s MediaSettings) MediaPath {
	start := time.Now()
	mp := MediaPath{Name: sp.name, Title: sp.title, Result: Fail}
	done := func() MediaPath {
		mp.DurationMs = float64(time.Since(start).Microseconds()) / 1000
		return mp
	}
	se := webrtc.SettingEngine{}
	se.LoggerFactory = pionLogs{logf: s.Logf}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	cfg := webrtc.Configuration{}
	var dialer *turnDialer
	switch {
	case sp.keep == "tcp":
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	case sp.keep == "udp":
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	default:
		// A relay reaches the media server's UDP port only: the server's TCP candidates
		// are dropped from the answer, so that ICE-TCP cannot stand in for the relay.
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
		cfg.ICEServers = []webrtc.ICEServer{{URLs: []string{sp.name}, Username: sp.server.Username, Credential: sp.server.Credential}}
		if sp.url.Proto == stun.ProtoTypeTCP {
			dialer = &turnDialer{tls: sp.url.Scheme == stun.SchemeTypeTURNS, host: sp.url.Host, roots: s.RootCAs}
			se.SetICEProxyDialer(dialer)
		}
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		mp.Error = err.Error()
		return done()
	}
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "probe", "diagnose")
	if err != nil {
		mp.Error = err.Error()
		return done()
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		mp.Error = err.Error()
		return done()
	}
	var candMu sync.Mutex
	var candidates []ladder.Gathered
	gatheredSoFar := func() []ladder.Gathered {
		candMu.Lock()
		defer candMu.Unlock()
		return append([]ladder.Gathered(nil), candidates...)
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		g := ladder.Gathered{Type: cand.Typ.String(), Protocol: cand.Protocol.String(), Address: net.JoinHostPort(cand.Address, fmt.Sprint(cand.Port))}
		if cand.Typ == webrtc.ICECandidateTypeRelay {
			g.URL = sp.name
			g.RelayProtocol = "udp"
			if sp.url != nil && sp.url.Proto == stun.ProtoTypeTCP {
				g.RelayProtocol = "tcp"
				if sp.url.Scheme == stun.SchemeTypeTURNS {
					g.RelayProtocol = "tls"
				}
			}
		}
		candMu.Lock()
		candidates = append(candidates, g)
		candMu.Unlock()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		mp.Error = err.Error()
		return done()
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		mp.Error = err.Error()
		return done()
	}
	select {
	case <-gathered:
	case <-time.After(s.Timeout / 2):
	case <-ctx.Done():
		mp.Error = ctx.Err().Error()
		return done()
	}
	var probe struct {
		Probe  string `json:"probe"`
		Answer string `json:"answer"`
	}
	via := ""
	if sp.url != nil {
		via = sp.name
	}
	if err := c.post(ctx, "/api/webapp/connection-test/"+url.PathEscape(test)+"/probes", map[string]string{"offer": pc.LocalDescription().SDP, "url": via}, &probe); err != nil {
		mp.Error = err.Error()
		return done()
	}
	answer := probe.Answer
	switch {
	case sp.keep != "":
		answer = keepCandidates(answer, sp.keep)
	default:
		answer = keepCandidates(answer, "udp")
	}
	connected := make(chan struct{})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			select {
			case <-connected:
			default:
				close(connected)
			}
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		mp.Error = err.Error()
		return done()
	}
	deadline := time.NewTimer(s.Timeout)
	defer deadline.Stop()
	if sp.url != nil && !hasRelay(gatheredSoFar()) {
		// No relay: nothing can connect on this path.
		deadline.Reset(0)
	}
	select {
	case <-connected:
		// Some media, so that the server sees SRTP arrive.
		tick := time.NewTicker(20 * time.Millisecond)
		for i := 0; i < 50; i++ {
			_ = track.WriteSample(mediaSample())
			<-tick.C
		}
		tick.Stop()
	case <-deadline.C:
	case <-ctx.Done():
	}
	rep := pionReport(pc, gatheredSoFar())
	rep.Final = true
	if len(rep.Candidates) == 0 || sp.url != nil && !hasRelay(rep.Candidates) {
		if e := relayError(sp, dialer, s); e != nil {
			rep.Errors = append(rep.Errors, *e)
		}
	}
	if err := c.post(ctx, "/api/webapp/connection-test/probes/"+url.PathEscape(probe.Probe)+"/report", rep, &mp.Ladder); err != nil {
		mp.Error = err.Error()
		return done()
	}
	if mp.Ladder.State == ladder.StateConnected {
		mp.Result = Pass
	}
	return done()
}

func hasRelay(cs []ladder.Gathered) bool {
	for _, c := range cs {
		if c.Type == "relay" {
			return true
		}
	}
	return false
}

// relayError finds out why a TURN URL gave no relay, as a browser's icecandidateerror says
// it: 701 when the server cannot be reached, else the STUN error code.
func relayError(sp mediaPathSpec, d *turnDialer, s MediaSettings) *ladder.GatherErr {
	if sp.url == nil {
		return nil
	}
	addr := net.JoinHostPort(sp.url.Host, fmt.Sprint(sp.url.Port))
	var conn net.PacketConn
	if sp.url.Proto == stun.ProtoTypeTCP {
		dd := &turnDialer{tls: d != nil && d.tls, host: sp.url.Host, roots: s.RootCAs}
		c, err := dd.Dial("tcp", addr)
		if err != nil {
			return &ladder.GatherErr{URL: sp.name, Code: 701, Text: err.Error()}
		}
		conn = turn.NewSTUNConn(c)
	} else {
		pc, err := net.ListenPacket("udp", ":0")
		if err != nil {
			return nil
		}
		conn = pc
	}
	defer conn.Close()
	tc, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, Username: sp.server.Username, Password: sp.server.Credential,
		Conn: conn, RTO: 250 * time.Millisecond, LoggerFactory: pionLogs{}})
	if err != nil {
		return &ladder.GatherErr{URL: sp.name, Code: 701, Text: err.Error()}
	}
	defer tc.Close()
	if err := tc.Listen(); err != nil {
		return &ladder.GatherErr{URL: sp.name, Code: 701, Text: err.Error()}
	}
	relay, err := tc.Allocate()
	if err == nil {
		relay.Close()
		return nil
	}
	var te *stun.TurnError
	if errors.As(err, &te) {
		return &ladder.GatherErr{URL: sp.name, Code: int(te.ErrorCodeAttr.Code), Text: string(te.ErrorCodeAttr.Reason)}
	}
	return &ladder.GatherErr{URL: sp.name, Code: 701, Text: err.Error()}
}

// pionReport is the probe's report of its side, as a browser makes it.
func pionReport(pc *webrtc.PeerConnection, cands []ladder.Gathered) ladder.Report {
	r := ladder.Report{GatheringState: pc.ICEGatheringState().String(), ICEState: pc.ICEConnectionState().String(),
		ConnectionState: pc.ConnectionState().String(), Candidates: cands}
	if dt := pc.SCTP().Transport(); dt != nil {
		r.DTLSState = dt.State().String()
	}
	stats := pc.GetStats()
	for _, s := range stats {
		switch v := s.(type) {
		case webrtc.ICECandidatePairStats:
			r.ChecksSent += uint64(v.RequestsSent)
			r.ChecksAnswered += uint64(v.ResponsesReceived)
		case webrtc.OutboundRTPStreamStats:
			r.PacketsSent += uint64(v.PacketsSent)
		}
	}
	if it := pc.SCTP().Transport().ICETransport(); it != nil {
		if pair, err := it.GetSelectedCandidatePair(); err == nil && pair != nil {
			r.Selected = &ladder.Selected{LocalType: pair.Local.Typ.String(), LocalProtocol: pair.Local.Protocol.String(),
				RemoteType: pair.Remote.Typ.String(), RemoteProtocol: pair.Remote.Protocol.String(),
				RemoteAddress: net.JoinHostPort(pair.Remote.Address, fmt.Sprint(pair.Remote.Port))}
			for _, c := range cands {
				if c.Type == "relay" {
					r.Selected.URL, r.Selected.RelayProtocol = c.URL, c.RelayProtocol
				}
			}
		}
	}
	return r
}

// keepCandidates keeps the a=candidate lines of one transport.
func keepCandidates(sdp, protocol string) string {
	lines := strings.Split(sdp, "\r\n")
	out := lines[:0]
	for _, l := range lines {
		if f := strings.Fields(l); strings.HasPrefix(l, "a=candidate:") && len(f) > 2 && !strings.EqualFold(f[2], protocol) {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n")
}

// pionLogs sends pion's warnings to Logf.
type pionLogs struct{ logf func(string, ...any) }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	lf := &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	if p.logf == nil {
		return lf.NewLogger(scope)
	}
	lf.Writer = logfWriter{p.logf, scope}
	lf.DefaultLogLevel = logging.LogLevelWarn
	return lf.NewLogger(scope)
}

type logfWriter struct {
	logf  func(string, ...any)
	scope string
}

func (w logfWriter) Write(b []byte) (int, error) {
	w.logf("pion %s: %s", w.scope, strings.TrimSpace(string(b)))
	return len(b), nil
}

// mediaSample is 20 ms of Opus silence.
func mediaSample() media.Sample {
	return media.Sample{Data: []byte{0xf8, 0xff, 0xfe}, Duration: 20 * time.Millisecond}
}

// WriteTable writes the media diagnosis as a table for a terminal: one block per path,
// each with the ladder's steps (PASS, FAIL, SKIP, WAIT, WARN) as `confab diagnose` writes
// the link's, then the verdict.
func (r MediaReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Confab diagnose media: %s\n", r.URL)
	if len(r.ICEServers) > 0 {
		fmt.Fprintf(&b, "ICE servers offered: %s\n", strings.Join(r.ICEServers, ", "))
	} else if r.Error == "" {
		b.WriteString("ICE servers offered: none (no TURN server is configured)\n")
	}
	const indent = "              "
	for _, p := range r.Paths {
		fmt.Fprintf(&b, "\nPATH  %-6s  %s  [%s]\n", p.Result, p.Title, formatMs(p.DurationMs))
		if p.Ladder.Path != "" {
			b.WriteString(indent + "media path: " + p.Ladder.Path + "\n")
		}
		if p.Error != "" {
			b.WriteString(indent + "error: " + p.Error + "\n")
		}
		for i, st := range p.Ladder.Steps {
			res := map[string]string{ladder.OK: Pass, ladder.Failed: Fail, ladder.Skipped: Skip, ladder.Pending: "WAIT", ladder.Warning: "WARN"}[st.State]
			title := st.Title
			if st.Since > 0 {
				title += fmt.Sprintf("  [+%s]", formatMs(float64(st.Since.Microseconds())/1000))
			}
			fmt.Fprintf(&b, "%4d  %-6s  %s\n", i+1, res, title)
			if st.Detail != "" && st.State != ladder.Skipped {
				b.WriteString(indent + st.Detail + "\n")
			}
			if st.State == ladder.Failed && st.Cause != "" {
				b.WriteString(indent + "cause:  " + st.Cause + "\n")
				if st.Remedy != "" {
					b.WriteString(indent + "remedy: " + st.Remedy + "\n")
				}
			}
		}
	}
	b.WriteString("\n")
	if r.Error != "" {
		fmt.Fprintf(&b, "RESULT: ERROR: %s\n", r.Error)
	} else {
		res := "PASS"
		if !r.Passed() {
			res = "FAIL"
		}
		fmt.Fprintf(&b, "RESULT: %s (%s): %s\n", res, r.Verdict, r.Message)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the media diagnosis as indented JSON.
func (r MediaReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Passed bool `json:"passed"`
		MediaReport
	}{r.Passed(), r})
}
