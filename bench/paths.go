//go:build linux

package main

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/relay/server"
)

// The four paths of items 1 and 2, all with the go-sdk client and the
// go-sdk echo server (internal/testservers/mcpserver) as the child:
//
//	floor         client ─stdio─ server
//	tether        client ─HTTP─ tether-relay ─WS─ tetherd ─stdio─ server
//	tag-bridge    client ─HTTP─ tether-relay (TAG façade) ─WS─ tag-mcp-bridge ─stdio─ server
//	supergateway  client ─HTTP─ supergateway (stateful) ─stdio─ server
type path struct {
	name string
	// open returns a new client session on the path.
	open func(ctx context.Context) (*mcp.ClientSession, error)
	skip string // why this path cannot run here
}

const benchDev = "bench"

// setupPaths starts the processes of the four paths, or returns the ones
// the previous section left running (latency, then throughput).
func setupPaths(ctx context.Context, e *env) ([]path, error) {
	if e.paths != nil {
		return e.paths, nil
	}
	server1 := []string{e.mcpserver}
	paths := []path{{name: "floor", open: func(ctx context.Context) (*mcp.ClientSession, error) { return sdkStdio(ctx, server1) }}}

	r, err := e.startRelay(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := e.startTetherd(ctx, r, benchDev, "", map[string][]string{"echo": server1}); err != nil {
		return nil, err
	}
	client := r.token(benchDev, server.ScopeClient)
	paths = append(paths, path{name: "tether", open: func(ctx context.Context) (*mcp.ClientSession, error) {
		return sdkHTTP(ctx, r.mcpURL(benchDev, "echo"), client)
	}})

	tag := path{name: "tag-bridge"}
	sg := path{name: "supergateway"}
	if why := e.needNode(); why != "" {
		tag.skip, sg.skip = why, why
	} else {
		if _, err := e.startTAGBridge(ctx, r, "tagdev", e.mcpserver); err != nil {
			return nil, err
		}
		tagClient := r.token("tagdev", server.ScopeClient)
		tag.open = func(ctx context.Context) (*mcp.ClientSession, error) {
			return sdkHTTP(ctx, r.mcpURL("tagdev", "default"), tagClient)
		}
		url, _, err := e.startSupergateway(ctx, e.mcpserver)
		if err != nil {
			return nil, err
		}
		sg.open = func(ctx context.Context) (*mcp.ClientSession, error) { return sdkHTTP(ctx, url, "") }
	}
	e.paths = append(paths, tag, sg)
	return e.paths, nil
}

func benchLatency(ctx context.Context, e *env, cfg config, rep *report) error {
	paths, err := setupPaths(ctx, e)
	if err != nil {
		return err
	}
	var cl closers
	defer cl.run()
	type pcts struct{ p50, p90, p99 float64 }
	got := map[string]pcts{}
	for _, p := range paths {
		if p.skip != "" {
			rep.add(row{Section: "latency", Name: p.name + " p50", Status: statusNA, Note: p.skip})
			continue
		}
		cs, err := p.open(ctx)
		if err != nil {
			return err
		}
		cl.add(func() { cs.Close() })
		l, err := measureLatency(ctx, sdkEcho(cs), cfg.warmup, cfg.calls)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		got[p.name] = pcts{l.pct(.5), l.pct(.9), l.pct(.99)}
	}
	floor := got["floor"]
	for _, p := range paths {
		v, ok := got[p.name]
		if !ok {
			continue
		}
		for _, q := range []struct {
			name       string
			val, floor float64
		}{{"p50", v.p50, floor.p50}, {"p90", v.p90, floor.p90}, {"p99", v.p99, floor.p99}} {
			rw := row{Section: "latency", Name: fmt.Sprintf("%s %s (%d calls)", p.name, q.name, cfg.calls), Value: q.val, Unit: "µs"}
			if p.name != "floor" {
				rw.Ratio, rw.RatioTo = ratio(q.val, q.floor), "floor"
			}
			if p.name == "tether" && q.name == "p50" {
				rw.Target, rw.Status = "≤ 2× floor", check(rw.Ratio <= 2)
			}
			if p.name == "tether" && q.name == "p99" {
				rw.Target, rw.Status = "≤ 3× floor", check(rw.Ratio <= 3)
			}
			rep.add(rw)
		}
	}
	if t, ok := got["tether"]; ok {
		if g, ok := got["tag-bridge"]; ok {
			rep.add(row{Section: "latency", Name: "tether p50 vs tag-bridge p50", Value: t.p50, Unit: "µs", Ratio: ratio(t.p50, g.p50), RatioTo: "tag-bridge"})
		}
		if g, ok := got["supergateway"]; ok {
			rep.add(row{Section: "latency", Name: "tether p50 vs supergateway p50", Value: t.p50, Unit: "µs", Ratio: ratio(t.p50, g.p50), RatioTo: "supergateway"})
		}
	}
	return nil
}

func throughputOf(ctx context.Context, paths []path, cfg config, rep *report) error {
	var cl closers
	defer cl.run()
	type key struct {
		path     string
		conc     int
		sessions int
	}
	got := map[key]float64{}
	for _, p := range paths {
		if p.skip != "" {
			rep.add(row{Section: "throughput", Name: p.name, Status: statusNA, Note: p.skip})
			continue
		}
		var calls []callFn
		for range 8 {
			cs, err := p.open(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			cl.add(func() { cs.Close() })
			calls = append(calls, sdkEcho(cs))
		}
		for _, conc := range []int{1, 8, 64} {
			for _, sessions := range []int{1, 8} {
				if conc == 1 && sessions == 8 {
					continue // one call in flight uses one session either way
				}
				v, err := measureThroughput(ctx, calls[:sessions], conc, cfg.tpDur)
				if err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				got[key{p.name, conc, sessions}] = v
			}
		}
	}
	for _, p := range paths {
		for _, conc := range []int{1, 8, 64} {
			for _, sessions := range []int{1, 8} {
				v, ok := got[key{p.name, conc, sessions}]
				if !ok {
					continue
				}
				rw := row{Section: "throughput", Name: fmt.Sprintf("%s c=%d, %d session(s)", p.name, conc, sessions), Value: v, Unit: "calls/s"}
				if p.name != "floor" {
					rw.Ratio, rw.RatioTo = ratio(v, got[key{"floor", conc, sessions}]), "floor"
				}
				if p.name == "tether" && conc == 64 {
					rw.Target, rw.Status = "≥ 0.5× floor", check(rw.Ratio >= 0.5)
				}
				rep.add(rw)
			}
		}
	}
	return nil
}

// benchThroughput is item 2, on the processes of the latency section when
// it ran just before.
func benchThroughput(ctx context.Context, e *env, cfg config, rep *report) error {
	paths, err := setupPaths(ctx, e)
	if err != nil {
		return err
	}
	return throughputOf(ctx, paths, cfg, rep)
}
