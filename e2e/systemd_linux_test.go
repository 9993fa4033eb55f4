//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdBootAndReboot runs the client .deb under a real systemd: the
// host's own OS booted as PID 1 in a container (systemd-nspawn), sharing the
// host's network so the bridge reaches a relay this test runs on loopback.
// In it: dpkg -i, a normal user with lingering, `tetherd install`; then the
// unit is active and connected, `tetherd status` and a tray started later
// attach to the service's engine, a kill -9 is restarted by systemd, and after a poweroff and a
// second boot from the same state the service is back and connected with no
// one logged in.
//
// The container's root is an overlay of the host's / with its upper layer
// on a tmpfs the test owns, not --volatile: --volatile=yes starts with an
// empty /etc and /var (no dpkg database, no passwd) and =overlay forgets
// everything at poweroff, while the reboot must find the package, the user,
// the linger flag and the unit where the first boot left them.
//
// It needs root and systemd-nspawn (Debian package systemd-container). In
// CI ($CI set, as for the other tests) their absence fails the test;
// elsewhere it is skipped.
// TETHER_DEB names the client .deb to install (CI passes the one `make
// dist-ci` built and checked); without it the test builds one with
// packaging/build.sh.
func TestSystemdBootAndReboot(t *testing.T) {
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil || os.Geteuid() != 0 {
		why := fmt.Sprintf("needs root and systemd-nspawn (apt package systemd-container): euid %d, lookup: %v", os.Geteuid(), err)
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	deb := clientDeb(t)

	r := startRelay(t)
	const dev = "bootdev"
	bridgeTok, clientTok := r.token(t, dev, "bridge"), r.token(t, dev, "client")

	root := overlayRoot(t)
	m := &machine{t: t, nspawn: nspawn, root: root, deb: deb, name: fmt.Sprintf("tether-e2e-%d", os.Getpid())}

	// First boot: install, a user with lingering, the service.
	m.boot()
	m.must("dpkg", "-i", "/run/tether-e2e/tether.deb")
	m.must("useradd", "--create-home", "--shell", "/bin/sh", "tester")
	uid := strings.TrimSpace(m.must("id", "-u", "tester"))
	m.must("loginctl", "enable-linger", "tester")
	m.await("the user manager of tester", 30*time.Second, func() (bool, string) {
		out, err := m.run("systemctl", "is-active", "user@"+uid+".service")
		return err == nil, out
	})
	settings := fmt.Sprintf(`{"relay": %q}`, r.url())
	mcpJSON := `{"mcpServers": {"sample": {"command": "/usr/bin/tetherd", "args": ["sample-server"]}}}`
	// The keychain is not reachable in a headless container, so the token
	// goes in a file (mode 0600, as install checks) that the unit names.
	m.asUser(uid, nil, "sh", "-c", `set -e; umask 077; mkdir -p ~/.config/tether
printf '%s' "$1" > ~/.config/tether/settings.json
printf '%s' "$2" > ~/.config/tether/mcp.json`, "sh", settings, mcpJSON)
	// (the token arrives on stdin: never in argv)
	m.asUser(uid, strings.NewReader(bridgeTok), "sh", "-c", "umask 077; cat > ~/bridge.token")
	installed := time.Now()
	out := m.asUser(uid, nil, "tetherd", "install", "--token-file", "/home/tester/bridge.token")
	t.Logf("tetherd install:\n%s", out)

	m.await("tetherd active", 30*time.Second, func() (bool, string) {
		out, err := m.userRun(uid, nil, "systemctl", "--user", "is-active", "tetherd")
		return err == nil && strings.TrimSpace(out) == "active", out
	})
	r.waitServingSince(t, dev, clientTok, "sample", installed, 30*time.Second)

	// `tetherd status` from the user attaches to the service's engine.
	pid := m.mainPID(uid)
	var st struct {
		Engine struct {
			PID     int  `json:"pid"`
			Service bool `json:"service"`
		} `json:"engine"`
	}
	if err := json.Unmarshal([]byte(m.asUser(uid, nil, "tetherd", "status", "--json")), &st); err != nil {
		t.Fatalf("tetherd status --json: %v", err)
	}
	if st.Engine.PID != pid || !st.Engine.Service {
		t.Fatalf("tetherd status attached to engine pid %d (service %v), want the unit's MainPID %d", st.Engine.PID, st.Engine.Service, pid)
	}

	// A tray started later (as a transient user unit, as a desktop session
	// would start it) attaches to the service's engine instead of starting
	// its own. It has no panel to show in here; its own log says what it did.
	m.asUser(uid, nil, "systemd-run", "--user", "--collect", "--unit=tether-tray", "/usr/bin/tether")
	var trayLog string
	m.await("the tray to attach", 30*time.Second, func() (bool, string) {
		trayLog, _ = m.userRun(uid, nil, "cat", "/home/tester/.config/tether/logs/tray.log")
		return strings.Contains(trayLog, "attached to the running engine"), trayLog
	})
	t.Logf("tray.log:\n%s", trayLog)
	if now := m.mainPID(uid); now != pid {
		t.Fatalf("tetherd's MainPID changed from %d to %d when the tray started", pid, now)
	}
	m.asUser(uid, nil, "systemctl", "--user", "stop", "tether-tray")

	// kill -9: systemd restarts it (Restart=always) and it reconnects.
	killed := time.Now()
	m.must("kill", "-9", strconv.Itoa(pid))
	m.await("a new tetherd main PID", 30*time.Second, func() (bool, string) {
		out, err := m.userRun(uid, nil, "systemctl", "--user", "show", "--property=MainPID,ActiveState", "tetherd")
		return err == nil && !strings.Contains(out, "MainPID=0\n") && !strings.Contains(out, "MainPID="+strconv.Itoa(pid)+"\n") &&
			strings.Contains(out, "ActiveState=active"), out
	})
	r.waitServingSince(t, dev, clientTok, "sample", killed, 30*time.Second)
	t.Logf("killed tetherd pid %d; systemd restarted it as pid %d, connected again", pid, m.mainPID(uid))

	// Reboot: power off, wait until the relay has lost the bridge, boot again
	// from the same state with no one logging in.
	m.poweroff()
	r.waitStatus(t, dev, clientTok, "the bridge gone", 30*time.Second, func(s bridgeStatus) bool { return !s.Connected })
	rebooted := time.Now()
	m.boot()
	r.waitServingSince(t, dev, clientTok, "sample", rebooted, 60*time.Second)
	t.Logf("rebooted: tetherd pid %d connected again %v after boot", m.mainPID(uid), time.Since(rebooted).Round(time.Millisecond))
	if out, _ := m.userRun(uid, nil, "systemctl", "--user", "is-active", "tetherd"); strings.TrimSpace(out) != "active" {
		t.Fatalf("after reboot tetherd is %q", out)
	}
	if sessions := strings.TrimSpace(m.must("loginctl", "list-sessions", "--no-legend")); sessions != "" {
		t.Fatalf("someone is logged in, so this does not show a boot without login:\n%s", sessions)
	}
	m.poweroff()
}

// clientDeb is $TETHER_DEB, or a client .deb built now for this machine's
// arch (linux/amd64 in CI).
func clientDeb(t *testing.T) string {
	t.Helper()
	if deb := os.Getenv("TETHER_DEB"); deb != "" {
		abs, err := filepath.Abs(deb)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	dist := t.TempDir()
	cmd := exec.Command("packaging/build.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "TARGETS=linux/amd64", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("packaging/build.sh: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "tether_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one client .deb in %s, got %q", dist, debs)
	}
	return debs[0]
}

// overlayRoot mounts the host's / (read-only lower layer) under a writable
// upper layer on a tmpfs, and returns the merged tree. The tmpfs keeps the
// upper layer off the host's root file system, which overlayfs refuses as
// the upper of a lower it contains.
func overlayRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	state, root := filepath.Join(dir, "state"), filepath.Join(dir, "root")
	for _, d := range []string{state, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("tmpfs", state, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(state, syscall.MNT_DETACH) })
	upper, work := filepath.Join(state, "upper"), filepath.Join(state, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("overlay", root, "overlay", 0, "lowerdir=/,upperdir="+upper+",workdir="+work); err != nil {
		t.Fatalf("mount overlay of /: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	// The host's PostgreSQL clusters (the relay's store tests need the
	// package) would take port 5432 on the shared network: masked in the
	// container, every instance at once through the template.
	units := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"postgresql.service", "postgresql@.service"} {
		p := filepath.Join(units, u)
		_ = os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			t.Fatalf("mask %s: %v", u, err)
		}
	}
	return root
}

// machine is one systemd-nspawn container; boot and poweroff may repeat.
type machine struct {
	t                       *testing.T
	nspawn, root, deb, name string

	cmd    *exec.Cmd
	out    *logBuf
	exited chan struct{}
	leader int // the container's PID 1, as the host sees it
}

// boot starts the container and returns once its systemd has finished
// starting up (running, or degraded by some unit of the host's that cannot
// run in a container).
func (m *machine) boot() {
	t := m.t
	t.Helper()
	args := []string{
		"--directory=" + m.root, "--boot", "--machine=" + m.name,
		// The host runs no systemd, so there is no machined to register
		// with and no system manager to put the container in a scope.
		"--register=no", "--keep-unit",
		"--console=pipe", "--bind-ro=" + m.deb + ":/run/tether-e2e/tether.deb",
		// Kernel command line for the container's systemd: no first-boot
		// wizard, no getty (see overlayRoot for the host's servers).
		"systemd.firstboot=off", "systemd.mask=console-getty.service", "systemd.mask=getty@tty1.service",
	}
	m.out = newLogBuf()
	m.cmd = exec.Command(m.nspawn, args...)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	m.cmd.Stdin = nil
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("systemd-nspawn: %v", err)
	}
	m.exited = make(chan struct{})
	cmd, exited := m.cmd, m.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		// SIGTERM asks nspawn to power the container off; kill if it hangs.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	m.leader = 0
	m.await("the container's PID 1", 30*time.Second, func() (bool, string) {
		m.leader = containerInit(cmd.Process.Pid)
		return m.leader != 0, m.out.text()
	})
	m.await("systemd in the container to finish starting up", 90*time.Second, func() (bool, string) {
		out, _ := m.run("systemctl", "is-system-running")
		s := strings.TrimSpace(out)
		return s == "running" || s == "degraded", out
	})
	if out, _ := m.run("systemctl", "--failed", "--no-legend"); strings.TrimSpace(out) != "" {
		t.Logf("units failed in the container (not ours):\n%s", out)
	}
}

