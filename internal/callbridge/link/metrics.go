package link

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	steps    *prometheus.CounterVec
	up       prometheus.Gauge
	attempts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "confab_callbridge_link_steps_total",
			Help: "Steps of the Call Bridge's XMPP link attempts, by step and outcome (ok, failed, skipped).",
		}, []string{"step", "outcome"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "confab_callbridge_link_up",
			Help: "1 while the Call Bridge is registered with its XMPP server, else 0.",
		}),
		attempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "confab_callbridge_link_attempts_total",
			Help: "Attempts to connect and register with the XMPP server.",
		}),
	}
	if reg == nil {
		return m
	}
	m.steps = register(reg, m.steps)
	m.up = register(reg, m.up)
	m.attempts = register(reg, m.attempts)
	return m
}

// register registers c, or returns the collector already registered under its name (a
// second Link in the same process shares the series rather than failing).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
