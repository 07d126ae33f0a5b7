package launch

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/diagnose"
	"confab.dev/confab/internal/netns"
	"confab.dev/confab/internal/web/browsertest"
)

// The reach tests put `confab up` and its browsers on either side of real network
// boundaries, made of Linux network namespaces:
//
//	srv  (the test itself, re-run inside it: confab up)
//	     wan0 203.0.113.10  web app on :443, media on :10000
//	          203.0.113.11  TURN on UDP and TCP :3478, TURN over TLS on :443
//	       │ veth
//	rtr  wan1 203.0.113.1 — forwards and NATs (nftables masquerade; "fully-random" makes
//	     it symmetric) the LAN behind it; a firewall profile decides what may pass
//	     br0  192.168.1.1 (a bridge)
//	       │ veth        │ veth
//	c1   192.168.1.10    c2  192.168.1.11   (headless Chromium runs inside, `ip netns exec`)
//
// The outer run (in the host's namespace) makes rtr, c1, c2 and the firewall, then runs
// the test again inside a fresh srv namespace joined to rtr (netns.InsideTest); only the
// inner run serves and drives browsers. Nothing reaches the host's own network.

const (
	webIP  = "203.0.113.10"
	turnIP = "203.0.113.11"
)

// reachNet is the inner run's view of the topology.
type reachNet struct {
	rtr, c1, c2 *netns.NS
}

// Firewall profiles of rtr.
const (
	profileOpen    = "open"     // everything passes
	profileTLS443  = "tls443"   // only TCP to port 443: no UDP at all
	profileNoMedia = "no-media" // not the media server's port (UDP or TCP) directly
)

// nftRules are rtr's NAT and firewall for a profile.
func nftRules(profile string, symmetric bool) string {
	mode := ""
	if symmetric {
		mode = " fully-random"
	}
	var b strings.Builder
	b.WriteString("table ip reach_nat\ndelete table ip reach_nat\ntable inet reach_fw\ndelete table inet reach_fw\n")
	fmt.Fprintf(&b, "table ip reach_nat {\n\tchain reach_post {\n\t\ttype nat hook postrouting priority srcnat;\n\t\toifname \"wan1\" masquerade%s\n\t}\n}\n", mode)
	switch profile {
	case profileTLS443:
		b.WriteString("table inet reach_fw {\n\tchain reach_forward {\n\t\ttype filter hook forward priority filter; policy drop;\n" +
			"\t\tct state established,related accept\n\t\tiifname \"br0\" tcp dport 443 accept\n\t}\n}\n")
	case profileNoMedia:
		b.WriteString("table inet reach_fw {\n\tchain reach_forward {\n\t\ttype filter hook forward priority filter; policy accept;\n" +
			"\t\tiifname \"br0\" ip daddr " + webIP + " udp dport 10000 drop\n" +
			"\t\tiifname \"br0\" ip daddr " + webIP + " tcp dport 10000 drop\n\t}\n}\n")
	default:
		b.WriteString("table inet reach_fw {\n\tchain reach_forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t}\n}\n")
	}
	return b.String()
}

