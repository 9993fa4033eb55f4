//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdBootAndReboot runs both .debs under a real systemd: the
// host's own OS booted as PID 1 in a container (systemd-nspawn), sharing the
// host's network, so this test reaches the container's relay on loopback.
//
// The relay .deb first, as its README section says: dpkg -i leaves the unit
// enabled but stopped, --listen is set in /etc/default/tether-relay, then
// systemctl start runs the packaged, hardened unit (DynamicUser,
// StateDirectory, ProtectSystem=strict, the syscall filter …); /healthz
// answers, the secret and the database in /var/lib/private/tether-relay are
// mode 0600 and owned by the unit's dynamic user, and `tether-relay token`
// run by root issues the tokens.
//
// Then the client .deb: dpkg -i, a normal user with lingering, `tetherd
// install` pointed at that relay; then the unit is active and connected, an
// MCP client on the host calls a tool through the packaged relay, `tetherd
// status` and a tray started later attach to the service's engine, a kill -9
// is restarted by systemd, and after a poweroff and a second boot from the
// same state both services are back with no one logged in: the relay
// started by its enabled unit with the same secret (the tokens issued
// before the reboot still work, its database still lists them) and tetherd
// connected to it.
//
// The container's root is an overlay of the host's / with its upper layer
// on a tmpfs the test owns, not --volatile: --volatile=yes starts with an
// empty /etc and /var (no dpkg database, no passwd) and =overlay forgets
// everything at poweroff, while the reboot must find the packages, the user,
// the linger flag, the units and the relay's state where the first boot left
// them.
//
// It needs root and systemd-nspawn (Debian package systemd-container). In
// CI ($CI set, as for the other tests) their absence fails the test;
// elsewhere it is skipped.
// TETHER_DEB and TETHER_RELAY_DEB name the client and relay .debs to install
// (CI passes the ones `make dist-ci` built and checked); without them the
// test builds both with packaging/build.sh.
func TestSystemdBootAndReboot(t *testing.T) {
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil || os.Geteuid() != 0 {
		why := fmt.Sprintf("needs root and systemd-nspawn (apt package systemd-container): euid %d, lookup: %v", os.Geteuid(), err)
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	clientDeb, relayDeb := debs(t)

	root := overlayRoot(t)
	m := &machine{t: t, nspawn: nspawn, root: root, name: fmt.Sprintf("tether-e2e-%d", os.Getpid()),
		binds: map[string]string{clientDeb: "/run/tether-e2e/tether.deb", relayDeb: "/run/tether-e2e/tether-relay.deb"}}
	// The packaged relay, seen from here: the container shares this
	// network, so it listens on a free port of the host's loopback.
	r := &relayProc{addr: freeAddr(t)}
	const dev = "bootdev"

	// First boot: the relay as an admin sets it up (README "Install").
	m.boot()
	m.must("dpkg", "-i", "/run/tether-e2e/tether-relay.deb")
	// postinst enables the unit but does not start it before it is configured.
	if out, _ := m.run("systemctl", "is-enabled", "tether-relay"); strings.TrimSpace(out) != "enabled" {
		t.Fatalf("after dpkg -i tether-relay is %q, want enabled", out)
	}
	if out, _ := m.run("systemctl", "is-active", "tether-relay"); strings.TrimSpace(out) != "inactive" {
		t.Fatalf("after dpkg -i tether-relay is %q, want inactive until configured", out)
	}
	// What `sudoedit /etc/default/tether-relay` does: the packaged line
	// gets another --listen.
	m.must("sed", "-i", `s|^TETHER_RELAY_ARGS=.*|TETHER_RELAY_ARGS="--listen=`+r.addr+`"|`, "/etc/default/tether-relay")
	m.must("systemctl", "start", "tether-relay")
	m.awaitRelay(r)
	// Tokens as the admin issues them: root, the secret in the state folder.
	bridgeTok, clientTok := m.relayToken(dev, "bridge"), m.relayToken(dev, "client")
	secretSum := m.relayState()

	// The client: install, a user with lingering, the service.
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
	callEcho(t, r, dev, clientTok, "through the packaged relay")

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

	// Reboot: power off (the relay goes down with the container), boot
	// again from the same state with no one logging in.
	m.relayUnit(true) // never restarted while serving all the above
	m.poweroff()
	if resp, err := r.http().Get(r.url() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("after poweroff something still answers on %s", r.addr)
	}
	rebooted := time.Now()
	m.boot()
	// The relay's unit was enabled, not started by hand: it came up with
	// the boot, with the same secret, so the tokens from before the reboot
	// (tetherd's bridge token, the client token here) still work.
	if out, _ := m.run("systemctl", "is-active", "tether-relay"); strings.TrimSpace(out) != "active" {
		t.Fatalf("after reboot tether-relay is %q\n%s", out, m.relayJournal())
	}
	m.awaitRelay(r)
	r.waitServingSince(t, dev, clientTok, "sample", rebooted, 60*time.Second)
	t.Logf("rebooted: tetherd pid %d connected to the packaged relay again %v after boot", m.mainPID(uid), time.Since(rebooted).Round(time.Millisecond))
	callEcho(t, r, dev, clientTok, "after the reboot")
	if sum := m.relayState(); sum != secretSum {
		t.Fatalf("the relay's secret changed over the reboot")
	}
	// Its database kept the tokens issued before the reboot.
	list := m.must("tether-relay", "token", "list", "--secret-file", "/var/lib/tether-relay/secret")
	for _, tok := range []string{bridgeTok, clientTok} {
		jti := tokenID(t, tok)
		if !strings.Contains(list, jti) {
			t.Fatalf("token list after the reboot lacks %s:\n%s", jti, list)
		}
	}
	if out, _ := m.userRun(uid, nil, "systemctl", "--user", "is-active", "tetherd"); strings.TrimSpace(out) != "active" {
		t.Fatalf("after reboot tetherd is %q", out)
	}
	if sessions := strings.TrimSpace(m.must("loginctl", "list-sessions", "--no-legend")); sessions != "" {
		t.Fatalf("someone is logged in, so this does not show a boot without login:\n%s", sessions)
	}
	m.relayUnit(true)
	t.Logf("the relay's journal:\n%s", m.relayJournal())
	m.poweroff()
}

// callEcho calls the sample server's echo tool through the relay, as an MCP
// client on the host would.
func callEcho(t *testing.T, r *relayProc, dev, tok, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connect(t, ctx, r.mcpURL(dev, "sample"), tok, "", nil)
	defer cs.Close()
	msg := "hello " + when
	got, err := callText(ctx, cs, "echo", map[string]any{"message": msg})
	if err != nil || got != msg {
		t.Fatalf("echo %s: %q, %v", when, got, err)
	}
}

// tokenID is a token's jti (the id `token list` shows).
func tokenID(t *testing.T, tok string) string {
	t.Helper()
	var claims struct {
		ID string `json:"jti"`
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil || claims.ID == "" {
		t.Fatalf("token without jti: %v", err)
	}
	return claims.ID
}

// debs are $TETHER_DEB and $TETHER_RELAY_DEB, or both .debs built now for
// this machine's arch (linux/amd64 in CI).
func debs(t *testing.T) (client, relay string) {
	t.Helper()
	client, relay = os.Getenv("TETHER_DEB"), os.Getenv("TETHER_RELAY_DEB")
	if client != "" && relay != "" {
		var err error
		if client, err = filepath.Abs(client); err == nil {
			relay, err = filepath.Abs(relay)
		}
		if err != nil {
			t.Fatal(err)
		}
		return client, relay
	}
	if client != "" || relay != "" {
		t.Fatalf("give both TETHER_DEB and TETHER_RELAY_DEB, or neither (got %q, %q)", client, relay)
	}
	dist := t.TempDir()
	cmd := exec.Command("packaging/build.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "TARGETS=linux/amd64", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("packaging/build.sh: %v\n%s", err, out)
	}
	one := func(pattern string) string {
		found, _ := filepath.Glob(filepath.Join(dist, pattern))
		if len(found) != 1 {
			t.Fatalf("want one %s in %s, got %q", pattern, dist, found)
		}
		return found[0]
	}
	return one("tether_*_amd64.deb"), one("tether-relay_*_amd64.deb")
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
	t                  *testing.T
	nspawn, root, name string
	binds              map[string]string // host file → read-only path in the container

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
		"--console=pipe",
	}
	for host, inside := range m.binds {
		args = append(args, "--bind-ro="+host+":"+inside)
	}
	// Kernel command line for the container's systemd: no first-boot
	// wizard, no getty (see overlayRoot for the host's servers).
	args = append(args, "systemd.firstboot=off", "systemd.mask=console-getty.service", "systemd.mask=getty@tty1.service")
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
	var out bytes.Buffer
	err := m.exec(stdin, &out, &out, args...)
	return out.String(), err
}

func (m *machine) exec(stdin *strings.Reader, stdout, stderr io.Writer, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"-t", strconv.Itoa(m.leader), "--mount", "--uts", "--ipc", "--pid", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	// A plain environment, not the test's: PATH as a login shell has it.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
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

// The packaged relay's state folder: StateDirectory= with DynamicUser=
// puts it in /var/lib/private (mode 0700, root's) behind the symlink
// /var/lib/tether-relay that the unit's --secret-file names.
const relayStateDir = "/var/lib/private/tether-relay"

// awaitRelay waits for the packaged relay's /healthz on the host's side of
// the shared network; a unit that fails or is restarted on the way fails
// the test at once with its journal.
func (m *machine) awaitRelay(r *relayProc) {
	m.t.Helper()
	m.await("the packaged relay's /healthz on "+r.addr, 30*time.Second, func() (bool, string) {
		resp, err := r.http().Get(r.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, ""
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return false, fmt.Sprintf("healthz: %v; unit: %s", err, m.relayUnit(false))
	})
	m.relayUnit(true)
}

// relayUnit fails the test, with the relay's journal, when its unit
// failed or was restarted (a crash, say a syscall the filter kills, that
// Restart=on-failure would hide); with running it must also be active.
// It returns the unit's state.
func (m *machine) relayUnit(running bool) string {
	m.t.Helper()
	unit, _ := m.run("systemctl", "show", "--property=ActiveState,SubState,Result,NRestarts", "tether-relay")
	if strings.Contains(unit, "ActiveState=failed") || !strings.Contains(unit, "NRestarts=0\n") ||
		(running && !strings.Contains(unit, "ActiveState=active\n")) {
		m.t.Fatalf("the tether-relay unit failed:\n%s\n%s", unit, m.relayJournal())
	}
	return strings.ReplaceAll(strings.TrimSpace(unit), "\n", " ")
}

func (m *machine) relayJournal() string {
	out, _ := m.run("journalctl", "--no-pager", "--unit=tether-relay", "--lines=40")
	return out
}

// relayToken issues a token as an admin does on the relay's machine: as
// root, with the secret the unit uses (README "Install").
func (m *machine) relayToken(dev, scope string) string {
	m.t.Helper()
	var out, errOut bytes.Buffer
	if err := m.exec(nil, &out, &errOut, "tether-relay", "token", "--secret-file", "/var/lib/tether-relay/secret",
		"--dev", dev, "--scope", scope, "--ttl", "1h"); err != nil {
		m.t.Fatalf("tether-relay token --scope %s in the container: %v\n%s", scope, err, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	tokenID(m.t, tok)
	return tok
}

// relayState checks the relay's unit and state folder while it runs: the
// hardening is in force, and the unit's dynamic user (a uid in systemd's
// 61184–65519) owns the folder (0700) and every file in it (0600: the
// secret, the SQLite database and its WAL files, none left to root by the
// token commands). It returns the secret's SHA-256. (The user's name,
// tether-relay, shows only where libnss-systemd is installed.)
func (m *machine) relayState() string {
	t := m.t
	t.Helper()
	pid := strings.TrimSpace(m.must("systemctl", "show", "--property=MainPID", "--value", "tether-relay"))
	uid, err := strconv.Atoi(strings.TrimSpace(m.must("stat", "--format=%u", "/proc/"+pid)))
	if err != nil || pid == "0" || uid < 61184 || uid > 65519 {
		t.Fatalf("tether-relay's MainPID %s runs as uid %d (%v), want a dynamic user", pid, uid, err)
	}
	// The hardening is in force, not only written down: no privileges to
	// gain, the syscall filter loaded, no capabilities, and a read-only
	// file system but for the state folder.
	status := m.must("cat", "/proc/"+pid+"/status")
	for _, want := range []string{"NoNewPrivs:\t1\n", "Seccomp:\t2\n", "CapEff:\t0000000000000000\n", "CapBnd:\t0000000000000000\n"} {
		if !strings.Contains(status, want) {
			t.Fatalf("tether-relay's /proc/%s/status lacks %q:\n%s", pid, want, status)
		}
	}
	mounts := map[string]string{} // mount point → options, the last mount there
	for _, line := range strings.Split(m.must("cat", "/proc/"+pid+"/mountinfo"), "\n") {
		if f := strings.Fields(line); len(f) > 5 {
			mounts[f[4]] = f[5]
		}
	}
	for point, want := range map[string]string{"/": "ro", "/usr": "ro", "/etc": "ro", relayStateDir: "rw"} {
		opts, ok := mounts[point]
		if !ok && point != "/" {
			opts, ok = mounts["/"], true // not a mount of its own: as / is
		}
		if !ok || !strings.HasPrefix(opts+",", want+",") {
			t.Fatalf("in tether-relay's mounts %s is %q, want %s", point, opts, want)
		}
	}
	if link := strings.TrimSpace(m.must("readlink", "/var/lib/tether-relay")); link != "private/tether-relay" {
		t.Fatalf("/var/lib/tether-relay links to %q, want private/tether-relay", link)
	}
	listing := m.must("find", relayStateDir, "-printf", "%p %y %m %U %u\n")
	t.Logf("the relay's state (path, type, mode, uid, user):\n%s", listing)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("find: %q", line)
		}
		want := "f 600"
		if f[0] == relayStateDir {
			want = "d 700"
		}
		if f[1]+" "+f[2] != want || f[3] != strconv.Itoa(uid) {
			t.Fatalf("%s is %s %s owned by %s (%s), want %s owned by the unit's user %d", f[0], f[1], f[2], f[3], f[4], want, uid)
		}
		seen[filepath.Base(f[0])] = true
	}
	for _, name := range []string{"secret", "secret.db"} {
		if !seen[name] {
			t.Fatalf("no %s in %s", name, relayStateDir)
		}
	}
	sum := strings.Fields(m.must("sha256sum", relayStateDir+"/secret"))
	return sum[0]
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
