//go:build !unix

package main

import "log/slog"

// raiseFileLimit is a no-op: Windows has no per-process file limit to raise.
func raiseFileLimit(*slog.Logger) {}
