//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/server"
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
	// Start-up is not idling: besides the children's handshakes and the
	// first catalog, the Go runtime keeps collecting and returning memory
	// for a while after start, and the first keepalives are exchanged. That
	// window is reported on its own row so it stays visible.
	settle0, err := ctxSwitches(pid)
	if err != nil {
		return err
	}
	settleStart := time.Now()
	select {
	case <-time.After(cfg.settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	settle1, err := ctxSwitches(pid)
	if err != nil {
		return err
	}
	settleRate := float64(settle1-settle0) / time.Since(settleStart).Seconds()
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
	window := fmt.Sprintf("%.0f s idle after %.0f s settling, 3 children (2 rawecho, 1 mcpserver)", el, cfg.settle.Seconds())
	rep.add(row{Section: "footprint", Name: "tetherd idle RSS", Value: mib(rss), Unit: "MiB", Target: "≤ 15 MB", Status: check(rss <= 15e6), Note: window})
	rep.add(row{Section: "footprint", Name: "tetherd idle CPU", Value: float64(cpu1-cpu0) / userHZ, Unit: "s", Note: "utime+stime over the window"})
	rep.add(row{Section: "footprint", Name: "tetherd wakeups while settling after start", Value: settleRate, Unit: "/s",
		Note: fmt.Sprintf("first %.0f s after the servers were ready (not idle: runtime GC/scavenging, first keepalives)", cfg.settle.Seconds())})
	wake := float64(cs1-cs0) / el
	rep.add(row{Section: "footprint", Name: "tetherd idle wakeups", Value: wake, Unit: "/s", Target: "≤ 1 /s", Status: check(wake <= 1),
		Note: "context switches summed over threads"})
	td.stop()
	trayRSS(ctx, e, r, servers, rep)

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

// trayRSS measures the tray app running its own engine with the same three
// children, on a private DBus session bus (the tray registers its icon and
// menu there; no desktop is needed). The figure includes the in-process
// engine, since that is what a user without the service runs.
func trayRSS(ctx context.Context, e *env, r *relayProc, servers map[string][]string, rep *report) {
	na := func(why string) {
		rep.add(row{Section: "footprint", Name: "tray RSS (with its engine)", Status: statusNA, Note: why})
	}
	if e.tray == "" {
		na("no tray binary in -bin")
		return
	}
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		na("dbus-daemon not installed")
		return
	}
	bus := exec.CommandContext(ctx, "dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	out, err := bus.StdoutPipe()
	if err != nil || bus.Start() != nil {
		na("cannot start dbus-daemon")
		return
	}
	defer func() { bus.Process.Kill(); bus.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		na("dbus-daemon printed no address")
		return
	}
	home, err := os.MkdirTemp(e.dir, "tray-")
	if err != nil {
		na(err.Error())
		return
	}
	if err := writeMCPJSON(filepath.Join(home, "mcp.json"), servers); err != nil {
		na(err.Error())
		return
	}
	settings := fmt.Sprintf(`{"relay": %q}`, r.url())
	if err := os.WriteFile(filepath.Join(home, "settings.json"), []byte(settings), 0o600); err != nil {
		na(err.Error())
		return
	}
	p, err := e.start("tray", []string{"TETHER_HOME=" + home, "TETHER_TOKEN=" + r.token("tray", server.ScopeBridge),
		"DBUS_SESSION_BUS_ADDRESS=" + strings.TrimSpace(addr)}, e.tray)
	if err != nil {
		na(err.Error())
		return
	}
	defer p.stop()
	for name := range servers {
		if err := r.waitReady(ctx, "tray", name, p, 30*time.Second); err != nil {
			na("tray did not serve: " + err.Error())
			return
		}
	}
	select { // settle after start-up, as for tetherd above
	case <-time.After(time.Second):
	case <-ctx.Done():
		return
	}
	rss, _, err := memStatus(p.pid())
	if err != nil {
		na(err.Error())
		return
	}
	rep.add(row{Section: "footprint", Name: "tray RSS (with its engine)", Value: mib(rss), Unit: "MiB",
		Note: "tray running its own engine with the same 3 children, private DBus session"})
}
