//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tether-dev/tether/relay/server"
)

// benchScale: N simulated bridges on one relay, 64 lean HTTP callers
// spread over them (caller g uses devs g, g+64, …, one session each, in
// turn): calls/s and p99.
func benchScale(ctx context.Context, e *env, cfg config, rep *report) error {
	const callers = 64
	r, err := e.startRelay(ctx)
	if err != nil {
		return err
	}
	bs, err := connectSimBridges(ctx, r, cfg.bridges)
	if err != nil {
		return err
	}
	defer closeSimBridges(bs)
	hc := &http.Client{Transport: newTransport()}
	sessions := make([][]*leanHTTP, callers)
	for g := range callers {
		for i := g; i < cfg.bridges; i += callers {
			dev := bs[i].dev
			l, err := newLeanHTTPWith(ctx, hc, r.mcpURL(dev, simServer), r.token(dev, server.ScopeClient))
			if err != nil {
				return err
			}
			sessions[g] = append(sessions[g], l)
		}
	}
	d := 4 * cfg.tpDur
	var wg sync.WaitGroup
	lats := make([][]time.Duration, callers)
	errs := make([]error, callers)
	stop := time.Now().Add(d)
	start := time.Now()
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := sessions[g]
			if len(own) == 0 {
				own = sessions[g%cfg.bridges] // fewer bridges than callers
			}
			for i := 0; time.Now().Before(stop); i++ {
				t := time.Now()
				if err := own[i%len(own)].call(ctx); err != nil {
					errs[g] = err
					return
				}
				lats[g] = append(lats[g], time.Since(t))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("scale call: %w", err)
		}
	}
	var all latencies
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	label := fmt.Sprintf("%d bridges, %d callers", cfg.bridges, callers)
	rep.add(row{Section: "scale", Name: label + ": calls/s", Value: float64(len(all)) / el, Unit: "calls/s"})
	rep.add(row{Section: "scale", Name: label + ": p50", Value: all.pct(.5), Unit: "µs"})
	rep.add(row{Section: "scale", Name: label + ": p99", Value: all.pct(.99), Unit: "µs"})
	return nil
}
