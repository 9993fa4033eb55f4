//go:build linux || darwin

package mcpchild

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/tether-dev/tether/internal/atomicfile"
)

// Why a record of process groups: when tetherd itself dies (kill -9, a
// crash, an OOM kill) nobody runs stop. On Linux the kernel kills each
// group leader (Pdeathsig, see proc_linux.go), but not what the leader
// forked: `sh -c 'sleep 600 & exec node …'` leaves the sleep running,
// re-parented to init. On macOS there is no Pdeathsig at all. So every
// child's process group is written to a small file while it runs, and the
// next start (TrackGroups) kills the groups that file names and that still
// look like ours. Windows needs none of this: the job object dies with its
// last handle, i.e. with tetherd (proc_windows.go).

// groupEntry is one running child's process group as the record keeps it.
type groupEntry struct {
	Pgid  int    `json:"pgid"`  // the leader's PID
	Start uint64 `json:"start"` // the leader's start time (procStart units)
	Sid   int    `json:"sid"`   // the leader's session (0 where unknown)
	Boot  string `json:"boot"`  // boot identity; a record from before a reboot is void
}

var groupRecord struct {
	writeMu sync.Mutex // serialises file writes; taken before mu, never under it
	written uint64     // the gen of the last snapshot on disk; guarded by writeMu
	mu      sync.Mutex
	gen     uint64 // bumped on every change of live; guarded by mu
	path    string // "" until TrackGroups: nothing is recorded
	live    map[int]groupEntry
}

// TrackGroups kills what is left of the process groups recorded in path by
// an earlier run of this program that could not stop its children (it was
// killed), and from now on records every child's group in path. Call it
// once at start-up, before any child starts, from the one process that owns
// path (the engine that holds the control socket). A group is killed only if
// its members still look like ours: same boot, a leader that is either gone
// or has the recorded start time, and no member older than that leader or
// (Linux) in another session -- so a PID reused since is not hit. It returns
// how many groups it killed.
func TrackGroups(path string, log *slog.Logger) (killed int, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var old []groupEntry
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("read process group record: %w", err)
	default:
		if err := json.Unmarshal(b, &old); err != nil {
			log.Warn("process group record is unreadable; ignoring it", "path", path, "err", err)
			old = nil
		}
	}
	for _, e := range old {
		if !leftoverOfOurs(e) {
			continue
		}
		if err := syscall.Kill(-e.Pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			log.Warn("cannot kill a process group left by an earlier run", "pgid", e.Pgid, "err", err)
			continue
		}
		log.Info("killed a process group an earlier run left behind", "pgid", e.Pgid)
		killed++
	}
	groupRecord.mu.Lock()
	groupRecord.path = path
	groupRecord.live = map[int]groupEntry{}
	groupRecord.gen++ // a new file: the empty set must be written to it
	groupRecord.mu.Unlock()
	return killed, writeGroupRecord()
}

// leftoverOfOurs reports whether the recorded group e still has members and
// they can only be the ones our child left.
func leftoverOfOurs(e groupEntry) bool {
	if e.Pgid <= 1 || e.Boot != bootID() {
		return false
	}
	members := groupMembers(e.Pgid)
	if len(members) == 0 {
		return false
	}
	for _, m := range members {
		if m.pid == e.Pgid && m.start != e.Start {
			return false // the leader's PID was reused: someone else's group
		}
		if m.start < e.Start || (e.Sid != 0 && m.sid != e.Sid) {
			return false
		}
	}
	return true
}

// recordGroup adds the group led by pid to the record; false when nothing
// is recorded (TrackGroups not called) or the leader is already gone.
func recordGroup(pid int, log *slog.Logger) bool {
	info, ok := procInfo(pid)
	if !ok {
		return false
	}
	groupRecord.mu.Lock()
	if groupRecord.path == "" {
		groupRecord.mu.Unlock()
		return false
	}
	groupRecord.live[pid] = groupEntry{Pgid: pid, Start: info.start, Sid: info.sid, Boot: bootID()}
	groupRecord.gen++
	groupRecord.mu.Unlock()
	if err := writeGroupRecord(); err != nil {
		log.Warn("cannot record the child's process group; a crash of this process may leave it running", "err", err)
	}
	return true
}

// forgetGroup drops the group led by pid from the record once it is gone.
func forgetGroup(pid int, log *slog.Logger) {
	groupRecord.mu.Lock()
	delete(groupRecord.live, pid)
	groupRecord.gen++
	groupRecord.mu.Unlock()
	if err := writeGroupRecord(); err != nil {
		log.Warn("cannot update the process group record", "err", err)
	}
}

// writeGroupRecord writes the current set atomically (internal/atomicfile),
// so a crash mid-write leaves the old record, never half of one. Writes
// coalesce: a caller that gets writeMu after another wrote a snapshot taken
// after its own change returns at once, so 200 children starting together
// cost a handful of writes, not 200 in a row (measured: 200 serial writes
// kept tetherd's control API from answering for seconds). Either way the
// caller's change is on disk when it returns.
func writeGroupRecord() error {
	groupRecord.mu.Lock()
	want := groupRecord.gen
	groupRecord.mu.Unlock()
	groupRecord.writeMu.Lock()
	defer groupRecord.writeMu.Unlock()
	if groupRecord.written >= want {
		return nil // a later snapshot, with this change in it, is on disk
	}
	groupRecord.mu.Lock()
	path, gen := groupRecord.path, groupRecord.gen
	entries := make([]groupEntry, 0, len(groupRecord.live))
	for _, e := range groupRecord.live {
		entries = append(entries, e)
	}
	groupRecord.mu.Unlock()
	if path == "" {
		return nil
	}
	slices.SortFunc(entries, func(a, b groupEntry) int { return a.Pgid - b.Pgid })
	b, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	groupRecord.written = gen
	return nil
}

// procState is what the record's checks need to know about one process.
type procState struct {
	pid   int
	start uint64
	sid   int
}
