//go:build linux

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/server"
)

// benchLean is the issue's bridge-against-bridge comparison: the child is
// rawecho (answers each JSON-RPC line directly, so it is not the
// bottleneck) and the caller is hand-written JSON-RPC with no SDK.
//
//	floor            lean caller ─stdio pipes─ rawecho
//	bridge only      fake relay (lean caller on the relay side) ─WS─ tetherd | tag-mcp-bridge ─stdio─ rawecho
//	via tether-relay lean HTTP caller ─ tether-relay ─WS─ tetherd | tag-mcp-bridge ─stdio─ rawecho
//
// "Added" is a path's p50 minus the floor's p50: what the bridge (and,
// for the second pair, the relay) adds over calling the child directly.
func benchLean(ctx context.Context, e *env, cfg config, rep *report) error {
	var cl closers
	defer cl.run()
	const inFlight = 32
	child := []string{e.rawecho}

	type fig struct {
		p50, p99, tput float64
	}
	measure := func(call callFn) (fig, error) {
		l, err := measureLatency(ctx, call, cfg.warmup, cfg.calls)
		if err != nil {
			return fig{}, err
		}
		tp, err := measureThroughput(ctx, []callFn{call}, inFlight, cfg.tpDur)
		if err != nil {
			return fig{}, err
		}
		return fig{l.pct(.5), l.pct(.99), tp}, nil
	}

	floorCaller, err := newLeanStdio(ctx, child)
	if err != nil {
		return err
	}
	cl.add(floorCaller.close)
	floor, err := measure(floorCaller.call)
	if err != nil {
		return fmt.Errorf("lean floor: %w", err)
	}

	// Bridge only, through the fake relay.
	fr, err := startFakeRelay()
	if err != nil {
		return err
	}
	cl.add(fr.close)
	// The WebSocket hop alone: a peer that answers at once, no child.
	pp, err := e.startWSEchoPeer(fr.url)
	if err != nil {
		return err
	}
	pb, err := fr.accept(ctx, pp)
	if err != nil {
		return err
	}
	if err := pb.openSession(ctx, "lean"); err != nil {
		return fmt.Errorf("ws echo peer: %w", err)
	}
	wsHop, err := measure(pb.call)
	if err != nil {
		return fmt.Errorf("ws echo peer: %w", err)
	}
	anyToken, _ := server.Issue([]byte("fake-relay-does-not-check-0123456789"), "leandev", server.ScopeBridge, time.Hour)
	td, err := e.runTetherd(fr.url, anyToken, "", map[string][]string{"lean": child})
	if err != nil {
		return err
	}
	tb, err := fr.accept(ctx, td)
	if err != nil {
		return err
	}
	if err := retry(ctx, 15*time.Second, func() error { return tb.openSession(ctx, "lean") }); err != nil {
		return fmt.Errorf("tetherd via fake relay: %w", err)
	}
	tetherOnly, err := measure(tb.call)
	if err != nil {
		return fmt.Errorf("tetherd via fake relay: %w", err)
	}

	var tagOnly fig
	haveTAG := e.needNode() == ""
	if haveTAG {
		tp, err := e.runTAGBridge(fr.url, anyToken, e.rawecho)
		if err != nil {
			return err
		}
		gb, err := fr.accept(ctx, tp)
		if err != nil {
			return err
		}
		if tagOnly, err = measure(gb.call); err != nil {
			return fmt.Errorf("tag-mcp-bridge via fake relay: %w", err)
		}
	}

	// The same bridges behind the real relay, called over HTTP.
	r, err := e.startRelay(ctx)
	if err != nil {
		return err
	}
	if _, err := e.startTetherd(ctx, r, "leandev", "", map[string][]string{"lean": child}); err != nil {
		return err
	}
	th, err := newLeanHTTP(ctx, r.mcpURL("leandev", "lean"), r.token("leandev", server.ScopeClient))
	if err != nil {
		return err
	}
	tetherRelay, err := measure(th.call)
	if err != nil {
		return fmt.Errorf("lean HTTP via tether-relay to tetherd: %w", err)
	}
	var tagRelay fig
	if haveTAG {
		if _, err := e.startTAGBridge(ctx, r, "leantag", e.rawecho); err != nil {
			return err
		}
		gh, err := newLeanHTTP(ctx, r.mcpURL("leantag", "default"), r.token("leantag", server.ScopeClient))
		if err != nil {
			return err
		}
		if tagRelay, err = measure(gh.call); err != nil {
			return fmt.Errorf("lean HTTP via tether-relay to tag-mcp-bridge: %w", err)
		}
	}

	const sec = "lean"
	rep.add(row{Section: sec, Name: "floor p50 (lean caller, stdio, rawecho)", Value: floor.p50, Unit: "µs"})
	rep.add(row{Section: sec, Name: "floor p99", Value: floor.p99, Unit: "µs"})
	rep.add(row{Section: sec, Name: fmt.Sprintf("floor calls/s at %d in flight", inFlight), Value: floor.tput, Unit: "calls/s"})
	pair := func(label string, tether, tag fig) {
		tAdd, gAdd := tether.p50-floor.p50, tag.p50-floor.p50
		rep.add(row{Section: sec, Name: label + ": tetherd p50", Value: tether.p50, Unit: "µs", Ratio: ratio(tether.p50, floor.p50), RatioTo: "floor"})
		rep.add(row{Section: sec, Name: label + ": tetherd p99", Value: tether.p99, Unit: "µs", Ratio: ratio(tether.p99, floor.p99), RatioTo: "floor"})
		if !haveTAG {
			rep.add(row{Section: sec, Name: label + ": tag-mcp-bridge", Status: statusNA, Note: e.needNode()})
			return
		}
		rep.add(row{Section: sec, Name: label + ": tag-mcp-bridge p50", Value: tag.p50, Unit: "µs", Ratio: ratio(tag.p50, floor.p50), RatioTo: "floor"})
		rep.add(row{Section: sec, Name: label + ": tag-mcp-bridge p99", Value: tag.p99, Unit: "µs", Ratio: ratio(tag.p99, floor.p99), RatioTo: "floor"})
		rep.add(row{Section: sec, Name: label + ": added by tetherd (p50 − floor)", Value: tAdd, Unit: "µs",
			Ratio: ratio(tAdd, gAdd), RatioTo: "tag added", Target: "≤ 0.3× tag added", Status: check(tAdd <= 0.3*gAdd)})
		rep.add(row{Section: sec, Name: label + ": added by tag-mcp-bridge (p50 − floor)", Value: gAdd, Unit: "µs"})
		rep.add(row{Section: sec, Name: fmt.Sprintf("%s: tetherd calls/s at %d in flight", label, inFlight), Value: tether.tput, Unit: "calls/s",
			Ratio: ratio(tether.tput, tag.tput), RatioTo: "tag", Target: "≥ 2× tag", Status: check(tether.tput >= 2*tag.tput)})
		rep.add(row{Section: sec, Name: fmt.Sprintf("%s: tag-mcp-bridge calls/s at %d in flight", label, inFlight), Value: tag.tput, Unit: "calls/s",
			Ratio: ratio(tag.tput, floor.tput), RatioTo: "floor"})
	}
	rep.add(row{Section: sec, Name: "WebSocket hop alone (fake relay ─WS─ echo peer, no child) p50", Value: wsHop.p50, Unit: "µs",
		Note: "the least any bridge adds over the floor: a peer that answers each frame at once"})
	pair("bridge only (fake relay)", tetherOnly, tagOnly)
	if haveTAG {
		tOwn, gOwn := tetherOnly.p50-floor.p50-wsHop.p50, tagOnly.p50-floor.p50-wsHop.p50
		rep.add(row{Section: sec, Name: "bridge only: tetherd's own work (added − WebSocket hop)", Value: tOwn, Unit: "µs",
			Ratio: ratio(tOwn, gOwn), RatioTo: "tag's own"})
		rep.add(row{Section: sec, Name: "bridge only: tag-mcp-bridge's own work (added − WebSocket hop)", Value: gOwn, Unit: "µs"})
	}
	pair("via tether-relay (lean HTTP)", tetherRelay, tagRelay)
	return nil
}

// retry calls f until it succeeds or timeout passes, waiting a little
// longer each time (the bridge may still be starting its child).
func retry(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil || strings.Contains(err.Error(), "socket closed") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}
