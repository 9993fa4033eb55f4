//go:build !unix

package main

import "log/slog"

// checkFileLimit does nothing: Windows has no per-process file limit.
func checkFileLimit(*slog.Logger, int) {}
