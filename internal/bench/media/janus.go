package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// The Janus side: Janus's own API over HTTP (the REST transport, long polls for events), as
// janus.js drives it in the VideoRoom demo. A participant is one Janus session with a
// publisher handle (its PeerConnection offers audio and three-layer simulcast video) and a
// subscriber handle (one PeerConnection that Janus offers the feeds it subscribed to, as
// janus.js does with multistream subscriptions).

// JanusAddr is the address Janus offers in its candidates when it runs in a namespace made
// for it: Janus gathers on every interface but loopback ones, so the namespace gets this
// loopback-range address on an interface of its own (netns.NS.LoopbackAlias).
const JanusAddr = "127.0.0.2"

// JanusAPI talks to one Janus's HTTP API.
type JanusAPI struct {
	URL  string // http://127.0.0.1:<port>/janus
	HTTP *http.Client
	txn  atomic.Uint64
}

// NewJanusAPI returns a client of the API at url, with enough connections for one long
// poll per session.
func NewJanusAPI(url string) *JanusAPI {
	return &JanusAPI{URL: url, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}}
}

// janusMsg is a Janus API message, both ways.
type janusMsg struct {
	Janus       string               `json:"janus"`
	Transaction string               `json:"transaction,omitempty"`
	Sender      uint64               `json:"sender,omitempty"`
	Data        *struct{ ID uint64 } `json:"data,omitempty"`
	Error       *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"error,omitempty"`
	PluginData *struct {
		Data json.RawMessage `json:"data"`
	} `json:"plugindata,omitempty"`
	JSEP *struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	} `json:"jsep,omitempty"`
}

// post sends body (the transaction is added) to path and returns the answer.
func (a *JanusAPI) post(ctx context.Context, path string, body map[string]any) (*janusMsg, error) {
	body["transaction"] = "t" + strconv.FormatUint(a.txn.Add(1), 10)
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("janus %s: %w", body["janus"], err)
	}
	defer resp.Body.Close()
	var m janusMsg
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("janus %s: %w", body["janus"], err)
	}
	if m.Janus == "error" && m.Error != nil {
		return &m, fmt.Errorf("janus %s: error %d: %s", body["janus"], m.Error.Code, m.Error.Reason)
	}
	if pd := m.pluginError(); pd != "" {
		return &m, fmt.Errorf("janus videoroom: %s", pd)
	}
	return &m, nil
}

// pluginError returns the VideoRoom's error text in a plugin answer, if any.
func (m *janusMsg) pluginError() string {
	if m.PluginData == nil {
		return ""
	}
	var d struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(m.PluginData.Data, &d)
	return d.Error
}

// JanusSession is one Janus session with its event long poll.
type JanusSession struct {
	api  *JanusAPI
	ID   uint64
	path string

	mu       sync.Mutex
	handlers map[uint64]func(*janusMsg)
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewJanusSession creates a session and starts polling its events.
func (a *JanusAPI) NewJanusSession(ctx context.Context) (*JanusSession, error) {
	m, err := a.post(ctx, "", map[string]any{"janus": "create"})
	if err != nil {
		return nil, err
	}
	if m.Data == nil {
		return nil, errors.New("janus create: no session id")
	}
	pctx, cancel := context.WithCancel(context.Background())
	s := &JanusSession{api: a, ID: m.Data.ID, path: "/" + strconv.FormatUint(m.Data.ID, 10),
		handlers: map[uint64]func(*janusMsg){}, cancel: cancel, done: make(chan struct{})}
	go s.poll(pctx)
	return s, nil
}

// poll long-polls the session's events (which also keeps it alive) and hands each to its
// handle's handler, until the session is closed.
func (s *JanusSession) poll(ctx context.Context) {
	defer close(s.done)
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.api.URL+s.path+"?maxev=16", nil)
		if err != nil {
			return
		}
		resp, err := s.api.HTTP.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		var ms []*janusMsg
		if len(b) > 0 && b[0] == '[' {
			_ = json.Unmarshal(b, &ms)
		} else {
			var m janusMsg
			if json.Unmarshal(b, &m) == nil {
				ms = append(ms, &m)
			}
		}
		for _, m := range ms {
			s.mu.Lock()
			h := s.handlers[m.Sender]
			s.mu.Unlock()
			if h != nil {
				h(m)
			}
		}
	}
}

// Attach attaches a VideoRoom handle whose events go to h.
func (s *JanusSession) Attach(ctx context.Context, h func(*janusMsg)) (uint64, error) {
	m, err := s.api.post(ctx, s.path, map[string]any{"janus": "attach", "plugin": "janus.plugin.videoroom"})
	if err != nil {
		return 0, err
	}
	if m.Data == nil {
		return 0, errors.New("janus attach: no handle id")
	}
	s.mu.Lock()
	s.handlers[m.Data.ID] = h
	s.mu.Unlock()
	return m.Data.ID, nil
}

// Message sends a plugin request (and a JSEP, if any) on a handle.
func (s *JanusSession) Message(ctx context.Context, handle uint64, body map[string]any, jsep map[string]any) (*janusMsg, error) {
	req := map[string]any{"janus": "message", "body": body}
	if jsep != nil {
		req["jsep"] = jsep
	}
	return s.api.post(ctx, s.path+"/"+strconv.FormatUint(handle, 10), req)
}

// Close destroys the session and stops its poll.
func (s *JanusSession) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.api.post(ctx, s.path, map[string]any{"janus": "destroy"})
	s.cancel()
	<-s.done
}

// CreateRoom makes a VideoRoom room for the benchmark: VP8 and Opus, simulcast allowed
// (the publishers' offers carry it), no bit-rate cap, up to publishers publishers.
func (a *JanusAPI) CreateRoom(ctx context.Context, room uint64, publishers int) error {
	s, err := a.NewJanusSession(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	h, err := s.Attach(ctx, func(*janusMsg) {})
	if err != nil {
		return err
	}
	_, err = s.Message(ctx, h, map[string]any{"request": "create", "room": room, "publishers": publishers,
		"videocodec": "vp8", "audiocodec": "opus", "bitrate": 0, "fir_freq": 0, "notify_joining": false,
		"audiolevel_event": false, "permanent": false}, nil)
	return err
}

// JanusParticipant is a participant in a Janus VideoRoom.
type JanusParticipant struct {
	S      *JanusSession
	Pub    *sfutest.Client // nil for a listener
	Sub    *sfutest.Client // nil until Subscribe
	FeedID uint64          // the publisher's id in the room
	Joined time.Time

	room    uint64
	name    string
	pubH    uint64
	subH    uint64
	joined  chan uint64 // the publisher's id, once joined
	up      chan struct{}
	upOnce  sync.Once
	subAns  chan error // the answer to the subscriber's join: nil (attached) or an error
	subOpts sfutest.Options
	closed  atomic.Bool
}

// JanusOptions describe a Janus participant.
type JanusOptions struct {
	API  *JanusAPI
	Room uint64
	Name string
	// Publish is what the participant sends (nil: it only listens).
	Publish *sfutest.Options
	// Receive configures the subscriber PeerConnection.
	Receive sfutest.Options
}

// JoinJanus creates the participant's session and, if it publishes, joins the room as a
// publisher and sends its offer. Subscribing is a second step (Subscribe), once the feeds
// it wants are known.
func JoinJanus(ctx context.Context, o JanusOptions) (*JanusParticipant, error) {
	p := &JanusParticipant{room: o.Room, name: o.Name, joined: make(chan uint64, 1), up: make(chan struct{}),
		subAns: make(chan error, 1), subOpts: o.Receive}
	p.Joined = time.Now()
	s, err := o.API.NewJanusSession(ctx)
	if err != nil {
		return nil, err
	}
	p.S = s
	if o.Publish == nil {
		return p, nil
	}
	c, err := sfutest.NewClient(o.Name, *o.Publish)
	if err != nil {
		s.Close()
		return nil, err
	}
	p.Pub = c
	h, err := s.Attach(ctx, p.pubEvent)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.pubH = h
	if _, err := s.Message(ctx, h, map[string]any{"request": "join", "ptype": "publisher", "room": o.Room, "display": o.Name}, nil); err != nil {
		p.Close()
		return nil, err
	}
	select {
	case p.FeedID = <-p.joined:
	case <-time.After(15 * time.Second):
		p.Close()
		return nil, errors.New("janus: not joined within 15s")
	}
	if err := c.Start(&janusSignal{p: p, handle: h, publisher: true}); err != nil {
		p.Close()
		return nil, fmt.Errorf("janus publish: %w", err)
	}
	// Janus offers a feed to subscribers once its media is up.
	select {
	case <-p.up:
	case <-time.After(15 * time.Second):
		p.Close()
		return nil, errors.New("janus: the publisher's PeerConnection did not come up within 15s")
	}
	return p, nil
}

func (p *JanusParticipant) pubEvent(m *janusMsg) {
	if m.Janus == "webrtcup" {
		p.upOnce.Do(func() { close(p.up) })
	}
	if m.PluginData != nil {
		var d struct {
			VideoRoom string `json:"videoroom"`
			ID        uint64 `json:"id"`
		}
		_ = json.Unmarshal(m.PluginData.Data, &d)
		if d.VideoRoom == "joined" {
			select {
			case p.joined <- d.ID:
			default:
			}
		}
	}
	if m.JSEP != nil && p.Pub != nil {
		p.Pub.Description(sfu.Description{Type: sfu.SDPType(m.JSEP.Type), SDP: m.JSEP.SDP})
	}
}

func (p *JanusParticipant) subEvent(m *janusMsg) {
	if m.JSEP != nil && p.Sub != nil {
		p.Sub.Description(sfu.Description{Type: sfu.SDPType(m.JSEP.Type), SDP: m.JSEP.SDP})
	}
	if m.PluginData != nil {
		var d struct {
			VideoRoom string `json:"videoroom"`
		}
		_ = json.Unmarshal(m.PluginData.Data, &d)
		var err error
		switch {
		case m.pluginError() != "":
			err = errors.New(m.pluginError())
		case d.VideoRoom == "attached":
		default:
			return
		}
		select {
		case p.subAns <- err:
		default:
		}
	}
}

// Subscribe attaches the subscriber handle and subscribes to feeds (Janus offers them, the
// client answers); substream is the simulcast layer to receive (0 low … 2 high).
func (p *JanusParticipant) Subscribe(ctx context.Context, feeds []uint64, substream int) error {
	c, err := sfutest.NewClient(p.name+"-sub", withAnswerOnly(p.subOpts))
	if err != nil {
		return err
	}
	p.Sub = c
	h, err := p.S.Attach(ctx, p.subEvent)
	if err != nil {
		return err
	}
	p.subH = h
	if err := c.Start(&janusSignal{p: p, handle: h}); err != nil {
		return err
	}
	var streams []map[string]any
	for _, f := range feeds {
		streams = append(streams, map[string]any{"feed": f})
	}
	if _, err := p.S.Message(ctx, h, map[string]any{"request": "join", "ptype": "subscriber", "room": p.room, "streams": streams}, nil); err != nil {
		return err
	}
	select {
	case err := <-p.subAns:
		if err != nil {
			return fmt.Errorf("janus subscribe: %w", err)
		}
	case <-time.After(15 * time.Second):
		return errors.New("janus subscribe: no answer within 15s")
	}
	_, err = p.S.Message(ctx, h, map[string]any{"request": "configure", "substream": substream}, nil)
	return err
}

func withAnswerOnly(o sfutest.Options) sfutest.Options {
	o.AnswerOnly, o.Audio, o.Video = true, false, nil
	return o
}

// Close leaves the room, closes the PeerConnections and the session.
func (p *JanusParticipant) Close() {
	if p.closed.Swap(true) {
		return
	}
	if p.Sub != nil {
		p.Sub.Close()
	}
	if p.Pub != nil {
		p.Pub.Close()
	}
	p.S.Close()
}

// janusSignal is the Signaller of one handle.
type janusSignal struct {
	p         *JanusParticipant
	handle    uint64
	publisher bool
}

func (j *janusSignal) SendDescription(d sfu.Description) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	jsep := map[string]any{"type": string(d.Type), "sdp": d.SDP}
	var body map[string]any
	if j.publisher {
		// Our rids are q, h, f: low to high (Janus assumes high to low unless told).
		jsep["rid_order"] = "lmh"
		body = map[string]any{"request": "publish"}
	} else {
		body = map[string]any{"request": "start"}
	}
	_, err := j.p.S.Message(ctx, j.handle, body, jsep)
	return err
}

func (j *janusSignal) SendCandidate(c sfu.Candidate) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := j.p.S.api.post(ctx, j.p.S.path+"/"+strconv.FormatUint(j.handle, 10), map[string]any{"janus": "trickle",
		"candidate": map[string]any{"candidate": c.Candidate, "sdpMid": c.SDPMid, "sdpMLineIndex": c.SDPMLineIndex}})
	return err
}

func (j *janusSignal) Leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := j.p.S.Message(ctx, j.handle, map[string]any{"request": "leave"}, nil)
	return err
}
