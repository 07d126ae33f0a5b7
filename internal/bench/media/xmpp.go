// Package media measures media servers: Confab's Call Bridge (its SFU, reached through the
// XMPP signalling a browser uses) and Janus's VideoRoom (through Janus's HTTP API), with
// the same pion participants (package sfutest: synthetic Opus and simulcast VP8 whose
// frames carry their send time and are checked byte for byte on receipt), in the same
// meeting shapes, reading the server process's CPU and memory from /proc.
package media

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
	"confab.dev/confab/internal/stream"
)

// NS is the Call Bridge's media signalling namespace (docs/protocol.md, "Media").
const NS = "urn:confab:media:1"

const nsMeeting = "urn:confab:meeting:1"

// XMPPOptions describe a participant that joins a Confab meeting as a browser does.
type XMPPOptions struct {
	Target   *bench.Target // the XMPP server (loopback only)
	User     string        // localpart
	Password string
	Space    string // the space's JID, <coSpaceId>@<callbridge>
	Name     string // display name, also the participant's name in sfutest
	Client   sfutest.Options
	// Layer, when set, asks for that simulcast layer (a rid) of every video track received
	// (<view layer=…/>), instead of leaving the choice to the SFU's estimate.
	Layer string
}

// XMPPParticipant is a participant in a Confab meeting: one XMPP session (login, the
// meeting's join presence, urn:confab:media:1) and one pion PeerConnection.
type XMPPParticipant struct {
	C  *sfutest.Client
	ID string // the participant id (call leg id) the Call Bridge gave it
	// Joined is when the join presence was sent; Timings the steps after it.
	Joined time.Time

	o    XMPPOptions
	conn *bench.Conn

	wmu sync.Mutex // serialises writes to conn

	mu      sync.Mutex
	pending map[string]chan *stream.Element
	readErr error
	nextID  atomic.Uint64
	done    chan struct{} // closed when the reader ends
	closed  atomic.Bool
}

// iqTimeout bounds the wait for an IQ's answer.
const iqTimeout = 15 * time.Second

// JoinXMPP logs in, joins the space's meeting, asks for its media session and sends the
// first offer. It returns once the offer was accepted (the server's answer and the media
// follow); the caller closes the participant.
func JoinXMPP(ctx context.Context, o XMPPOptions) (*XMPPParticipant, error) {
	conn, _, err := o.Target.Login(ctx, o.User, o.Password, "")
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", o.User, err)
	}
	p := &XMPPParticipant{o: o, conn: conn, pending: map[string]chan *stream.Element{}, done: make(chan struct{})}
	p.Joined = time.Now()
	var x stream.Builder
	x.Open("presence", "to", o.Space+"/"+o.Name).Empty("join", "xmlns", nsMeeting, "name", o.Name).End("presence")
	if err := p.send(x.B); err != nil {
		conn.Close()
		return nil, err
	}
	// Read the roster up to our own presence, synchronously.
	deadline := time.Now().Add(iqTimeout)
	for p.ID == "" {
		e, err := conn.NextBefore(deadline)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("join %s: %w", o.Space, err)
		}
		if ok, err := conn.AnswerPing(e); ok || err != nil {
			continue
		}
		if e.Name.Local != "presence" {
			continue
		}
		if e.Get("type") == "error" {
			conn.Close()
			return nil, fmt.Errorf("join %s refused: %s", o.Space, e)
		}
		var pr struct {
			Participant struct {
				ID   string `xml:"id,attr"`
				Self string `xml:"self,attr"`
			} `xml:"urn:confab:meeting:1 participant"`
		}
		if e.Decode(&pr) == nil && pr.Participant.Self == "true" {
			p.ID = pr.Participant.ID
		}
	}
	go p.read()
	if _, err := p.iq("get", `<session xmlns="`+NS+`"/>`); err != nil {
		p.closeConn()
		return nil, fmt.Errorf("media session: %w", err)
	}
	c, err := sfutest.NewClient(o.Name, o.Client)
	if err != nil {
		p.closeConn()
		return nil, err
	}
	p.C = c
	if err := c.Start(p); err != nil {
		p.Close()
		return nil, fmt.Errorf("first offer: %w", err)
	}
	return p, nil
}

func (p *XMPPParticipant) send(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.conn.Send(b)
}

// errGlare is the server's refusal of an offer that crossed its own.
var errGlare = fmt.Errorf("offer crossed the server's: %w", sfu.ErrGlare)

// iq sends an IQ to the space with payload and waits for its answer.
func (p *XMPPParticipant) iq(typ, payload string) (*stream.Element, error) {
	id := "m" + strconv.FormatUint(p.nextID.Add(1), 10)
	ch := make(chan *stream.Element, 1)
	p.mu.Lock()
	if p.readErr != nil {
		err := p.readErr
		p.mu.Unlock()
		return nil, err
	}
	p.pending[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
	}()
	var x stream.Builder
	x.Open("iq", "type", typ, "id", id, "to", p.o.Space).Raw([]byte(payload)).End("iq")
	if err := p.send(x.B); err != nil {
		return nil, err
	}
	t := time.NewTimer(iqTimeout)
	defer t.Stop()
	select {
	case e := <-ch:
		if e == nil {
			return nil, fmt.Errorf("iq %s: %w", id, p.err())
		}
		if e.Get("type") == "error" {
			if strings.Contains(string(e.Inner), "<glare") {
				return e, errGlare
			}
			return e, fmt.Errorf("iq %s refused: %s", id, e.Inner)
		}
		return e, nil
	case <-t.C:
		return nil, fmt.Errorf("iq %s: no answer within %v", id, iqTimeout)
	}
}

