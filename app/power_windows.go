//go:build windows

package app

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the clock check in wake.go never fires: Go's monotonic clock
// there is the interrupt time, which keeps counting through sleep. So the OS
// must say when it woke: PowerRegisterSuspendResumeNotification (powrprof,
// Windows 8 and later) with DEVICE_NOTIFY_CALLBACK calls a function of ours
// on every resume — no window and no message loop, and syscall.NewCallback
// needs no cgo. Where registration fails, the engine falls back to the relay
// keepalive (a dead socket is noticed within about 40 s).
//
// Not runnable here (no Windows on the CI machine): compile-checked with
// GOOS=windows go vet.

var (
	powrprof                     = windows.NewLazySystemDLL("powrprof.dll")
	procPowerRegisterSuspendRes  = powrprof.NewProc("PowerRegisterSuspendResumeNotification")
	procPowerUnregisterSuspendRs = powrprof.NewProc("PowerUnregisterSuspendResumeNotification")
)

const (
	deviceNotifyCallback = 2 // DEVICE_NOTIFY_CALLBACK
	// pbtAPMResumeAutomatic is sent on every resume, whether or not a
	// person is at the machine (PBT_APMRESUMESUSPEND only follows when
	// one is, so it would be a duplicate).
	pbtAPMResumeAutomatic = 0x12
)

// deviceNotifySubscribeParameters is DEVICE_NOTIFY_SUBSCRIBE_PARAMETERS.
type deviceNotifySubscribeParameters struct {
	callback uintptr
	context  uintptr
}

// A callback made by syscall.NewCallback is never freed and there are only
// a couple of thousand per process, so there is one, made on first use, and
// it fans each wake out to the current subscribers. It runs on a Windows
// thread: it only does non-blocking sends, under a lock no one holds across
// anything that blocks.
var (
	powerMu       sync.Mutex
	powerSubs     = map[chan struct{}]struct{}{}
	powerCallback = sync.OnceValue(func() uintptr { return syscall.NewCallback(onPowerEvent) })
)

func onPowerEvent(_, typ, _ uintptr) uintptr {
	if typ == pbtAPMResumeAutomatic {
		powerMu.Lock()
		for ch := range powerSubs {
			select {
			case ch <- struct{}{}:
			default: // a wake is already pending
			}
		}
		powerMu.Unlock()
	}
	return 0 // ERROR_SUCCESS
}

// powerEvents returns a channel that receives one value per resume from
// sleep or hibernation. It closes when ctx ends; the goroutine that
// unregisters is counted in wg.
func powerEvents(ctx context.Context, wg *sync.WaitGroup) (<-chan struct{}, error) {
	if err := procPowerRegisterSuspendRes.Find(); err != nil {
		return nil, fmt.Errorf("no suspend/resume notifications (Windows 8 or later): %w", err)
	}
	wakes := make(chan struct{}, 1)
	powerMu.Lock()
	powerSubs[wakes] = struct{}{}
	powerMu.Unlock()
	unsubscribe := func() {
		powerMu.Lock()
		delete(powerSubs, wakes)
		powerMu.Unlock()
	}
	params := &deviceNotifySubscribeParameters{callback: powerCallback()}
	var handle uintptr
	r, _, _ := procPowerRegisterSuspendRes.Call(deviceNotifyCallback,
		uintptr(unsafe.Pointer(params)), uintptr(unsafe.Pointer(&handle)))
	if r != 0 {
		unsubscribe()
		return nil, fmt.Errorf("PowerRegisterSuspendResumeNotification: %w", syscall.Errno(r))
	}
	wg.Go(func() {
		<-ctx.Done()
		procPowerUnregisterSuspendRs.Call(handle)
		runtime.KeepAlive(params) // the OS may read it until unregistered
		unsubscribe()             // no send can follow: the callback sends under powerMu
		close(wakes)
	})
	return wakes, nil
}
