package xmppd

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus series.
type metrics struct {
	sessions     *prometheus.GaugeVec   // transport
	logins       *prometheus.CounterVec // outcome
	links        prometheus.Gauge
	handshakes   *prometheus.CounterVec // outcome
	routed       *prometheus.CounterVec // kind, destination
	streamErrs   *prometheus.CounterVec // condition
	refused      *prometheus.CounterVec // reason
	detached     prometheus.Gauge
	resumed      prometheus.Counter
	resumeFailed prometheus.Counter
	gatherer     prometheus.Gatherer
}

func newMetrics(reg prometheus.Registerer) (*metrics, prometheus.Gatherer, error) {
	var gatherer prometheus.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		gatherer = g
	}
	m := &metrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "sessions",
			Help: "Client connections open, by transport (tcp, websocket).",
		}, []string{"transport"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "logins_total",
			Help: "Client SASL authentications, by outcome (success or the SASL failure condition).",
		}, []string{"outcome"}),
		links: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "component_links",
			Help: "Call Bridge component links connected.",
		}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "component_handshakes_total",
			Help: "Component connections, by outcome: success, tls-error (the TLS handshake failed), closed-before-handshake (the peer closed the connection during negotiation; nothing was sent), or the stream error condition sent.",
		}, []string{"outcome"}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "stanzas_routed_total",
			Help: "Stanzas routed, by kind (message, presence, iq) and destination (client, component, server, unavailable).",
		}, []string{"kind", "destination"}),
		streamErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "stream_errors_total",
			Help: "Stream errors sent, by condition.",
		}, []string{"condition"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "stanzas_refused_total",
			Help: "Stanzas refused to their sender by a limit, by reason (sender-rate: the sender's stanzas per second; component-queue: its share of a component's queue, or the queue, full).",
		}, []string{"reason"}),
		detached: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "sessions_detached",
			Help: "Client sessions that lost their connection and wait to be resumed (XEP-0198).",
		}),
		resumed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "resumptions_total",
			Help: "Client sessions resumed on a new connection (XEP-0198).",
		}),
		resumeFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "xmpp", Name: "resumptions_failed_total",
			Help: "Resumptions refused: unknown or expired id, another account's, or a bad request (XEP-0198).",
		}),
	}
	var err error
	m.sessions = register(reg, m.sessions, &err)
	m.logins = register(reg, m.logins, &err)
	m.links = register(reg, m.links, &err)
	m.handshakes = register(reg, m.handshakes, &err)
	m.routed = register(reg, m.routed, &err)
	m.streamErrs = register(reg, m.streamErrs, &err)
	m.refused = register(reg, m.refused, &err)
	m.detached = register(reg, m.detached, &err)
	m.resumed = register(reg, m.resumed, &err)
	m.resumeFailed = register(reg, m.resumeFailed, &err)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range []string{transportTCP, transportWebSocket} {
		m.sessions.WithLabelValues(t)
	}
	return m, gatherer, nil
}

// register registers c, or returns the collector already registered under its name (two
// Servers on one registry share their series). The first failure is kept in *errp.
func register[T prometheus.Collector](reg prometheus.Registerer, c T, errp *error) T {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = fmt.Errorf("xmppd: register metrics: %w", err)
	}
	return c
}
