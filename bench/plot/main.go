// Command plot draws the latency-against-load curves of bench/compare.sh's login runs (the
// p50 and p99 login latency of each server at each offered login rate) and, from
// bench/media.sh's runs, the media servers' cost against meeting size (server CPU per
// forwarded packet, and server CPU, by participants).
//
//	go run . -out ../results ../results/*.json
//	go run . -out ../results/media ../results/media/*.json
//
// It is a module of its own so that Confab's module does not depend on a plotting library.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// result holds the fields of a `confab bench` result file that the plots use.
type result struct {
	Scenario   string  `json:"scenario"`
	Label      string  `json:"label"`
	Transport  string  `json:"transport"`
	Mechanism  string  `json:"mechanism"`
	TargetRate float64 `json:"targetRate"`
	PerSecond  float64 `json:"perSecond"`
	Latency    struct {
		P50 float64 `json:"p50Ms"`
		P99 float64 `json:"p99Ms"`
	} `json:"latency"`
	Server *struct {
		CPUPercent float64 `json:"cpuPercent"`
	} `json:"server"`
}

var colours = map[string]color.RGBA{
	"confab":   {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"prosody":  {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"ejabberd": {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"janus":    {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// mediaResult holds the fields of a `confab-bench media` result that the plots use.
type mediaResult struct {
	Scenario         string  `json:"scenario"`
	Server           string  `json:"server"`
	Shape            string  `json:"shape"`
	Participants     int     `json:"participants"`
	CPUUsPerPacket   float64 `json:"cpuUsPerPacket"`
	ServerCPUPercent float64 `json:"serverCpuPercent"`
	Errors           []string
}

func main() {
	out := flag.String("out", ".", "directory to write login-latency.svg and .png to")
	flag.Parse()
	curves := map[string][]result{}
	var media []mediaResult
	for _, f := range flag.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fail(err)
		}
		var m mediaResult
		if json.Unmarshal(b, &m) == nil && m.Scenario == "media" {
			media = append(media, m)
			continue
		}
		var r result
		if json.Unmarshal(b, &r) != nil || r.Scenario != "login" || r.TargetRate == 0 || r.Transport != "tcp+starttls" {
			continue
		}
		curves[r.Label] = append(curves[r.Label], r)
	}
	if len(media) > 0 {
		plotMedia(*out, media)
	}
	if len(curves) == 0 {
		if len(media) > 0 {
			return
		}
		fail(fmt.Errorf("no login runs at a target rate among %d files", flag.NArg()))
	}
	p := plot.New()
	p.Title.Text = "Login latency against offered load (TCP+STARTTLS, SCRAM-SHA-256, ECDSA P-256)"
	p.X.Label.Text = "offered logins per second"
	p.Y.Label.Text = "login latency, ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	limit := plotter.NewFunction(func(float64) float64 { return 50 })
	limit.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	limit.Color = color.Gray{Y: 0x80}
	p.Add(limit)
	p.Legend.Add("p99 limit 50 ms", limit)
	labels := make([]string, 0, len(curves))
	for l := range curves {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		rs := curves[l]
		sort.Slice(rs, func(i, j int) bool { return rs[i].TargetRate < rs[j].TargetRate })
		p50, p99 := make(plotter.XYs, len(rs)), make(plotter.XYs, len(rs))
		for i, r := range rs {
			p50[i] = plotter.XY{X: r.TargetRate, Y: max(r.Latency.P50, 0.1)}
			p99[i] = plotter.XY{X: r.TargetRate, Y: max(r.Latency.P99, 0.1)}
		}
		c := colours[l]
		for _, s := range []struct {
			name   string
			xys    plotter.XYs
			dashed bool
		}{{l + " p99", p99, false}, {l + " p50", p50, true}} {
			line, points, err := plotter.NewLinePoints(s.xys)
			if err != nil {
				fail(err)
			}
			line.Color, points.Color = c, c
			points.Shape = draw.CircleGlyph{}
			if s.dashed {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				points.Shape = draw.BoxGlyph{}
			}
			p.Add(line, points)
			p.Legend.Add(s.name, line, points)
		}
	}
	for _, ext := range []string{"svg", "png"} {
		f := filepath.Join(*out, "login-latency."+ext)
		if err := p.Save(9*vg.Inch, 5.5*vg.Inch, f); err != nil {
			fail(err)
		}
		fmt.Fprintln(os.Stderr, "wrote", f)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}

// plotMedia draws media-cost.{svg,png}: server CPU µs per forwarded packet against the
// number of participants, and media-cpu.{svg,png}: the server's CPU (% of one core), for
// each server and kind of shape (mesh, webinar, rooms).
func plotMedia(out string, rs []mediaResult) {
	type key struct{ server, kind string }
	series := map[key]plotter.XYs{}
	cpu := map[key]plotter.XYs{}
	for _, r := range rs {
		kind := r.Shape
		if i := strings.IndexByte(kind, ':'); i >= 0 {
			kind = kind[:i]
		}
		k := key{r.Server, kind}
		series[k] = append(series[k], plotter.XY{X: float64(r.Participants), Y: max(r.CPUUsPerPacket, 0.1)})
		cpu[k] = append(cpu[k], plotter.XY{X: float64(r.Participants), Y: max(r.ServerCPUPercent, 0.1)})
	}
	keys := make([]key, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].kind != keys[j].kind {
			return keys[i].kind < keys[j].kind
		}
		return keys[i].server < keys[j].server
	})
	for _, fig := range []struct {
		name, title, y string
		data           map[key]plotter.XYs
	}{
		{"media-cost", "Media server CPU per forwarded RTP packet against meeting size", "server CPU µs per forwarded packet", series},
		{"media-cpu", "Media server CPU against meeting size", "server CPU, % of one core", cpu},
	} {
		p := plot.New()
		p.Title.Text = fig.title
		p.X.Label.Text = "participants (log scale)"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text = fig.y + " (log scale)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		dashes := map[string][]vg.Length{"mesh": nil, "webinar": {vg.Points(5), vg.Points(3)}, "rooms": {vg.Points(1), vg.Points(2)}}
		glyphs := map[string]draw.GlyphDrawer{"mesh": draw.CircleGlyph{}, "webinar": draw.BoxGlyph{}, "rooms": draw.TriangleGlyph{}}
		for _, k := range keys {
			xys := fig.data[k]
			sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				fail(err)
			}
			c := colours[k.server]
			line.Color, points.Color = c, c
			line.Dashes = dashes[k.kind]
			if g, ok := glyphs[k.kind]; ok {
				points.Shape = g
			}
			p.Add(line, points)
			p.Legend.Add(k.server+" "+k.kind, line, points)
		}
		for _, ext := range []string{"svg", "png"} {
			f := filepath.Join(out, fig.name+"."+ext)
			if err := p.Save(9*vg.Inch, 5.5*vg.Inch, f); err != nil {
				fail(err)
			}
			fmt.Fprintln(os.Stderr, "wrote", f)
		}
	}
}