// containerInit finds the child of the nspawn process that runs in another
// PID namespace: the container's init.
func containerInit(nspawnPID int) int {
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", nspawnPID))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(field)
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			if err == nil && ns != self {
				return pid
			}
		}
	}
	return 0
}

// poweroff shuts the container down and waits for nspawn to exit.
func (m *machine) poweroff() {
	m.t.Helper()
	// The command may lose its connection as the system goes down.
	_, _ = m.run("systemctl", "poweroff")
	select {
	case <-m.exited:
	case <-time.After(60 * time.Second):
		m.t.Fatalf("the container did not power off:\n%s", tail(m.out.text(), 3000))
	}
}

// run runs a command as root inside the container (its mount, UTS, IPC
// and PID namespaces; the network is the host's anyway).
func (m *machine) run(args ...string) (string, error) {
	return m.runIn(nil, args...)
}

func (m *machine) runIn(stdin *strings.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"-t", strconv.Itoa(m.leader), "--mount", "--uts", "--ipc", "--pid", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	// A plain environment, not the test's: PATH as a login shell has it.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (m *machine) must(args ...string) string {
	m.t.Helper()
	out, err := m.run(args...)
	if err != nil {
		m.t.Fatalf("in the container: %q: %v\n%s", args, err, out)
	}
	return out
}

