// Package bench is Confab's XMPP load tool as a library: it drives any XMPP server on this
// machine (Confab, Prosody, ejabberd) with the same scenarios and measures the server from
// the outside, so that the figures of different servers can stand side by side.
//
// Scenarios:
//
//   - login: full logins — TCP and STARTTLS (or XMPP over WebSocket), SASL SCRAM-SHA-256 or
//     PLAIN, resource binding — at a target rate (open loop: latency counts from the moment
//     a login was due, so a server that falls behind is not flattered) or as fast as a
//     number of workers can go (closed loop);
//   - idle: a number of authenticated sessions held open, to measure resident memory per
//     session;
//   - roundtrip: messages from clients to a component the tool connects itself (XEP-0114
//     over TLS, as a Call Bridge does) and back, to measure routing cost and latency.
//
// Each run reports throughput, latency percentiles from a log-linear histogram (Histogram),
// errors by kind, and the server process's CPU time and resident memory read from
// /proc/<pid>; it prints a progress line while it runs. Runs are bounded in time and count,
// and only loopback targets are accepted.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Scenarios.
const (
	ScenarioLogin     = "login"
	ScenarioIdle      = "idle"
	ScenarioRoundtrip = "roundtrip"
)

// Bounds on what one run may do.
const (
	MaxDuration = 30 * time.Minute
	MaxSessions = 50000
)

// Config describes one run. Zero fields take the defaults noted.
type Config struct {
	Scenario string
	// Label names the server under test in results (e.g. "confab", "prosody").
	Label  string
	Target *Target
	// Users are user0..user<Users-1> (UserPrefix, default "user"), all with Password.
	Users      int
	UserPrefix string
	Password   string

	// Duration bounds the run (login, roundtrip; default 10s); Count, when set, stops a login
	// run after that many attempts.
	Duration time.Duration
	Count    int
	// Rate is the login rate per second (open loop); 0 runs Concurrency workers flat out.
	Rate float64
	// Concurrency bounds the logins in flight (default 8 closed loop, 512 open loop).
	Concurrency int

	// Sessions is how many idle sessions to hold (idle); Hold how long to hold them once
	// all are open (default 5s).
	Sessions int
	Hold     time.Duration
	// Checkpoints are session counts at which the idle scenario pauses to read the server's
	// memory (e.g. 1000 on the way to 10000).
	Checkpoints []int

	// Component is the test component of the roundtrip scenario.
	Component ComponentConfig
	// Clients is the number of clients of the roundtrip scenario (default 8), each keeping
	// Window messages in flight (default 4) of PayloadBytes of body (default 64).
	Clients, Window, PayloadBytes int

	// PID is the server process to measure (0: none).
	PID int
	// Progress receives a progress line every second (nil: none).
	Progress io.Writer
}

// ComponentConfig is how the load tool connects its test component.
type ComponentConfig struct {
	Addr   string // the server's component port (TLS from the first byte)
	JID    string // e.g. echo.example.com
	Secret string
	TLS    *tls.Config
}

