// Command plot draws the latency-against-load curves of bench/compare.sh's login runs: the
// p50 and p99 login latency of each server at each offered login rate.
//
//	go run . -out ../results ../results/*.json
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
}

func main() {
	out := flag.String("out", ".", "directory to write login-latency.svg and .png to")
	flag.Parse()
	curves := map[string][]result{}
	for _, f := range flag.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fail(err)
		}
		var r result
		if json.Unmarshal(b, &r) != nil || r.Scenario != "login" || r.TargetRate == 0 || r.Transport != "tcp+starttls" {
			continue
		}
		curves[r.Label] = append(curves[r.Label], r)
	}
	if len(curves) == 0 {
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
