package main

import (
	"io"
	"log/slog"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/internal/logfile"
)

// newLogger logs to logs/tetherd.log (rotated, 0600) and, unless running as a
// service (where stderr only feeds a journal that would duplicate the file),
// to stderr as text. A foreground `tetherd run` writes stderr even when it
// is a pipe: that is where a person or a supervisor reading it looks.
func newLogger(paths app.Paths, stderr io.Writer, asService bool) (*slog.Logger, func(), error) {
	f, err := logfile.Open(paths.Logs, "tetherd.log", logfile.Options{})
	if err != nil {
		return nil, nil, err
	}
	return logfile.NewLogger(f, stderr, !asService, slog.LevelInfo), func() { f.Close() }, nil
}

// serverLog opens the rotated log that receives one server's stderr.
func serverLog(paths app.Paths, name string) (io.WriteCloser, error) {
	return logfile.ServerLog(paths.Logs, name)
}