func (p *XMPPParticipant) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr == nil {
		return errors.New("closed")
	}
	return p.readErr
}

// read delivers answers to waiting IQs and the space's messages to the client, until the
// stream ends.
func (p *XMPPParticipant) read() {
	defer close(p.done)
	for {
		e, err := p.conn.NextBefore(time.Time{})
		if err != nil {
			p.mu.Lock()
			p.readErr = err
			for id, ch := range p.pending {
				close(ch)
				delete(p.pending, id)
			}
			p.mu.Unlock()
			return
		}
		switch e.Name.Local {
		case "iq":
			if t := e.Get("type"); t == "result" || t == "error" {
				p.mu.Lock()
				ch := p.pending[e.Get("id")]
				p.mu.Unlock()
				if ch != nil {
					ch <- e
				}
				continue
			}
			p.wmu.Lock()
			_, _ = p.conn.AnswerPing(e)
			p.wmu.Unlock()
		case "message":
			if e.Payload().Space == NS {
				p.message(e)
			}
		}
	}
}

// message hands one media message to the client.
func (p *XMPPParticipant) message(e *stream.Element) {
	var m struct {
		Description *struct {
			Type string `xml:"type,attr"`
			SDP  string `xml:",chardata"`
		} `xml:"urn:confab:media:1 description"`
		Track *struct {
			ID          string `xml:"id,attr"`
			Stream      string `xml:"stream,attr"`
			Participant string `xml:"participant,attr"`
			Kind        string `xml:"kind,attr"`
			Source      string `xml:"source,attr"`
			Codec       string `xml:"codec,attr"`
			State       string `xml:"state,attr"`
		} `xml:"urn:confab:media:1 track"`
		Layer *struct {
			Track string `xml:"track,attr"`
			RID   string `xml:"rid,attr"`
		} `xml:"urn:confab:media:1 layer"`
		Connection *struct {
			State string `xml:"state,attr"`
		} `xml:"urn:confab:media:1 connection"`
	}
	if e.Decode(&m) != nil {
		return
	}
	switch {
	case m.Description != nil:
		p.C.Description(sfu.Description{Type: sfu.SDPType(m.Description.Type), SDP: m.Description.SDP})
	case m.Track != nil:
		t := sfu.TrackInfo{ID: m.Track.ID, StreamID: m.Track.Stream, Participant: m.Track.Participant,
			Kind: sfu.Kind(m.Track.Kind), Source: sfu.Source(m.Track.Source), Codec: m.Track.Codec}
		typ := sfu.EventTrackPublished
		if m.Track.State == "ended" {
			typ = sfu.EventTrackUnpublished
		}
		p.C.Event(sfu.Event{Type: typ, Participant: t.Participant, Track: t, Time: time.Now()})
		if typ == sfu.EventTrackPublished && t.Kind == sfu.Video && p.o.Layer != "" {
			// From the reader goroutine: sent without waiting for the result, which this
			// goroutine reads.
			var x stream.Builder
			x.Open("iq", "type", "set", "id", "v"+strconv.FormatUint(p.nextID.Add(1), 10), "to", p.o.Space).
				Empty("view", "xmlns", NS, "track", t.ID, "layer", p.o.Layer).End("iq")
			_ = p.send(x.B)
		}
	case m.Layer != nil:
		p.C.Event(sfu.Event{Type: sfu.EventLayerChanged, Track: sfu.TrackInfo{ID: m.Layer.Track}, Layer: m.Layer.RID, Time: time.Now()})
	case m.Connection != nil:
		p.C.Event(sfu.Event{Type: sfu.EventConnectionState, State: m.Connection.State, Time: time.Now()})
	}
}

// SendDescription implements sfutest.Signaller.
func (p *XMPPParticipant) SendDescription(d sfu.Description) error {
	var x stream.Builder
	x.Elem("description", d.SDP, "xmlns", NS, "type", string(d.Type))
	_, err := p.iq("set", string(x.B))
	return err
}

// SendCandidate implements sfutest.Signaller.
func (p *XMPPParticipant) SendCandidate(c sfu.Candidate) error {
	var x stream.Builder
	x.Elem("candidate", c.Candidate, "xmlns", NS, "mid", c.SDPMid, "mline", strconv.Itoa(int(c.SDPMLineIndex)))
	_, err := p.iq("set", string(x.B))
	return err
}

// Leave implements sfutest.Signaller: it leaves the meeting (which ends the media).
func (p *XMPPParticipant) Leave() error {
	var x stream.Builder
	x.Empty("presence", "type", "unavailable", "to", p.o.Space+"/"+p.o.Name)
	return p.send(x.B)
}

// View asks for a received track at most width×height (the SFU picks the layer).
func (p *XMPPParticipant) View(track string, width, height int) error {
	var x stream.Builder
	x.Empty("view", "xmlns", NS, "track", track, "width", strconv.Itoa(width), "height", strconv.Itoa(height))
	_, err := p.iq("set", string(x.B))
	return err
}

// Close leaves the meeting, closes the PeerConnection and the XMPP session, and waits for
// the participant's goroutines.
func (p *XMPPParticipant) Close() {
	if p.closed.Swap(true) {
		return
	}
	if p.C != nil {
		p.C.Close() // sends the unavailable presence through Leave
	}
	p.closeConn()
}

func (p *XMPPParticipant) closeConn() {
	p.wmu.Lock()
	_ = p.conn.Close()
	p.wmu.Unlock()
	<-p.done
}
