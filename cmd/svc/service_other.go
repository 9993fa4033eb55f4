//go:build !linux && !darwin && !windows

package main

import (
	"fmt"
	"runtime"
)

// newServiceManager: only systemd (Linux), launchd (macOS) and the Windows
// Task Scheduler are supported; elsewhere run `tetherd run` under the system's own
// supervisor.
func newServiceManager() (serviceManager, error) {
	return nil, fmt.Errorf("installing tetherd as a service is not supported on %s: run `tetherd run` from your init system", runtime.GOOS)
}
