package media

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/callbridge/sfu"
)

// session is what a call leg was told by <session/>.
type session struct {
	at      time.Time
	servers []sfu.ICEServer
}

// endedMedia is the record of a leg's media that the SFU ended (it never connected, or its
// connection failed), kept for the ladder until the leg ends or its media starts again.
type endedMedia struct {
	transport sfu.Transport
	stats     sfu.ParticipantStats
	others    bool
}

// Limits of a report: what a browser has is far less.
const (
	maxReportCandidates = 64
	maxReportErrors     = 32
	maxReportText       = 300
)

// reportXML is <report xmlns="urn:confab:media:1"/> (docs/protocol.md, Media > Report).
type reportXML struct {
	Gathering       string `xml:"gathering,attr"`
	ICE             string `xml:"ice,attr"`
	Connection      string `xml:"connection,attr"`
	DTLS            string `xml:"dtls,attr"`
	ChecksSent      string `xml:"checks-sent,attr"`
	ChecksAnswered  string `xml:"checks-answered,attr"`
	PacketsSent     string `xml:"packets-sent,attr"`
	PacketsReceived string `xml:"packets-received,attr"`
	Candidates      []struct {
		Type          string `xml:"type,attr"`
		Protocol      string `xml:"protocol,attr"`
		RelayProtocol string `xml:"relay-protocol,attr"`
		Address       string `xml:"address,attr"`
		URL           string `xml:"url,attr"`
	} `xml:"urn:confab:media:1 candidate"`
	Errors []struct {
		URL  string `xml:"url,attr"`
		Code string `xml:"code,attr"`
		Text string `xml:"text,attr"`
	} `xml:"urn:confab:media:1 error"`
	Selected *struct {
		LocalType      string `xml:"local-type,attr"`
		LocalProtocol  string `xml:"local-protocol,attr"`
		RelayProtocol  string `xml:"relay-protocol,attr"`
		URL            string `xml:"url,attr"`
		RemoteType     string `xml:"remote-type,attr"`
		RemoteProtocol string `xml:"remote-protocol,attr"`
		RemoteAddress  string `xml:"remote-address,attr"`
	} `xml:"urn:confab:media:1 selected"`
}

