package launch

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/web/browsertest"
)

// The media browser tests: real headless Chromium with fake devices (a y4m test pattern as
// the camera, a wav tone as the microphone, a fake screen) against `confab up` on loopback,
// the media through the Call Bridge's SFU. What each browser receives is read from its
// RTCPeerConnection's getStats (window.confab.mediaStats): audio that plays adds to
// totalAudioEnergy, video that is decoded adds to framesDecoded.

// Small video keeps three browsers on two cores: 640x360 is the least size the app sends
// in three simulcast layers; 15 frames a second.
const (
	camWidth, camHeight, camFPS = 640, 360, 15
)

type peer struct {
	name string
	b    *browsertest.Browser
	ctx  context.Context
	id   string // participant id in the meeting (and the SFU)
	app  string // the web app's URL; default https://localhost:<web port>
}

// mediaPeer starts a browser with these fake devices.
func mediaPeer(t *testing.T, u *Up, name string, media browsertest.FakeMedia) *peer {
	t.Helper()
	b := browsertest.Start(t, browsertest.Options{TrustCerts: []*x509.Certificate{serverLeaf(t, u)}, Width: 1280, Height: 860, Media: &media})
	return &peer{name: name, b: b, ctx: b.Context(t, 4*time.Minute)}
}

// openPrejoin joins the demo space as a guest up to the pre-join screen, waits for its
// device check to end and returns how it ended (body[data-media-check]). byScript fills and
// sends the join form with a script: the page then sees no user gesture (no sticky
// activation), as a page nobody has touched yet, and a strict autoplay policy holds its
// sound back.
func (p *peer) openPrejoin(t *testing.T, u *Up, byScript bool) string {
	t.Helper()
	app := p.app
	if app == "" {
		app = "https://localhost:" + port(u.CallBridge.Addrs.Web)
	}
	run(t, p.ctx, p.name+" opens the join page", chromedp.Navigate(app+"/join"), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	wait(t, p.ctx, "ready")
	run(t, p.ctx, "record "+p.name+"'s media", chromedp.Evaluate[chromedp.Void](recordMedia))
	if byScript {
		js := fmt.Sprintf(`document.getElementById("join-callid").value = %q; document.getElementById("join-passcode").value = %q;
			document.getElementById("join-name").value = %q; document.getElementById("join-submit").click(); undefined`, u.Demo.CallID, u.DemoPasscode, p.name)
		run(t, p.ctx, p.name+" sends the join form by script", chromedp.Evaluate[chromedp.Void](js))
	} else {
		run(t, p.ctx, p.name+" fills the join form",
			chromedp.SendKeys(chromedp.CSS("#join-callid"), u.Demo.CallID),
			chromedp.SendKeys(chromedp.CSS("#join-passcode"), u.DemoPasscode),
			chromedp.SendKeys(chromedp.CSS("#join-name"), p.name),
			chromedp.Click(chromedp.CSS("#join-submit")))
	}
	wait(t, p.ctx, "prejoin")
	// (A selector, not waitJS: chromedp's Poll evaluates as a user gesture.)
	see(t, p, p.name+"'s device check ends",
		chromedp.WaitVisible(chromedp.CSS(`body[data-media-check]:not([data-media-check=""]):not([data-media-check="pending"])`)))
	got, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.dataset.mediaCheck`))
	return got
}

// recordMedia keeps, in the page, every track the browser app gets from getUserMedia and
// getDisplayMedia and every RTCPeerConnection it makes, so that the test can check that
// leaving released them all.
const recordMedia = `(() => {
	window.__media = {tracks: [], pcs: []};
	const md = navigator.mediaDevices;
	for (const name of ["getUserMedia", "getDisplayMedia"]) {
		const orig = md[name].bind(md);
		md[name] = async (c) => { const s = await orig(c); window.__media.tracks.push(...s.getTracks()); return s; };
	}
	const PC = window.RTCPeerConnection;
	window.RTCPeerConnection = class extends PC { constructor(...a) { super(...a); window.__media.pcs.push(this); } };
})(); undefined`

type released struct {
	Tracks int      `json:"tracks"`
	Live   []string `json:"live"`
	PCs    int      `json:"pcs"`
	Open   int      `json:"open"`
}

// checkReleased checks that every track p's page got is stopped and every connection it
// made is closed.
func (p *peer) checkReleased(t *testing.T) {
	t.Helper()
	r, err := chromedp.Run(p.ctx, chromedp.Evaluate[released](`({tracks: __media.tracks.length,
		live: __media.tracks.filter(t => t.readyState !== "ended").map(t => t.kind + " " + t.label),
		pcs: __media.pcs.length, open: __media.pcs.filter(pc => pc.signalingState !== "closed").length})`))
	if err != nil {
		t.Fatalf("%s's media record: %v", p.name, err)
	}
	if len(r.Live) != 0 || r.Open != 0 {
		t.Errorf("%s left with %d of %d tracks live (%v) and %d of %d connections open", p.name, len(r.Live), r.Tracks, r.Live, r.Open, r.PCs)
	}
}

// join clicks "Join now" (or "Join with chat only") and waits to be in the meeting.
func (p *peer) join(t *testing.T, button string) {
	t.Helper()
	run(t, p.ctx, p.name+" joins", chromedp.Click(chromedp.CSS(button)))
	p.joined(t)
}

// joinByScript is join with a script's click (no user gesture).
func (p *peer) joinByScript(t *testing.T, button string) {
	t.Helper()
	run(t, p.ctx, p.name+" joins by script", chromedp.Evaluate[chromedp.Void](`document.querySelector(`+"`"+button+"`"+`).click(); undefined`))
	p.joined(t)
}

func (p *peer) joined(t *testing.T) {
	t.Helper()
	wait(t, p.ctx, "in-meeting")
	id, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector('#participants li[data-self="true"]').dataset.participantId`))
	if err != nil || id == "" {
		t.Fatalf("%s's participant id: %q, %v", p.name, id, err)
	}
	p.id = id
}

