package media

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/bench"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
	"confab.dev/confab/internal/netns"
)

// frameLog keeps, per receiving client, each complete video frame as a player would see it,
// and the repairs of its packets.
type frameLog struct {
	mu      sync.Mutex
	frames  map[string][]frameAt
	repairs map[string][]repairAt
}

type frameAt struct {
	src   uint32    // the publisher
	done  time.Time // when the frame was complete
	layer uint8
	ok    bool
	late  bool // completed after a newer frame of its track: a player does not show it
}

type repairAt struct {
	at time.Time
	d  time.Duration // from the gap to the retransmission
}

func (l *frameLog) options(name string, o sfutest.Options) sfutest.Options {
	o.OnFrame = func(f sfutest.RecvFrame) {
		if f.Kind != sfu.Video {
			return
		}
		l.mu.Lock()
		l.frames[name] = append(l.frames[name], frameAt{src: f.ID.Src, done: time.Now(), layer: f.ID.Layer, ok: f.Verified, late: f.Late})
		l.mu.Unlock()
	}
	o.OnRepair = func(d time.Duration) {
		l.mu.Lock()
		l.repairs[name] = append(l.repairs[name], repairAt{at: time.Now(), d: d})
		l.mu.Unlock()
	}
	return o
}

// windowStats summarise what name showed of src's video in a window, as a player shows it:
// each frame when it is complete, in the order they complete, without the frames completed
// only after a newer one (a retransmission that came too late to be shown).
type windowStats struct {
	FPS         float64       `json:"fps"`         // frames shown per second
	MaxGapMs    float64       `json:"maxGapMs"`    // the longest time without a new frame
	Gaps        []string      `json:"longGaps"`    // those over 200 ms: "<ms> ms at <s> s"
	LayerShares []float64     `json:"layerShares"` // q, h, f
	Switches    int           `json:"switches"`    // layer changes between frames shown
	Corrupt     int           `json:"corrupt"`
	Frames      int           `json:"frames"`
	Late        int           `json:"late"`    // completed too late to be shown
	Repairs     bench.Latency `json:"repairs"` // gap to retransmission, over the window
}

func (l *frameLog) window(name string, src uint32, from, to time.Time) windowStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var w windowStats
	counts := make([]int, 3)
	prev, last := from, -1
	for _, f := range l.frames[name] {
		if f.src != src || f.done.After(to) {
			continue
		}
		if f.done.Before(from) {
			continue
		}
		if !f.ok {
			w.Corrupt++
		}
		if f.late {
			w.Late++
			continue
		}
		w.Frames++
		if int(f.layer) < len(counts) {
			counts[f.layer]++
		}
		if last >= 0 && int(f.layer) != last {
			w.Switches++
		}
		last = int(f.layer)
		gap := f.done.Sub(prev)
		if gap > 200*time.Millisecond {
			w.Gaps = append(w.Gaps, fmt.Sprintf("%d ms at %.1f s", gap.Milliseconds(), f.done.Sub(from).Seconds()))
		}
		w.MaxGapMs = max(w.MaxGapMs, float64(gap)/1e6)
		prev = f.done
	}
	if gap := to.Sub(prev); float64(gap)/1e6 > w.MaxGapMs {
		w.MaxGapMs = float64(gap) / 1e6 // a freeze that lasts to the window's end
	}
	w.FPS = float64(w.Frames) / to.Sub(from).Seconds()
	for _, c := range counts {
		w.LayerShares = append(w.LayerShares, round(float64(c)/float64(max(w.Frames, 1)), 3))
	}
	var h bench.Histogram
	for _, r := range l.repairs[name] {
		if !r.at.Before(from) && !r.at.After(to) {
			h.Record(r.d)
		}
	}
	w.Repairs = h.Summary()
	w.FPS, w.MaxGapMs = round(w.FPS, 1), round(w.MaxGapMs, 1)
	return w
}

// udpIn opens a UDP socket on 127.0.0.1 for a client, so that its port is known.
func udpIn(t *testing.T) (*net.UDPConn, int) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c, c.LocalAddr().(*net.UDPAddr).Port
}

