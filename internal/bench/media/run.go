package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// Servers the runner drives.
const (
	Confab = "confab"
	Janus  = "janus"
)

// Shape is a meeting shape: Rooms meetings, each with Publishers participants who send
// audio and video and receive everyone else, and Listeners who only receive.
type Shape struct {
	Name                         string
	Rooms, Publishers, Listeners int
	Layer                        string // the layer receivers ask for, if the shape says
}

// ParseShape reads mesh:N (one meeting of N, everyone sending), webinar:N (one speaker, N
// listeners) or rooms:MxK (M meetings of K, everyone sending), each optionally followed by
// @q, @h or @f: the simulcast layer the receivers ask for.
func ParseShape(s string) (Shape, error) {
	s, layer, hasLayer := strings.Cut(s, "@")
	if hasLayer && layer != "q" && layer != "h" && layer != "f" {
		return Shape{}, fmt.Errorf("shape %q: layer %q: want q, h or f", s, layer)
	}
	sh, err := parseShape(s)
	sh.Layer = layer
	return sh, err
}

func parseShape(s string) (Shape, error) {
	kind, arg, _ := strings.Cut(s, ":")
	bad := fmt.Errorf("shape %q: want mesh:N, webinar:N or rooms:MxK", s)
	switch kind {
	case "mesh", "webinar":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 || n > 1000 {
			return Shape{}, bad
		}
		if kind == "mesh" {
			return Shape{Name: s, Rooms: 1, Publishers: n}, nil
		}
		return Shape{Name: s, Rooms: 1, Publishers: 1, Listeners: n}, nil
	case "rooms":
		ms, ks, ok := strings.Cut(arg, "x")
		m, err1 := strconv.Atoi(ms)
		k, err2 := strconv.Atoi(ks)
		if !ok || err1 != nil || err2 != nil || m < 1 || k < 1 || m*k > 2000 {
			return Shape{}, bad
		}
		return Shape{Name: s, Rooms: m, Publishers: k}, nil
	}
	return Shape{}, bad
}

// Participants is how many take part.
func (s Shape) Participants() int { return s.Rooms * (s.Publishers + s.Listeners) }

// Subscriptions is how many tracks are forwarded to someone: each receiver gets audio and
// video of every publisher of its meeting but itself.
func (s Shape) Subscriptions() int {
	perRoom := s.Publishers*(s.Publishers-1) + s.Listeners*s.Publishers
	return 2 * s.Rooms * perRoom
}

// Config is one run.
type Config struct {
	Server string // Confab or Janus
	Shape  Shape
	// Duration is the measured window; Settle the wait between everyone receiving and it.
	Duration, Settle time.Duration
	// Layer is the simulcast layer receivers ask for: q, h or f (low, mid, high).
	Layer string
	FPS   int // video frames per second (default 30)
	// Probes is how many receive-only participants join, one after the other, after the
	// window, to time joining to the first frame.
	Probes int
	// PID is the server process, read from /proc.
	PID int
	// JoinConcurrency is how many participants join at once (default 4).
	JoinConcurrency int

	// Confab: the XMPP target, users and spaces (one per room, one more is not needed).
	Target     *bench.Target
	UserPrefix string
	Users      int
	Password   string
	Spaces     []string

	// Janus: its API.
	JanusURL string

	// Sample, when above 0, samples the server (RSS, open files, threads and, with
	// GoroutinesURL, goroutines) at that interval through the window: the soak.
	Sample        time.Duration
	GoroutinesURL string // a pprof goroutine endpoint of the server (Confab's serve -pprof)

	Progress io.Writer // progress lines (nil: none)
	// ClientOptions, when set, adjusts every participant's sfutest options (a UDP socket of
	// a known port for the bad-network runs, say).
	ClientOptions func(role string, i int, o *sfutest.Options)
}

