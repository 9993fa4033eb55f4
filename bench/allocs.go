//go:build linux

package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// benchAllocs runs the multiplexer's micro-benchmarks (mcpchild) with
// -benchmem: allocations per relayed call on the bridge's hot path, next to
// a plain client on the same pipes. Skipped in quick mode (it compiles a
// test binary).
func benchAllocs(ctx context.Context, e *env, cfg config, rep *report) error {
	if cfg.quick {
		return nil
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^(BenchmarkDirectStdio|BenchmarkMuxSession)$",
		"-benchmem", "-benchtime", "20000x", "./mcpchild/")
	cmd.Dir = e.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench ./mcpchild: %w\n%s", err, tail(string(out), 2000))
	}
	re := regexp.MustCompile(`(?m)^(Benchmark\w+)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) B/op\s+([\d.]+) allocs/op`)
	type res struct{ ns, bytes, allocs float64 }
	got := map[string]res{}
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		ns, _ := strconv.ParseFloat(m[2], 64)
		b, _ := strconv.ParseFloat(m[3], 64)
		a, _ := strconv.ParseFloat(m[4], 64)
		got[m[1]] = res{ns, b, a}
	}
	d, okD := got["BenchmarkDirectStdio"]
	s, okS := got["BenchmarkMuxSession"]
	if !okD || !okS {
		return fmt.Errorf("benchmark output not understood:\n%s", tail(string(out), 2000))
	}
	rep.add(row{Section: "allocs", Name: "plain stdio client, per call (rawecho)", Value: d.ns / 1000, Unit: "µs",
		Note: fmt.Sprintf("%.0f B/op, %.0f allocs/op", d.bytes, d.allocs)})
	rep.add(row{Section: "allocs", Name: "mcpchild session (bridge hot path), per call", Value: s.ns / 1000, Unit: "µs", Ratio: ratio(s.ns, d.ns), RatioTo: "plain",
		Note: fmt.Sprintf("%.0f B/op, %.0f allocs/op", s.bytes, s.allocs)})
	rep.add(row{Section: "allocs", Name: "mcpchild session allocations per call", Value: s.allocs, Unit: "allocs"})
	rep.add(row{Section: "allocs", Name: "mcpchild session bytes per call", Value: s.bytes / 1024, Unit: "KiB", Target: "≤ 18 KiB (0.1× go-sdk)", Status: check(s.bytes <= 18*1024)})
	return nil
}
