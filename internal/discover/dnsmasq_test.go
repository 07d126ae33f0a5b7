package discover_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/discover"
	"confab.dev/confab/internal/testenv"
)

// TestDnsmasq checks discovery against a DNS server that is not ours: Debian's dnsmasq
// (package dnsmasq-base), serving SRV and host records from its command line.
func TestDnsmasq(t *testing.T) {
	addr := startDnsmasq(t,
		"--local=/example.com/", // authoritative: unknown names in example.com are NXDOMAIN
		"--local=/invalid/",
		"--srv-host=_xmpp-component._tcp.example.com,xmpp2.example.com,5224,20,0",
		"--srv-host=_xmpp-component._tcp.example.com,xmpp1.example.com,5223,10,0",
		"--host-record=xmpp1.example.com,127.0.0.2,::2",
		"--host-record=xmpp2.example.com,127.0.0.3",
		"--txt-record=_xmpp-component._tcp.nosrv.example.com,not an SRV record",
	)
	r := discover.NewResolver(addr, time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	t.Run("srv", func(t *testing.T) {
		got, err := discover.Targets(ctx, r, "example.com", "")
		if err != nil {
			t.Fatal(err)
		}
		want := []discover.Target{
			{Host: "xmpp1.example.com", Port: 5223, Priority: 10, FromSRV: true},
			{Host: "xmpp2.example.com", Port: 5224, Priority: 20, FromSRV: true},
		}
		if !slices.Equal(got, want) {
			t.Errorf("Targets = %+v, want %+v", got, want)
		}
	})
	t.Run("addresses", func(t *testing.T) {
		for host, want := range map[string][]string{
			"xmpp1.example.com": {"127.0.0.2", "::2"},
			"xmpp2.example.com": {"127.0.0.3"}, // AAAA is NODATA
		} {
			got, err := discover.LookupAddrs(ctx, r, host)
			if err != nil {
				t.Fatalf("LookupAddrs(%s): %v", host, err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			slices.Sort(s)
			if !slices.Equal(s, want) {
				t.Errorf("LookupAddrs(%s) = %q, want %q", host, s, want)
			}
		}
	})
	for _, tc := range []struct {
		name, domain, wantKind, wantMsg string
	}{
		{"unknown domain", "nowhere.invalid", discover.KindNXDomain, "SRV _xmpp-component._tcp.nowhere.invalid: no such domain (NXDOMAIN)"},
		{"unknown name in the zone", "nx.example.com", discover.KindNXDomain, "SRV _xmpp-component._tcp.nx.example.com: no such domain (NXDOMAIN)"},
		{"name without SRV records", "nosrv.example.com", discover.KindNoRecords, "SRV _xmpp-component._tcp.nosrv.example.com: the name exists but has no SRV records"},
		{"domain it will not serve", "example.org", discover.KindRefused, fmt.Sprintf("SRV _xmpp-component._tcp.example.org: the DNS server %s refused the query (REFUSED)", addr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := discover.Targets(ctx, r, tc.domain, "")
			var e *discover.Error
			if !errors.As(err, &e) || e.Kind != tc.wantKind {
				t.Fatalf("Targets(%s) = %v, want kind %q", tc.domain, err, tc.wantKind)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("message:\n got %s\nwant %s", err, tc.wantMsg)
			}
		})
	}
	t.Run("unknown host", func(t *testing.T) {
		_, err := discover.LookupAddrs(ctx, r, "nohost.example.com")
		var e *discover.Error
		if !errors.As(err, &e) || e.Kind != discover.KindNXDomain || e.Op != discover.OpResolve {
			t.Errorf("LookupAddrs(nohost) = %v, want op resolve, kind nxdomain", err)
		}
	})
}

// startDnsmasq runs dnsmasq on 127.0.0.1 with args added, waits until it answers, and
// stops it when the test ends. It returns the server's address.
func startDnsmasq(t *testing.T, args ...string) string {
	t.Helper()
	bin := "/usr/sbin/dnsmasq" // not on a non-root user's PATH on Debian
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.LookPath(t, "dnsmasq")
	}
	var lastErr error
	for range 5 { // the port is chosen free, but another process may take it first
		port := freePort(t)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		base := []string{
			"--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--keep-in-foreground",
			"--bind-interfaces", "--listen-address=127.0.0.1", "--port=" + strconv.Itoa(port),
			"--pid-file=", "--log-facility=-", "--cache-size=0",
		}
		if os.Geteuid() == 0 {
			// As root dnsmasq switches to the user "nobody", which minimal containers lack.
			base = append(base, "--user=root")
		}
		cmd := exec.Command(bin, append(base, args...)...)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start dnsmasq: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitAnswering(addr, exited); err != nil {
			cmd.Process.Kill()
			lastErr = fmt.Errorf("%w\n%s", err, out.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("dnsmasq output:\n%s", out.String())
			}
		})
		return addr
	}
	t.Fatalf("dnsmasq did not start: %v", lastErr)
	return ""
}

// waitAnswering polls addr with a lookup until dnsmasq answers (any DNS answer will do),
// it exits, or 10 seconds pass.
func waitAnswering(addr string, exited <-chan error) error {
	r := discover.NewResolver(addr, 200*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := discover.Targets(ctx, r, "probe.invalid", "")
		cancel()
		var e *discover.Error
		if errors.As(err, &e) && e.Kind == discover.KindNXDomain {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dnsmasq on %s not answering after 10s: last lookup: %v", addr, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("dnsmasq exited: %v", err)
		case <-tick.C:
		}
	}
}

// freePort returns a port that is free on 127.0.0.1 for both UDP and TCP just now.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no port free on both UDP and TCP")
	return 0
}

// syncBuffer is a bytes.Buffer that dnsmasq's output goroutines and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
