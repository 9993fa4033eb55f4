//go:build !linux && !windows

package app

import (
	"context"
	"errors"
	"sync"
)

// powerEvents: macOS's sleep/wake notifications (IOKit's
// IORegisterForSystemPower, or NSWorkspace's didWake) need cgo, which
// tetherd does not use. Nothing is lost: Go's monotonic clock there is
// mach_absolute_time, which stops during sleep, so the clock check in
// wake.go sees every wake (on the next keepalive or fallback tick), and the
// relay keepalive is the last resort.
func powerEvents(context.Context, *sync.WaitGroup) (<-chan struct{}, error) {
	return nil, errors.New("no OS power events on this platform yet")
}