// reach builds the topology with the firewall profile and re-runs the test inside srv.
// In the outer run it returns nil once the inner run has ended (and passed); in the inner
// run it returns the topology.
func reach(t *testing.T, profile string, symmetric bool) *reachNet {
	t.Helper()
	if testing.Short() {
		t.Skip("network namespaces and browsers")
	}
	if _, inside := netns.Inside(); inside {
		n := &reachNet{rtr: &netns.NS{Name: os.Getenv("CONFAB_REACH_RTR")}, c1: &netns.NS{Name: os.Getenv("CONFAB_REACH_C1")},
			c2: &netns.NS{Name: os.Getenv("CONFAB_REACH_C2")}}
		if n.rtr.Name == "" || n.c1.Name == "" || n.c2.Name == "" {
			t.Fatal("inside a namespace without the reach topology's names")
		}
		return n
	}
	if err := netns.Available(); err != nil {
		netns.InsideTest(t, "srv") // skips, or fails under CONFAB_REQUIRE_PEERS=1, saying why
		return nil
	}
	mk := func(prefix string) *netns.NS {
		n, err := netns.New(prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	rtr, c1, c2 := mk("rtr"), mk("c1"), mk("c2")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rtr.IP("link", "add", "br0", "type", "bridge"))
	must(rtr.IP("addr", "add", "192.168.1.1/24", "dev", "br0"))
	must(rtr.IP("link", "set", "br0", "up"))
	for i, c := range []*netns.NS{c1, c2} {
		dev := fmt.Sprintf("lan%d", i+1)
		must(netns.Veth(netns.Link{NS: rtr, Dev: dev}, netns.Link{NS: c, Dev: "eth0", Addr: fmt.Sprintf("192.168.1.%d/24", 10+i)}))
		must(rtr.IP("link", "set", dev, "master", "br0"))
		must(c.IP("route", "add", "default", "via", "192.168.1.1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := rtr.Command(ctx, "sysctl", "-w", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("ip_forward: %v: %s", err, out)
	}
	must(rtr.Nft(nftRules(profile, symmetric)))
	t.Setenv("CONFAB_REACH_RTR", rtr.Name)
	t.Setenv("CONFAB_REACH_C1", c1.Name)
	t.Setenv("CONFAB_REACH_C2", c2.Name)
	netns.InsideTest(t, "srv", func(srv *netns.NS) error {
		if err := netns.Veth(netns.Link{NS: srv, Dev: "wan0", Addr: webIP + "/24"}, netns.Link{NS: rtr, Dev: "wan1", Addr: "203.0.113.1/24"}); err != nil {
			return err
		}
		return srv.IP("addr", "add", turnIP+"/24", "dev", "wan0")
	})
	return nil
}

// startReachUp runs confab up inside srv: the web app on webIP:443, media on webIP:10000,
// TURN on turnIP (or none).
func startReachUp(t *testing.T, turn bool) *Up {
	t.Helper()
	return startUp(t, t.TempDir(), func(o *UpOptions) {
		o.Web, o.Media = webIP+":443", webIP+":10000"
		o.TURN, o.TURNTLS = turnIP+":3478", turnIP+":443"
		if !turn {
			o.TURN, o.TURNTLS = "off", "off"
		}
		o.Hosts = []string{webIP, turnIP}
	})
}

// inNS runs Chromium inside ns.
func inNS(ns *netns.NS) func(*exec.Cmd) {
	return func(cmd *exec.Cmd) {
		args := append([]string{"ip", "netns", "exec", ns.Name, cmd.Path}, cmd.Args[1:]...)
		cmd.Path, cmd.Args = "/usr/sbin/ip", args
	}
}

// reachPeer starts a browser with fake devices, inside ns (nil: srv, the test's own).
func reachPeer(t *testing.T, u *Up, name string, ns *netns.NS, media browsertest.FakeMedia) *peer {
	t.Helper()
	o := browsertest.Options{TrustCerts: []*x509.Certificate{serverLeaf(t, u)}, Width: 1280, Height: 860, Media: &media}
	if ns != nil {
		o.Command = inNS(ns)
	}
	b := browsertest.Start(t, o)
	return &peer{name: name, b: b, ctx: b.Context(t, 5*time.Minute), app: "https://" + webIP}
}

// fakeMedia makes the camera and microphone files once per test.
func fakeMedia(t *testing.T) browsertest.FakeMedia {
	t.Helper()
	video, audio := browsertest.MediaFiles(t, t.TempDir(), camWidth, camHeight, camFPS)
	return browsertest.FakeMedia{Video: video, Audio: audio}
}

// legLadder waits until the leg's ladder satisfies cond and returns it.
func legLadder(t *testing.T, u *Up, leg, what string, cond func(ladder.Ladder) bool) ladder.Ladder {
	t.Helper()
	var l ladder.Ladder
	pollUntil(t, what, func() bool {
		var ok bool
		l, ok = u.CallBridge.Media.Ladder(leg)
		return ok && cond(l)
	})
	return l
}

func logLadder(t *testing.T, who string, l ladder.Ladder) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s's media ladder: %s, path %q, cause %q\n", who, l.State, l.Path, l.Cause)
	for _, s := range l.Steps {
		fmt.Fprintf(&b, "  %-8s %-45s %s %s\n", s.State, s.Name, s.Detail, s.Remedy)
	}
	t.Log(b.String())
}

// flowsBothWays checks that a and b hear and see each other.
func flowsBothWays(t *testing.T, a, b *peer) {
	t.Helper()
	for _, pair := range [][2]*peer{{a, b}, {b, a}} {
		p, from := pair[0], pair[1]
		waitFlowing(t, p, from, "microphone")
		checkCameraFrame(t, p, from, waitFlowing(t, p, from, "camera"))
	}
}

// adminLadder opens the web admin's calls page in a new tab of b and saves it.
func adminLadder(t *testing.T, u *Up, b *peer, leg, shot string) {
	t.Helper()
	ctx := b.b.NewTab(t, time.Minute)
	pw, _ := os.ReadFile(u.AdminPasswordFile)
	run(t, ctx, "sign in to the web admin",
		chromedp.Navigate("https://localhost:"+port(u.CallBridge.Addrs.API)+"/admin/calls"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), u.AdminUser),
		chromedp.SendKeys(chromedp.CSS("#login-password"), strings.TrimSpace(string(pw))),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.ladder-row[data-ladder-for="`+leg+`"]`)),
		chromedp.Click(chromedp.CSS(`#ladder-`+leg+` summary`)))
	b.b.Screenshot(t, ctx, shot)
}

// diagnoseFrom runs `confab diagnose media` inside ns (this test binary, as a helper) and
// returns its table.
func diagnoseFrom(t *testing.T, u *Up, ns *netns.NS) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := ns.Command(ctx, os.Args[0], "-test.run", "^TestReachDiagnoseHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "CONFAB_REACH_DIAGNOSE=https://"+webIP, "CONFAB_REACH_CA="+u.Local.CAFile, netns.InsideEnv+"=")
	out, _ := cmd.CombinedOutput()
	t.Logf("confab diagnose media from %s:\n%s", ns.Name, out)
	return string(out)
}

// TestReachDiagnoseHelper is `confab diagnose media` run by diagnoseFrom inside a client
// namespace; it does nothing otherwise.
func TestReachDiagnoseHelper(t *testing.T) {
	u := os.Getenv("CONFAB_REACH_DIAGNOSE")
	if u == "" {
		t.Skip("run by the reach tests")
	}
	pem, err := os.ReadFile(os.Getenv("CONFAB_REACH_CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := diagnose.RunMedia(ctx, diagnose.MediaSettings{URL: u, RootCAs: pool, Timeout: 8 * time.Second})
	_ = rep.WriteTable(os.Stdout)
}

// TestReachTLS443Only: a participant behind a NAT that drops all UDP and lets only TCP to
// port 443 through joins with camera and microphone; its media goes through the embedded
// TURN server over TLS on 443, both ways, with a participant on the server's side; the
// ladder, the allocation list and confab diagnose media (run from behind that NAT) all say
// so; the connection test says the same in words.
func TestReachTLS443Only(t *testing.T) {
	n := reach(t, profileTLS443, false)
	if n == nil {
		return
	}
	u := startReachUp(t, true)
	media := fakeMedia(t)
	ada := reachPeer(t, u, "Ada behind the firewall", n.c1, media)
	bea := reachPeer(t, u, "Bea at the office", nil, media)
	ada.joinWithMedia(t, u)
	bea.joinWithMedia(t, u)
	flowsBothWays(t, ada, bea)
	l := legLadder(t, u, ada.id, "Ada's path through TURN over TLS", func(l ladder.Ladder) bool {
		return l.State == ladder.StateConnected && strings.HasPrefix(l.Path, "relay: TURN over TLS (turns:"+turnIP+":443")
	})
	logLadder(t, ada.name, l)
	if bl, _ := u.CallBridge.Media.Ladder(bea.id); bl.Path != "direct UDP" {
		t.Errorf("Bea's path %q, want direct UDP", bl.Path)
	}
	var relayed bool
	for _, a := range u.CallBridge.TURN.Server.Allocations() {
		if a.UserID == ada.id && a.Transport == "tls" && a.ToPeer.Bytes > 10000 && a.FromPeer.Bytes > 10000 {
			relayed = true
		}
	}
	if !relayed {
		t.Errorf("no TLS allocation of Ada's relays media both ways: %+v", u.CallBridge.TURN.Server.Allocations())
	}
	if code, body := apiDo(t, u, "GET", "/api/v1/callLegs/"+ada.id, nil); code != 200 || !strings.Contains(body, `path="relay: TURN over TLS`) {
		t.Errorf("GET /callLegs/%s: %d %s", ada.id, code, body)
	}
	ada.b.Screenshot(t, ada.ctx, "reach-tls443-meeting")
	adminLadder(t, u, bea, ada.id, "reach-tls443-admin-ladder")

	out := diagnoseFrom(t, u, n.c1)
	for _, want := range []string{"PATH  PASS    Through TURN over TLS " + turnIP + ":443", "PATH  FAIL    Directly over UDP", "RESULT: PASS (relay)"} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnose media from behind the firewall lacks %q", want)
		}
	}
	paths, verdict, words := connectionTest(t, ada.b, "https://"+webIP, "reach-tls443-connection-test")
	if verdict != "relay" || !strings.Contains(words, "over TLS") {
		t.Errorf("connection test: %s, %q; want relay over TLS", verdict, words)
	}
	for _, p := range paths {
		if want := strings.HasPrefix(p.Path, "turns:"); (p.Result == "ok") != want {
			t.Errorf("connection test %s: %s, want ok only for TURN over TLS", p.Path, p.Result)
		}
	}
}

// TestReachNoTURN: the same firewall and no TURN server: the participant is told in words
// that its network blocks the connection and the server offers no relay; the ladder says
// why (no check reached the media port) and what to do; so does the connection test.
func TestReachNoTURN(t *testing.T) {
	n := reach(t, profileTLS443, false)
	if n == nil {
		return
	}
	u := startReachUp(t, false)
	ada := reachPeer(t, u, "Ada behind the firewall", n.c1, fakeMedia(t))
	ada.joinWithMedia2(t, u)
	run(t, ada.ctx, "Ada is told why", chromedp.WaitVisible(chromedp.CSS(`body[data-media="failed"][data-media-cause="udp-blocked-no-turn"]`)))
	want := "Your network blocks the connection the meeting needs (UDP), and this server offers no relay."
	if got := text(t, ada.ctx, "#media-status"); !strings.HasPrefix(got, want) {
		t.Errorf("Ada is told %q, want %q…", got, want)
	}
	ada.b.Screenshot(t, ada.ctx, "reach-no-turn-told")
	l := legLadder(t, u, ada.id, "the failed ladder", func(l ladder.Ladder) bool { return l.State == ladder.StateFailed })
	logLadder(t, ada.name, l)
	if l.Cause != ladder.CauseUDPBlockedNoTURN {
		t.Errorf("cause %q, want %s", l.Cause, ladder.CauseUDPBlockedNoTURN)
	}
	code, body := apiDo(t, u, "GET", "/api/v1/callLegs/"+ada.id, nil)
	if code != 200 || !strings.Contains(body, `cause="udp-blocked-no-turn"`) || !strings.Contains(body, "Configure a TURN server reachable over TLS on port 443") {
		t.Errorf("GET /callLegs/%s: %d %s", ada.id, code, body)
	}
	bea := reachPeer(t, u, "an administrator", nil, browsertest.FakeMedia{NoDevices: true})
	adminLadder(t, u, bea, ada.id, "reach-no-turn-admin-ladder")
	_, verdict, words := connectionTest(t, ada.b, "https://"+webIP, "reach-no-turn-connection-test")
	if verdict != "blocked-no-turn" || !strings.HasPrefix(words, "Your network blocks the connection the meeting needs (UDP), and this server offers no relay") {
		t.Errorf("connection test: %s, %q", verdict, words)
	}
}

// joinWithMedia2 joins like joinWithMedia but does not wait for the media to connect.
func (p *peer) joinWithMedia2(t *testing.T, u *Up) {
	t.Helper()
	if got := p.openPrejoin(t, u, false); got != "ok" {
		t.Fatalf("%s's device check = %q, want ok", p.name, got)
	}
	p.join(t, "#prejoin-join")
}

// TestReachSymmetricNAT: behind a symmetric NAT (a new public port for every destination,
// shown by two sockets' worth of traffic), a participant still reaches an ICE-lite media
// server on a public address directly — the server answers the NAT's peer-reflexive
// address; when the NAT's network also keeps it from the media port, it gets a relayed
// path through the TURN server over UDP, and its media flows both ways.
func TestReachSymmetricNAT(t *testing.T) {
	n := reach(t, profileOpen, true)
	if n == nil {
		return
	}
	u := startReachUp(t, true)
	if a, b := natPorts(t, n.c1); a == b {
		t.Fatalf("the NAT mapped one socket to the same port (%d) for two destinations: not symmetric", a)
	} else {
		t.Logf("one socket behind the NAT: public ports %d and %d for two destinations (symmetric)", a, b)
	}
	media := fakeMedia(t)
	bea := reachPeer(t, u, "Bea at the office", nil, media)
	bea.joinWithMedia(t, u)
	ada := reachPeer(t, u, "Ada behind a symmetric NAT", n.c1, media)
	ada.joinWithMedia(t, u)
	flowsBothWays(t, ada, bea)
	l := legLadder(t, u, ada.id, "Ada's direct path", func(l ladder.Ladder) bool { return l.State == ladder.StateConnected && l.Path != "" })
	logLadder(t, ada.name, l)
	if l.Path != "direct UDP" {
		t.Errorf("Ada's path behind the symmetric NAT alone: %q, want direct UDP (peer-reflexive)", l.Path)
	}
	run(t, ada.ctx, "Ada leaves", chromedp.Click(chromedp.CSS("#leave")))

	// Now the network behind the NAT may not reach the media port itself.
	if err := n.rtr.Nft(nftRules(profileNoMedia, true)); err != nil {
		t.Fatal(err)
	}
	cyd := reachPeer(t, u, "Cyd behind a symmetric NAT, media port blocked", n.c2, media)
	cyd.joinWithMedia(t, u)
	flowsBothWays(t, cyd, bea)
	l = legLadder(t, u, cyd.id, "Cyd's relayed path", func(l ladder.Ladder) bool { return l.State == ladder.StateConnected && l.Path != "" })
	logLadder(t, cyd.name, l)
	if !strings.HasPrefix(l.Path, "relay: TURN over UDP") {
		t.Errorf("Cyd's path %q, want a relay over UDP", l.Path)
	}
	cyd.b.Screenshot(t, cyd.ctx, "reach-symmetric-relayed")
	adminLadder(t, u, bea, cyd.id, "reach-symmetric-admin-ladder")
}

// natPorts sends a datagram from one socket in ns to two ports of the server and returns
// the source ports they arrived from.
func natPorts(t *testing.T, ns *netns.NS) (int, int) {
	t.Helper()
	var got [2]int
	var ls [2]*net.UDPConn
	for i, ip := range []string{webIP, turnIP} {
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls[i] = l
	}
	var c *net.UDPConn
	if err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, l := range ls {
		if _, err := c.WriteTo([]byte("which port?"), l.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, from, err := l.ReadFromUDP(make([]byte, 64))
		if err != nil {
			t.Fatal(err)
		}
		got[i] = from.Port
	}
	return got[0], got[1]
}

// TestReachSameLAN: two participants on the same LAN, behind an ordinary NAT, with TURN
// offered: both reach the media server directly — no relay — and hear and see each other.
func TestReachSameLAN(t *testing.T) {
	n := reach(t, profileOpen, false)
	if n == nil {
		return
	}
	u := startReachUp(t, true)
	media := fakeMedia(t)
	ada := reachPeer(t, u, "Ada on the LAN", n.c1, media)
	cyd := reachPeer(t, u, "Cyd on the same LAN", n.c2, media)
	ada.joinWithMedia(t, u)
	cyd.joinWithMedia(t, u)
	flowsBothWays(t, ada, cyd)
	for _, p := range []*peer{ada, cyd} {
		l := legLadder(t, u, p.id, p.name+"'s path", func(l ladder.Ladder) bool { return l.State == ladder.StateConnected && l.Path != "" })
		logLadder(t, p.name, l)
		if l.Path != "direct UDP" {
			t.Errorf("%s's path %q, want direct UDP (no relay)", p.name, l.Path)
		}
	}
	ada.b.Screenshot(t, ada.ctx, "reach-same-lan")
}
