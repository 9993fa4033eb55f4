//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/tether-dev/tether/relay/server"
)

// stableAfter mirrors relay.StableAfter: a bridge's reconnect backoff
// starts again from its base only after the connection stayed up this long,
// so resume rounds are spaced by it to be independent.
const stableAfter = 10*time.Second + 500*time.Millisecond

// probeCall opens a fresh session (the old ones died with the socket) and
// makes one echo call; it fails fast while the bridge is offline (503).
func probeCall(ctx context.Context, url, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l, err := newLeanHTTP(ctx, url, token)
	if err != nil {
		return err
	}
	return l.call(ctx)
}

// untilCall polls probe until it succeeds and returns when it did.
func untilCall(ctx context.Context, timeout time.Duration, probe func(context.Context) error) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		err := probe(ctx)
		if err == nil {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no successful call within %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond): // probe interval
		}
	}
}

// benchResume: several tetherd (one dev each, rawecho child) on one relay;
// the relay is SIGKILLed and started again on the same port, and each
// bridge's first successful call after the relay listens again is one
// sample. Then the wake entry point: SIGUSR1 to tetherd.
func benchResume(ctx context.Context, e *env, cfg config, rep *report) error {
	bridges, rounds := 4, 5
	if cfg.quick {
		bridges, rounds = 2, 1
	}
	r, err := e.startRelay(ctx)
	if err != nil {
		return err
	}
	type br struct {
		dev string
		p   *proc
	}
	var list []br
	for i := range bridges {
		dev := fmt.Sprintf("resume%d", i)
		p, err := e.startTetherd(ctx, r, dev, "", map[string][]string{"echo": {e.rawecho}})
		if err != nil {
			return err
		}
		list = append(list, br{dev, p})
	}
	var samples, downs []time.Duration
	for round := range rounds {
		if round > 0 {
			select { // let every bridge's backoff reset (see stableAfter)
			case <-time.After(stableAfter):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		killed := time.Now()
		r.p.kill()
		if err := r.start(ctx); err != nil {
			return fmt.Errorf("restart relay: %w", err)
		}
		listening := time.Now()
		downs = append(downs, listening.Sub(killed))
		var mu sync.Mutex
		var wg sync.WaitGroup
		var firstErr error
		for _, b := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := r.token(b.dev, server.ScopeClient)
				at, err := untilCall(ctx, 60*time.Second, func(ctx context.Context) error {
					return probeCall(ctx, r.mcpURL(b.dev, "echo"), tok)
				})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = fmt.Errorf("%s after relay restart: %w", b.dev, err)
					return
				}
				samples = append(samples, at.Sub(listening))
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
	}
	med, worst := median(samples), slices.Max(samples)
	note := fmt.Sprintf("%d bridges × %d rounds; relay down %.0f ms median (kill → listening)", bridges, rounds, ms(median(downs)))
	rep.add(row{Section: "resume", Name: "relay restart → first call, median", Value: ms(med), Unit: "ms", Target: "≤ 1000 ms", Status: check(med <= time.Second), Note: note})
	rep.add(row{Section: "resume", Name: "relay restart → first call, max", Value: ms(worst), Unit: "ms", Target: "≤ 1000 ms", Status: check(worst <= time.Second)})

	return benchWake(ctx, r, list[0].dev, list[0].p, cfg, rep)
}

// benchWake sends SIGUSR1 (the engine's wake entry point: treat it as a
// wake from sleep and redial at once) and times the first successful call
// on the new socket.
func benchWake(ctx context.Context, r *relayProc, dev string, td *proc, cfg config, rep *report) error {
	rounds := cfg.rounds
	if cfg.quick {
		rounds = 3
	}
	tok := r.token(dev, server.ScopeClient)
	var samples []time.Duration
	for range rounds {
		sent := time.Now()
		if err := syscall.Kill(td.pid(), syscall.SIGUSR1); err != nil {
			return fmt.Errorf("signal tetherd: %w", err)
		}
		at, err := untilCall(ctx, 2*time.Second, func(ctx context.Context) error {
			if td.exited() {
				return errNotAvailable
			}
			st, err := r.status(ctx, dev)
			if err != nil {
				return err
			}
			if st.Since == nil || !st.Since.After(sent) || !st.ready("echo") {
				return fmt.Errorf("no new socket yet")
			}
			return probeCall(ctx, r.mcpURL(dev, "echo"), tok)
		})
		if td.exited() {
			rep.add(row{Section: "resume", Name: "wake (SIGUSR1) → first call", Status: statusNA,
				Note: "not available yet: SIGUSR1 ends tetherd in this build (no wake handler)"})
			return nil
		}
		if err != nil {
			rep.add(row{Section: "resume", Name: "wake (SIGUSR1) → first call", Status: statusNA,
				Note: "not available yet: tetherd did not redial within 2 s of SIGUSR1 (Go ignores SIGUSR1 unless tetherd handles it; " + err.Error() + ")"})
			return nil
		}
		samples = append(samples, at.Sub(sent))
	}
	med, worst := median(samples), slices.Max(samples)
	rep.add(row{Section: "resume", Name: "wake (SIGUSR1) → first call, median", Value: ms(med), Unit: "ms", Target: "≤ 1000 ms", Status: check(med <= time.Second),
		Note: fmt.Sprintf("%d rounds", rounds)})
	rep.add(row{Section: "resume", Name: "wake (SIGUSR1) → first call, max", Value: ms(worst), Unit: "ms", Target: "≤ 1000 ms", Status: check(worst <= time.Second)})
	return nil
}