func (c *Config) defaults() error {
	if c.Target == nil {
		return errors.New("bench: no target")
	}
	if c.Users <= 0 {
		c.Users = 1
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "user"
	}
	if c.Password == "" {
		return errors.New("bench: no password")
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Duration > MaxDuration {
		return fmt.Errorf("bench: duration %s is over the limit of %s", c.Duration, MaxDuration)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
		if c.Rate > 0 {
			c.Concurrency = 512
		}
	}
	if c.Sessions > MaxSessions {
		return fmt.Errorf("bench: %d sessions is over the limit of %d", c.Sessions, MaxSessions)
	}
	if c.Hold <= 0 {
		c.Hold = 5 * time.Second
	}
	if c.Clients <= 0 {
		c.Clients = 8
	}
	if c.Window <= 0 {
		c.Window = 4
	}
	if c.PayloadBytes <= 0 {
		c.PayloadBytes = 64
	}
	return nil
}

func (c *Config) user(i int) string { return fmt.Sprintf("%s%d", c.UserPrefix, i%c.Users) }

// Result is one run's outcome, as written to a result file.
type Result struct {
	Scenario  string    `json:"scenario"`
	Label     string    `json:"label"`
	StartedAt time.Time `json:"startedAt"`
	Seconds   float64   `json:"seconds"`
	Transport string    `json:"transport"`
	Mechanism string    `json:"mechanism,omitempty"`
	// Settings echo the run's parameters.
	Settings map[string]any `json:"settings"`

	Attempts uint64            `json:"attempts"`
	OK       uint64            `json:"ok"`
	Errors   map[string]uint64 `json:"errors"`
	// PerSecond is successful operations (logins, round trips) per second.
	PerSecond float64 `json:"perSecond"`
	Latency   Latency `json:"latency"`
	// Phases of a login: connect (TCP + stream), tls, auth (SASL + stream restart), bind.
	Phases map[string]Latency `json:"phases,omitempty"`

	Server  *ProcUsage `json:"server,omitempty"`
	LoadGen struct {
		CPUSeconds float64 `json:"cpuSeconds"`
	} `json:"loadgen"`
	// Derived figures: server CPU milliseconds per login, microseconds per round trip and per
	// routed message (two per round trip), KiB of resident memory per idle session.
	ServerCPUMsPerLogin float64      `json:"serverCpuMsPerLogin,omitempty"`
	ServerCPUUsPerRT    float64      `json:"serverCpuUsPerRoundTrip,omitempty"`
	ServerCPUUsPerMsg   float64      `json:"serverCpuUsPerMessage,omitempty"`
	Sessions            int          `json:"sessions,omitempty"`
	RSSBaseKiB          int64        `json:"rssBaseKiB,omitempty"`
	RSSOpenKiB          int64        `json:"rssOpenKiB,omitempty"`
	RSSHeldKiB          int64        `json:"rssHeldKiB,omitempty"`
	KiBPerSession       float64      `json:"kibPerSession,omitempty"`
	KiBPerSessionHeld   float64      `json:"kibPerSessionHeld,omitempty"`
	IdleCPUPercent      float64      `json:"idleCpuPercent,omitempty"`
	Checkpoints         []Checkpoint `json:"checkpoints,omitempty"`
	Machine             Machine      `json:"machine"`
	TargetRate          float64      `json:"targetRate,omitempty"`
}

// Checkpoint is the server's memory with a number of idle sessions open.
type Checkpoint struct {
	Attempted     int     `json:"attempted"`
	Sessions      int     `json:"sessions"`
	RSSKiB        int64   `json:"rssKiB"`
	KiBPerSession float64 `json:"kibPerSession"`
}

// Machine describes where a run happened.
type Machine struct {
	CPUs      int     `json:"cpus"`
	GoVersion string  `json:"goVersion"`
	Load1     float64 `json:"load1AtStart"`
	Kernel    string  `json:"kernel,omitempty"`
	CPUModel  string  `json:"cpuModel,omitempty"`
}

// MachineInfo describes this machine now.
func MachineInfo() Machine { return machine() }

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f", &m.Load1)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Run runs cfg's scenario against its target.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := cfg.Target.CheckLoopback(ctx); err != nil {
		return nil, err
	}
	if cfg.Scenario == ScenarioRoundtrip {
		if err := CheckLoopback(ctx, cfg.Component.Addr); err != nil {
			return nil, err
		}
	}
	r := &Result{Scenario: cfg.Scenario, Label: cfg.Label, StartedAt: time.Now().UTC(), Machine: machine(),
		Transport: "tcp+starttls", Mechanism: cfg.Target.Mechanism, Errors: map[string]uint64{}}
	if cfg.Target.WebSocketURL != "" {
		r.Transport = "websocket"
	}
	if r.Mechanism == "" {
		r.Mechanism = MechSCRAMSHA256
	}
	var err error
	switch cfg.Scenario {
	case ScenarioLogin:
		err = runLogin(ctx, &cfg, r)
	case ScenarioIdle:
		err = runIdle(ctx, &cfg, r)
	case ScenarioRoundtrip:
		err = runRoundtrip(ctx, &cfg, r)
	default:
		return nil, fmt.Errorf("bench: unknown scenario %q (want login, idle or roundtrip)", cfg.Scenario)
	}
	return r, err
}

// meter measures the server process and the load tool over a run.
type meter struct {
	pid        int
	start      ProcSample
	startSelf  time.Duration
	startClock time.Time
}