// joinWithMedia joins the demo space with camera and microphone and waits for the media to
// connect.
func (p *peer) joinWithMedia(t *testing.T, u *Up) {
	t.Helper()
	if got := p.openPrejoin(t, u, false); got != "ok" {
		t.Fatalf("%s's device check = %q, want ok", p.name, got)
	}
	p.join(t, "#prejoin-join")
	p.waitMedia(t, "connected")
}

func (p *peer) waitMedia(t *testing.T, state string) {
	t.Helper()
	run(t, p.ctx, fmt.Sprintf("%s's media %s", p.name, state), chromedp.WaitVisible(chromedp.CSS(`body[data-media="`+state+`"]`)))
}

// inbound is one received stream, as window.confab.mediaStats reports it.
type inbound struct {
	Track            string  `json:"track"`
	Participant      string  `json:"participant"`
	Source           string  `json:"source"`
	Kind             string  `json:"kind"`
	PacketsReceived  int64   `json:"packetsReceived"`
	FramesDecoded    int64   `json:"framesDecoded"`
	FrameWidth       int     `json:"frameWidth"`
	FrameHeight      int     `json:"frameHeight"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
}

type outbound struct {
	Kind          string `json:"kind"`
	Rid           string `json:"rid"`
	PacketsSent   int64  `json:"packetsSent"`
	FramesEncoded int64  `json:"framesEncoded"`
	FrameWidth    int    `json:"frameWidth"`
	FrameHeight   int    `json:"frameHeight"`
	Screen        bool   `json:"screen"`
}

type mediaStats struct {
	Inbound  []inbound  `json:"inbound"`
	Outbound []outbound `json:"outbound"`
}

func (p *peer) stats(t *testing.T) mediaStats {
	t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[*mediaStats](`window.confab.mediaStats()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s's media stats: %v", p.name, err)
	}
	if s == nil {
		return mediaStats{}
	}
	return *s
}

