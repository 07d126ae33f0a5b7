package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"confab.dev/confab/internal/component"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/stream"
)

// runLogin runs full logins, each on a new connection that is closed after bind.
func runLogin(ctx context.Context, cfg *Config, r *Result) error {
	r.Settings = map[string]any{"rate": cfg.Rate, "concurrency": cfg.Concurrency, "durationS": cfg.Duration.Seconds(),
		"count": cfg.Count, "users": cfg.Users}
	r.TargetRate = cfg.Rate
	rc := newRecorder()
	m, err := startMeter(cfg.PID)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	stopProgress := progress(runCtx, cfg.Progress, "login", rc, cfg.PID, nil)

	var n atomic.Int64
	// next claims an attempt number, or false when the count is reached.
	next := func() (int, bool) {
		i := int(n.Add(1)) - 1
		return i, cfg.Count <= 0 || i < cfg.Count
	}
	one := func(i int, due time.Time) {
		c, ph, err := cfg.Target.Login(ctx, cfg.user(i), cfg.Password, "")
		if err != nil {
			rc.failure(err)
			return
		}
		d := time.Since(due)
		_ = c.Close()
		rc.success(d, phaseMap(ph))
	}
	var wg sync.WaitGroup
	if cfg.Rate <= 0 {
		for range cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil {
					i, ok := next()
					if !ok {
						return
					}
					one(i, time.Now())
				}
			}()
		}
	} else {
		sem := make(chan struct{}, cfg.Concurrency)
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		start := time.Now()
	schedule:
		for k := 0; ; k++ {
			due := start.Add(time.Duration(k) * interval)
			if w := time.Until(due); w > 0 {
				t := time.NewTimer(w)
				select {
				case <-t.C:
				case <-runCtx.Done():
					t.Stop()
					break schedule
				}
			}
			if runCtx.Err() != nil {
				break
			}
			i, ok := next()
			if !ok {
				break
			}
			select {
			case sem <- struct{}{}:
			case <-runCtx.Done():
				break schedule
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				one(i, due)
			}()
		}
	}
	wg.Wait()
	stopProgress()
	if _, err := m.stop(r); err != nil {
		return err
	}
	rc.fill(r)
	if r.Seconds > 0 {
		r.PerSecond = round(float64(r.OK)/r.Seconds, 1)
	}
	if r.Server != nil && r.OK > 0 {
		r.ServerCPUMsPerLogin = round(1000*r.Server.CPUSeconds/float64(r.OK), 3)
	}
	return nil
}

