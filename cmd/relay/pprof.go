package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// startPprof serves net/http/pprof on $TETHER_PPROF (e.g. 127.0.0.1:6060)
// when it is set, on its own listener so profiles never share the public
// port. It is for profiling under load; leave it unset in production.
func startPprof(logger *slog.Logger) {
	addr := os.Getenv("TETHER_PPROF")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Warn("pprof listener not started", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("pprof listening", "addr", ln.Addr().String())
	go http.Serve(ln, mux)
}
