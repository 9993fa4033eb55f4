package mcpchild

import (
	"os"
	"strconv"
	"strings"
)

// procInfo reads /proc/<pid>/stat: start time in clock ticks since boot and
// session ID. ok is false for a process that is gone or a zombie.
func procInfo(pid int) (procState, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procState{}, false
	}
	return parseStat(pid, string(b))
}

// parseStat parses the fields after the command name (which may itself
// hold spaces and parentheses, hence the last ')'): state ppid pgrp session
// ... starttime is the 20th of them.
func parseStat(pid int, s string) (procState, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return procState{}, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return procState{}, false
	}
	sid, err1 := strconv.Atoi(f[3])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procState{}, false
	}
	return procState{pid: pid, start: start, sid: sid}, true
}

// groupMembers lists the live processes whose process group is pgid.
func groupMembers(pgid int) []procState {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.Itoa(pgid)
	var out []procState
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 > len(s) {
			continue
		}
		if f := strings.Fields(s[i+2:]); len(f) < 3 || f[2] != want {
			continue
		}
		if st, ok := parseStat(pid, s); ok {
			out = append(out, st)
		}
	}
	return out
}

// bootID changes at every boot; start times (ticks since boot) compare only
// within one.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