// runIdle opens cfg.Sessions authenticated sessions, holds them, and measures the server's
// resident memory before, at each checkpoint (a number of sessions open), and after the hold.
func runIdle(ctx context.Context, cfg *Config, r *Result) error {
	if cfg.Sessions <= 0 {
		return errors.New("bench: idle needs a number of sessions")
	}
	r.Settings = map[string]any{"sessions": cfg.Sessions, "concurrency": cfg.Concurrency, "holdS": cfg.Hold.Seconds(),
		"users": cfg.Users, "checkpoints": cfg.Checkpoints}
	rc := newRecorder()
	m, err := startMeter(cfg.PID)
	if err != nil {
		return err
	}
	r.RSSBaseKiB = m.start.RSSKiB
	holdCtx, cancelHold := context.WithCancel(ctx)
	defer cancelHold()
	var (
		mu    sync.Mutex
		conns []*Conn
		held  sync.WaitGroup
	)
	defer func() {
		cancelHold()
		for _, c := range conns {
			_ = c.Close()
		}
		held.Wait()
	}()
	openCtx, cancelOpen := context.WithTimeout(ctx, MaxDuration)
	defer cancelOpen()
	stopProgress := progress(openCtx, cfg.Progress, "idle", rc, cfg.PID, nil)
	var n atomic.Int64
	// open opens sessions until upTo have been attempted.
	open := func(upTo int) {
		var wg sync.WaitGroup
		for range min(cfg.Concurrency, upTo) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for openCtx.Err() == nil {
					i := int(n.Add(1)) - 1
					if i >= upTo {
						n.Add(-1)
						return
					}
					start := time.Now()
					c, ph, err := cfg.Target.Login(openCtx, cfg.user(i), cfg.Password, "idle"+strconv.Itoa(i))
					if err != nil {
						rc.failure(err)
						continue
					}
					rc.success(time.Since(start), phaseMap(ph))
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					held.Add(1)
					go func() {
						defer held.Done()
						hold(holdCtx, c)
					}()
				}
			}()
		}
		wg.Wait()
	}
	steps := append([]int(nil), cfg.Checkpoints...)
	sort.Ints(steps)
	steps = append(steps, cfg.Sessions)
	for _, step := range steps {
		if step <= 0 || step > cfg.Sessions || int(n.Load()) >= step {
			continue
		}
		open(step)
		// Let the server settle (buffers released after the handshakes) before reading memory.
		settle(ctx, 2*time.Second)
		if cfg.PID <= 0 {
			continue
		}
		s, err := ReadProc(cfg.PID)
		if err != nil {
			stopProgress()
			return err
		}
		mu.Lock()
		opened := len(conns)
		mu.Unlock()
		cp := Checkpoint{Attempted: step, Sessions: opened, RSSKiB: s.RSSKiB}
		if opened > 0 {
			cp.KiBPerSession = round(float64(s.RSSKiB-r.RSSBaseKiB)/float64(opened), 2)
		}
		r.Checkpoints = append(r.Checkpoints, cp)
	}
	stopProgress()
	mu.Lock()
	opened := len(conns)
	mu.Unlock()
	r.Sessions = opened
	if cfg.PID > 0 {
		s, err := ReadProc(cfg.PID)
		if err != nil {
			return err
		}
		r.RSSOpenKiB = s.RSSKiB
		settle(ctx, cfg.Hold)
		s2, err := ReadProc(cfg.PID)
		if err != nil {
			return err
		}
		r.RSSHeldKiB = s2.RSSKiB
		if d := s2.At.Sub(s.At).Seconds(); d > 0 {
			r.IdleCPUPercent = round(100*(s2.CPU-s.CPU).Seconds()/d, 2)
		}
		if opened > 0 {
			r.KiBPerSession = round(float64(r.RSSOpenKiB-r.RSSBaseKiB)/float64(opened), 2)
			r.KiBPerSessionHeld = round(float64(r.RSSHeldKiB-r.RSSBaseKiB)/float64(opened), 2)
		}
	} else {
		settle(ctx, cfg.Hold)
	}
	if _, err := m.stop(r); err != nil {
		return err
	}
	rc.fill(r)
	return nil
}

func settle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// hold keeps an idle session alive: it answers the server's pings until ctx ends.
func hold(ctx context.Context, c *Conn) {
	stop := context.AfterFunc(ctx, func() { _ = c.w.close() })
	defer stop()
	for {
		e, err := c.NextBefore(time.Time{})
		if err != nil {
			return
		}
		if _, err := c.AnswerPing(e); err != nil {
			return
		}
	}
}

// runRoundtrip connects the test component, logs in the clients, and has each keep
// cfg.Window messages in flight to the component, which sends each back.
func runRoundtrip(ctx context.Context, cfg *Config, r *Result) error {
	cc := cfg.Component
	if cc.Addr == "" || cc.JID == "" || cc.Secret == "" {
		return errors.New("bench: roundtrip needs the component's address, JID and secret")
	}
	r.Settings = map[string]any{"clients": cfg.Clients, "window": cfg.Window, "payloadBytes": cfg.PayloadBytes,
		"durationS": cfg.Duration.Seconds(), "component": cc.JID}
	clients := make([]*Conn, 0, cfg.Clients)
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for i := range cfg.Clients {
		c, _, err := cfg.Target.Login(ctx, cfg.user(i), cfg.Password, "rt"+strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("log in client %d: %w", i, err)
		}
		clients = append(clients, c)
		if err := c.Send([]byte(`<presence/>`)); err != nil {
			return err
		}
	}
	// The component connects after the logins: on Confab every component link is a Call
	// Bridge that takes its turn at logins, which the echo component does not answer.
	comp, err := dialComponent(ctx, cc)
	if err != nil {
		return fail(ErrComponent, err)
	}
	echoDone := make(chan error, 1)
	go func() { echoDone <- echo(comp) }()
	defer func() {
		_ = comp.Close("", "")
		<-echoDone
	}()

	// One message through and back first, so that every path is warm. A server may answer
	// the component's handshake a moment before it routes to it: retry a bounce briefly.
	for _, c := range clients {
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := roundtripOnce(c, cc.JID, "warm", "warm-up")
			if err == nil {
				break
			}
			if !errors.Is(err, errBounced) || time.Now().After(deadline) {
				return fmt.Errorf("first round trip: %w", err)
			}
			time.Sleep(20 * time.Millisecond) // waiting for the server's route, polled
		}
	}

	rc := newRecorder()
	m, err := startMeter(cfg.PID)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	stopProgress := progress(runCtx, cfg.Progress, "roundtrip", rc, cfg.PID, nil)
	body := strings.Repeat("x", cfg.PayloadBytes)
	var wg sync.WaitGroup
	for ci, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clientLoop(runCtx, c, ci, cc.JID, body, cfg.Window, rc)
		}()
	}
	wg.Wait()
	stopProgress()
	if _, err := m.stop(r); err != nil {
		return err
	}
	rc.fill(r)
	if r.Seconds > 0 {
		r.PerSecond = round(float64(r.OK)/r.Seconds, 1)
	}
	if r.Server != nil && r.OK > 0 {
		r.ServerCPUUsPerRT = round(1e6*r.Server.CPUSeconds/float64(r.OK), 2)
		r.ServerCPUUsPerMsg = round(r.ServerCPUUsPerRT/2, 2)
	}
	return nil
}

