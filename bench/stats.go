//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// callFn makes one echo call and checks its answer.
type callFn func(ctx context.Context) error

// latencies is a sorted sample of call durations.
type latencies []time.Duration

// pct returns the q-th quantile (0..1) in microseconds (nearest rank).
func (l latencies) pct(q float64) float64 {
	if len(l) == 0 {
		return 0
	}
	i := int(q*float64(len(l))+0.5) - 1
	i = max(0, min(i, len(l)-1))
	return float64(l[i]) / float64(time.Microsecond)
}

// measureLatency makes warmup calls, then n sequential timed calls.
func measureLatency(ctx context.Context, call callFn, warmup, n int) (latencies, error) {
	for i := range warmup {
		if err := call(ctx); err != nil {
			return nil, fmt.Errorf("warm-up call %d: %w", i, err)
		}
	}
	out := make(latencies, 0, n)
	for i := range n {
		start := time.Now()
		if err := call(ctx); err != nil {
			return nil, fmt.Errorf("call %d: %w", i, err)
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out, nil
}

// measureThroughput runs conc goroutines, goroutine g calling through
// callers[g%len(callers)], each in a closed loop for d, and returns calls/s.
// A short unmeasured burst first warms every caller.
func measureThroughput(ctx context.Context, callers []callFn, conc int, d time.Duration) (float64, error) {
	run := func(d time.Duration) (int64, time.Duration, error) {
		var n atomic.Int64
		var firstErr error
		var once sync.Once
		stop := make(chan struct{})
		var wg sync.WaitGroup
		start := time.Now()
		for g := range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				call := callers[g%len(callers)]
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := call(ctx); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					n.Add(1)
				}
			}()
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		close(stop)
		wg.Wait()
		return n.Load(), time.Since(start), firstErr
	}
	if _, _, err := run(d / 5); err != nil {
		return 0, fmt.Errorf("throughput warm-up at %d in flight: %w", conc, err)
	}
	n, el, err := run(d)
	if err != nil {
		return 0, fmt.Errorf("throughput at %d in flight: %w", conc, err)
	}
	return float64(n) / el.Seconds(), nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
