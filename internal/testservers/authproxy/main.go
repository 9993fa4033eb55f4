// Command authproxy is a loopback reverse proxy that adds one bearer token
// to every request. The MCP conformance suite sends no Authorization
// header; this lets it test MCP endpoints that need one (tether-relay's).
// The token comes from $AUTHPROXY_TOKEN, never argv.
//
//	AUTHPROXY_TOKEN=… authproxy -listen 127.0.0.1:0 -target http://127.0.0.1:8080
//
// It prints "listening on http://ADDR" once it accepts connections.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "base URL to forward to")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("authproxy: -target must be a URL, got %q", *target)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, newProxy(u, os.Getenv("AUTHPROXY_TOKEN"))))
}

// newProxy forwards every request to target with tok as its bearer token.
func newProxy(target *url.URL, tok string) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // what the client asked for: the relay's Host check sees it
			if tok != "" {
				r.Out.Header.Set("Authorization", "Bearer "+tok)
			}
		},
		FlushInterval: -1, // SSE: every event at once
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Full duplex, as a proxy must be. By default Go's HTTP/1 server
		// consumes and closes what is left of a request body once the
		// response starts. The proxy's transport is still busy with that
		// body after the upstream has read all of it (its writer reads
		// once more to see EOF), and an upstream that answers at once —
		// the relay opening a tools/call's SSE stream with the child's
		// elicitation/create a millisecond after the request — could win
		// that race: the transport's read then failed ("invalid Read on
		// closed Body"), it closed the upstream connection, and the SSE
		// stream died mid-call (conformance flake: a 60 s client timeout).
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			log.Printf("authproxy: full duplex: %v", err)
		}
		rp.ServeHTTP(w, r)
	})
}
