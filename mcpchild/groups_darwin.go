package mcpchild

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SZOMB is p_stat of a zombie in <sys/proc.h>.
const sZomb = 5

// procInfo asks the kernel (sysctl kern.proc.pid) for the start time in
// microseconds since the epoch. The session is not exposed as an ID here,
// so sid stays 0 and the record's checks rely on start times.
func procInfo(pid int) (procState, bool) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp.Proc.P_pid != int32(pid) || kp.Proc.P_stat == sZomb {
		return procState{}, false
	}
	return darwinState(kp), true
}

func darwinState(kp *unix.KinfoProc) procState {
	t := kp.Proc.P_starttime
	return procState{pid: int(kp.Proc.P_pid), start: uint64(t.Sec)*1e6 + uint64(t.Usec)}
}

// groupMembers lists the live processes whose process group is pgid.
func groupMembers(pgid int) []procState {
	kps, err := unix.SysctlKinfoProcSlice("kern.proc.pgrp", pgid)
	if err != nil {
		return nil
	}
	var out []procState
	for i := range kps {
		if kps[i].Proc.P_stat != sZomb {
			out = append(out, darwinState(&kps[i]))
		}
	}
	return out
}

// bootID is the boot time (sysctl kern.boottime).
func bootID() string {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d.%06d", tv.Sec, tv.Usec)
}