// from returns what p receives of a participant's source ("microphone", "camera", "screen").
func (s mediaStats) from(participant, source string) (inbound, bool) {
	for _, in := range s.Inbound {
		if in.Participant == participant && in.Source == source {
			return in, true
		}
	}
	return inbound{}, false
}

// progress is how much a stream moved between two readings: audio energy, or decoded
// frames, and packets.
func progress(a, b inbound) (media float64, packets int64) {
	if b.Kind == "audio" {
		return b.TotalAudioEnergy - a.TotalAudioEnergy, b.PacketsReceived - a.PacketsReceived
	}
	return float64(b.FramesDecoded - a.FramesDecoded), b.PacketsReceived - a.PacketsReceived
}

// pollEvery is how often the flow tests read getStats; a flow is judged over flowWindow.
const (
	pollEvery  = 250 * time.Millisecond
	flowWindow = 1500 * time.Millisecond
)

// waitFlowing waits until p receives from's source and it plays: audio energy or decoded
// frames grow over flowWindow. It returns the last reading.
func waitFlowing(t *testing.T, p *peer, from *peer, source string) inbound {
	t.Helper()
	return waitFlow(t, p, from, source, true)
}

// waitStopped waits until from's source no longer reaches p: no packet, no audio energy, no
// frame over flowWindow (the stream may still be there, or gone).
func waitStopped(t *testing.T, p *peer, from *peer, source string) {
	t.Helper()
	waitFlow(t, p, from, source, false)
}

func waitFlow(t *testing.T, p *peer, from *peer, source string, flowing bool) inbound {
	t.Helper()
	what := fmt.Sprintf("%s receives %s's %s", p.name, from.name, source)
	if !flowing {
		what = fmt.Sprintf("%s's %s stops reaching %s", from.name, source, p.name)
	}
	deadline := time.Now().Add(30 * time.Second)
	type reading struct {
		at time.Time
		in inbound
		ok bool
	}
	var hist []reading
	for {
		in, ok := p.stats(t).from(from.id, source)
		now := time.Now()
		hist = append(hist, reading{now, in, ok})
		// The oldest reading at least flowWindow old is the base of the judgement.
		base := -1
		for i := len(hist) - 1; i >= 0; i-- {
			if now.Sub(hist[i].at) >= flowWindow {
				base = i
				break
			}
		}
		if base >= 0 {
			hist = hist[base:]
			a := hist[0]
			switch {
			case flowing && a.ok && ok:
				if m, pk := progress(a.in, in); m > 0 && pk > 0 {
					return in
				}
			case !flowing && (!ok || !a.ok):
				return in
			case !flowing:
				if m, pk := progress(a.in, in); m == 0 && pk == 0 {
					return in
				}
			}
		}
		if now.After(deadline) {
			t.Fatalf("%s: not within 30s; last reading %+v (present %v)", what, in, ok)
		}
		select {
		case <-p.ctx.Done():
			t.Fatalf("%s: %v", what, p.ctx.Err())
		case <-time.After(pollEvery): // the next reading of getStats
		}
	}
}

// simulcastSizes are the frame sizes of the camera's three layers.
var simulcastSizes = map[[2]int]bool{{camWidth, camHeight}: true, {camWidth / 2, camHeight / 2}: true, {camWidth / 4, camHeight / 4}: true}

func checkCameraFrame(t *testing.T, p, from *peer, in inbound) {
	t.Helper()
	if !simulcastSizes[[2]int{in.FrameWidth, in.FrameHeight}] {
		t.Errorf("%s receives %s's camera at %dx%d, want one of the layers of %dx%d", p.name, from.name, in.FrameWidth, in.FrameHeight, camWidth, camHeight)
	}
}

