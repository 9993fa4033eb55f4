//go:build linux

package netwatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watch subscribes to the kernel's rtnetlink multicast groups for addresses
// and routes. Link messages are left out on purpose: Wi-Fi drivers send
// RTM_NEWLINK for signal changes many times a minute, and a link that comes
// up brings its addresses and routes anyway.
func watch(ctx context.Context) (<-chan struct{}, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	groups := uint32(unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// An *os.File over a non-blocking socket lives in Go's poller, so
	// Close from another goroutine wakes a blocked read: the reader ends
	// with ctx instead of leaking in recvfrom.
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		buf := make([]byte, 64<<10)
		for {
			var n int
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
				return rerr != unix.EAGAIN
			})
			if err != nil || ctx.Err() != nil {
				return // closed
			}
			if rerr == unix.ENOBUFS {
				// The kernel dropped messages for us: something changed.
				notify(ch)
				continue
			}
			if rerr != nil {
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

// changed reports whether a netlink datagram carries an address or route
// message. Each message starts with a struct nlmsghdr (length u32, type u16,
// host order) and is padded to 4 bytes. A malformed datagram (the kernel is
// the only sender, but this stays robust) ends the walk.
func changed(b []byte) bool {
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return false
		}
		switch binary.NativeEndian.Uint16(b[4:]) {
		case unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			return true
		}
		l = (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if l >= len(b) {
			return false
		}
		b = b[l:]
	}
	return false
}
