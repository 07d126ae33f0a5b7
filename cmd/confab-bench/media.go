package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/bench/benchserve"
	"confab.dev/confab/internal/bench/media"
	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/netns"
	"confab.dev/confab/internal/peers"
)

// runBenchMedia is `confab-bench media`: it starts the server (Confab as a `serve` child,
// Janus through internal/peers), runs the shapes against it and writes one JSON result per
// shape.
func runBenchMedia(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("confab-bench media", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var (
		server, shapes, dir, out, layer string
		duration, settle, sample        time.Duration
		probes, fps, conc               int
		inNS                            bool
	)
	fs.StringVar(&server, "server", media.Confab, "media server: confab or janus")
	fs.StringVar(&shapes, "shapes", "mesh:2", "comma-separated meeting shapes: mesh:N (N sending), webinar:N (1 speaker, N listeners), rooms:MxK (M meetings of K)")
	fs.StringVar(&dir, "dir", "", "working directory for the server (default: a temporary one)")
	fs.StringVar(&out, "out", "", "write results to this directory, one <server>-<shape>.json per shape")
	fs.StringVar(&layer, "layer", "f", "simulcast layer receivers ask for: q (150 kbit/s), h (500), f (1500)")
	fs.DurationVar(&duration, "duration", 20*time.Second, "measured window per shape")
	fs.DurationVar(&settle, "settle", 3*time.Second, "wait between everyone receiving and the window")
	fs.IntVar(&probes, "probes", 5, "receive-only participants that join after the window, one at a time, to time join to first frame")
	fs.IntVar(&fps, "fps", 30, "video frames per second")
	fs.IntVar(&conc, "join-concurrency", 4, "participants joining at once")
	fs.DurationVar(&sample, "soak-sample", 0, "soak: sample the server's RSS, open files, threads and goroutines at this interval through the window")
	fs.BoolVar(&inNS, "netns", false, "run (server and participants) in a fresh network namespace that has only loopback and 127.0.0.2 (needed for Janus, which offers every non-loopback address of the host)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if inNS {
		if _, inside := netns.Inside(); !inside {
			return reexecInNamespace(ctx, args, io)
		}
	}
	var list []media.Shape
	for _, s := range strings.Split(shapes, ",") {
		sh, err := media.ParseShape(strings.TrimSpace(s))
		if err != nil {
			return &exitError{2, err}
		}
		list = append(list, sh)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "confab-media-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
	}
	for _, sh := range list {
		// A fresh server per shape: memory per participant starts from the same place.
		res, err := runMediaShape(ctx, server, sh, filepath.Join(dir, strings.ReplaceAll(sh.Name, ":", "-")), media.Config{
			Shape: sh, Duration: duration, Settle: settle, Layer: layer, FPS: fps, Probes: probes, JoinConcurrency: conc, Progress: io.err, Sample: sample})
		if res != nil {
			printMedia(io, res)
			if out != "" {
				b, _ := json.MarshalIndent(res, "", "  ")
				name := filepath.Join(out, server+"-"+strings.ReplaceAll(sh.Name, ":", "-")+".json")
				if werr := os.WriteFile(name, append(b, '\n'), 0o644); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", server, sh.Name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// reexecInNamespace runs this command again inside a fresh namespace and removes it after.
func reexecInNamespace(ctx context.Context, args []string, io stdio) error {
	if err := netns.Available(); err != nil {
		return err
	}
	if _, err := netns.Cleanup(); err != nil {
		fmt.Fprintln(io.err, "netns cleanup:", err)
	}
	ns, err := netns.New("mbench")
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := ns.LoopbackAlias(media.JanusAddr); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := ns.Command(ctx, self, append([]string{"media"}, args...)...)
	cmd.Env = append(os.Environ(), netns.InsideEnv+"="+ns.Name)
	cmd.Stdout, cmd.Stderr = io.out, io.err
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	return cmd.Run()
}

// runMediaShape starts a fresh server in dir, runs one shape and stops the server.
func runMediaShape(ctx context.Context, server string, sh media.Shape, dir string, cfg media.Config) (*media.Result, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg.Server = server
	switch server {
	case media.Confab:
		certDir := filepath.Join(dir, "certs")
		if err := benchserve.MakeCerts(certDir, "bench.example", certs.ECDSAP256); err != nil {
			return nil, err
		}
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		info := filepath.Join(dir, "info.json")
		users := min(sh.Participants()+cfg.Probes, 20)
		args := []string{"serve", "-server", "confab", "-dir", filepath.Join(dir, "confab"), "-certs", certDir,
			"-users", fmt.Sprint(users), "-spaces", fmt.Sprint(sh.Rooms), "-info", info}
		if cfg.Sample > 0 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			addr := ln.Addr().String()
			ln.Close()
			args = append(args, "-pprof", addr)
			cfg.GoroutinesURL = "http://" + addr + "/debug/pprof/goroutine?debug=1"
		}
		cmd := exec.Command(self, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}()
		in, err := waitInfo(ctx, info, 2*time.Minute)
		if err != nil {
			return nil, err
		}
		pem, err := os.ReadFile(in.CAFile)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		cfg.Target = &bench.Target{Addr: in.C2S, Domain: in.Domain,
			TLS: &tls.Config{RootCAs: roots, ServerName: in.Domain, MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}}}
		cfg.PID, cfg.Password, cfg.UserPrefix, cfg.Users, cfg.Spaces = in.PID, in.Password, in.UserPrefix, in.Users, in.Spaces
	case media.Janus:
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		j, err := peers.StartJanus(sctx, filepath.Join(dir, "janus"), peers.JanusOptions{})
		cancel()
		if err != nil {
			return nil, err
		}
		defer j.Stop()
		cfg.PID, cfg.JanusURL = j.PID, j.URL
	default:
		return nil, &exitError{2, fmt.Errorf("-server %q: want confab or janus", server)}
	}
	return media.Run(ctx, cfg)
}

// waitInfo waits for `serve` to write its info file.
func waitInfo(ctx context.Context, path string, timeout time.Duration) (benchserve.Info, error) {
	deadline := time.Now().Add(timeout)
	for {
		in, err := benchserve.ReadInfo(path)
		if err == nil {
			return in, nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return in, fmt.Errorf("the server's info file: %w", err)
		}
		select {
		case <-ctx.Done():
			return in, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printMedia(io stdio, r *media.Result) {
	fmt.Fprintf(io.out, "%s %s: %d participants, %d subscriptions, %.0fs window\n", r.Server, r.Shape, r.Participants, r.Subscriptions, r.Seconds)
	fmt.Fprintf(io.out, "  forwarded %.0f packets/s, %.1f Mbit/s; server CPU %.1f%%: %.2f µs/packet, %.3f ms/Mbit\n",
		r.ForwardedPerSecond, r.ForwardedMbps, r.ServerCPUPercent, r.CPUUsPerPacket, r.CPUMsPerMbit)
	fmt.Fprintf(io.out, "  memory %.1f KiB/participant, %.1f KiB/subscription (RSS %d → %d KiB)\n", r.KiBPerParticipant, r.KiBPerSubscription, r.RSSBaseKiB, r.RSSJoinedKiB)
	fmt.Fprintf(io.out, "  latency p50 %.2f p99 %.2f ms (video p99 %.2f, audio p99 %.2f); join→first frame p50 %.0f ms, max %.0f ms\n",
		r.Latency.P50, r.Latency.P99, r.LatencyVideo.P99, r.LatencyAudio.P99, r.JoinToFrame.P50, r.JoinToFrame.Max)
	fmt.Fprintf(io.out, "  frames %d (corrupt %d, late %d), lost %d, gaps %d, RTX %d, NACKs %d, layers %v; load tool %.1fs CPU\n",
		r.Frames, r.Corrupt, r.Late, r.Lost, r.Gaps, r.RTX, r.NACKs, r.Layers, r.LoadGenCPUSeconds)
	for _, e := range r.Errors {
		fmt.Fprintf(io.out, "  ! %s\n", e)
	}
}

// runBenchMediaReport prints a Markdown table of media result files, Confab beside Janus
// shape by shape.
func runBenchMediaReport(args []string, io stdio) error {
	fs := flag.NewFlagSet("confab-bench media-report", flag.ContinueOnError)
	fs.SetOutput(io.err)
	if err := fs.Parse(args); err != nil {
		return err
	}
	type key struct{ shape, server string }
	byKey := map[key]*media.Result{}
	var shapes []string
	seen := map[string]bool{}
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r media.Result
		if err := json.Unmarshal(b, &r); err != nil || r.Scenario != "media" {
			continue
		}
		byKey[key{r.Shape, r.Server}] = &r
		if !seen[r.Shape] {
			seen[r.Shape] = true
			shapes = append(shapes, r.Shape)
		}
	}
	order := map[string]int{"mesh": 0, "webinar": 1, "rooms": 2}
	parts := map[string]int{}
	for k, r := range byKey {
		parts[k.shape] = r.Participants
	}
	sort.SliceStable(shapes, func(i, j int) bool {
		ki, _, _ := strings.Cut(shapes[i], ":")
		kj, _, _ := strings.Cut(shapes[j], ":")
		if order[ki] != order[kj] {
			return order[ki] < order[kj]
		}
		return parts[shapes[i]] < parts[shapes[j]]
	})
	fmt.Fprintln(io.out, "| shape | server | layer | packets/s | Mbit/s | server CPU % | µs CPU/packet | ms CPU/Mbit | KiB/participant | KiB/subscription | latency p50 / p99 ms | join→frame p50 / max ms | lost | NACKs | corrupt | layers q/h/f | video frames/s per subscription |")
	fmt.Fprintln(io.out, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
	for _, sh := range shapes {
		for _, srv := range []string{media.Confab, media.Janus} {
			r := byKey[key{sh, srv}]
			if r == nil {
				continue
			}
			note := ""
			if len(r.Errors) > 0 {
				note = " ⚠"
			}
			fmt.Fprintf(io.out, "| %s | %s%s | %v | %.0f | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %.2f / %.2f | %.0f / %.0f | %d | %d | %d | %d/%d/%d | %.1f |\n",
				sh, srv, note, r.Settings["layer"], r.ForwardedPerSecond, r.ForwardedMbps, r.ServerCPUPercent, r.CPUUsPerPacket, r.CPUMsPerMbit,
				r.KiBPerParticipant, r.KiBPerSubscription, r.Latency.P50, r.Latency.P99, r.JoinToFrame.P50, r.JoinToFrame.Max,
				r.Lost, r.NACKs, r.Corrupt, r.Layers["q"], r.Layers["h"], r.Layers["f"], videoFPS(r))
		}
	}
	return nil
}

// videoFPS is the result's video frames per second per subscription (computed from the
// layer counts for results written before the field existed).
func videoFPS(r *media.Result) float64 {
	if r.VideoFPS > 0 || r.Seconds == 0 || r.Subscriptions == 0 {
		return r.VideoFPS
	}
	n := r.Layers["q"] + r.Layers["h"] + r.Layers["f"]
	return float64(int(10*float64(n)/float64(r.Subscriptions/2)/r.Seconds)) / 10
}