// clean bounds a client's string and takes out what it must not hold.
func clean(s string) string {
	if len(s) > maxReportText {
		s = s[:maxReportText]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func count(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// report converts the XML, refusing one over the limits.
func (x *reportXML) report(now time.Time) (*ladder.Report, error) {
	if len(x.Candidates) > maxReportCandidates || len(x.Errors) > maxReportErrors {
		return nil, fmt.Errorf("%w: a report of more than %d candidates or %d errors", sfu.ErrBadArgument, maxReportCandidates, maxReportErrors)
	}
	r := &ladder.Report{At: now, GatheringState: clean(x.Gathering), ICEState: clean(x.ICE), ConnectionState: clean(x.Connection),
		DTLSState: clean(x.DTLS), ChecksSent: count(x.ChecksSent), ChecksAnswered: count(x.ChecksAnswered),
		PacketsSent: count(x.PacketsSent), PacketsReceived: count(x.PacketsReceived)}
	for _, c := range x.Candidates {
		r.Candidates = append(r.Candidates, ladder.Gathered{Type: clean(c.Type), Protocol: clean(c.Protocol),
			RelayProtocol: clean(c.RelayProtocol), Address: clean(c.Address), URL: clean(c.URL)})
	}
	for _, e := range x.Errors {
		code, _ := strconv.Atoi(e.Code)
		r.Errors = append(r.Errors, ladder.GatherErr{URL: clean(e.URL), Code: code, Text: clean(e.Text)})
	}
	if sel := x.Selected; sel != nil {
		r.Selected = &ladder.Selected{LocalType: clean(sel.LocalType), LocalProtocol: clean(sel.LocalProtocol),
			RelayProtocol: clean(sel.RelayProtocol), URL: clean(sel.URL), RemoteType: clean(sel.RemoteType),
			RemoteProtocol: clean(sel.RemoteProtocol), RemoteAddress: clean(sel.RemoteAddress)}
	}
	return r, nil
}

// report keeps a leg's latest report.
func (s *Service) report(cl meeting.CallLeg, spaceID string, r *ladder.Report) {
	s.mu.Lock()
	s.reports[cl.ID] = r
	s.mu.Unlock()
	s.keepIfLive(cl.ID, spaceID, cl.FullJID)
}

// keepIfLive forgets what was just recorded for a leg if the leg has ended meanwhile: its
// LegEnded, which forgets it too, may have run before the record was made.
func (s *Service) keepIfLive(legID, spaceID, full string) {
	if cl, ok := s.o.Legs.Leg(spaceID, full); ok && cl.ID == legID {
		return
	}
	s.mu.Lock()
	s.forgetLeg(legID)
	s.mu.Unlock()
}

// forgetLeg drops what the ladder of an ended leg was built from (s.mu held).
func (s *Service) forgetLeg(id string) {
	delete(s.sessions, id)
	delete(s.reports, id)
	delete(s.ended, id)
}

// mediaPorts are the media server's addresses, for the ladder's words.
func (s *Service) mediaPorts() (udp, tcp string) {
	udp = s.o.SFU.UDPAddr().String()
	if a := s.o.SFU.TCPAddr(); a != nil {
		tcp = a.String()
	}
	return udp, tcp
}

// Ladder returns the media ladder of a call leg: its media as it is, or as it ended when
// the SFU ended it; ok is false when the leg has neither asked for ICE servers nor started
// media.
func (s *Service) Ladder(legID string) (ladder.Ladder, bool) {
	s.mu.Lock()
	_, asked := s.sessions[legID]
	_, ended := s.ended[legID]
	l := s.legs[legID]
	s.mu.Unlock()
	if !asked && !ended && (l == nil || l.p == nil) {
		return ladder.Ladder{}, false
	}
	return s.ladderOf(legID, nil), true
}

// ladderOf builds the ladder of a leg; p is its SFU participant when the caller has it.
func (s *Service) ladderOf(legID string, p *sfu.Participant) ladder.Ladder {
	s.mu.Lock()
	sess, asked := s.sessions[legID]
	rep := s.reports[legID]
	em, ended := s.ended[legID]
	if p == nil {
		if l := s.legs[legID]; l != nil {
			p = l.p
		}
	}
	s.mu.Unlock()
	in := ladder.Input{Now: s.o.Now(), Started: sess.at, SessionAsked: asked, ICEServers: sess.servers, Report: rep,
		Deadline: s.o.SFU.ConnectTimeout()}
	in.MediaUDP, in.MediaTCP = s.mediaPorts()
	switch {
	case p != nil:
		tr := p.Transport()
		in.Transport = &tr
		in.ReceivedPackets = packetsIn(p.Stats())
		in.OthersPublish = len(p.Subscriptions()) > 0
	case ended:
		tr := em.transport
		in.Transport = &tr
		in.ReceivedPackets = packetsIn(em.stats)
		in.OthersPublish = em.others
	}
	if in.Started.IsZero() && in.Transport != nil {
		in.Started = in.Transport.Joined
	}
	return ladder.Build(in)
}

func packetsIn(st sfu.ParticipantStats) uint64 {
	return st.RxAudio.Packets + st.RxVideo.Packets + st.RxScreen.Packets
}

// logLadder logs a leg's failed media: one line per failed step, with its cause, detail
// and remedy, as the link logs its steps.
func (s *Service) logLadder(callID, legID string, l ladder.Ladder) {
	if l.State != ladder.StateFailed {
		s.log.Info("media ended by the SFU", "call", callID, "leg", legID, "state", l.State)
		return
	}
	s.log.Warn("media failed", "call", callID, "leg", legID, "cause", l.Cause)
	for _, st := range l.Steps {
		if st.State == ladder.Failed {
			s.log.Warn("media ladder step "+st.Name+": failed", "call", callID, "leg", legID, "cause", st.Cause,
				"detail", st.Detail, "remedy", st.Remedy)
		}
	}
}
