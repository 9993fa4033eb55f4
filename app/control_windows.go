package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the control socket is an AF_UNIX socket (Windows 10 1803 and
// later) in the config folder under the user's profile. What is enforced:
//   - the folder must be owned by the current user, and its DACL may grant
//     access only to that user, SYSTEM, Administrators and CREATOR OWNER
//     (the default for %AppData%); otherwise ServeControl refuses with an
//     icacls command that fixes it;
//   - the socket file then inherits that folder DACL, which is what Windows
//     checks when a process connects.
// Not enforced: the peer's identity per connection (Windows offers only the
// peer PID through SIO_AF_UNIX_GETPEERPID, not wired up here), so the
// folder ACL is the only wall. Locking uses LockFileEx on tether.lock.

// checkControlDir refuses a socket folder another account owns or can open.
// It reads the owner and access list; controlDirVerdict (controldir.go)
// decides.
func checkControlDir(dir string) error {
	me, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("control socket folder %s: read current user: %w", dir, err)
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("control socket folder %s: read its security: %w", dir, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("control socket folder %s: read its owner: %w", dir, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("control socket folder %s: read its access list: %w", dir, err)
	}
	var aces []dirACE
	if dacl != nil {
		for i := uint32(0); i < uint32(dacl.AceCount); i++ {
			var ace *windows.ACCESS_ALLOWED_ACE
			if err := windows.GetAce(dacl, i, &ace); err != nil {
				return fmt.Errorf("control socket folder %s: read its access list: %w", dir, err)
			}
			sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
			aces = append(aces, dirACE{SID: sid.String(), Name: sidString(sid), Allow: ace.Header.AceType == windows.ACCESS_ALLOWED_ACE_TYPE})
		}
	}
	ownerSID := ""
	if owner != nil {
		ownerSID = owner.String()
	}
	fix := fmt.Sprintf(`icacls "%s" /setowner "%%USERNAME%%" && icacls "%s" /inheritance:r /grant:r "%%USERNAME%%:(OI)(CI)F" "SYSTEM:(OI)(CI)F"`, dir, dir)
	return controlDirVerdict(dir, me.User.Sid.String(), ownerSID, sidString(owner), dacl == nil, aces, fix)
}

func sidString(sid *windows.SID) string {
	if sid == nil {
		return "nobody"
	}
	if account, domain, _, err := sid.LookupAccount(""); err == nil {
		if domain != "" {
			return domain + `\` + account
		}
		return account
	}
	return sid.String()
}

// controlLockOffset is where the lock byte sits: far past the PID text, so
// another process can still read the PID while the lock is held.
const controlLockOffset = 1 << 30

// controlLock takes the per-user engine lock with LockFileEx; Windows drops
// it when the holder's handle closes or its process ends.
func controlLock(path string) (f *os.File, held bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open engine lock: %w", err)
	}
	ol := new(windows.Overlapped)
	ol.Offset = controlLockOffset
	err = windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		f.Close()
		return nil, true, nil
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, false, nil
}

// controlUnlock releases the lock; the file stays.
func controlUnlock(f *os.File) {
	if f == nil {
		return
	}
	ol := new(windows.Overlapped)
	ol.Offset = controlLockOffset
	windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol)
	f.Close()
}

// controlLockPID reads the PID the lock holder wrote, 0 if unknown.
func controlLockPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// restrictControlSocket: the socket file inherits the checked folder DACL;
// file modes mean nothing here.
func restrictControlSocket(path string) error { return nil }

// controlPeerAllowed: no per-connection identity check on Windows (see the
// top of this file).
func controlPeerAllowed(conn net.Conn) error { return nil }