func startMeter(pid int) (*meter, error) {
	m := &meter{pid: pid, startSelf: selfCPU(), startClock: time.Now()}
	if pid > 0 {
		s, err := ReadProc(pid)
		if err != nil {
			return nil, err
		}
		m.start = s
	}
	return m, nil
}

func (m *meter) stop(r *Result) (ProcSample, error) {
	r.Seconds = round(time.Since(m.startClock).Seconds(), 3)
	r.LoadGen.CPUSeconds = round((selfCPU() - m.startSelf).Seconds(), 3)
	if m.pid <= 0 {
		return ProcSample{}, nil
	}
	s, err := ReadProc(m.pid)
	if err != nil {
		return s, err
	}
	r.Server = usage(m.pid, m.start, s)
	return s, nil
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// recorder collects outcomes from many goroutines.
type recorder struct {
	mu       sync.Mutex
	lat      Histogram
	window   Histogram // since the last progress line
	phases   map[string]*Histogram
	attempts uint64
	ok       uint64
	errs     map[string]uint64
	lastErr  error
}

func newRecorder() *recorder {
	return &recorder{errs: map[string]uint64{}, phases: map[string]*Histogram{}}
}

func (rc *recorder) success(d time.Duration, phases map[string]time.Duration) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	rc.ok++
	rc.lat.Record(d)
	rc.window.Record(d)
	for k, v := range phases {
		h := rc.phases[k]
		if h == nil {
			h = &Histogram{}
			rc.phases[k] = h
		}
		h.Record(v)
	}
}

func (rc *recorder) failure(err error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	rc.errs[Kind(err)]++
	rc.lastErr = err
}

func (rc *recorder) fill(r *Result) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r.Attempts, r.OK = rc.attempts, rc.ok
	for k, v := range rc.errs {
		r.Errors[k] = v
	}
	r.Latency = rc.lat.Summary()
	if len(rc.phases) > 0 {
		r.Phases = map[string]Latency{}
		for k, h := range rc.phases {
			r.Phases[k] = h.Summary()
		}
	}
}

// progress prints a line a second until ctx ends.
func progress(ctx context.Context, w io.Writer, name string, rc *recorder, pid int, extra func() string) func() {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	tty := isTerminal(w)
	go func() {
		defer close(stopped)
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastOK uint64
		var lastCPU time.Duration
		lastAt := start
		if pid > 0 {
			if s, err := ReadProc(pid); err == nil {
				lastCPU = s.CPU
			}
		}
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				rc.mu.Lock()
				ok, att := rc.ok, rc.attempts
				nerr := att - ok
				p99 := rc.window.Quantile(0.99)
				rc.window = Histogram{}
				var lastErr string
				if rc.lastErr != nil {
					lastErr = rc.lastErr.Error()
				}
				rc.mu.Unlock()
				dt := now.Sub(lastAt).Seconds()
				line := fmt.Sprintf("[%s] %5.1fs ok %d err %d  %.0f/s  p99 %.1fms", name, now.Sub(start).Seconds(), ok, nerr,
					float64(ok-lastOK)/dt, float64(p99)/1e6)
				if pid > 0 {
					if s, err := ReadProc(pid); err == nil {
						line += fmt.Sprintf("  server cpu %.0f%% rss %d MiB", 100*(s.CPU-lastCPU).Seconds()/dt, s.RSSKiB>>10)
						lastCPU = s.CPU
					}
				}
				if extra != nil {
					line += "  " + extra()
				}
				if nerr > 0 && lastErr != "" {
					if len(lastErr) > 80 {
						lastErr = lastErr[:80]
					}
					line += "  last error: " + lastErr
				}
				lastOK, lastAt = ok, now
				if tty {
					fmt.Fprint(w, "\r"+line+"\x1b[K")
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func phaseMap(p Phases) map[string]time.Duration {
	return map[string]time.Duration{"connect": p.Connect, "tls": p.TLS, "auth": p.Auth, "bind": p.Bind}
}

// sortedKinds returns error kinds, most frequent first, for printing.
func sortedKinds(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if m[ks[i]] != m[ks[j]] {
			return m[ks[i]] > m[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}
