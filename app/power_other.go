//go:build !linux

package app

import (
	"context"
	"errors"
	"sync"
)

// powerEvents: macOS (IOKit) and Windows (WM_POWERBROADCAST) power
// notifications need cgo or a window; until then the clock check in wake.go
// detects sleep on its own.
func powerEvents(context.Context, *sync.WaitGroup) (<-chan struct{}, error) {
	return nil, errors.New("no OS power events on this platform yet")
}