// Result is what a run measured, as written to its JSON file.
type Result struct {
	Scenario      string         `json:"scenario"` // "media"
	Server        string         `json:"server"`
	Shape         string         `json:"shape"`
	Rooms         int            `json:"rooms"`
	Participants  int            `json:"participants"`
	Subscriptions int            `json:"subscriptions"`
	StartedAt     time.Time      `json:"startedAt"`
	Seconds       float64        `json:"seconds"`
	SetupSeconds  float64        `json:"setupSeconds"`
	Settings      map[string]any `json:"settings"`
	Machine       bench.Machine  `json:"machine"`

	ServerUsage *bench.ProcUsage `json:"serverUsage,omitempty"`

	RSSBaseKiB         int64   `json:"rssBaseKiB"`
	RSSJoinedKiB       int64   `json:"rssJoinedKiB"`
	KiBPerParticipant  float64 `json:"kibPerParticipant"`
	KiBPerSubscription float64 `json:"kibPerSubscription"`

	ForwardedPackets   int64   `json:"forwardedPackets"`
	ForwardedPerSecond float64 `json:"forwardedPerSecond"`
	ForwardedMbps      float64 `json:"forwardedMbps"`
	CPUUsPerPacket     float64 `json:"cpuUsPerPacket"`
	CPUMsPerMbit       float64 `json:"cpuMsPerMbit"`
	ServerCPUPercent   float64 `json:"serverCpuPercent"`

	Latency       bench.Latency `json:"latency"` // send → receive, first packet of each frame
	LatencyVideo  bench.Latency `json:"latencyVideo"`
	LatencyAudio  bench.Latency `json:"latencyAudio"`
	JoinToFrame   bench.Latency `json:"joinToFirstFrame"`
	JoinToFrameMs []float64     `json:"joinToFirstFrameMs,omitempty"`

	Frames   int64            `json:"frames"`
	Verified int64            `json:"verified"`
	Corrupt  int64            `json:"corrupt"`
	Late     int64            `json:"late"`
	Lost     int64            `json:"lost"` // sequence numbers missing at the end of the window
	Gaps     int64            `json:"gaps"`
	RTX      int64            `json:"rtx"`
	Repaired int64            `json:"repaired"`
	NACKs    int64            `json:"nacks"` // NACK packets the publishers received
	Layers   map[string]int64 `json:"layerFrames"`
	// VideoFPS is video frames received per second per video subscription: about the
	// publishers' frame rate when a server forwards one layer, three times that when it
	// forwards every simulcast layer.
	VideoFPS   float64  `json:"videoFpsPerSubscription"`
	Incomplete int      `json:"incompleteReceivers,omitempty"`
	Errors     []string `json:"errors,omitempty"`

	LoadGenCPUSeconds float64 `json:"loadgenCpuSeconds"`

	// Samples are the soak's readings of the server through the window.
	Samples []Sample `json:"samples,omitempty"`
}

// Sample is one reading of the server during a soak.
type Sample struct {
	Seconds    float64 `json:"seconds"` // since the window began
	RSSKiB     int64   `json:"rssKiB"`
	FDs        int     `json:"fds"`
	Threads    int     `json:"threads"`
	Goroutines int     `json:"goroutines,omitempty"`
	Forwarded  int64   `json:"forwardedPackets"` // so far in the window
}

// sampleServer reads pid's RSS, open files and threads, and goroutines from url.
func sampleServer(pid int, url string) Sample {
	var s Sample
	if p, err := bench.ReadProc(pid); err == nil {
		s.RSSKiB = p.RSSKiB
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(ents)
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		s.Threads = len(ents)
	}
	if url != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
				resp.Body.Close()
				// "goroutine profile: total N"
				if _, rest, ok := strings.Cut(string(b), "total "); ok {
					line, _, _ := strings.Cut(rest, "\n")
					s.Goroutines, _ = strconv.Atoi(strings.TrimSpace(line))
				}
			}
		}
	}
	return s
}

// party is one participant of either server.
type party struct {
	room     int
	pub      bool
	recv     *sfutest.Client // what it receives on
	send     *sfutest.Client // what it sends with (nil for a listener)
	close    func()
	janusPub *JanusParticipant
}

// recorder gathers per-frame figures during the window.
type recorder struct {
	on       atomic.Bool
	mu       sync.Mutex
	all, vid bench.Histogram
	aud      bench.Histogram
	layers   [4]int64
	corrupt  int64
}

