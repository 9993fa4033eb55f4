//go:build linux

// Command bench measures Tether's call path side by side with its peers, in
// one run on one machine, and reports every figure as a ratio to a floor
// measured in the same run (absolute times on a shared machine mean little).
//
//	go run ./bench                         # full run (a few minutes)
//	go run ./bench -quick                  # ~20 s smoke: fewer calls, 50 bridges
//	go run ./bench -json out.json          # also write the results as JSON
//	go run ./bench -only latency,lean      # some sections only
//
// It builds tetherd, tether-relay and the two test MCP servers into a temp
// dir, starts real processes on 127.0.0.1, and needs node plus the npm peers
// in tools/npm (tag-mcp-bridge, supergateway) for the peer rows.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// sections in run order; each one is usable on its own.
var sections = []string{"latency", "throughput", "lean", "payload", "resume", "reload", "footprint", "scale", "allocs"}

type config struct {
	quick   bool
	calls   int           // sequential calls per latency figure
	warmup  int           // calls before measuring
	tpDur   time.Duration // duration of one throughput figure
	rounds  int           // resume / reload rounds
	idle    time.Duration // footprint idle window
	settle  time.Duration // footprint: start-up work (runtime GC/scavenging, first keepalives) before the idle window
	bridges int           // simulated bridges for footprint and scale
	verbose bool
	binDir  string
}

func main() {
	quick := flag.Bool("quick", false, "20-second smoke: few calls, short windows, 50 simulated bridges")
	jsonOut := flag.String("json", "", "write the results as JSON to this file")
	only := flag.String("only", "", "comma-separated sections to run: "+strings.Join(sections, ","))
	verbose := flag.Bool("v", false, "log progress and process output to stderr")
	binDir := flag.String("bin", "", "use prebuilt tetherd, tether-relay, mcpserver and rawecho from this dir instead of building them")
	echoPeer := flag.String("ws-echo-peer", "", "internal: run as the lean section's WebSocket echo peer against this fake relay URL")
	flag.Parse()
	if *echoPeer != "" {
		if err := wsEchoPeer(*echoPeer); err != nil {
			fmt.Fprintln(os.Stderr, "ws-echo-peer:", err)
			os.Exit(1)
		}
		return
	}

	cfg := config{calls: 3000, warmup: 300, tpDur: 2 * time.Second, rounds: 20, idle: 60 * time.Second, settle: 30 * time.Second, bridges: 1000}
	if *quick {
		cfg = config{quick: true, calls: 300, warmup: 50, tpDur: 150 * time.Millisecond, rounds: 3, idle: 3 * time.Second, settle: time.Second, bridges: 50}
	}
	cfg.verbose, cfg.binDir = *verbose, *binDir
	want := sections
	if *only != "" {
		want = strings.Split(*only, ",")
		for _, s := range want {
			if !slices.Contains(sections, s) {
				fmt.Fprintf(os.Stderr, "bench: unknown section %q (have %s)\n", s, strings.Join(sections, ","))
				os.Exit(2)
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, want)
	if rep != nil {
		rep.print(os.Stdout)
		if *jsonOut != "" {
			if werr := writeJSON(*jsonOut, rep); werr != nil {
				fmt.Fprintln(os.Stderr, "bench:", werr)
				os.Exit(1)
			}
			fmt.Printf("\nJSON written to %s\n", *jsonOut)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, want []string) (*report, error) {
	logger := slog.New(slog.DiscardHandler)
	if cfg.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ev, err := newEnv(ctx, logger, cfg.verbose, cfg.binDir)
	if err != nil {
		return nil, err
	}
	defer ev.close()
	rep := &report{Machine: machineInfo(ev.root), Quick: cfg.quick, Started: time.Now().UTC()}
	began := time.Now() // monotonic, unlike Started
	steps := map[string]func(context.Context, *env, config, *report) error{
		"latency":    benchLatency,
		"lean":       benchLean,
		"throughput": benchThroughput,
		"payload":    benchPayload,
		"resume":     benchResume,
		"reload":     benchReload,
		"footprint":  benchFootprint,
		"scale":      benchScale,
		"allocs":     benchAllocs,
	}
	var failed []string
	for _, name := range sections {
		if !slices.Contains(want, name) {
			continue
		}
		start := time.Now()
		logger.Info("section start", "section", name)
		if err := steps[name](ctx, ev, cfg, rep); err != nil {
			// One broken section must not hide the others' figures.
			rep.add(row{Section: name, Name: name + " section failed", Status: statusError, Note: err.Error()})
			failed = append(failed, name)
		}
		// Every section starts from a clean set of processes, except that
		// throughput reuses the latency section's.
		if name != "latency" || !slices.Contains(want, "throughput") {
			ev.stopAll()
		}
		rep.Durations = append(rep.Durations, sectionTime{name, time.Since(start).Seconds()})
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	rep.Elapsed = time.Since(began).Seconds()
	if len(failed) > 0 {
		return rep, fmt.Errorf("sections failed: %s", strings.Join(failed, ", "))
	}
	return rep, nil
}

func writeJSON(path string, rep *report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
