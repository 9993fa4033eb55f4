//go:build unix

package testpg

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// asUser returns how to run the server's commands: as this user, or under
// root as "nobody", who then owns dir.
func asUser(t testing.TB, dir string) func(*exec.Cmd) {
	if os.Geteuid() != 0 {
		return func(*exec.Cmd) {}
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("running as root and there is no user nobody to run postgres as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		c.Dir = dir
	}
}

// chown gives path to the user the server runs as (the owner of its
// parent, the work directory).
func (s *Server) chown(t testing.TB, path string) {
	if os.Geteuid() != 0 {
		return
	}
	parent, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	ps := parent.Sys().(*syscall.Stat_t)
	if err := os.Chown(path, int(ps.Uid), int(ps.Gid)); err != nil {
		t.Fatal(err)
	}
}
