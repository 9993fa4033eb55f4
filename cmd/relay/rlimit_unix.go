//go:build unix

package main

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// checkFileLimit logs the file limit the relay runs with and warns when it
// is below what --max-conns allows: each bridge, client connection and
// stream is a file, and running out of them is what a few hundred stalled
// connections did under systemd's default soft limit of 1,024. Go itself
// raises the soft limit to the hard one at start (since Go 1.19), so the
// hard limit (systemd's LimitNOFILE) is the one that counts here.
func checkFileLimit(log *slog.Logger, maxConns int) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("file limit not read", "err", err)
		return
	}
	if advice := fileLimitAdvice(lim.Cur, maxConns); advice != "" {
		log.Warn("file limit below the connection cap", "soft", lim.Cur, "hard", lim.Max, "maxConns", maxConns, "fix", advice)
		return
	}
	log.Info("file limit", "soft", lim.Cur, "hard", lim.Max)
}