// see runs steps (waits) in p's tab for at most 20 seconds; on failure it logs the page's
// participants and tiles.
func see(t *testing.T, p *peer, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		dump, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("participants").outerHTML.replace(/<svg.*?<\/svg>/g, "") + "\n" + [...document.querySelectorAll(".tile")].map(t => JSON.stringify(t.dataset)).join("\n") + "\n" + document.getElementById("media-status").textContent`))
		t.Fatalf("%s: %v\npage: %s", what, err, dump)
	}
}

// waitJS waits until the expression is true in the page. chromedp's Poll evaluates it as a
// user gesture: a page whose autoplay rules are tested must not see one.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr)(ctx, tg)
		return err
	})
}

func waitSFUEmpty(t *testing.T, u *Up) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := u.CallBridge.SFU.Stats()
		if st.Participants == 0 && st.Rooms == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after everyone left, the SFU has %d participants in %d rooms, want 0 and 0", st.Participants, st.Rooms)
		}
		time.Sleep(50 * time.Millisecond) // polling the SFU's counters, not synchronising with it
	}
}

// TestBrowserMediaTwo: two people meet with camera and microphone. Each hears and sees the
// other; the camera goes in three simulcast layers; one mutes (key M) and turns the camera
// off: the other stops receiving and sees the state; the host mutes one and the muted one
// cannot unmute until the host lifts it; a screen share arrives and is shown large; when the
// SFU ends a connection the page reconnects by itself; leaving frees the SFU.
func TestBrowserMediaTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	u := startUp(t, t.TempDir())
	video, audio := browsertest.MediaFiles(t, t.TempDir(), camWidth, camHeight, camFPS)
	fake := browsertest.FakeMedia{Video: video, Audio: audio}
	ada := mediaPeer(t, u, "Ada Lovelace", fake)
	bob := mediaPeer(t, u, "Bob Babbage", fake)

	// The pre-join screen: preview, microphone level, devices.
	if got := ada.openPrejoin(t, u, false); got != "ok" {
		t.Fatalf("Ada's device check = %q, want ok", got)
	}
	run(t, ada.ctx, "the preview plays", chromedp.WaitVisible(chromedp.CSS(`#preview[data-camera="on"] #preview-video`)))
	if _, err := chromedp.Run(ada.ctx, chromedp.Poll[bool](`document.getElementById("preview-video").videoWidth > 0 && Number(document.getElementById("mic-level").getAttribute("aria-valuenow")) > 0`)); err != nil {
		t.Fatalf("the preview plays and the microphone level moves: %v", err)
	}
	ada.b.Screenshot(t, ada.ctx, "media-1-prejoin")
	ada.join(t, "#prejoin-join")
	ada.waitMedia(t, "connected")
	bob.joinWithMedia(t, u)

	// Each receives the other's audio and video.
	for _, pair := range [][2]*peer{{ada, bob}, {bob, ada}} {
		p, from := pair[0], pair[1]
		waitFlowing(t, p, from, "microphone")
		checkCameraFrame(t, p, from, waitFlowing(t, p, from, "camera"))
		run(t, p.ctx, p.name+" shows "+from.name+"'s video",
			chromedp.WaitVisible(chromedp.CSS(`.tile[data-participant-id="`+from.id+`"][data-source="camera"][data-video="on"]`)))
	}
	// Ada's camera goes in three layers.
	rids := map[string]bool{}
	for _, o := range ada.stats(t).Outbound {
		if o.Kind == "video" && !o.Screen && o.PacketsSent > 0 {
			rids[o.Rid] = true
		}
	}
	if len(rids) < 2 {
		t.Errorf("Ada sends her camera in layers %v, want simulcast (q, h, f)", rids)
	}
	ada.b.Screenshot(t, ada.ctx, "media-2-two-participants")

	// Bob mutes with the key M and turns his camera off with its button: nothing of either
	// reaches Ada any more, and she sees both states.
	run(t, bob.ctx, "Bob presses M", chromedp.Focus(chromedp.CSS("#toggle-camera")), chromedp.KeyEvent("m"))
	run(t, bob.ctx, "Bob's microphone button shows off", chromedp.WaitVisible(chromedp.CSS(`#toggle-mic[aria-pressed="false"]`)))
	run(t, bob.ctx, "Bob turns his camera off", chromedp.Click(chromedp.CSS("#toggle-camera")))
	see(t, ada, "Ada sees Bob muted, camera off",
		chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="`+bob.id+`"][data-audio="muted"][data-video="off"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.tile[data-participant-id="`+bob.id+`"][data-source="camera"][data-video="off"]`)))
	waitStopped(t, ada, bob, "microphone")
	waitStopped(t, ada, bob, "camera")
	ada.b.Screenshot(t, ada.ctx, "media-3-bob-muted")
	// And back.
	run(t, bob.ctx, "Bob unmutes and turns his camera on", chromedp.Click(chromedp.CSS("#toggle-mic")), chromedp.Click(chromedp.CSS("#toggle-camera")))
	run(t, ada.ctx, "Ada sees Bob unmuted", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="`+bob.id+`"][data-audio="on"][data-video="on"]`)))
	waitFlowing(t, ada, bob, "microphone")
	checkCameraFrame(t, ada, bob, waitFlowing(t, ada, bob, "camera"))

	// The admin's REST API shows Bob's call leg's media as CMS does.
	leg := apiCall(t, u, "GET", "/api/v1/callLegs/"+bob.id, nil)
	for _, want := range []string{"<rxAudio><codec>opus</codec>", "<rxVideo><codec>vp8</codec>", "<txAudio><codec>opus</codec>", "<txVideo><codec>vp8</codec>"} {
		if !strings.Contains(leg, want) {
			t.Errorf("GET /callLegs/%s has no %s:\n%s", bob.id, want, leg)
		}
	}

	// The host mutes Bob's microphone through the REST API (PUT /callLegs/{id}
	// rxAudioMute=true, as CMS tools do): Bob is told and cannot unmute until it is lifted.
	apiCall(t, u, "PUT", "/api/v1/callLegs/"+bob.id, url.Values{"rxAudioMute": {"true"}})
	run(t, bob.ctx, "Bob is told the host muted him",
		chromedp.WaitVisible(chromedp.CSS(`#toggle-mic[disabled][aria-pressed="false"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#media-status`)))
	if got, want := text(t, bob.ctx, "#media-status"), "The host muted your microphone. You can unmute once the host allows it."; got != want {
		t.Errorf("Bob's notice = %q, want %q", got, want)
	}
	run(t, bob.ctx, "M does nothing while the host's mute holds", chromedp.Focus(chromedp.CSS("#toggle-camera")), chromedp.KeyEvent("m"))
	run(t, ada.ctx, "Ada sees Bob muted by the host", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="`+bob.id+`"][data-audio="admin"]`)))
	waitStopped(t, ada, bob, "microphone")
	bob.b.Screenshot(t, bob.ctx, "media-4-muted-by-host")
	apiCall(t, u, "PUT", "/api/v1/callLegs/"+bob.id, url.Values{"rxAudioMute": {"false"}})
	run(t, bob.ctx, "Bob may unmute again", chromedp.WaitVisible(chromedp.CSS(`#toggle-mic:not([disabled])[aria-pressed="false"]`)))
	run(t, ada.ctx, "Ada sees Bob still muted (by himself)", chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="`+bob.id+`"][data-audio="muted"]`)))
	run(t, bob.ctx, "Bob unmutes", chromedp.Click(chromedp.CSS("#toggle-mic")))
	waitFlowing(t, ada, bob, "microphone")

	// The host stops the video sent to Ada (txVideoMute, what is transmitted to her call
	// leg): Bob's camera stops at Ada's alone, and comes back when it is lifted.
	apiCall(t, u, "PUT", "/api/v1/callLegs/"+ada.id, url.Values{"txVideoMute": {"true"}})
	waitStopped(t, ada, bob, "camera")
	waitFlowing(t, ada, bob, "microphone") // her audio goes on
	apiCall(t, u, "PUT", "/api/v1/callLegs/"+ada.id, url.Values{"txVideoMute": {"false"}})
	checkCameraFrame(t, ada, bob, waitFlowing(t, ada, bob, "camera"))

	// Bob shares his screen: Ada receives it and shows it large, Bob's camera beside it.
	run(t, bob.ctx, "Bob shares his screen", chromedp.Click(chromedp.CSS("#toggle-screen")))
	run(t, bob.ctx, "Bob is sharing", chromedp.WaitVisible(chromedp.CSS(`body[data-screen="on"]`)))
	screen := waitFlowing(t, ada, bob, "screen")
	if screen.FrameWidth < 640 {
		t.Errorf("Ada receives Bob's screen at %dx%d, want the whole screen", screen.FrameWidth, screen.FrameHeight)
	}
	run(t, ada.ctx, "Ada shows Bob's screen large",
		chromedp.WaitVisible(chromedp.CSS(`#stage-main .tile[data-participant-id="`+bob.id+`"][data-source="screen"][data-video="on"][data-large="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#stage-strip .tile[data-participant-id="`+bob.id+`"][data-source="camera"]`)))
	waitFlowing(t, ada, bob, "camera") // the camera goes on beside the screen
	ada.b.Screenshot(t, ada.ctx, "media-5-screen-share")
	run(t, bob.ctx, "Bob stops sharing", chromedp.Click(chromedp.CSS("#toggle-screen")))
	run(t, ada.ctx, "the screen share ends at Ada's", chromedp.WaitNotPresent(chromedp.CSS(`.tile[data-source="screen"]`)))

	// The SFU ends Bob's media connection (as when ICE fails): his page says so and
	// reconnects with a fresh offer; Ada receives him again.
	calls := u.CallBridge.Meetings.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %+v, want one", calls)
	}
	sp, err := u.CallBridge.SFU.Participant(calls[0].ID, bob.id)
	if err != nil {
		t.Fatalf("Bob in the SFU: %v", err)
	}
	sp.Leave()
	bob.waitMedia(t, "connected")
	waitFlowing(t, ada, bob, "microphone")
	waitFlowing(t, ada, bob, "camera")
	waitFlowing(t, bob, ada, "camera")

	// Both leave: the SFU is empty.
	for _, p := range []*peer{bob, ada} {
		run(t, p.ctx, p.name+" leaves", chromedp.Click(chromedp.CSS("#leave")))
		wait(t, p.ctx, "left")
		if s := p.stats(t); len(s.Inbound) != 0 {
			t.Errorf("%s still receives after leaving: %+v", p.name, s.Inbound)
		}
		p.checkReleased(t)
	}
	waitSFUEmpty(t, u)
}