func dialComponent(ctx context.Context, cc ComponentConfig) (*component.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", cc.Addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, cc.TLS)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	return component.Handshake(hctx, tc, cc.JID, secret.New(cc.Secret), stream.Limits{MaxStanza: 1 << 20})
}

// echo sends every message back to its sender and answers pings, until the link ends.
func echo(c *component.Conn) error {
	var b []byte
	for {
		e, err := c.Next()
		if err != nil {
			return err
		}
		switch e.Name.Local {
		case "message":
			if e.Get("type") == "error" {
				continue
			}
			b = append(b[:0], `<message from="`...)
			b = stream.AppendEscaped(b, e.Get("to"))
			b = append(b, `" to="`...)
			b = stream.AppendEscaped(b, e.Get("from"))
			b = append(b, `" id="`...)
			b = stream.AppendEscaped(b, e.Get("id"))
			b = append(b, `">`...)
			b = append(b, e.Inner...)
			b = append(b, `</message>`...)
			if err := c.Write(b); err != nil {
				return err
			}
		case "iq":
			if t := e.Get("type"); t == "get" || t == "set" {
				reply := `<iq type="result" id="` + stream.Escape(e.Get("id")) + `" from="` + stream.Escape(e.Get("to")) + `" to="` + stream.Escape(e.Get("from")) + `"/>`
				if err := c.Write([]byte(reply)); err != nil {
					return err
				}
			}
		}
	}
}

func message(to, id, body string) []byte {
	return []byte(`<message to="` + to + `" id="` + id + `"><body>` + body + `</body></message>`)
}

// roundtripOnce sends one message to the component and waits for it to come back.
func roundtripOnce(c *Conn, to, id, body string) (time.Duration, error) {
	start := time.Now()
	if err := c.Send(message(to, id, body)); err != nil {
		return 0, err
	}
	for {
		e, err := c.next()
		if err != nil {
			return 0, err
		}
		if ok, err := c.AnswerPing(e); ok || err != nil {
			if err != nil {
				return 0, err
			}
			continue
		}
		if e.Name.Local == "message" && e.Get("id") == id {
			if e.Get("type") == "error" {
				return 0, fail(ErrProtocol, fmt.Errorf("%w: %s", errBounced, e.Inner))
			}
			return time.Since(start), nil
		}
	}
}

// clientLoop keeps window messages in flight until ctx ends, then collects the last ones.
func clientLoop(ctx context.Context, c *Conn, ci int, to, body string, window int, rc *recorder) {
	sent := make(map[string]time.Time, window)
	seq := 0
	send := func() error {
		seq++
		id := strconv.Itoa(ci) + "-" + strconv.Itoa(seq)
		sent[id] = time.Now()
		return c.Send(message(to, id, body))
	}
	for range window {
		if err := send(); err != nil {
			rc.failure(err)
			return
		}
	}
	for len(sent) > 0 {
		e, err := c.next()
		if err != nil {
			for range sent {
				rc.failure(err)
			}
			return
		}
		if ok, err := c.AnswerPing(e); ok || err != nil {
			continue
		}
		if e.Name.Local != "message" {
			continue
		}
		id := e.Get("id")
		t0, ok := sent[id]
		if !ok {
			continue
		}
		delete(sent, id)
		if e.Get("type") == "error" {
			rc.failure(fail(ErrProtocol, fmt.Errorf("%w: %s", errBounced, firstChild(e.Inner))))
		} else {
			rc.success(time.Since(t0), nil)
		}
		if ctx.Err() == nil {
			if err := send(); err != nil {
				rc.failure(err)
				return
			}
		}
	}
}

// errBounced is a round-trip message that came back as an error.
var errBounced = errors.New("message bounced")
