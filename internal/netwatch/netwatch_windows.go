//go:build windows

package netwatch

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/windows"
)

// Windows calls back on its own thread pool for every address change
// (NotifyUnicastIpAddressChange) and route change (NotifyRouteChange2); the
// callbacks only leave a value on the channel of the watcher they belong to.
// windows.NewCallback slots are never freed, so there is one callback for
// the process; it signals every watcher (a process has one or two).

var (
	cbOnce   sync.Once
	cb       uintptr
	regMu    sync.Mutex
	registry = map[uintptr]chan struct{}{}
	nextKey  uintptr
)

func callback(_, _ uintptr, _ uint32) uintptr {
	regMu.Lock()
	defer regMu.Unlock()
	for _, ch := range registry {
		notify(ch) // never blocks
	}
	return 0
}

func watch(ctx context.Context) (<-chan struct{}, error) {
	cbOnce.Do(func() { cb = windows.NewCallback(callback) })
	ch := make(chan struct{}, 1)
	regMu.Lock()
	nextKey++
	key := nextKey
	registry[key] = ch
	regMu.Unlock()
	unregister := func() {
		regMu.Lock()
		delete(registry, key)
		regMu.Unlock()
	}
	var addrH, routeH windows.Handle
	if err := windows.NotifyUnicastIpAddressChange(windows.AF_UNSPEC, cb, nil, false, &addrH); err != nil {
		unregister()
		return nil, fmt.Errorf("NotifyUnicastIpAddressChange: %w", err)
	}
	if err := windows.NotifyRouteChange2(windows.AF_UNSPEC, cb, nil, false, &routeH); err != nil {
		windows.CancelMibChangeNotify2(addrH)
		unregister()
		return nil, fmt.Errorf("NotifyRouteChange2: %w", err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		defer unregister()
		defer windows.CancelMibChangeNotify2(routeH)
		defer windows.CancelMibChangeNotify2(addrH)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				notify(out)
			}
		}
	}()
	return out, nil
}
