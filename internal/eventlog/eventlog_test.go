package eventlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"confab.dev/confab/internal/eventlog"
	"confab.dev/confab/internal/secret"
)

func TestKeepsAndPassesOn(t *testing.T) {
	var out bytes.Buffer
	next := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})
	h := eventlog.New(next, eventlog.Options{Size: 10, Component: "callbridge"})
	log := slog.New(h)
	log.Debug("not kept, not written")
	log.Info("kept, not written", "n", 1)
	log.With("component", "media").WithGroup("leg").Warn("kept and written", "id", "l1", "password", secret.New("hunter2"), "err", errors.New("boom"))

	recs := h.Records()
	tests := []struct {
		i                    int
		level                slog.Level
		component, msg, attr string
	}{
		{0, slog.LevelInfo, "callbridge", "kept, not written", "n=1"},
		{1, slog.LevelWarn, "media", "kept and written", "component=media leg.id=l1 leg.password=" + secret.New("hunter2").String() + " leg.err=boom"},
	}
	if len(recs) != len(tests) {
		t.Fatalf("kept %d records, want %d: %+v", len(recs), len(tests), recs)
	}
	for _, tc := range tests {
		r := recs[tc.i]
		var attrs []string
		for _, a := range r.Attrs {
			attrs = append(attrs, a.Key+"="+a.Value)
		}
		if got := strings.Join(attrs, " "); r.Level != tc.level || r.Component != tc.component || r.Message != tc.msg || got != tc.attr {
			t.Errorf("record %d = %v %q %q %q, want %v %q %q %q", tc.i, r.Level, r.Component, r.Message, got, tc.level, tc.component, tc.msg, tc.attr)
		}
	}
	if strings.Contains(fmt.Sprint(recs), "hunter2") {
		t.Errorf("a kept record holds the secret: %+v", recs)
	}
	if got := out.String(); strings.Contains(got, "not written") || !strings.Contains(got, "kept and written") || strings.Contains(got, "hunter2") {
		t.Errorf("the next handler wrote %q; want only the warning, redacted", got)
	}
}

func TestRingKeepsNewest(t *testing.T) {
	for _, n := range []int{0, 3, 5, 6, 13} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := eventlog.New(slog.DiscardHandler, eventlog.Options{Size: 5})
			log := slog.New(h)
			for i := range n {
				log.Info(fmt.Sprint(i))
			}
			var got []string
			for _, r := range h.Records() {
				got = append(got, r.Message)
			}
			var want []string
			for i := max(0, n-5); i < n; i++ {
				want = append(want, fmt.Sprint(i))
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("kept %v, want %v", got, want)
			}
		})
	}
}

func TestEnabled(t *testing.T) {
	h := eventlog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelDebug}), eventlog.Options{MinLevel: slog.LevelWarn})
	for _, tc := range []struct {
		l    slog.Level
		want bool
	}{{slog.LevelDebug - 1, false}, {slog.LevelDebug, true}, {slog.LevelError, true}} {
		if got := h.Enabled(context.Background(), tc.l); got != tc.want {
			t.Errorf("Enabled(%v) = %v, want %v", tc.l, got, tc.want)
		}
	}
}
