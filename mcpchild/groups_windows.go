package mcpchild

import "log/slog"

// TrackGroups does nothing on Windows: every child runs in a job object that
// is killed when its last handle closes, which happens when this process
// dies however it dies (proc_windows.go). It exists so callers need no
// build tags.
func TrackGroups(string, *slog.Logger) (killed int, err error) { return 0, nil }
