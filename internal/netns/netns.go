// Package netns builds small private networks for tests and benchmarks out of Linux
// network namespaces: namespaces with their own loopback, veth pairs between them,
// addresses and routes, processes and in-process sockets inside them, and bad links — rate
// limits (tc tbf, htb) and random loss (nftables numgen random). It drives iproute2 (ip,
// tc) and nftables (nft) and needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
//
// This kernel has no netem: delay belongs in a userspace relay (sfutest.Relay has one).
//
// Traffic stays inside the namespaces a caller made: a namespace starts with only its
// loopback up, and nothing is connected to the host's namespace unless the caller asks.
//
// Names: namespaces are called confab-<prefix>-<random> so that leftovers of a killed run
// are recognisable (Cleanup removes those no process is in; a tool calls it, never a test,
// which could remove another test's namespace that holds only sockets).
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable means namespaces cannot be made here: not root, or iproute2 missing.
var ErrUnavailable = errors.New("network namespaces unavailable")

// Available returns nil if this process can make namespaces, else an error wrapping
// ErrUnavailable that says why.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrUnavailable)
	}
	for _, p := range []string{"ip", "tc", "nft"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%w: %s not installed (iproute2, nftables)", ErrUnavailable, p)
		}
	}
	return nil
}

// NS is a network namespace made by New.
type NS struct {
	Name string
}

// commandTimeout bounds each ip, tc or nft command.
const commandTimeout = 20 * time.Second

// run runs a command and returns its error with its output.
func run(name string, args ...string) error {
	_, err := output(nil, name, args...)
	return err
}