// TestBrowserMediaThree: three people meet. Each hears and sees the two others; the grid
// shows all three alike; in the speaker layout the active speaker (the only one not muted)
// is highlighted and shown large, and the small tiles get the smallest simulcast layer (the
// size each video is shown at goes to the SFU); a muted microphone stops at both others;
// leaving frees the SFU.
func TestBrowserMediaThree(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	u := startUp(t, t.TempDir())
	video, audio := browsertest.MediaFiles(t, t.TempDir(), camWidth, camHeight, camFPS)
	fake := browsertest.FakeMedia{Video: video, Audio: audio}
	peers := []*peer{mediaPeer(t, u, "Ada Lovelace", fake), mediaPeer(t, u, "Bob Babbage", fake), mediaPeer(t, u, "Cy Hopper", fake)}
	ada, bob, cy := peers[0], peers[1], peers[2]
	for _, p := range peers {
		p.joinWithMedia(t, u)
	}
	for _, p := range peers {
		for _, from := range peers {
			if p == from {
				continue
			}
			waitFlowing(t, p, from, "microphone")
			checkCameraFrame(t, p, from, waitFlowing(t, p, from, "camera"))
		}
	}

	// The grid: three tiles alike.
	run(t, ada.ctx, "Ada switches to the grid (key L)", chromedp.Focus(chromedp.CSS("#toggle-layout")), chromedp.KeyEvent("l"))
	see(t, ada, "three tiles in the grid",
		chromedp.WaitVisible(chromedp.CSS(`body[data-layout="grid"] #stage[data-mode="grid"]`)),
		waitJS(`document.querySelectorAll('#stage-main .tile[data-source="camera"][data-video="on"]').length === 3`))
	ada.b.Screenshot(t, ada.ctx, "media-6-three-grid")

	// Ada and Cy mute: Bob is the one who speaks.
	run(t, ada.ctx, "Ada mutes", chromedp.Click(chromedp.CSS("#toggle-mic")))
	run(t, cy.ctx, "Cy mutes", chromedp.Click(chromedp.CSS("#toggle-mic")))
	for _, p := range []*peer{ada, bob} {
		waitStopped(t, p, cy, "microphone")
	}
	waitFlowing(t, cy, bob, "microphone")
	for _, p := range []*peer{ada, cy} {
		see(t, p, p.name+" sees Bob speaking",
			chromedp.WaitVisible(chromedp.CSS(`.tile[data-participant-id="`+bob.id+`"][data-speaking="true"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="`+bob.id+`"][data-speaking="true"]`)))
	}
	// Cy's speaker layout: Bob large, the others small; the small ones get the smallest
	// layer, as their size (sent with <view/>) asks.
	see(t, cy, "Cy's speaker layout shows Bob large",
		chromedp.WaitVisible(chromedp.CSS(`body[data-layout="speaker"] #stage-main .tile[data-participant-id="`+bob.id+`"][data-large="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#stage-strip .tile[data-participant-id="`+ada.id+`"]`)))
	deadline := time.Now().Add(20 * time.Second)
	for {
		in, _ := cy.stats(t).from(ada.id, "camera")
		if in.FrameWidth == camWidth/4 && in.FrameHeight == camHeight/4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Cy receives Ada's camera, shown small, at %dx%d; want the smallest layer %dx%d", in.FrameWidth, in.FrameHeight, camWidth/4, camHeight/4)
		}
		time.Sleep(pollEvery) // polling getStats, not synchronising
	}
	cy.b.Screenshot(t, cy.ctx, "media-7-three-speaker")

	// Everyone leaves: the SFU is empty.
	for _, p := range peers {
		run(t, p.ctx, p.name+" leaves", chromedp.Click(chromedp.CSS("#leave")))
		wait(t, p.ctx, "left")
		p.checkReleased(t)
	}
	waitSFUEmpty(t, u)
}

