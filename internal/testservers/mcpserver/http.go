package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// serveHTTP serves s over MCP Streamable HTTP at /mcp until ctx ends. A
// stateful server speaks the 2025 era with sessions; a stateless one also
// speaks 2026-07-28. requireHeader "Name=value" makes every request without
// that header get 401, like a server behind an API key.
func serveHTTP(ctx context.Context, s *mcp.Server, addr string, stateless bool, requireHeader string) error {
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: stateless})
	if requireHeader != "" {
		name, want, ok := strings.Cut(requireHeader, "=")
		if !ok {
			return fmt.Errorf("-require-header %q: want NAME=VALUE", requireHeader)
		}
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(name) != want {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s/mcp\n", ln.Addr())
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
