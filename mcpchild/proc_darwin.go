package mcpchild

import "syscall"

// setDeathSignal does nothing: macOS has no PR_SET_PDEATHSIG. When tetherd
// is killed its children keep running until the next start, which kills the
// process groups recorded in the group record (groups_unix.go, TrackGroups).
// A kqueue EVFILT_PROC watcher in a helper process could end them sooner;
// that is not built.
func setDeathSignal(*syscall.SysProcAttr) {}
