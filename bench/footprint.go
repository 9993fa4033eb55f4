package main

import (
	"context"
	"fmt"
	"time"
)

// benchFootprint: tetherd idle with three children (RSS, CPU seconds,
// wakeups per second), then tether-relay's RSS per connected bridge.
func benchFootprint(ctx context.Context, e *env, cfg config, rep *report) error {
	r, err := e.startRelay(ctx)
	if err != nil {
		return err
	}
	servers := map[string][]string{"one": {e.rawecho}, "two": {e.rawecho}, "three": {e.mcpserver}}
	td, err := e.startTetherd(ctx, r, "idle", "", servers)
	if err != nil {
		return err
	}
	pid := td.pid()
	// Start-up work (children, handshakes, the first catalog) is not idling.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	cs0, err := ctxSwitches(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	select {
	case <-time.After(cfg.idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	el := time.Since(start).Seconds()
	cpu1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	cs1, err := ctxSwitches(pid)
	if err != nil {
		return err
	}
	rss, _, err := memStatus(pid)
	if err != nil {
		return err
	}
	window := fmt.Sprintf("%.0f s idle, 3 children (2 rawecho, 1 mcpserver)", el)
	rep.add(row{Section: "footprint", Name: "tetherd idle RSS", Value: mib(rss), Unit: "MiB", Target: "≤ 15 MB", Status: check(rss <= 15e6), Note: window})
	rep.add(row{Section: "footprint", Name: "tetherd idle CPU", Value: float64(cpu1-cpu0) / userHZ, Unit: "s", Note: "utime+stime over the window"})
	wake := float64(cs1-cs0) / el
	rep.add(row{Section: "footprint", Name: "tetherd idle wakeups", Value: wake, Unit: "/s", Target: "≤ 1 /s", Status: check(wake <= 1),
		Note: "context switches summed over threads"})
	rep.add(row{Section: "footprint", Name: "tray RSS", Status: statusNA, Note: "n/a (tray not built yet)"})
	td.stop()

	// Relay RSS per bridge: a fresh relay, then N simulated bridges held open.
	e.stopAll()
	r, err = e.startRelay(ctx)
	if err != nil {
		return err
	}
	before, _, err := memStatus(r.p.pid())
	if err != nil {
		return err
	}
	bs, err := connectSimBridges(ctx, r, cfg.bridges)
	if err != nil {
		return err
	}
	defer closeSimBridges(bs)
	after, _, err := memStatus(r.p.pid())
	if err != nil {
		return err
	}
	per := float64(after-before) / float64(cfg.bridges) / 1024
	rep.add(row{Section: "footprint", Name: fmt.Sprintf("tether-relay RSS per bridge (%d held open)", cfg.bridges), Value: per, Unit: "KiB",
		Note: fmt.Sprintf("RSS %.1f MiB idle → %.1f MiB", mib(before), mib(after))})
	return nil
}
