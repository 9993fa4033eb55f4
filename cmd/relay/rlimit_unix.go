//go:build unix

package main

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit: each
// bridge, client and stream is a file, and systemd's default soft limit
// (1,024) is what a few hundred stalled connections exhausted.
func raiseFileLimit(log *slog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("file limit not read", "err", err)
		return
	}
	if lim.Cur >= lim.Max {
		return
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("file limit not raised", "soft", old, "hard", lim.Max, "err", err)
		return
	}
	log.Info("file limit raised", "from", old, "to", lim.Max)
}
