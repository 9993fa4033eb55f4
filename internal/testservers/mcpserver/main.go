// Command mcpserver is the stdio MCP server that the repo's tests run against.
// It is built on the official go-sdk so its wire behaviour is that of a real,
// well-behaved server, plus a few deliberately rude tools (crash, garbage,
// huge) and flags that pin it to one MCP era.
//
// Flags:
//
//	-era both|legacy|modern  legacy rejects server/discover (-32601), modern
//	                         rejects initialize, both is the SDK default
//	-extra-tools N           add N trivial tools extra_000.. (pagination tests)
//	-page-size K             the SDK's list page size (0 = SDK default)
//	-stderr-lines N          write N lines to stderr at start
//	-spawn-grandchild        start `sleep 600` and print "grandchild pid=NNN"
//	-http ADDR               serve MCP Streamable HTTP on ADDR (127.0.0.1:0 for
//	                         any port) at /mcp instead of stdio, and print
//	                         "listening on http://HOST:PORT/mcp" on stdout
//	-stateless               with -http: a stateless server (2026-07-28 era)
//	-require-header N=V      with -http: answer 401 unless header N is V
//	-call-log FILE           append one line per request received, its
//	                         method and params as JSON (tests count what
//	                         reached this child, e.g. the abuse suite)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"reflect"
	"sync"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	eraBoth   = "both"
	eraLegacy = "legacy"
	eraModern = "modern"
)

func main() {
	era := flag.String("era", eraBoth, "protocol era: both, legacy or modern")
	extraTools := flag.Int("extra-tools", 0, "number of extra trivial tools")
	pageSize := flag.Int("page-size", 0, "list page size (0 = SDK default)")
	stderrLines := flag.Int("stderr-lines", 0, "lines to write to stderr at start")
	grandchild := flag.Bool("spawn-grandchild", false, "start a `sleep 600` grandchild")
	httpAddr := flag.String("http", "", "serve Streamable HTTP on this address instead of stdio")
	stateless := flag.Bool("stateless", false, "with -http: stateless server")
	requireHeader := flag.String("require-header", "", "with -http: NAME=VALUE header required on every request")
	callLog := flag.String("call-log", "", "append each request's method and params to this file")
	flag.Parse()

	if *era != eraBoth && *era != eraLegacy && *era != eraModern {
		fmt.Fprintf(os.Stderr, "mcpserver: unknown -era %q\n", *era)
		os.Exit(2)
	}
	for i := range *stderrLines {
		fmt.Fprintf(os.Stderr, "mcpserver stderr line %d\n", i)
	}
	if *grandchild {
		spawnGrandchild()
	}

	s := newServer(*era, *extraTools, *pageSize)
	if *callLog != "" {
		f, err := os.OpenFile(*callLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mcpserver: %v\n", err)
			os.Exit(1)
		}
		defer f.Close()
		s.AddReceivingMiddleware(callLogMiddleware(f))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *httpAddr != "" {
		if err := serveHTTP(ctx, s, *httpAddr, *stateless, *requireHeader); err != nil {
			fmt.Fprintf(os.Stderr, "mcpserver: %v\n", err)
			os.Exit(1)
		}
		return
	}
	// A negative MaxLineLength lifts the 16 MiB inbound cap: tests may send
	// arbitrarily large arguments.
	if err := s.Run(ctx, &mcp.StdioTransport{MaxLineLength: -1}); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "mcpserver: %v\n", err)
		os.Exit(1)
	}
}

// spawnGrandchild starts a long sleep in our own process group so that tests
// can check the supervisor kills the whole group, not just its direct child.
func spawnGrandchild() {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "mcpserver: spawn grandchild: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "grandchild pid=%d\n", cmd.Process.Pid)
	go func() { _ = cmd.Wait() }() // reap it if it ever exits while we live
}

func newServer(era string, extraTools, pageSize int) *mcp.Server {
	opts := &mcp.ServerOptions{
		PageSize:           pageSize,
		CompletionHandler:  complete,
		SubscribeHandler:   subscribe,
		UnsubscribeHandler: unsubscribe,
		Capabilities: &mcp.ServerCapabilities{
			Logging: &mcp.LoggingCapabilities{},
			Tools:   &mcp.ToolCapabilities{ListChanged: true},
		},
	}
	if era == eraModern {
		// Advertise only the stateless version in server/discover.
		opts.SupportedProtocolVersions = []string{"2026-07-28"}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "tether-testserver", Title: "Tether test server", Version: "1.0.0"}, opts)
	// Added after NewServer, so it wraps the SDK's own middleware and sees
	// every request first.
	s.AddReceivingMiddleware(eraMiddleware(era))
	addTools(s)
	addContent(s)
	for i := range extraTools {
		name := fmt.Sprintf("extra_%03d", i)
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: "trivial extra tool"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return text(name), nil, nil
		})
	}
	return s
}

// eraMiddleware makes the server look like a server of only one era: a
// legacy server does not know server/discover and refuses requests that
// carry the 2026 per-request protocol version (the go-sdk would otherwise
// answer them as a 2026 server; a real 2025-only server ignores that _meta,
// which the bridge tells apart too — see mcpchild's era tests with rawecho);
// a modern (stateless-only) server refuses the initialize handshake.
func eraMiddleware(era string) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch {
			case era == eraLegacy && method == "server/discover":
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "method not found: server/discover"}
			case era == eraLegacy && has2026Meta(req):
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "this server speaks only 2025-era MCP"}
			case era == eraModern && method == "initialize":
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "method not found: initialize (this server speaks only 2026-07-28; use server/discover)"}
			}
			return next(ctx, method, req)
		}
	}
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// callLogMiddleware writes one line per request: the method, a space, and
// the params as JSON. One Write per line with O_APPEND keeps lines whole.
func callLogMiddleware(w io.Writer) mcp.Middleware {
	var mu sync.Mutex
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			var params []byte
			if req != nil {
				if p := req.GetParams(); p != nil && !reflect.ValueOf(p).IsNil() {
					params, _ = json.Marshal(p)
				}
			}
			mu.Lock()
			_, _ = w.Write(append([]byte(method+" "+string(params)), '\n'))
			mu.Unlock()
			return next(ctx, method, req)
		}
	}
}

// has2026Meta reports whether a request names a 2026 protocol version in
// its per-request _meta.
func has2026Meta(req mcp.Request) bool {
	if req == nil {
		return false
	}
	p := req.GetParams()
	if p == nil || reflect.ValueOf(p).IsNil() { // a typed nil: no params at all
		return false
	}
	v, _ := p.GetMeta()[mcp.MetaKeyProtocolVersion].(string)
	return v >= "2026-07-28"
}
