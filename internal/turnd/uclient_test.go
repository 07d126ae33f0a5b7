package turnd

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/testenv"
)

// TestTurnutilsUclient: coturn's own test client (turnutils_uclient, Debian package coturn)
// allocates on Confab's server over UDP, TCP and TLS with credentials issued by Confab, and
// its two clients relay messages to each other's relayed address through it, none lost.
// Over UDP each client also makes an RTCP allocation with EVEN-PORT and RESERVATION-TOKEN.
// (Over TLS it picks a protocol version at random per attempt and retries; the server
// refuses TLS 1.0 and 1.1, which is counted as tls_handshake.)
func TestTurnutilsUclient(t *testing.T) {
	uclient := testenv.LookPath(t, "turnutils_uclient")
	ts := startServer(t, nil)
	tests := []struct {
		transport string
		flags     []string
		addr      string
	}{
		{TransportUDP, nil, ts.udpAddr},
		// -c: no RTCP allocation, which would ask over a second connection for the port
		// reserved on the first (RESERVATION-TOKEN), which this server keeps per connection.
		{TransportTCP, []string{"-t", "-c"}, ts.tcpAddr},
		{TransportTLS, []string{"-S", "-t", "-c"}, ts.tlsAddr},
	}
	sent := regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$`)
	for _, tt := range tests {
		t.Run(tt.transport, func(t *testing.T) {
			user, pass := credentials(t, "uclient-"+tt.transport)
			_, port, _ := strings.Cut(tt.addr, ":")
			args := append([]string{"-y", "-n", "10", "-z", "5", "-u", user, "-w", pass, "-p", port}, tt.flags...)
			args = append(args, "127.0.0.1")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("turnutils_uclient %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			var last []string
			for _, line := range strings.Split(string(out), "\n") {
				if m := sent.FindStringSubmatch(line); m != nil {
					last = m
				}
			}
			if last == nil {
				t.Fatalf("no totals in the output:\n%s", out)
			}
			s, _ := strconv.Atoi(last[1])
			r, _ := strconv.Atoi(last[2])
			// 10 messages each way, and as many again over UDP, where each client also
			// makes an RTCP allocation on the port reserved next to its first (EVEN-PORT,
			// RESERVATION-TOKEN).
			want := 20
			if tt.transport == TransportUDP {
				want = 40
			}
			if s != want || r != s || !strings.Contains(string(out), "Total lost packets 0 ") {
				t.Errorf("sent %d, received %d (want %d each, none lost):\n%s", s, r, want, out)
			}
		})
	}
	for _, tr := range []string{TransportUDP, TransportTCP, TransportTLS} {
		if got := metricValue(t, ts.reg, "confab_turn_allocations_created_total", "transport", tr); got < 2 {
			t.Errorf("allocations_created_total{%s} = %v, want the two clients'", tr, got)
		}
	}
}
