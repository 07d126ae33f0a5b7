package xmppd

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler returns the server's operational endpoints, for a listener the operator
// trusts (it is not authenticated):
//
//	GET /metrics      Prometheus metrics
//	GET /healthz      {"status":"ok","callBridges":N} (503 and "shutting-down" during Shutdown)
//	GET /callbridges  the connected Call Bridges: name, jid, remoteAddress, connectedSince
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	g := s.m.gatherer
	if g == nil {
		// The Registerer given is not a Gatherer: serve the process-wide default.
		g = prometheus.DefaultGatherer
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status, code := "ok", http.StatusOK
		if s.closing() {
			status, code = "shutting-down", http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"status": status, "callBridges": s.relay.Bridges()})
	})
	mux.HandleFunc("GET /callbridges", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Components())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