// userRun runs a command as the user uid with the environment a user
// session gives (XDG_RUNTIME_DIR, the session bus), without logging in:
// setpriv, not su or runuser, so no PAM session is opened.
func (m *machine) userRun(uid string, stdin *strings.Reader, args ...string) (string, error) {
	full := append([]string{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--init-groups", "--",
		"env", "HOME=/home/tester", "USER=tester", "LOGNAME=tester",
		"XDG_RUNTIME_DIR=/run/user/" + uid, "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/" + uid + "/bus"}, args...)
	return m.runIn(stdin, full...)
}

func (m *machine) asUser(uid string, stdin *strings.Reader, args ...string) string {
	m.t.Helper()
	out, err := m.userRun(uid, stdin, args...)
	if err != nil {
		m.t.Fatalf("in the container as %s: %q: %v\n%s", uid, args, err, out)
	}
	return out
}

// mainPID is the tetherd unit's main process, as the container sees it.
func (m *machine) mainPID(uid string) int {
	m.t.Helper()
	out := m.asUser(uid, nil, "systemctl", "--user", "show", "--property=MainPID", "--value", "tetherd")
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid == 0 {
		m.t.Fatalf("tetherd MainPID: %q", out)
	}
	return pid
}

// await polls cond (real state: a process, a unit, a file) until it holds;
// the last detail it returned goes into the failure.
func (m *machine) await(what string, timeout time.Duration, cond func() (bool, string)) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	var detail string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, detail = cond(); ok {
			return
		}
		select {
		case <-m.exited:
			m.t.Fatalf("the container exited while waiting for %s:\n%s", what, tail(m.out.text(), 3000))
		case <-time.After(100 * time.Millisecond): // polling interval, not synchronisation
		}
	}
	m.t.Fatalf("timed out after %v waiting for %s; last: %s\ncontainer console:\n%s", timeout, what, detail, tail(m.out.text(), 3000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (l *logBuf) text() string { s, _ := l.Snapshot(); return s }
