//go:build darwin

package netwatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watch reads the routing socket (route(4)), which the kernel writes to on
// every address and route change: the same source `route monitor` prints.
// No cgo, no SystemConfiguration framework.
func watch(ctx context.Context) (<-chan struct{}, error) {
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("routing socket: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("routing socket: %w", err)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "route")
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		buf := make([]byte, 16<<10)
		for {
			n, err := f.Read(buf)
			if err != nil || ctx.Err() != nil {
				return
			}
			if changed(buf[:n]) {
				notify(ch)
			}
		}
	}()
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	return ch, nil
}

// changed walks the routing messages in one read: each starts with its
// length (u_short, host order), version and type (rt_msghdr).
func changed(b []byte) bool {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return false
		}
		switch b[3] {
		case unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_ADD, unix.RTM_DELETE, unix.RTM_IFINFO:
			return true
		}
		b = b[l:]
	}
	return false
}
