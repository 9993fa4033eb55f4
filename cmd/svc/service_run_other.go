//go:build !windows

package main

import "context"

// serviceRun runs the engine for `tetherd run --service`. systemd and
// launchd need no registration: they start the process, and SIGTERM reaches
// run through ctx (main's signal.NotifyContext). Windows differs (see
// service_windows.go), which is why the lead's run path goes through here.
func serviceRun(ctx context.Context, run func(context.Context) error) error { return run(ctx) }