func output(stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// New makes a namespace with its loopback up. prefix names it (letters and digits).
func New(prefix string) (*NS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	n := &NS{Name: "confab-" + prefix + "-" + hex.EncodeToString(b)}
	if len(n.Name) > 40 {
		return nil, fmt.Errorf("netns: prefix %q too long", prefix)
	}
	if err := run("ip", "netns", "add", n.Name); err != nil {
		return nil, err
	}
	if err := n.IP("link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	// No duplicate address detection: an interface's IPv6 link-local address would
	// otherwise turn valid a second or two after the link comes up, and Chromium, started
	// meanwhile, aborts its page load with ERR_NETWORK_CHANGED (seen in TestReachSameLAN).
	if err := run("ip", "netns", "exec", n.Name, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close removes the namespace (and the veth ends inside it). Processes still running in
// it keep it alive until they end.
func (n *NS) Close() error {
	return run("ip", "netns", "del", n.Name)
}

// IP runs `ip <args>` inside the namespace.
func (n *NS) IP(args ...string) error { return run("ip", append([]string{"-n", n.Name}, args...)...) }

// TC runs `tc <args>` inside the namespace.
func (n *NS) TC(args ...string) error {
	return run("ip", append([]string{"netns", "exec", n.Name, "tc"}, args...)...)
}

// Nft loads an nftables script (`nft -f -`) inside the namespace.
func (n *NS) Nft(script string) error {
	_, err := output([]byte(script), "ip", "netns", "exec", n.Name, "nft", "-f", "-")
	return err
}

// Command returns a command that runs name inside the namespace (`ip netns exec`).
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs f on an OS thread that is inside the namespace: sockets f opens (a listener, a
// UDP socket handed to pion as its mux) live in the namespace for good, whichever thread
// uses them later. f must not start goroutines that open sockets: they run elsewhere.
func (n *NS) Do(f func() error) error {
	target, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", n.Name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: this thread's namespace: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter %s: %w", n.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so it ends with this goroutine rather than running
		// others inside the namespace.
		return errors.Join(ferr, fmt.Errorf("netns: leave %s: %w", n.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// LoopbackAlias gives the namespace addr (an address of 127.0.0.0/8 other than 127.0.0.1)
// on an interface that is not the loopback interface: one end of a veth pair whose both
// ends stay in the namespace. Servers that skip loopback interfaces when they gather ICE
// candidates (Janus, libnice) find it and offer it, and traffic to it is local delivery in
// the namespace, within the loopback range, like 127.0.0.1's.
func (n *NS) LoopbackAlias(addr string) error {
	if ip := net.ParseIP(addr); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return fmt.Errorf("netns: loopback alias %q: want an IPv4 address of 127.0.0.0/8", addr)
	}
	if err := n.IP("link", "add", "lalias0", "type", "veth", "peer", "name", "lalias1"); err != nil {
		return err
	}
	if err := n.IP("addr", "add", addr+"/32", "dev", "lalias0"); err != nil {
		return err
	}
	for _, d := range []string{"lalias0", "lalias1"} {
		if err := n.IP("link", "set", d, "up"); err != nil {
			return err
		}
	}
	return nil
}

// Link is one end of a veth pair.
type Link struct {
	NS   *NS    // nil: the host's namespace
	Dev  string // interface name (≤ 15 bytes)
	Addr string // address with prefix length, e.g. 10.77.0.1/24; empty for none
}

// Veth makes a veth pair between a.NS and b.NS, gives each end its address and brings both
// up.
func Veth(a, b Link) error {
	args := []string{"link", "add", a.Dev}
	if a.NS != nil {
		args = append(args, "netns", a.NS.Name)
	}
	args = append(args, "type", "veth", "peer", "name", b.Dev)
	if b.NS != nil {
		args = append(args, "netns", b.NS.Name)
	}
	if err := run("ip", args...); err != nil {
		return err
	}
	for _, l := range []Link{a, b} {
		ip := func(args ...string) error {
			if l.NS == nil {
				return run("ip", args...)
			}
			return l.NS.IP(args...)
		}
		if l.Addr != "" {
			if err := ip("addr", "add", l.Addr, "dev", l.Dev); err != nil {
				return err
			}
		}
		if err := ip("link", "set", l.Dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

// Rate limits what leaves dev to rate (tc syntax: 500kbit, 2mbit) with a token bucket
// filter (tbf) of burst bytes and at most latency of queue; a rate of "" removes it.
func (n *NS) Rate(dev, rate string, burst int, latency time.Duration) error {
	if rate == "" {
		return n.TC("qdisc", "del", "dev", dev, "root")
	}
	if burst <= 0 {
		burst = 16 * 1024
	}
	if latency <= 0 {
		latency = 50 * time.Millisecond
	}
	return n.TC("qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
		"burst", fmt.Sprint(burst), "latency", fmt.Sprintf("%dms", latency.Milliseconds()))
}

// Class is a rate-limited class of an HTB shaper: the UDP or TCP packets leaving the device
// to or from the given port share rate.
type Class struct {
	Rate        string // e.g. 500kbit
	DstPort     int    // match packets to this port (0: any)
	SrcPort     int    // match packets from this port (0: any)
	QueueLength int    // packets its queue holds (default the device's)
}

// Shape installs an HTB shaper on dev: the classes get their rates, and everything else
// goes unlimited. It replaces any shaper dev had.
func (n *NS) Shape(dev string, classes ...Class) error {
	_ = n.TC("qdisc", "del", "dev", dev, "root")
	if err := n.TC("qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1", "r2q", "1000"); err != nil {
		return err
	}
	if err := n.TC("class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit"); err != nil {
		return err
	}
	for i, c := range classes {
		id := fmt.Sprintf("1:%d", 10+i)
		if err := n.TC("class", "add", "dev", dev, "parent", "1:", "classid", id, "htb", "rate", c.Rate, "ceil", c.Rate); err != nil {
			return err
		}
		if c.QueueLength > 0 {
			if err := n.TC("qdisc", "add", "dev", dev, "parent", id, "pfifo", "limit", fmt.Sprint(c.QueueLength)); err != nil {
				return err
			}
		}
		match := []string{"filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32"}
		if c.DstPort != 0 {
			match = append(match, "match", "ip", "dport", fmt.Sprint(c.DstPort), "0xffff")
		}
		if c.SrcPort != 0 {
			match = append(match, "match", "ip", "sport", fmt.Sprint(c.SrcPort), "0xffff")
		}
		if c.DstPort == 0 && c.SrcPort == 0 {
			match = append(match, "match", "u32", "0", "0")
		}
		if err := n.TC(append(match, "flowid", id)...); err != nil {
			return err
		}
	}
	return nil
}

// Drop is a random loss rule: a percentage of the UDP packets to or from a port (or all
// UDP packets, with neither) is dropped as they arrive in the namespace.
type Drop struct {
	Percent int // 0–100
	DstPort int
	SrcPort int
}

// DropRandom replaces the namespace's loss rules (table inet confab_loss) with drops: each
// a `numgen random mod 100 < Percent drop` on the prerouting hook, which every packet
// arriving in the namespace passes once, from a veth or from its own loopback, whether it
// is delivered or forwarded. (On the output hook a drop would fail the sender's write with
// EPERM, which a real lossy path never does.) No drops removes the table.
func (n *NS) DropRandom(drops ...Drop) error {
	var b strings.Builder
	b.WriteString("table inet confab_loss\ndelete table inet confab_loss\n")
	if len(drops) > 0 {
		b.WriteString("table inet confab_loss {\n\tchain in {\n\t\ttype filter hook prerouting priority 0;\n")
		for _, d := range drops {
			if d.Percent < 0 || d.Percent > 100 {
				return fmt.Errorf("netns: drop %d%%: want 0–100", d.Percent)
			}
			b.WriteString("\t\tmeta l4proto udp ")
			if d.DstPort != 0 {
				fmt.Fprintf(&b, "udp dport %d ", d.DstPort)
			}
			if d.SrcPort != 0 {
				fmt.Fprintf(&b, "udp sport %d ", d.SrcPort)
			}
			fmt.Fprintf(&b, "numgen random mod 100 < %d counter drop\n", d.Percent)
		}
		b.WriteString("\t}\n}\n")
	}
	return n.Nft(b.String())
}

// Dropped returns how many packets the loss rules dropped so far.
func (n *NS) Dropped() (int64, error) {
	out, err := output(nil, "ip", "netns", "exec", n.Name, "nft", "list", "table", "inet", "confab_loss")
	if err != nil {
		return 0, err
	}
	var total int64
	fs := strings.Fields(string(out))
	for i := 0; i+1 < len(fs); i++ {
		if fs[i] == "packets" {
			var v int64
			if _, err := fmt.Sscan(fs[i+1], &v); err == nil {
				total += v
			}
		}
	}
	return total, nil
}

// Cleanup removes namespaces named confab-* that no process is in: leftovers of runs that
// were killed. It returns the names removed.
func Cleanup() ([]string, error) {
	out, err := output(nil, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(name, "confab-") {
			continue
		}
		pids, err := output(nil, "ip", "netns", "pids", name)
		if err != nil || len(bytes.TrimSpace(pids)) > 0 {
			continue
		}
		if run("ip", "netns", "del", name) == nil {
			removed = append(removed, name)
		}
	}
	return removed, nil
}
