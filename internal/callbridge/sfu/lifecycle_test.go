package sfu_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/callbridge/sfu/sfutest"
)

// TestShutdown: Shutdown removes connected participants, stops everything the SFU started
// (goroutines back to the count before New) and refuses new participants.
func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	reg := prometheus.NewRegistry()
	s, err := sfu.New(sfu.Config{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", Logger: testLogger(t), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	a := sfutest.New(t, s, "room", "a", sfutest.Options{Audio: true, Video: &sfutest.VideoTrack{}})
	b := sfutest.New(t, s, "room", "b", sfutest.Options{Audio: true})
	b.WaitFor(wait, "a's media", func() bool { return media(b, "a", sfu.Video, "", 20) })
	a.WaitFor(wait, "b's media", func() bool { return media(a, "b", sfu.Audio, "", 20) })

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			values[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for _, want := range []string{"confab_sfu_participants", "confab_sfu_forwarded_packets_total/video", "confab_sfu_forwarded_packets_total/audio", "confab_sfu_received_packets_total"} {
		if values[want] <= 0 {
			t.Errorf("metric %s = %v, want > 0 (all: %v)", want, values[want], values)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
	select {
	case <-a.P.Done():
	default:
		t.Error("a is still there after Shutdown")
	}
	if _, err := s.Join("room", "c", b); !errors.Is(err, sfu.ErrClosed) {
		t.Errorf("Join after Shutdown: %v, want ErrClosed", err)
	}
	if err := a.P.HandleDescription(sfu.Description{Type: sfu.Offer, SDP: "v=0"}); err == nil {
		t.Error("HandleDescription after Shutdown: no error")
	}
	a.Close()
	b.Close()
	if got := settle(runtime.NumGoroutine, before); got > before {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("%d goroutines after Shutdown, %d before New\n%s", got, before, buf[:n])
	}
}

// TestConfigDefaults: the addresses New refuses, and ICE-TCP off.
func TestConfigDefaults(t *testing.T) {
	cases := []struct {
		name string
		cfg  sfu.Config
		want error // nil for success
	}{
		{"bad UDP address", sfu.Config{UDPAddr: "127.0.0.1:x"}, sfu.ErrBadArgument},
		{"bad public IP", sfu.Config{UDPAddr: "127.0.0.1:0", TCPAddr: "off", PublicIPs: []string{"not-an-ip"}}, sfu.ErrBadArgument},
		{"TCP off", sfu.Config{UDPAddr: "127.0.0.1:0", TCPAddr: "off"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sfu.New(tc.cfg)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Errorf("New: %v, want %v", err, tc.want)
				}
				if err == nil {
					_ = s.Shutdown(context.Background())
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Shutdown(context.Background())
			if s.TCPAddr() != nil {
				t.Errorf("TCPAddr %v with ICE-TCP off", s.TCPAddr())
			}
		})
	}
}
