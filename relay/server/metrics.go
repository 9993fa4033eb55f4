package server

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The Prometheus text exposition is written by hand. client_golang would
// pull a large dependency tree (protobuf, procfs, common, ...) into a small
// self-hosted binary for four metric families; the text format is stable
// and simple: https://prometheus.io/docs/instrumenting/exposition_formats/.

// callBuckets are the histogram's upper bounds in seconds: relayed calls
// range from sub-millisecond pipes to minute-long tools.
var callBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type metrics struct {
	bridges  atomic.Int64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	// sessionsResumed counts 2025-era sessions re-created on a socket
	// that had not seen them (bridge reconnect, relay or tetherd restart).
	sessionsResumed atomic.Uint64
	// streamsResumed counts POST streams resumed by a GET with
	// Last-Event-ID (poststream.go).
	streamsResumed atomic.Uint64
	// takeovers counts bridges that took a slot held with the same token.
	takeovers atomic.Uint64

	mu      sync.Mutex
	refusal map[string]uint64 // requests refused before routing, by reason (host, origin, ...)
	calls   map[string]uint64 // by status: ok, error, timeout, cancelled, unavailable
	buckets []uint64          // cumulative counts are computed when written
	sum     float64
	count   uint64
}

func newMetrics() *metrics {
	return &metrics{calls: make(map[string]uint64), refusal: make(map[string]uint64), buckets: make([]uint64, len(callBuckets))}
}

// refused counts a request turned away before routing.
func (m *metrics) refused(reason string) {
	m.mu.Lock()
	m.refusal[reason]++
	m.mu.Unlock()
}

func (m *metrics) addBytes(direction string, n int) {
	if direction == "in" {
		m.bytesIn.Add(uint64(n))
	} else {
		m.bytesOut.Add(uint64(n))
	}
}

func (m *metrics) observeCall(status string, d time.Duration) {
	sec := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[status]++
	m.sum += sec
	m.count++
	for i, le := range callBuckets {
		if sec <= le {
			m.buckets[i]++
			break
		}
	}
}

// MetricsHandler serves the Prometheus text without any check, for a
// listener of its own that only the operator reaches (tether-relay serve
// --metrics-listen 127.0.0.1:9090). The relay's own handler does not serve
// it to anonymous clients: see Server.MetricsToken.
func (s *Server) MetricsHandler() http.Handler {
	s.init()
	return http.HandlerFunc(s.handleMetrics)
}

// handleGuardedMetrics is GET /metrics on the relay's public handler: 404
// unless a MetricsToken is set, then 401 without exactly that bearer token.
// The counts say how busy the relay is and how many bridges it holds:
// nothing an anonymous client of a public relay needs to know.
func (s *Server) handleGuardedMetrics(w http.ResponseWriter, r *http.Request) {
	if s.MetricsToken == "" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "metrics are not served on this address"})
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.MetricsToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tether-relay metrics"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "metrics need the relay's metrics token"})
		return
	}
	s.handleMetrics(w, r)
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	m := s.metrics
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP tether_relay_bridges_connected Bridges holding a slot.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_bridges_connected gauge\n")
	fmt.Fprintf(&b, "tether_relay_bridges_connected %d\n", m.bridges.Load())

	m.mu.Lock()
	statuses := make([]string, 0, len(m.calls))
	for st := range m.calls {
		statuses = append(statuses, st)
	}
	sort.Strings(statuses)
	fmt.Fprintf(&b, "# HELP tether_relay_calls_total Relayed MCP requests by outcome.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_calls_total counter\n")
	for _, st := range statuses {
		fmt.Fprintf(&b, "tether_relay_calls_total{status=%q} %d\n", st, m.calls[st])
	}
	reasons := make([]string, 0, len(m.refusal))
	for r := range m.refusal {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	fmt.Fprintf(&b, "# HELP tether_relay_refused_total Requests refused before routing, by reason.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_refused_total counter\n")
	for _, r := range reasons {
		fmt.Fprintf(&b, "tether_relay_refused_total{reason=%q} %d\n", r, m.refusal[r])
	}
	fmt.Fprintf(&b, "# HELP tether_relay_call_duration_seconds Time from forwarding a request to its answer.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_call_duration_seconds histogram\n")
	var cum uint64
	for i, le := range callBuckets {
		cum += m.buckets[i]
		fmt.Fprintf(&b, "tether_relay_call_duration_seconds_bucket{le=\"%g\"} %d\n", le, cum)
	}
	fmt.Fprintf(&b, "tether_relay_call_duration_seconds_bucket{le=\"+Inf\"} %d\n", m.count)
	fmt.Fprintf(&b, "tether_relay_call_duration_seconds_sum %g\n", m.sum)
	fmt.Fprintf(&b, "tether_relay_call_duration_seconds_count %d\n", m.count)
	m.mu.Unlock()

	fmt.Fprintf(&b, "# HELP tether_relay_bytes_total WebSocket payload bytes exchanged with bridges.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_bytes_total counter\n")
	fmt.Fprintf(&b, "tether_relay_bytes_total{direction=\"in\"} %d\n", m.bytesIn.Load())
	fmt.Fprintf(&b, "tether_relay_bytes_total{direction=\"out\"} %d\n", m.bytesOut.Load())

	fmt.Fprintf(&b, "# HELP tether_relay_sessions_resumed_total Client sessions re-created on a new bridge socket or relay process.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_sessions_resumed_total counter\n")
	fmt.Fprintf(&b, "tether_relay_sessions_resumed_total %d\n", m.sessionsResumed.Load())

	fmt.Fprintf(&b, "# HELP tether_relay_streams_resumed_total POST streams resumed with Last-Event-ID after their connection dropped.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_streams_resumed_total counter\n")
	fmt.Fprintf(&b, "tether_relay_streams_resumed_total %d\n", m.streamsResumed.Load())

	fmt.Fprintf(&b, "# HELP tether_relay_slot_takeovers_total Bridges that took a dev slot held by a bridge with the same token.\n")
	fmt.Fprintf(&b, "# TYPE tether_relay_slot_takeovers_total counter\n")
	fmt.Fprintf(&b, "tether_relay_slot_takeovers_total %d\n", m.takeovers.Load())

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}
