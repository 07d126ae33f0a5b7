package media

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/sfu"
)

// Connection tests ("probes"): the web app's "Test your connection" page and `confab
// diagnose media` connect to the media server over one path at a time (direct UDP, ICE-TCP,
// each TURN URL) without joining a meeting. Each probe is an SFU participant alone in a room
// of its own, so nothing is forwarded to or from it; it ends after ProbeLifetime, and its
// ladder can be read for probeKeep more.

// Bounds of the probes.
const (
	MaxProbes     = 16               // probes running at once
	ProbeLifetime = 30 * time.Second // a probe's longest life
	probeKeep     = 2 * time.Minute  // how long an ended probe's ladder stays readable
	maxProbesKept = 256              // ended probes kept, at most
)

// Errors of the probes.
var (
	ErrTooManyProbes = errors.New("media: too many connection tests at once")
	ErrUnknownProbe  = errors.New("media: no such connection test")
)

// probe is one connection test.
type probe struct {
	id      string
	p       *sfu.Participant
	servers []sfu.ICEServer
	started time.Time
	answers chan sfu.Description
	stop    chan struct{} // closed by EndProbe

	// guarded by Service.mu
	report  *ladder.Report
	final   *sfu.Transport
	stats   sfu.ParticipantStats
	endedAt time.Time
}

// Description implements sfu.Signal: the first answer is what StartProbe waits for.
func (pr *probe) Description(d sfu.Description) {
	select {
	case pr.answers <- d:
	default:
	}
}

// Event implements sfu.Signal; a probe is alone: nothing to hear.
func (pr *probe) Event(sfu.Event) {}

// StartProbe starts a connection test with the client's offer and returns its id and the
// media server's answer. servers are the ICE servers the client was given, for the
// ladder.
func (s *Service) StartProbe(offer string, servers []sfu.ICEServer) (id, answer string, err error) {
	now := s.o.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", "", sfu.ErrClosed
	}
	running := 0
	for k, pr := range s.probes {
		switch {
		case pr.endedAt.IsZero():
			running++
		case now.Sub(pr.endedAt) > probeKeep || len(s.probes) > maxProbesKept:
			delete(s.probes, k)
		}
	}
	if running >= MaxProbes {
		s.mu.Unlock()
		return "", "", ErrTooManyProbes
	}
	pr := &probe{id: "probe-" + rand.Text()[:16], servers: servers, started: now,
		answers: make(chan sfu.Description, 1), stop: make(chan struct{})}
	s.probes[pr.id] = pr
	s.mu.Unlock()
	fail := func(err error) (string, string, error) {
		s.mu.Lock()
		delete(s.probes, pr.id)
		s.mu.Unlock()
		return "", "", err
	}
	p, err := s.o.SFU.Join(pr.id, pr.id, pr)
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	pr.p = p
	s.mu.Unlock()
	if err := p.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: offer}); err != nil {
		p.Leave()
		return fail(err)
	}
	var d sfu.Description
	select {
	case d = <-pr.answers:
	case <-p.Done():
		p.Leave()
		return fail(sfu.ErrParticipantGone)
	case <-time.After(5 * time.Second):
		p.Leave()
		return fail(fmt.Errorf("%w: no answer within 5s", sfu.ErrParticipantGone))
	}
	s.wg.Add(1)
	go s.runProbe(pr)
	s.log.Info("connection test started", "probe", pr.id)
	return pr.id, d.SDP, nil
}

// runProbe ends a probe after ProbeLifetime (or when it is ended) and keeps its record.
func (s *Service) runProbe(pr *probe) {
	defer s.wg.Done()
	t := time.NewTimer(ProbeLifetime)
	defer t.Stop()
	select {
	case <-t.C:
	case <-pr.stop:
	case <-pr.p.Done():
	}
	pr.p.Leave()
	tr := pr.p.Transport()
	st := pr.p.Stats()
	s.mu.Lock()
	pr.final, pr.stats, pr.endedAt = &tr, st, s.o.Now()
	s.mu.Unlock()
	s.log.Info("connection test ended", "probe", pr.id, "connected", !tr.DTLSConnected.IsZero())
}

// ProbeReport keeps the client's report of a probe and returns the probe's ladder.
func (s *Service) ProbeReport(id string, r *ladder.Report) (ladder.Ladder, error) {
	s.mu.Lock()
	pr := s.probes[id]
	if pr != nil && r != nil {
		r.At = s.o.Now()
		pr.report = r
	}
	s.mu.Unlock()
	if pr == nil {
		return ladder.Ladder{}, ErrUnknownProbe
	}
	return s.probeLadder(pr), nil
}

// ProbeLadder returns a probe's ladder.
func (s *Service) ProbeLadder(id string) (ladder.Ladder, error) {
	return s.ProbeReport(id, nil)
}

// EndProbe ends a probe before its time.
func (s *Service) EndProbe(id string) error {
	s.mu.Lock()
	pr := s.probes[id]
	s.mu.Unlock()
	if pr == nil {
		return ErrUnknownProbe
	}
	select {
	case <-pr.stop:
	default:
		close(pr.stop)
	}
	return nil
}

func (s *Service) probeLadder(pr *probe) ladder.Ladder {
	s.mu.Lock()
	rep, final, stats, p := pr.report, pr.final, pr.stats, pr.p
	s.mu.Unlock()
	in := ladder.Input{Now: s.o.Now(), Started: pr.started, SessionAsked: len(pr.servers) > 0, ICEServers: pr.servers, Report: rep,
		Deadline: min(s.o.SFU.ConnectTimeout(), ProbeLifetime), Probe: true}
	in.MediaUDP, in.MediaTCP = s.mediaPorts()
	switch {
	case final != nil:
		in.Transport = final
	case p != nil:
		tr := p.Transport()
		in.Transport, stats = &tr, p.Stats()
	}
	in.ReceivedPackets = packetsIn(stats)
	return ladder.Build(in)
}

// endProbes ends every probe (Shutdown).
func (s *Service) endProbes() {
	s.mu.Lock()
	prs := make([]*probe, 0, len(s.probes))
	for _, pr := range s.probes {
		prs = append(prs, pr)
	}
	s.mu.Unlock()
	for _, pr := range prs {
		select {
		case <-pr.stop:
		default:
			close(pr.stop)
		}
	}
}
