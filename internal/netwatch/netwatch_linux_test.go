//go:build linux

package netwatch

import (
	"context"
	"encoding/binary"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNewNetns runs f on a locked OS thread inside a fresh network namespace,
// so the test changes addresses and routes without touching the machine's.
// The thread is thrown away afterwards (the goroutine exits locked).
func inNewNetns(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// No UnlockOSThread: the runtime then ends this thread with the
		// goroutine instead of reusing it in the test's namespace.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare(CLONE_NEWNET): %v (the test needs root, as CI runs)", err)
			return
		}
		f()
	}()
	<-done
}

// ip runs ip(8) from the calling thread: os/exec forks from it, so the
// command runs in the thread's network namespace.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Errorf("ip %v: %v\n%s", args, err, out)
	}
}

func TestWatchSeesAddressAndRouteChanges(t *testing.T) {
	inNewNetns(t, func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := Watch(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		wait := func(what string) {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Errorf("no change reported after %s", what)
			}
		}
		// Nothing changed yet: nothing pending.
		select {
		case <-ch:
			t.Error("a change was reported before any happened")
		default:
		}
		// A new namespace has only lo, down; bringing it up adds
		// 127.0.0.1 and its routes, as a network coming back would.
		ip(t, "link", "set", "lo", "up")
		wait("bringing lo up")
		for len(ch) > 0 {
			<-ch
		}
		ip(t, "addr", "add", "192.0.2.1/32", "dev", "lo")
		wait("adding an address")
		// Drain what the burst left, then one route change on its own.
		for len(ch) > 0 {
			<-ch
		}
		ip(t, "route", "add", "198.51.100.0/24", "dev", "lo")
		wait("adding a route")
		cancel()
		select {
		case _, ok := <-ch:
			for ok {
				_, ok = <-ch
			}
		case <-time.After(10 * time.Second):
			t.Error("the channel did not close after ctx ended")
		}
	})
}

func TestChangedParsesOnlyAddressAndRouteMessages(t *testing.T) {
	t.Parallel()
	msg := func(typ uint16, payload int) []byte {
		b := make([]byte, unix.SizeofNlMsghdr+payload)
		binary.NativeEndian.PutUint32(b, uint32(len(b)))
		binary.NativeEndian.PutUint16(b[4:], typ)
		for len(b)%unix.NLMSG_ALIGNTO != 0 {
			b = append(b, 0)
		}
		return b
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	cases := []struct {
		name string
		b    []byte
		want bool
	}{
		{"empty", nil, false},
		{"link only", msg(unix.RTM_NEWLINK, 16), false},
		{"new address", msg(unix.RTM_NEWADDR, 8), true},
		{"route after a link", cat(msg(unix.RTM_NEWLINK, 3), msg(unix.RTM_DELROUTE, 12)), true},
		{"short header", []byte{1, 2, 3}, false},
		{"length past the end", func() []byte { b := msg(unix.RTM_NEWADDR, 0); binary.NativeEndian.PutUint32(b, 999); return b }(), false},
		{"length under a header", func() []byte { b := msg(unix.RTM_NEWADDR, 0); binary.NativeEndian.PutUint32(b, 3); return b }(), false},
	}
	for _, c := range cases {
		if got := changed(c.b); got != c.want {
			t.Errorf("%s: changed = %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzChanged(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{16, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) { changed(b) }) // must not panic or loop
}
