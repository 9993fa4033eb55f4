//go:build darwin || windows

package main

import (
	"context"
	"errors"
)

// notifyDesktop is the freedesktop.org path, which macOS and Windows do
// not have (notify uses osascript and a PowerShell toast there).
func notifyDesktop(context.Context, string, string) error {
	return errors.New("notification: no freedesktop.org notification service on this system")
}
