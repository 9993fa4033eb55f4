//go:build unix

package app

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the unprivileged account the root-only tests act as.
const nobody = 65534

const peerHelperEnv = "TETHER_CONTROL_PEER_HELPER"

// TestControlHelperProcess is not a test: TestControlRefusesOtherUID runs
// the test binary as another user with this test selected, to connect to a
// socket from a process the kernel reports as that user.
func TestControlHelperProcess(t *testing.T) {
	sock := os.Getenv(peerHelperEnv)
	if sock == "" {
		return
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Printf("DIAL-FAIL %v\n", err)
		os.Exit(0)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /v1/state HTTP/1.1\r\nHost: x\r\n\r\n")
	got, err := io.ReadAll(conn)
	fmt.Printf("DIAL-OK uid=%d read=%d err=%v\n", os.Getuid(), len(got), err)
	os.Exit(0)
}

func TestControlRefusesOtherUID(t *testing.T) {
	if os.Getuid() != 0 {
		// Cannot become another user: test the rule and that our own uid
		// passes the real credential check.
		if err := checkPeerUID(os.Getuid()+1, 1, os.Getuid()); err == nil {
			t.Fatal("checkPeerUID accepted another uid")
		}
		srv, _, _ := serveFake(t)
		if _, err := dialFake(t, srv).State(t.Context()); err != nil {
			t.Fatalf("own uid refused: %v", err)
		}
		return
	}
	srv, _, logs := serveFake(t)
	dir := filepath.Dir(srv.Path())

	// Loosen the file modes as a careless user or a bug might, so only the
	// peer-credential check stands between nobody and the engine.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(srv.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	out := runAsNobody(t, srv.Path())

	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Logf("no peer credentials on %s: helper said %s", runtime.GOOS, out)
		return
	}
	// DIAL-OK proves the kernel let nobody connect (modes loosened), so an
	// empty read means our check hung up, not the file system.
	if !strings.HasPrefix(out, fmt.Sprintf("DIAL-OK uid=%d read=0 ", nobody)) {
		t.Fatalf("connection from uid %d was not dropped before HTTP: helper said %q", nobody, out)
	}
	if l := logs.String(); !strings.Contains(l, "refused a connection") || !strings.Contains(l, fmt.Sprintf("peer uid %d", nobody)) {
		t.Fatalf("refusal not logged:\n%s", l)
	}
	// Our own uid still gets through the same listener.
	if _, err := dialFake(t, srv).State(t.Context()); err != nil {
		t.Fatalf("own uid refused after the drop: %v", err)
	}
}

// runAsNobody runs a copy of the test binary (the build folder is root's
// 0700) as uid/gid 65534 with TestControlHelperProcess selected.
func runAsNobody(t *testing.T, sock string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binDir := controlDir(t)
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "app.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^TestControlHelperProcess$", "-test.count=1")
	cmd.Dir = "/"
	cmd.Env = []string{peerHelperEnv + "=" + sock, "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	raw, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", nobody, err, raw)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "DIAL-") {
			return line
		}
	}
	t.Fatalf("helper printed no result:\n%s", raw)
	return ""
}

func TestControlRefusesFolderOfAnotherUser(t *testing.T) {
	dir := filepath.Join(controlDir(t), "home")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		// Cannot give a folder away without root: check the same rule on a
		// folder that is certainly not ours.
		if err := checkControlDir("/"); err == nil || !strings.Contains(err.Error(), "belongs to uid 0") {
			t.Fatalf("checkControlDir(/) as uid %d: %v, want a refusal", os.Getuid(), err)
		}
		return
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	_, err := ServeControl(t.Context(), filepath.Join(dir, "tether.sock"), newFakeControl(), log)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("belongs to uid %d", nobody)) {
		t.Fatalf("ServeControl in a folder of uid %d: %v, want a refusal naming the folder and owner", nobody, err)
	}
}
