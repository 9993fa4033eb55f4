package app

import "golang.org/x/sys/unix"

// controlPeerCred reads the connecting process's credentials
// (LOCAL_PEERCRED, taken by the kernel at connect time; LOCAL_PEERPID is
// only for the log line).
func controlPeerCred(fd int) (uid, pid int, known bool, err error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, 0, false, err
	}
	pid, _ = unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	return int(cred.Uid), pid, true, nil
}
