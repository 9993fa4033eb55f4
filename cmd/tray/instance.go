package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tether-dev/tether/app"
)

// Single instance. The engine's control socket already allows one engine
// per user, but a second tray must also not start (it would attach to the
// first tray's engine and show a second icon). The first tray listens on
// tray.sock in the config folder (0700, so only this user reaches it); a
// second launch connects there, sends its request (a tether:// link or
// nothing), prints the answer and exits. Unix sockets work on Windows 10+
// too, where the control API uses them as well.

// instanceSocket is the file name of the tray's socket.
const instanceSocket = "tray.sock"

// handOverRequest is what a second launch sends, one JSON line.
type handOverRequest struct {
	Link string `json:"link,omitempty"`
}

// handOverReply is the answer, one JSON line.
type handOverReply struct {
	Message string `json:"message"`
}

// instance is this tray's claim on tray.sock.
type instance struct {
	ln   net.Listener
	path string
}

// runningTray is returned by claimInstance when another tray answers.
type runningTray struct{ path string }

func (r *runningTray) Error() string { return "another tether tray is running" }

// claimInstance listens on tray.sock, or returns *runningTray when another
// tray answers there. A socket file left by a crashed tray is replaced.
func claimInstance(p app.Paths) (*instance, error) {
	path := filepath.Join(p.Dir, instanceSocket)
	for range 2 {
		ln, err := net.Listen("unix", path)
		if err == nil {
			return &instance{ln: ln, path: path}, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, os.ErrExist) && !isAddrInUse(err) {
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
		c, derr := net.DialTimeout("unix", path, 2*time.Second)
		if derr == nil {
			c.Close()
			return nil, &runningTray{path: path}
		}
		// Nobody answers: a stale socket file. Remove it and try once more.
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale %s: %w", path, rerr)
		}
	}
	return nil, fmt.Errorf("cannot claim %s", path)
}

// isAddrInUse covers systems whose bind error does not unwrap to EADDRINUSE.
func isAddrInUse(err error) bool {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return errors.Is(se.Err, syscall.EADDRINUSE)
	}
	return false
}

// serve answers second launches with handle until the listener closes.
func (in *instance) serve(handle func(handOverRequest) string) {
	for {
		c, err := in.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var req handOverRequest
			line, err := bufio.NewReader(c).ReadBytes('\n')
			if err != nil || json.Unmarshal(line, &req) != nil {
				return
			}
			out, _ := json.Marshal(handOverReply{Message: handle(req)})
			c.Write(append(out, '\n'))
		}()
	}
}

// Close stops listening and removes the socket file.
func (in *instance) Close() error {
	err := in.ln.Close()
	os.Remove(in.path)
	return err
}

// handOver gives link (or nil) to the running tray and returns its answer.
func (r *runningTray) handOver(link *connectLink) (string, error) {
	c, err := net.DialTimeout("unix", r.path, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("reach the running tray: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var req handOverRequest
	if link != nil {
		req.Link = link.raw
	}
	out, _ := json.Marshal(req)
	if _, err := c.Write(append(out, '\n')); err != nil {
		return "", fmt.Errorf("reach the running tray: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("no answer from the running tray: %w", err)
	}
	var rep handOverReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return "", fmt.Errorf("bad answer from the running tray: %w", err)
	}
	return rep.Message, nil
}