// TestBadNetwork runs a Confab meeting (over XMPP, in a namespace of its own) through bad
// links made with tc and nftables, and a userspace relay for delay:
//
//   - a subscriber whose downlink is shaped to 500 kbit/s (htb) with 3 % random loss
//     (nftables) settles on the low simulcast layer and keeps a steady frame rate, while an
//     unconstrained subscriber keeps the high layer;
//   - a publisher whose uplink loses 5 % (nftables) behind 40 ms of delay (relay) is
//     repaired by NACK/RTX: the subscribers' frames arrive complete, and the time from a
//     gap to its repair is measured.
//
// Frame rates and gaps are what a player would show (windowStats). It needs root and takes
// about a minute, so it runs when CONFAB_BADNET=1 (bench/media.sh BADNET=1 sets it, with
// CONFAB_BADNET_OUT for the JSON figures; CONFAB_MEDIA_LOG=file keeps Confab's debug log,
// with the SFU's layer choices).
func TestBadNetwork(t *testing.T) {
	if os.Getenv("CONFAB_BADNET") != "1" && os.Getenv("CONFAB_BADNET_OUT") == "" {
		t.Skip("set CONFAB_BADNET=1 to run the bad-network test (root, about a minute)")
	}
	if !netns.InsideTest(t, "badnet") {
		return
	}
	ns, _ := netns.Inside()
	n := &netns.NS{Name: ns}
	info, target := confab(t, 8, 1)
	log := &frameLog{frames: map[string][]frameAt{}, repairs: map[string][]repairAt{}}
	join := func(name string, user int, o sfutest.Options) *XMPPParticipant {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := JoinXMPP(ctx, XMPPOptions{Target: target, User: fmt.Sprintf("user%d", user), Password: info.Password,
			Space: info.Spaces[0], Name: name, Client: log.options(name, o), Layer: "f"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(p.Close)
		return p
	}
	out := map[string]any{}

	// 1. A narrow, lossy downlink.
	narrowConn, narrowPort := udpIn(t)
	pub := join("speaker", 0, sfutest.Options{Audio: true, Video: Camera(30)})
	narrow := join("narrow", 1, sfutest.Options{UDPConn: narrowConn})
	wide := join("wide", 2, sfutest.Options{})
	for _, p := range []*XMPPParticipant{narrow, wide} {
		waitFor(t, p.C, 30*time.Second, p.C.Name+" receiving video", func() bool {
			rt, ok := p.C.TrackOf(pub.ID, sfu.Video, "")
			return ok && rt.Verified > 30
		})
	}
	if err := n.Shape("lo", netns.Class{Rate: "500kbit", DstPort: narrowPort, QueueLength: 50}); err != nil {
		t.Fatal(err)
	}
	if err := n.DropRandom(netns.Drop{Percent: 3, DstPort: narrowPort}); err != nil {
		t.Fatal(err)
	}
	shaped := time.Now()
	// The estimate comes down and the layer follows; then measure 15 s.
	waitFor(t, narrow.C, 30*time.Second, "the narrow subscriber on the low layer", func() bool {
		rt, _ := narrow.C.TrackOf(pub.ID, sfu.Video, "")
		return rt.Layer == 0
	})
	settledAfter := time.Since(shaped)
	plis0, dropped0 := pub.C.PLIs(), int64(0)
	if d, err := n.Dropped(); err == nil {
		dropped0 = d
	}
	from := time.Now()
	sleep(context.Background(), 15*time.Second)
	to := time.Now()
	nw, ww := log.window("narrow", pub.C.Src, from, to), log.window("wide", pub.C.Src, from, to)
	dropped, _ := n.Dropped()
	plis := pub.C.PLIs() - plis0
	t.Logf("narrow subscriber (500 kbit/s, 3%% loss): on the low layer %.1fs after shaping; then %+v; %d packets dropped by nftables",
		settledAfter.Seconds(), nw, dropped-dropped0)
	t.Logf("wide subscriber: %+v", ww)
	t.Logf("publisher: %d key frame requests in the 15 s", plis)
	out["narrow"], out["wide"] = nw, ww
	out["narrowSettleSeconds"] = round(settledAfter.Seconds(), 2)
	out["narrowDropped"], out["publisherPLIs"] = dropped-dropped0, plis
	if nw.LayerShares[0] < 0.9 {
		t.Errorf("narrow subscriber: %.0f%% of frames on the low layer, want ≥ 90%%", 100*nw.LayerShares[0])
	}
	if nw.FPS < 24 || nw.MaxGapMs > 500 {
		t.Errorf("narrow subscriber: %.1f frames/s, longest gap %.0f ms; want ≥ 24 and ≤ 500 ms", nw.FPS, nw.MaxGapMs)
	}
	if ww.LayerShares[2] < 0.9 {
		t.Errorf("wide subscriber: %.0f%% of frames on the high layer, want ≥ 90%%", 100*ww.LayerShares[2])
	}
	if ww.FPS < 27 || ww.MaxGapMs > 300 {
		t.Errorf("wide subscriber: %.1f frames/s, longest gap %.0f ms; want ≥ 27 and ≤ 300 ms", ww.FPS, ww.MaxGapMs)
	}
	if nw.Corrupt+ww.Corrupt > 0 {
		t.Errorf("%d corrupt frames", nw.Corrupt+ww.Corrupt)
	}
	if err := n.DropRandom(); err != nil {
		t.Fatal(err)
	}
	if err := n.TC("qdisc", "del", "dev", "lo", "root"); err != nil {
		t.Fatal(err)
	}

	// 2. A lossy, distant publisher: 40 ms each way (relay), 5 % of its uplink lost.
	relay := sfutest.NewRelay(t, mustUDPAddr(t, info.MediaUDP), 0, 7)
	relay.Delay.Store(int64(40 * time.Millisecond))
	lossyConn, lossyPort := udpIn(t)
	lossy := join("lossy", 3, sfutest.Options{Audio: true, Video: Camera(30), RewriteSDP: relay.RewriteSDP, UDPConn: lossyConn})
	for _, p := range []*XMPPParticipant{narrow, wide} {
		waitFor(t, p.C, 30*time.Second, p.C.Name+" receiving the lossy publisher", func() bool {
			rt, ok := p.C.TrackOf(lossy.ID, sfu.Video, "")
			return ok && rt.Verified > 30
		})
	}
	if err := n.DropRandom(netns.Drop{Percent: 5, SrcPort: lossyPort}); err != nil {
		t.Fatal(err)
	}
	before, _ := wide.C.TrackOf(lossy.ID, sfu.Video, "")
	nacks0 := lossy.C.NACKs()
	from = time.Now()
	sleep(context.Background(), 15*time.Second)
	to = time.Now()
	if err := n.DropRandom(); err != nil {
		t.Fatal(err)
	}
	sleep(context.Background(), time.Second) // the last repairs
	after, _ := wide.C.TrackOf(lossy.ID, sfu.Video, "")
	lw := log.window("wide", lossy.C.Src, from, to)
	frames, verified := after.Frames-before.Frames, after.Verified-before.Verified
	lossyOut := map[string]any{"frames": frames, "verified": verified, "late": after.Late - before.Late,
		"missing": after.Missing, "repaired": after.Repaired - before.Repaired, "rtx": after.RTX - before.RTX,
		"nacksToPublisher": lossy.C.NACKs() - nacks0, "recovery": lw.Repairs, "shown": lw}
	out["lossyPublisher"] = lossyOut
	t.Logf("lossy publisher (5%% uplink loss, 40 ms each way): wide subscriber %+v", lossyOut)
	if frames == 0 || float64(verified) < 0.98*float64(frames) {
		t.Errorf("lossy publisher: %d of %d frames intact at the subscriber, want ≥ 98%%", verified, frames)
	}
	if after.Repaired-before.Repaired == 0 || lossy.C.NACKs() == nacks0 {
		t.Errorf("lossy publisher: %d repairs, %d NACKs: want some of each", after.Repaired-before.Repaired, lossy.C.NACKs()-nacks0)
	}
	if p := os.Getenv("CONFAB_BADNET_OUT"); p != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(filepath.Join(p, "confab-badnet.json"), append(b, '\n'), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// waitFor waits until cond holds on c's state, or fails t.
func waitFor(t *testing.T, c *sfutest.Client, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := c.Until(timeout, cond); err != nil {
		t.Fatalf("%s: waiting for %s: %v (errors: %v)", c.Name, what, err, c.Errors())
	}
}

func mustUDPAddr(t *testing.T, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp4", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
