//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tether-dev/tether/relay/server"
)

const payloadBytes = 10 << 20

func hugeRequest(id int64) []byte {
	return []byte(`{"jsonrpc":"2.0","id":` + strconv.FormatInt(id, 10) +
		`,"method":"tools/call","params":{"name":"huge","arguments":{"bytes":` + strconv.Itoa(payloadBytes) + `}}}`)
}

func checkHuge(resp []byte) error {
	if len(resp) < payloadBytes || !bytes.Contains(resp, []byte(`"result"`)) {
		return fmt.Errorf("huge: %d-byte answer %.200s", len(resp), resp)
	}
	return nil
}

// benchPayload: a 10 MiB tool result (mcpserver's huge tool) through the
// full path with the lean HTTP caller, against the same call straight over
// stdio, and the peak RSS each of tetherd and tether-relay adds during it.
func benchPayload(ctx context.Context, e *env, cfg config, rep *report) error {
	var cl closers
	defer cl.run()
	rounds := 5
	if cfg.quick {
		rounds = 2
	}
	child := []string{e.mcpserver}

	direct, err := newLeanStdio(ctx, child)
	if err != nil {
		return err
	}
	cl.add(direct.close)
	var floorTimes []time.Duration
	for i := range rounds + 1 {
		start := time.Now()
		resp, err := direct.roundTrip(ctx, int64(100+i), hugeRequest(int64(100+i)))
		if err == nil {
			err = checkHuge(resp)
		}
		if err != nil {
			return fmt.Errorf("huge over stdio: %w", err)
		}
		if i > 0 { // the first call warms the child
			floorTimes = append(floorTimes, time.Since(start))
		}
	}

	r, err := e.startRelay(ctx)
	if err != nil {
		return err
	}
	td, err := e.startTetherd(ctx, r, benchDev, "", map[string][]string{"big": child})
	if err != nil {
		return err
	}
	lh, err := newLeanHTTP(ctx, r.mcpURL(benchDev, "big"), r.token(benchDev, server.ScopeClient))
	if err != nil {
		return err
	}
	// Warm both processes with small calls, so the baseline RSS includes
	// the steady state and only the payload's extra shows.
	echoCall := func(ctx context.Context) error {
		b, _, err := lh.post(ctx, echoRequest(1))
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte(`"result"`)) {
			return fmt.Errorf("echo through big: %.200s", b)
		}
		return nil
	}
	if _, err := measureLatency(ctx, echoCall, 50, 0); err != nil {
		return err
	}
	type mem struct{ base, peak int64 }
	watch := map[string]*proc{"tetherd": td, "tether-relay": r.p}
	got := map[string]*mem{}
	reset := true
	for name, p := range watch {
		rss, _, err := memStatus(p.pid())
		if err != nil {
			return err
		}
		reset = resetPeak(p.pid()) && reset
		got[name] = &mem{base: rss}
	}
	var times []time.Duration
	for i := range rounds {
		start := time.Now()
		resp, _, err := lh.post(ctx, hugeRequest(int64(200+i)))
		if err == nil {
			err = checkHuge(resp)
		}
		if err != nil {
			return fmt.Errorf("huge through the full path: %w", err)
		}
		times = append(times, time.Since(start))
	}
	for name, p := range watch {
		_, hwm, err := memStatus(p.pid())
		if err != nil {
			return err
		}
		got[name].peak = hwm
	}

	fl, full := median(floorTimes), median(times)
	rep.add(row{Section: "payload", Name: "10 MiB result over stdio (lean caller → mcpserver)", Value: ms(fl), Unit: "ms"})
	rep.add(row{Section: "payload", Name: "10 MiB result through tether-relay + tetherd", Value: ms(full), Unit: "ms", Ratio: ratio(ms(full), ms(fl)), RatioTo: "stdio"})
	note := ""
	if !reset {
		note = "could not reset VmHWM (clear_refs); peak is the process's lifetime peak"
	}
	for _, name := range []string{"tetherd", "tether-relay"} {
		m := got[name]
		extra := m.peak - m.base
		rep.add(row{Section: "payload", Name: name + " peak extra RSS during it", Value: mib(extra), Unit: "MiB",
			Ratio: float64(extra) / payloadBytes, RatioTo: "payload", Target: "≤ 3× payload", Status: check(extra <= 3*payloadBytes), Note: note})
	}
	return nil
}
