package app

import "golang.org/x/sys/unix"

// controlPeerCred reads the connecting process's credentials (SO_PEERCRED:
// taken by the kernel at connect time, so they cannot be forged).
func controlPeerCred(fd int) (uid, pid int, known bool, err error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, 0, false, err
	}
	return int(cred.Uid), int(cred.Pid), true, nil
}
