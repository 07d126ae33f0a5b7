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
//	GET /healthz      {"status":"ok","domain":D,"callBridges":N,"certificate":{...}} (503 and
//	                  "shutting-down" during Shutdown; certificate: see CertCheck)
//	GET /callbridges  the connected Call Bridges: name, jid, remoteAddress, connectedSince
//	GET /callbridges/blocked   the component port's blocked sources: source, name, until
//	POST /callbridges/unblock?target=NAME|ADDRESS   clears them: {"unblocked":[sources]}
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
		doc := map[string]any{"status": status, "domain": s.domain, "callBridges": s.relay.Bridges()}
		if c := s.CertificateCheck(); c != nil {
			doc["certificate"] = c
		}
		writeJSON(w, code, doc)
	})
	mux.HandleFunc("GET /callbridges", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Components())
	})
	mux.HandleFunc("GET /callbridges/blocked", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.ComponentBlocks()))
	})
	mux.HandleFunc("POST /callbridges/unblock", func(w http.ResponseWriter, r *http.Request) {
		// A header a browser cannot send without a CORS preflight, which this listener never
		// grants: a web page cannot make the operator's browser call it.
		if r.Header.Get(AdminRequestHeader) == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the " + AdminRequestHeader + " header is required"})
			return
		}
		target := r.URL.Query().Get("target")
		if target == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "target (a Call Bridge name or an address) is required"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"target": target, "unblocked": nonNil(s.UnblockComponent(target))})
	})
	return mux
}

// AdminRequestHeader must be set (to anything) on the admin listener's POST requests.
const AdminRequestHeader = "X-Confab-Admin"

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
