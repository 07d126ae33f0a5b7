package turnd

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Transports a client reaches the server by: the transport label of the metrics and
// Allocation.Transport.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// Directions of relayed traffic: the direction label of the metrics.
const (
	toPeer   = "to_peer"   // from the client, out of the relayed address
	fromPeer = "from_peer" // into the relayed address, for the client
)

// metrics are the server's Prometheus series.
type metrics struct {
	allocations *prometheus.GaugeVec   // transport
	created     *prometheus.CounterVec // transport
	refused     *prometheus.CounterVec // cause
	bytes       *prometheus.CounterVec // direction
	packets     *prometheus.CounterVec // direction
	dropped     *prometheus.CounterVec // direction
	connections *prometheus.GaugeVec   // transport

	// Resolved once: the relay path adds to them per packet.
	bytesTo, bytesFrom, packetsTo, packetsFrom, droppedTo, droppedFrom prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		allocations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "confab", Subsystem: "turn", Name: "allocations",
			Help: "TURN allocations current, by the transport the client uses (udp, tcp, tls).",
		}, []string{"transport"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "turn", Name: "allocations_created_total",
			Help: "TURN allocations created, by the transport the client uses.",
		}, []string{"transport"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "turn", Name: "refused_total",
			Help: "Requests, messages and connections refused, by cause (no_credentials is the first step of every allocation).",
		}, []string{"cause"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "turn", Name: "relayed_bytes_total",
			Help: "Payload bytes relayed, by direction: to_peer (sent from relayed addresses), from_peer (received on them).",
		}, []string{"direction"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "turn", Name: "relayed_packets_total",
			Help: "Datagrams relayed, by direction.",
		}, []string{"direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "confab", Subsystem: "turn", Name: "relay_dropped_total",
			Help: "Datagrams dropped because their allocation was over its bandwidth cap, by direction.",
		}, []string{"direction"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "confab", Subsystem: "turn", Name: "connections",
			Help: "TCP and TLS client connections open, by transport.",
		}, []string{"transport"}),
	}
	var err error
	m.allocations = register(reg, m.allocations, &err)
	m.created = register(reg, m.created, &err)
	m.refused = register(reg, m.refused, &err)
	m.bytes = register(reg, m.bytes, &err)
	m.packets = register(reg, m.packets, &err)
	m.dropped = register(reg, m.dropped, &err)
	m.connections = register(reg, m.connections, &err)
	if err != nil {
		return nil, err
	}
	for _, t := range []string{TransportUDP, TransportTCP, TransportTLS} {
		m.allocations.WithLabelValues(t)
		m.created.WithLabelValues(t)
	}
	m.connections.WithLabelValues(TransportTCP)
	m.connections.WithLabelValues(TransportTLS)
	for _, c := range causes {
		m.refused.WithLabelValues(string(c))
	}
	m.bytesTo, m.bytesFrom = m.bytes.WithLabelValues(toPeer), m.bytes.WithLabelValues(fromPeer)
	m.packetsTo, m.packetsFrom = m.packets.WithLabelValues(toPeer), m.packets.WithLabelValues(fromPeer)
	m.droppedTo, m.droppedFrom = m.dropped.WithLabelValues(toPeer), m.dropped.WithLabelValues(fromPeer)
	return m, nil
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
		*errp = fmt.Errorf("turnd: register metrics: %w", err)
	}
	return c
}
