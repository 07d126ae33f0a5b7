package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// PrintResult writes a short human summary of r.
func PrintResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "%s %s (%s", r.Label, r.Scenario, r.Transport)
	if r.Scenario != ScenarioRoundtrip {
		fmt.Fprintf(w, ", %s", r.Mechanism)
	}
	if r.TargetRate > 0 {
		fmt.Fprintf(w, ", target %.0f/s", r.TargetRate)
	}
	fmt.Fprintf(w, "): %d ok of %d in %.1fs", r.OK, r.Attempts, r.Seconds)
	if r.PerSecond > 0 {
		fmt.Fprintf(w, ", %.1f/s", r.PerSecond)
	}
	l := r.Latency
	fmt.Fprintf(w, "\n  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	if len(r.Errors) > 0 {
		var parts []string
		for _, k := range sortedKinds(r.Errors) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		fmt.Fprintf(w, "  errors: %s\n", strings.Join(parts, ", "))
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "  server pid %d: cpu %.2fs (%.0f%% of a core), rss %d -> %d KiB", s.PID, s.CPUSeconds, s.CPUPercent, s.RSSStartKiB, s.RSSEndKiB)
		switch {
		case r.ServerCPUMsPerLogin > 0:
			fmt.Fprintf(w, ", %.3f ms cpu per login", r.ServerCPUMsPerLogin)
		case r.ServerCPUUsPerMsg > 0:
			fmt.Fprintf(w, ", %.1f µs cpu per round trip, %.1f per routed message", r.ServerCPUUsPerRT, r.ServerCPUUsPerMsg)
		}
		fmt.Fprintln(w)
	}
	if r.Scenario == ScenarioIdle && r.Server != nil {
		for _, cp := range r.Checkpoints {
			fmt.Fprintf(w, "  at %d sessions: rss %d KiB, %.1f KiB per session\n", cp.Sessions, cp.RSSKiB, cp.KiBPerSession)
		}
		fmt.Fprintf(w, "  %d sessions: rss %d KiB before, %d open, %d after %v s held: %.1f KiB per session (%.1f held); idle cpu %.2f%%\n",
			r.Sessions, r.RSSBaseKiB, r.RSSOpenKiB, r.RSSHeldKiB, r.Settings["holdS"], r.KiBPerSession, r.KiBPerSessionHeld, r.IdleCPUPercent)
	}
	fmt.Fprintf(w, "  load tool cpu %.2fs\n", r.LoadGen.CPUSeconds)
}

