//go:build windows

package keystore

import (
	"errors"
	"syscall"
)

// errNoSuchLogonSession is ERROR_NO_SUCH_LOGON_SESSION: a service account
// (LocalSystem, a virtual account) has no Credential Manager of its own.
const errNoSuchLogonSession syscall.Errno = 1312

func platformUnreachable(err error) (string, bool) {
	if errors.Is(err, errNoSuchLogonSession) {
		return "this account has no Credential Manager (a Windows service account?)", true
	}
	return "", false
}