// TestBrowserMediaWithoutDevices: one person shares camera and microphone; one whose
// browser refuses them is told so on the pre-join screen, joins receiving only, and, its
// sound held back by the autoplay policy, turns it on with the button; one with no devices
// at all joins with chat only and takes no place in the SFU.
func TestBrowserMediaWithoutDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	u := startUp(t, t.TempDir())
	video, audio := browsertest.MediaFiles(t, t.TempDir(), camWidth, camHeight, camFPS)
	pub := mediaPeer(t, u, "Ada Lovelace", browsertest.FakeMedia{Video: video, Audio: audio})
	denied := mediaPeer(t, u, "Dee Nied", browsertest.FakeMedia{Video: video, Audio: audio, Deny: true, StrictAutoplay: true})
	none := mediaPeer(t, u, "Noel Devices", browsertest.FakeMedia{NoDevices: true})
	pub.joinWithMedia(t, u)

	// Refused: the page says so, in words, and offers to join without.
	if got := denied.openPrejoin(t, u, true); got != "denied" {
		t.Fatalf("device check with the prompt refused = %q, want denied", got)
	}
	if got, want := text(t, denied.ctx, "#prejoin-problem"), "The browser is not allowed to use your camera and microphone. Allow them in the site settings (the icon beside the address), then try again, or join without them."; got != want {
		t.Errorf("denied: the page says %q, want %q", got, want)
	}
	if got := text(t, denied.ctx, "#prejoin-join"); got != "Join without camera and microphone" {
		t.Errorf("denied: the join button says %q", got)
	}
	denied.b.Screenshot(t, denied.ctx, "media-8-prejoin-denied")
	denied.joinByScript(t, "#prejoin-join")
	denied.waitMedia(t, "connected")
	waitFlowing(t, denied, pub, "camera")
	// The sound is held back until a gesture: the page offers the button, the sound plays.
	see(t, denied, "the page offers to turn the sound on", chromedp.WaitVisible(chromedp.CSS(`#enable-sound`)))
	if got, want := text(t, denied.ctx, "#media-status"), "The browser blocked the meeting's sound until you allow it."; got != want {
		t.Errorf("sound blocked: the page says %q, want %q", got, want)
	}
	denied.b.Screenshot(t, denied.ctx, "media-9-receive-only-sound-blocked")
	run(t, denied.ctx, "turn the sound on", chromedp.Click(chromedp.CSS("#enable-sound")))
	waitFlowing(t, denied, pub, "microphone")
	see(t, pub, "Ada sees Dee without devices",
		chromedp.WaitVisible(chromedp.CSS(`#participants li[data-participant-id="`+denied.id+`"][data-audio="none"][data-video="none"]`)))

	// No devices at all: said so; chat only.
	if got := none.openPrejoin(t, u, false); got != "none" {
		t.Fatalf("device check without devices = %q, want none", got)
	}
	if got, want := text(t, none.ctx, "#prejoin-problem"), "No camera or microphone was found. Connect one and try again, or join without them."; got != want {
		t.Errorf("no devices: the page says %q, want %q", got, want)
	}
	none.join(t, "#prejoin-chat-only")
	run(t, none.ctx, "chat only: no media", chromedp.WaitVisible(chromedp.CSS(`body[data-media="off"]`)))
	run(t, none.ctx, "Noel writes", chromedp.SendKeys(chromedp.CSS("#chat-input"), "Only chat here"), chromedp.Click(chromedp.CSS("#chat-send")))
	see(t, pub, "Ada reads Noel", chromedp.WaitVisible(chromedp.CSS(`#chat-log li[data-from="Noel Devices"]`)))
	if st := u.CallBridge.SFU.Stats(); st.Participants != 2 {
		t.Errorf("SFU participants = %d, want 2 (the chat-only one has none)", st.Participants)
	}

	for _, p := range []*peer{none, denied, pub} {
		run(t, p.ctx, p.name+" leaves", chromedp.Click(chromedp.CSS("#leave")))
		wait(t, p.ctx, "left")
		p.checkReleased(t)
	}
	waitSFUEmpty(t, u)
}

// apiCall sends a request to the REST API as the admin and returns the body; a status other
// than 200 fails the test.
func apiCall(t *testing.T, u *Up, method, path string, form url.Values) string {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "https://"+u.CallBridge.Addrs.API+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(u.AdminUser, adminPassword(t, u))
	resp, err := caClient(t, u).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s\n%s", method, path, resp.Status, b)
	}
	return string(b)
}

// adminPassword is the admin account's password, printed on the first run and saved.
func adminPassword(t *testing.T, u *Up) string {
	t.Helper()
	if u.AdminPassword != "" {
		return u.AdminPassword
	}
	b, err := os.ReadFile(u.AdminPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