// WriteResult writes r as indented JSON.
func WriteResult(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResult reads a result file.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// P99Limit is the latency bound of the sustained login rate.
const P99Limit = 50.0 // ms

// Point is one login run at a target rate: a point of the latency-against-load curve.
type Point struct {
	TargetRate float64 `json:"targetRate"`
	Achieved   float64 `json:"achieved"`
	P50        float64 `json:"p50Ms"`
	P99        float64 `json:"p99Ms"`
	Errors     uint64  `json:"errors"`
	CPUPercent float64 `json:"serverCpuPercent"`
}

// Figures are one server's headline numbers, derived from its result files.
type Figures struct {
	Label string `json:"label"`
	// CPU ms per full login, flat out: SCRAM-SHA-256 over TCP, PLAIN over TCP, SCRAM over
	// WebSocket; and the login rate those runs reached.
	CPUMsPerLogin      float64 `json:"cpuMsPerLogin,omitempty"`
	MaxLoginsPerS      float64 `json:"maxLoginsPerS,omitempty"`
	MaxLoginP99        float64 `json:"maxLoginP99Ms,omitempty"`
	CPUMsPerLoginPlain float64 `json:"cpuMsPerLoginPlain,omitempty"`
	PlainLoginsPerS    float64 `json:"plainLoginsPerS,omitempty"`
	CPUMsPerLoginWS    float64 `json:"cpuMsPerLoginWebSocket,omitempty"`
	// SustainedLogins is the highest target rate met (≥95%, no errors) with p99 ≤ 50 ms.
	SustainedLogins float64 `json:"sustainedLoginsPerS,omitempty"`
	Curve           []Point `json:"curve,omitempty"`
	// Round trips through the component link.
	RoundTripsPerS   float64 `json:"roundTripsPerS,omitempty"`
	RoundTripP99     float64 `json:"roundTripP99Ms,omitempty"`
	CPUUsPerMessage  float64 `json:"cpuUsPerMessage,omitempty"`
	CPUUsPerRoundTrp float64 `json:"cpuUsPerRoundTrip,omitempty"`
	// Idle sessions: KiB of RSS per session, by number of sessions.
	KiBPerSession map[int]float64 `json:"kibPerSession,omitempty"`
	IdleErrors    map[int]uint64  `json:"idleErrors,omitempty"`
}

// Summarise derives each server's figures from a set of results.
func Summarise(rs []*Result) []*Figures {
	by := map[string]*Figures{}
	var order []string
	get := func(label string) *Figures {
		f := by[label]
		if f == nil {
			f = &Figures{Label: label}
			by[label] = f
			order = append(order, label)
		}
		return f
	}
	for _, r := range rs {
		f := get(r.Label)
		var nerr uint64
		for _, n := range r.Errors {
			nerr += n
		}
		switch r.Scenario {
		case ScenarioLogin:
			switch {
			case r.TargetRate > 0 && r.Transport == "tcp+starttls" && r.Mechanism == MechSCRAMSHA256:
				p := Point{TargetRate: r.TargetRate, Achieved: r.PerSecond, P50: r.Latency.P50, P99: r.Latency.P99, Errors: nerr}
				if r.Server != nil {
					p.CPUPercent = r.Server.CPUPercent
				}
				f.Curve = append(f.Curve, p)
				if p.P99 <= P99Limit && nerr == 0 && p.Achieved >= 0.95*p.TargetRate && p.TargetRate > f.SustainedLogins {
					f.SustainedLogins = p.TargetRate
				}
			case r.TargetRate == 0 && r.Transport == "websocket":
				f.CPUMsPerLoginWS = r.ServerCPUMsPerLogin
			case r.TargetRate == 0 && r.Mechanism == MechPLAIN:
				f.CPUMsPerLoginPlain, f.PlainLoginsPerS = r.ServerCPUMsPerLogin, r.PerSecond
			case r.TargetRate == 0:
				f.CPUMsPerLogin, f.MaxLoginsPerS, f.MaxLoginP99 = r.ServerCPUMsPerLogin, r.PerSecond, r.Latency.P99
			}
		case ScenarioRoundtrip:
			f.RoundTripsPerS, f.RoundTripP99 = r.PerSecond, r.Latency.P99
			f.CPUUsPerMessage, f.CPUUsPerRoundTrp = r.ServerCPUUsPerMsg, r.ServerCPUUsPerRT
		case ScenarioIdle:
			if f.KiBPerSession == nil {
				f.KiBPerSession, f.IdleErrors = map[int]float64{}, map[int]uint64{}
			}
			for _, cp := range r.Checkpoints {
				f.KiBPerSession[cp.Attempted] = cp.KiBPerSession
			}
			n, _ := r.Settings["sessions"].(float64)
			f.KiBPerSession[int(n)] = r.KiBPerSessionHeld
			f.IdleErrors[int(n)] = nerr
		}
	}
	out := make([]*Figures, 0, len(order))
	for _, l := range order {
		f := by[l]
		sort.Slice(f.Curve, func(i, j int) bool { return f.Curve[i].TargetRate < f.Curve[j].TargetRate })
		out = append(out, f)
	}
	return out
}

// PrintTable writes the figures as a Markdown table, one column per server, with the ratio
// of Confab's figure to ejabberd's when both are there.
func PrintTable(w io.Writer, figs []*Figures) {
	if len(figs) == 0 {
		return
	}
	var confab, ejabberd *Figures
	for _, f := range figs {
		switch f.Label {
		case "confab":
			confab = f
		case "ejabberd":
			ejabberd = f
		}
	}
	sessionCounts := map[int]bool{}
	for _, f := range figs {
		for n := range f.KiBPerSession {
			sessionCounts[n] = true
		}
	}
	type row struct {
		name   string
		format string
		get    func(*Figures) float64
	}
	rows := []row{
		{"server CPU ms per login (SCRAM-SHA-256, TCP+STARTTLS, flat out)", "%.2f", func(f *Figures) float64 { return f.CPUMsPerLogin }},
		{"logins/s flat out (SCRAM-SHA-256)", "%.0f", func(f *Figures) float64 { return f.MaxLoginsPerS }},
		{"sustained logins/s at p99 ≤ 50 ms", "%.0f", func(f *Figures) float64 { return f.SustainedLogins }},
		{"server CPU ms per login (PLAIN)", "%.2f", func(f *Figures) float64 { return f.CPUMsPerLoginPlain }},
		{"logins/s flat out (PLAIN)", "%.0f", func(f *Figures) float64 { return f.PlainLoginsPerS }},
		{"server CPU ms per login (SCRAM-SHA-256, WebSocket)", "%.2f", func(f *Figures) float64 { return f.CPUMsPerLoginWS }},
		{"server CPU µs per routed message (component link)", "%.1f", func(f *Figures) float64 { return f.CPUUsPerMessage }},
		{"round trips/s client → component → client", "%.0f", func(f *Figures) float64 { return f.RoundTripsPerS }},
		{"round trip p99 ms", "%.2f", func(f *Figures) float64 { return f.RoundTripP99 }},
	}
	var ns []int
	for n := range sessionCounts {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, n := range ns {
		rows = append(rows, row{fmt.Sprintf("RSS KiB per idle TLS session (%d sessions)", n), "%.1f", func(f *Figures) float64 { return f.KiBPerSession[n] }})
	}
	fmt.Fprint(w, "| figure |")
	for _, f := range figs {
		fmt.Fprintf(w, " %s |", f.Label)
	}
	withRatio := confab != nil && ejabberd != nil
	if withRatio {
		fmt.Fprint(w, " confab ÷ ejabberd |")
	}
	fmt.Fprint(w, "\n|---|")
	for range figs {
		fmt.Fprint(w, "---:|")
	}
	if withRatio {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		any := false
		for _, f := range figs {
			any = any || r.get(f) != 0
		}
		if !any {
			continue
		}
		fmt.Fprintf(w, "| %s |", r.name)
		for _, f := range figs {
			if v := r.get(f); v != 0 {
				fmt.Fprintf(w, " "+r.format+" |", v)
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		if withRatio {
			if a, b := r.get(confab), r.get(ejabberd); a != 0 && b != 0 {
				fmt.Fprintf(w, " %.2f× |", a/b)
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
}
