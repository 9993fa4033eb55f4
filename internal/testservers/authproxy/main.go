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
	tok := os.Getenv("AUTHPROXY_TOKEN")
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // what the client asked for: the relay's Host check sees it
			if tok != "" {
				r.Out.Header.Set("Authorization", "Bearer "+tok)
			}
		},
		FlushInterval: -1, // SSE: every event at once
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, rp))
}
