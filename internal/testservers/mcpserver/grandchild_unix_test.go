//go:build unix

package main

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestStderrLinesAndGrandchild(t *testing.T) {
	p := startRaw(t, serverBin(t), "-stderr-lines", "5", "-spawn-grandchild")
	// The server answers only after its start-up writes, so a response
	// means stderr is complete.
	p.send(init2025)
	p.recvResponse()
	errText := p.stderr.String()
	if n := strings.Count(errText, "mcpserver stderr line "); n != 5 {
		t.Fatalf("%d stderr lines, want 5: %q", n, errText)
	}
	m := regexp.MustCompile(`grandchild pid=(\d+)`).FindStringSubmatch(errText)
	if m == nil {
		t.Fatalf("no grandchild pid in %q", errText)
	}
	pid, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("grandchild %d not alive: %v", pid, err)
	}
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if ppgid, _ := syscall.Getpgid(p.cmd.Process.Pid); ppgid != pgid {
		t.Fatalf("grandchild pgid %d, server pgid %d: want the same group", pgid, ppgid)
	}
}
