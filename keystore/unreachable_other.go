//go:build !windows && !darwin && !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package keystore

func platformUnreachable(error) (string, bool) { return "", false }
