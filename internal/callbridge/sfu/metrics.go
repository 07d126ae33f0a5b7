package sfu

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports the SFU's counters at scrape time (the forwarding path only updates
// atomics).
type metrics struct {
	s                                                  *SFU
	rooms, participants, received, forwarded, fwdBytes *prometheus.Desc
	dropped, pli, bitrate                              *prometheus.Desc
}

func newMetrics(reg prometheus.Registerer, s *SFU) *metrics {
	m := &metrics{
		s:            s,
		rooms:        prometheus.NewDesc("confab_sfu_rooms", "Rooms with participants.", nil, nil),
		participants: prometheus.NewDesc("confab_sfu_participants", "Participants in all rooms.", nil, nil),
		received:     prometheus.NewDesc("confab_sfu_received_packets_total", "RTP packets received from publishers (within the flood limit).", nil, nil),
		forwarded:    prometheus.NewDesc("confab_sfu_forwarded_packets_total", "RTP packets forwarded to subscribers, by kind.", []string{"kind"}, nil),
		fwdBytes:     prometheus.NewDesc("confab_sfu_forwarded_bytes_total", "RTP bytes forwarded to subscribers, by kind.", []string{"kind"}, nil),
		dropped:      prometheus.NewDesc("confab_sfu_rate_limited_packets_total", "RTP packets dropped by the per-participant flood limit.", nil, nil),
		pli:          prometheus.NewDesc("confab_sfu_keyframe_requests_total", "Picture loss indications sent to publishers.", nil, nil),
		bitrate:      prometheus.NewDesc("confab_sfu_forwarded_bitrate_bps", "Forwarded bit rate over the last 200 ms, by kind.", []string{"kind"}, nil),
	}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				s.log.Warn("metrics not registered", "err", err)
			}
		}
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.rooms, m.participants, m.received, m.forwarded, m.fwdBytes, m.dropped, m.pli, m.bitrate} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.s.Stats()
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(m.rooms, g, float64(st.Rooms))
	ch <- prometheus.MustNewConstMetric(m.participants, g, float64(st.Participants))
	ch <- prometheus.MustNewConstMetric(m.received, c, float64(st.ReceivedPackets))
	ch <- prometheus.MustNewConstMetric(m.forwarded, c, float64(st.ForwardedAudioPackets), "audio")
	ch <- prometheus.MustNewConstMetric(m.forwarded, c, float64(st.ForwardedVideoPackets), "video")
	ch <- prometheus.MustNewConstMetric(m.fwdBytes, c, float64(st.ForwardedAudioBytes), "audio")
	ch <- prometheus.MustNewConstMetric(m.fwdBytes, c, float64(st.ForwardedVideoBytes), "video")
	ch <- prometheus.MustNewConstMetric(m.dropped, c, float64(st.RateLimited))
	ch <- prometheus.MustNewConstMetric(m.pli, c, float64(st.KeyframeRequests))
	ch <- prometheus.MustNewConstMetric(m.bitrate, g, float64(st.AudioBitRate), "audio")
	ch <- prometheus.MustNewConstMetric(m.bitrate, g, float64(st.VideoBitRate), "video")
}