func (r *recorder) frame(f sfutest.RecvFrame) {
	if !r.on.Load() || f.Late {
		return
	}
	d := f.First.Sub(time.Unix(0, f.ID.Sent))
	r.mu.Lock()
	r.all.Record(d)
	if f.Kind == sfu.Video {
		r.vid.Record(d)
		if f.ID.Layer < 4 {
			r.layers[f.ID.Layer]++
		}
	} else {
		r.aud.Record(d)
	}
	if !f.Verified {
		r.corrupt++
	}
	r.mu.Unlock()
}

func (c *Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

// Run runs one shape against one server and measures it.
func Run(ctx context.Context, c Config) (*Result, error) {
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.JoinConcurrency <= 0 {
		c.JoinConcurrency = 4
	}
	if c.Shape.Layer != "" {
		c.Layer = c.Shape.Layer
	}
	if c.Layer == "" {
		c.Layer = "f"
	}
	layerIdx := map[string]int{"q": 0, "h": 1, "f": 2}
	if _, ok := layerIdx[c.Layer]; !ok {
		return nil, fmt.Errorf("layer %q: want q, h or f", c.Layer)
	}
	switch c.Server {
	case Confab:
		if c.Target == nil || len(c.Spaces) < c.Shape.Rooms {
			return nil, fmt.Errorf("confab: a target and %d spaces are needed (have %d)", c.Shape.Rooms, len(c.Spaces))
		}
		if err := c.Target.CheckLoopback(ctx); err != nil {
			return nil, err
		}
	case Janus:
		u, err := url.Parse(c.JanusURL)
		if err != nil {
			return nil, fmt.Errorf("janus URL: %w", err)
		}
		if err := bench.CheckLoopback(ctx, u.Host); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("server %q: want confab or janus", c.Server)
	}
	res := &Result{Scenario: "media", Server: c.Server, Shape: c.Shape.Name, Rooms: c.Shape.Rooms,
		Participants: c.Shape.Participants(), Subscriptions: c.Shape.Subscriptions(), StartedAt: time.Now().UTC(),
		Machine: bench.MachineInfo(), Layers: map[string]int64{},
		Settings: map[string]any{"duration": c.Duration.String(), "layer": c.Layer, "fps": c.FPS, "probes": c.Probes,
			"media": fmt.Sprintf("Opus %d B/20 ms; VP8 simulcast q/h/f %d/%d/%d kbit/s, key frame every %d frames ×%d", 60+bodyOverhead, LowKbps, MidKbps, HighKbps, KeyEvery, KeyScale)}}
	selfStart := bench.SelfCPU()
	base, err := bench.ReadProc(c.PID)
	if err != nil {
		return nil, err
	}
	res.RSSBaseKiB = base.RSSKiB
	rec := &recorder{}
	var janusAPI *JanusAPI
	if c.Server == Janus {
		janusAPI = NewJanusAPI(c.JanusURL)
		for r := range c.Shape.Rooms {
			if err := janusAPI.CreateRoom(ctx, uint64(1000+r), c.Shape.Publishers+c.Shape.Listeners+c.Probes+1); err != nil {
				return nil, fmt.Errorf("janus room %d: %w", r, err)
			}
		}
	}

	setup := time.Now()
	var (
		mu      sync.Mutex
		parties []*party
	)
	defer func() {
		// Leave in parallel, a few at a time, so that 300 participants leave in seconds.
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, p := range parties {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				p.close()
			}()
		}
		wg.Wait()
	}()
	opts := func(role string, i int, send bool) sfutest.Options {
		o := sfutest.Options{OnFrame: rec.frame}
		if send {
			o.Audio, o.Video = true, Camera(c.FPS)
		}
		if c.ClientOptions != nil {
			c.ClientOptions(role, i, &o)
		}
		return o
	}
	// Publishers first, room by room, then listeners.
	type job struct {
		room, i int
		pub     bool
	}
	var jobs []job
	for r := range c.Shape.Rooms {
		for i := range c.Shape.Publishers {
			jobs = append(jobs, job{r, i, true})
		}
	}
	var ljobs []job
	for r := range c.Shape.Rooms {
		for i := range c.Shape.Listeners {
			ljobs = append(ljobs, job{r, i, false})
		}
	}
	n := 0
	join := func(j job) (*party, error) {
		mu.Lock()
		idx := n
		n++
		mu.Unlock()
		name := fmt.Sprintf("r%d-%s%d", j.room, map[bool]string{true: "p", false: "l"}[j.pub], j.i)
		jctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		switch c.Server {
		case Confab:
			o := opts(map[bool]string{true: "publisher", false: "listener"}[j.pub], idx, j.pub)
			p, err := JoinXMPP(jctx, XMPPOptions{Target: c.Target, User: fmt.Sprintf("%s%d", c.UserPrefix, idx%max(c.Users, 1)),
				Password: c.Password, Space: c.Spaces[j.room], Name: name, Client: o, Layer: c.Layer})
			if err != nil {
				return nil, err
			}
			pt := &party{room: j.room, pub: j.pub, recv: p.C, close: p.Close}
			if j.pub {
				pt.send = p.C
			}
			return pt, nil
		default:
			o := opts(map[bool]string{true: "publisher", false: "listener"}[j.pub], idx, j.pub)
			jo := JanusOptions{API: janusAPI, Room: uint64(1000 + j.room), Name: name, Receive: opts("subscriber", idx, false)}
			if j.pub {
				jo.Publish = &o
			}
			p, err := JoinJanus(jctx, jo)
			if err != nil {
				return nil, err
			}
			return &party{room: j.room, pub: j.pub, send: p.Pub, close: p.Close, janusPub: p}, nil
		}
	}
	runJobs := func(js []job) error {
		sem := make(chan struct{}, c.JoinConcurrency)
		var wg sync.WaitGroup
		var firstErr error
		var emu sync.Mutex
		for _, j := range js {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				p, err := join(j)
				if err != nil {
					emu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					emu.Unlock()
					return
				}
				mu.Lock()
				parties = append(parties, p)
				k := len(parties)
				mu.Unlock()
				if k%25 == 0 {
					c.progress("%s %s: %d joined", c.Server, c.Shape.Name, k)
				}
			}()
		}
		wg.Wait()
		return firstErr
	}
	if err := runJobs(jobs); err != nil {
		return res, fmt.Errorf("join: %w", err)
	}
	if err := runJobs(ljobs); err != nil {
		return res, fmt.Errorf("join: %w", err)
	}
	if c.Server == Janus {
		// Subscriptions, once every feed is up: each participant to its room's publishers.
		feeds := map[int][]uint64{}
		for _, p := range parties {
			if p.pub {
				feeds[p.room] = append(feeds[p.room], p.janusPub.FeedID)
			}
		}
		sem := make(chan struct{}, c.JoinConcurrency)
		var wg sync.WaitGroup
		var errs []error
		var emu sync.Mutex
		for _, p := range parties {
			var mine []uint64
			for _, f := range feeds[p.room] {
				if !p.pub || f != p.janusPub.FeedID {
					mine = append(mine, f)
				}
			}
			if len(mine) == 0 {
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				defer cancel()
				err := p.janusPub.Subscribe(sctx, mine, layerIdx[c.Layer])
				emu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				p.recv = p.janusPub.Sub
				emu.Unlock()
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			return res, fmt.Errorf("subscribe: %w", errors.Join(errs...))
		}
	}
	c.progress("%s %s: %d participants joined in %.1fs; waiting for everyone's video", c.Server, c.Shape.Name, len(parties), time.Since(setup).Seconds())
	// Everyone receives a verified video frame from every publisher of its room but itself.
	want := func(p *party) int {
		if p.pub {
			return c.Shape.Publishers - 1
		}
		return c.Shape.Publishers
	}
	onLayer := false // count only video tracks on the layer asked for
	receiving := func(p *party) bool {
		if p.recv == nil {
			return want(p) == 0
		}
		ok := 0
		for _, id := range p.recv.Tracks() {
			if rt, _ := p.recv.Track(id); rt.Kind == sfu.Video && rt.Verified > 0 && (!onLayer || int(rt.Layer) == layerIdx[c.Layer]) {
				ok++
			}
		}
		return ok >= want(p)
	}
	deadline := time.Now().Add(60*time.Second + time.Duration(len(parties))*200*time.Millisecond)
	for {
		missing := 0
		for _, p := range parties {
			if !receiving(p) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			res.Incomplete = missing
			res.Errors = append(res.Errors, fmt.Sprintf("%d of %d participants did not receive every video within the setup time", missing, len(parties)))
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	// Then, for at most 20 s more, until everyone receives the layer asked for (Confab's SFU
	// also weighs its bandwidth estimate, which starts at 1 Mbit/s and grows).
	onLayer = true
	layerDeadline := time.Now().Add(20 * time.Second)
	for res.Incomplete == 0 {
		missing := 0
		for _, p := range parties {
			if !receiving(p) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(layerDeadline) || ctx.Err() != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%d of %d participants did not receive layer %s of every video within 20s", missing, len(parties), c.Layer))
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	res.SetupSeconds = round(time.Since(setup).Seconds(), 2)
	c.progress("%s %s: everyone receiving after %.1fs; settling %v, measuring %v", c.Server, c.Shape.Name, res.SetupSeconds, c.Settle, c.Duration)
	sleep(ctx, c.Settle)

	totals := func() (t sfutest.Totals, nacks int64) {
		for _, p := range parties {
			if p.recv != nil {
				x := p.recv.Totals()
				t.Packets += x.Packets
				t.Bytes += x.Bytes
				t.Frames += x.Frames
				t.Verified += x.Verified
				t.Late += x.Late
				t.Missing += x.Missing
				t.Gaps += x.Gaps
				t.RTX += x.RTX
				t.Repaired += x.Repaired
			}
			if p.send != nil {
				nacks += p.send.NACKs()
			}
		}
		return t, nacks
	}
	joined, err := bench.ReadProc(c.PID)
	if err != nil {
		return res, err
	}
	t0, n0 := totals()
	rec.on.Store(true)
	start := time.Now()
	if c.Sample > 0 {
		end := start.Add(c.Duration)
		for ctx.Err() == nil && time.Now().Before(end) {
			sm := sampleServer(c.PID, c.GoroutinesURL)
			t, _ := totals()
			sm.Seconds, sm.Forwarded = round(time.Since(start).Seconds(), 1), int64(t.Packets-t0.Packets)
			res.Samples = append(res.Samples, sm)
			c.progress("%s %s soak: %.0fs: RSS %d KiB, %d fds, %d threads, %d goroutines, %d packets forwarded",
				c.Server, c.Shape.Name, sm.Seconds, sm.RSSKiB, sm.FDs, sm.Threads, sm.Goroutines, sm.Forwarded)
			sleep(ctx, min(c.Sample, time.Until(end)))
		}
		sm := sampleServer(c.PID, c.GoroutinesURL)
		t, _ := totals()
		sm.Seconds, sm.Forwarded = round(time.Since(start).Seconds(), 1), int64(t.Packets-t0.Packets)
		res.Samples = append(res.Samples, sm)
	} else {
		sleep(ctx, c.Duration)
	}
	rec.on.Store(false)
	end, err := bench.ReadProc(c.PID)
	if err != nil {
		return res, err
	}
	t1, n1 := totals()
	elapsed := time.Since(start)
	res.Seconds = round(elapsed.Seconds(), 2)
	res.ServerUsage = &bench.ProcUsage{PID: c.PID, CPUSeconds: (end.CPU - joined.CPU).Seconds(), RSSStartKiB: joined.RSSKiB, RSSEndKiB: end.RSSKiB, RSSPeakKiB: end.HWMKiB}
	res.ServerCPUPercent = round(100*res.ServerUsage.CPUSeconds/elapsed.Seconds(), 1)
	res.ServerUsage.CPUPercent = res.ServerCPUPercent
	res.RSSJoinedKiB = joined.RSSKiB
	if p := len(parties); p > 0 {
		res.KiBPerParticipant = round(float64(joined.RSSKiB-base.RSSKiB)/float64(p), 1)
	}
	if s := c.Shape.Subscriptions(); s > 0 {
		res.KiBPerSubscription = round(float64(joined.RSSKiB-base.RSSKiB)/float64(s), 1)
	}
	res.ForwardedPackets = int64(t1.Packets - t0.Packets)
	res.ForwardedPerSecond = round(float64(res.ForwardedPackets)/elapsed.Seconds(), 0)
	bits := float64(t1.Bytes-t0.Bytes) * 8
	res.ForwardedMbps = round(bits/1e6/elapsed.Seconds(), 1)
	cpu := (end.CPU - joined.CPU).Seconds()
	if res.ForwardedPackets > 0 {
		res.CPUUsPerPacket = round(cpu*1e6/float64(res.ForwardedPackets), 2)
	}
	if bits > 0 {
		res.CPUMsPerMbit = round(cpu*1e3/(bits/1e6), 3)
	}
	res.Frames, res.Verified, res.Late = int64(t1.Frames-t0.Frames), int64(t1.Verified-t0.Verified), int64(t1.Late-t0.Late)
	res.Lost, res.Gaps, res.RTX, res.Repaired = int64(t1.Missing-t0.Missing), int64(t1.Gaps-t0.Gaps), int64(t1.RTX-t0.RTX), int64(t1.Repaired-t0.Repaired)
	res.NACKs = n1 - n0
	rec.mu.Lock()
	res.Latency, res.LatencyVideo, res.LatencyAudio = rec.all.Summary(), rec.vid.Summary(), rec.aud.Summary()
	res.Corrupt = rec.corrupt
	var vframes int64
	for i, name := range []string{"q", "h", "f"} {
		res.Layers[name] = rec.layers[i]
		vframes += rec.layers[i]
	}
	if vs := c.Shape.Subscriptions() / 2; vs > 0 {
		res.VideoFPS = round(float64(vframes)/float64(vs)/elapsed.Seconds(), 1)
	}
	rec.mu.Unlock()
	c.progress("%s %s: %.0f packets/s forwarded (%.1f Mbit/s), server CPU %.1f%%, %.2f µs/packet, p99 %.2f ms",
		c.Server, c.Shape.Name, res.ForwardedPerSecond, res.ForwardedMbps, res.ServerCPUPercent, res.CPUUsPerPacket, res.Latency.P99)

	// Probes: receive-only participants joining a running meeting, one at a time.
	var jh bench.Histogram
	for i := range c.Probes {
		d, err := probe(ctx, &c, janusAPI, parties, i)
		if err != nil {
			res.Errors = append(res.Errors, "probe: "+err.Error())
			continue
		}
		jh.Record(d)
		res.JoinToFrameMs = append(res.JoinToFrameMs, round(float64(d)/1e6, 1))
	}
	res.JoinToFrame = jh.Summary()
	res.LoadGenCPUSeconds = round((bench.SelfCPU() - selfStart).Seconds(), 2)
	return res, nil
}

// probe joins one receive-only participant to room 0 and returns the time from its join to
// its first verified video frame.
func probe(ctx context.Context, c *Config, api *JanusAPI, parties []*party, i int) (time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("probe%d", i)
	var (
		cl     *sfutest.Client
		joined time.Time
	)
	switch c.Server {
	case Confab:
		p, err := JoinXMPP(pctx, XMPPOptions{Target: c.Target, User: fmt.Sprintf("%s%d", c.UserPrefix, i%max(c.Users, 1)),
			Password: c.Password, Space: c.Spaces[0], Name: name, Layer: c.Layer})
		if err != nil {
			return 0, err
		}
		defer p.Close()
		cl, joined = p.C, p.Joined
	default:
		p, err := JoinJanus(pctx, JanusOptions{API: api, Room: 1000, Name: name})
		if err != nil {
			return 0, err
		}
		defer p.Close()
		var feeds []uint64
		for _, o := range parties {
			if o.room == 0 && o.pub {
				feeds = append(feeds, o.janusPub.FeedID)
			}
		}
		if err := p.Subscribe(pctx, feeds, map[string]int{"q": 0, "h": 1, "f": 2}[c.Layer]); err != nil {
			return 0, err
		}
		cl, joined = p.Sub, p.Joined
	}
	if err := cl.Until(20*time.Second, func() bool { _, ok := cl.FirstVideo(); return ok }); err != nil {
		return 0, fmt.Errorf("%s: no video: %w", name, err)
	}
	t, _ := cl.FirstVideo()
	return t.Sub(joined), nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
