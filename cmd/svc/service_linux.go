package main

// Linux: tetherd as a systemd user unit.
//
// kardianos/service v1.3.0 is not used on Linux, because on the machines
// Tether meets it does the wrong thing:
//   - it picks the init system by looking for /run/systemd/system or
//     PID 1 == systemd, and otherwise falls back to SysV, writing
//     /etc/init.d/tetherd (as root) instead of a user unit — in a
//     container, in WSL without systemd, or over some remote shells;
//   - it writes user units to $HOME/.config/systemd/user and ignores
//     $XDG_CONFIG_HOME, which is where systemd looks;
//   - its template hard-codes RestartSec=120 and WantedBy=multi-user.target,
//     a target a user manager does not have, so `enable` never starts it
//     at login;
//   - its Uninstall runs `systemctl disable` first and returns on failure
//     without removing the file, and Status reports "not installed" when
//     it merely cannot reach the user manager.
// A user unit is one small file plus a few systemctl calls, so we write it
// ourselves and keep every failure explicit.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/tether-dev/tether/internal/atomicfile"
)

const unitFile = serviceName + ".service"

// enableHint is what to run when systemctl --user is not reachable now.
const enableHint = "systemctl --user daemon-reload && systemctl --user enable --now " + serviceName

type systemdUser struct {
	unitDir string // $XDG_CONFIG_HOME/systemd/user
}

func newServiceManager() (serviceManager, error) {
	// os.UserConfigDir is $XDG_CONFIG_HOME, or $HOME/.config when that is
	// unset: the same rule systemd uses for the user unit search path.
	base, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("find the systemd user unit folder: %w", err)
	}
	return &systemdUser{unitDir: filepath.Join(base, "systemd", "user")}, nil
}

func (s *systemdUser) unitPath() string { return filepath.Join(s.unitDir, unitFile) }

// wantsLink is the symlink `systemctl --user enable` makes; uninstall
// removes it by hand when systemctl cannot.
func (s *systemdUser) wantsLink() string {
	return filepath.Join(s.unitDir, "default.target.wants", unitFile)
}

func (s *systemdUser) install(ctx context.Context, spec serviceSpec, out io.Writer) error {
	// systemd refuses ("Executable name contains special characters") a
	// program path with quotes, backslashes or control characters, however
	// it is escaped: say so now rather than write a unit that never starts.
	if strings.ContainsAny(spec.Exe, "\"'\\") || strings.ContainsFunc(spec.Exe, unicode.IsControl) {
		return fmt.Errorf("systemd cannot run a program whose path has quotes, backslashes or control characters (%q): "+
			"move tetherd to a plain path such as ~/.local/bin/tetherd and run install from there", spec.Exe)
	}
	unit := renderUnit(spec)
	path := s.unitPath()
	_, statErr := os.Stat(path)
	existed := statErr == nil
	if err := os.MkdirAll(s.unitDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", s.unitDir, err)
	}
	if err := atomicfile.WriteFile(path, []byte(unit), 0o644); err != nil {
		return fmt.Errorf("write unit file: %w", err)
	}
	if existed {
		fmt.Fprintf(out, "Updated the systemd user unit %s\n", path)
	} else {
		fmt.Fprintf(out, "Wrote the systemd user unit %s\n", path)
	}

	// daemon-reload is the probe: without a user manager in this session
	// (no XDG_RUNTIME_DIR, sudo, a container) it fails, and the file stays
	// for the next login, with the commands to finish by hand.
	if msg, err := systemctlUser(ctx, "daemon-reload"); err != nil {
		fmt.Fprintf(out, "\nsystemctl --user is not available here (%s),\n"+
			"so the service is installed but not enabled or started. In a login session, run:\n  %s\n",
			msg, enableHint)
	} else {
		if msg, err := systemctlUser(ctx, "enable", unitFile); err != nil {
			return fmt.Errorf("`systemctl --user enable %s`: %s: %w", unitFile, msg, err)
		}
		// restart, not start: after an update the running engine must pick
		// up the new binary; restart also starts a stopped unit.
		if msg, err := systemctlUser(ctx, "restart", unitFile); err != nil {
			return fmt.Errorf("`systemctl --user restart %s`: %s: %w", unitFile, msg, err)
		}
		fmt.Fprintf(out, "Enabled and started %s (logs: journalctl --user -u %s, and the logs folder)\n", unitFile, serviceName)
	}
	if note := lingerNote(); note != "" {
		fmt.Fprint(out, "\n"+note)
	}
	return nil
}

func (s *systemdUser) uninstall(ctx context.Context, out io.Writer) error {
	path := s.unitPath()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "tetherd is not installed as a service (no %s)\n", path)
		return nil
	}
	if msg, err := systemctlUser(ctx, "disable", "--now", unitFile); err != nil {
		fmt.Fprintf(out, "Could not stop and disable it with systemctl --user (%s);\n"+
			"a copy started by an earlier session keeps running until that session ends.\n", msg)
		if err := os.Remove(s.wantsLink()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", s.wantsLink(), err)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove unit file: %w", err)
	}
	_, _ = systemctlUser(ctx, "daemon-reload") // best effort: the file is gone either way
	fmt.Fprintf(out, "Removed the systemd user unit %s\n", path)
	return nil
}

func (s *systemdUser) control(ctx context.Context, verb string) error {
	if _, err := os.Stat(s.unitPath()); errors.Is(err, os.ErrNotExist) {
		return errServiceNotInstalled
	}
	if msg, err := systemctlUser(ctx, verb, unitFile); err != nil {
		return fmt.Errorf("`systemctl --user %s %s` failed: %s (the service needs a systemd user manager, "+
			"which runs in a login session; over sudo or a bare ssh, XDG_RUNTIME_DIR may be unset): %w",
			verb, unitFile, msg, err)
	}
	return nil
}

func (s *systemdUser) status(ctx context.Context) (string, error) {
	if _, err := os.Stat(s.unitPath()); errors.Is(err, os.ErrNotExist) {
		return serviceNotInstalled, nil
	}
	// is-active prints the state on stdout and exits non-zero for anything
	// but active, so the exit code alone says little; a bus error prints
	// nothing on stdout.
	cmd := exec.CommandContext(ctx, "systemctl", "--user", "is-active", unitFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	switch strings.TrimSpace(stdout.String()) {
	case "active", "activating", "reloading", "refreshing":
		return serviceRunning, nil
	case "inactive", "deactivating":
		return serviceStopped, nil
	case "failed":
		return serviceFailed, nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" && runErr != nil {
		msg = runErr.Error()
	}
	return serviceUnknown, fmt.Errorf("`systemctl --user is-active %s`: %s", unitFile, msg)
}

// renderUnit is the unit file. Restart=always with a short RestartSec keeps
// the bridge up; the start limit still stops a unit that cannot start at all
// (no token, bad config) instead of looping forever. KillMode=mixed sends
// SIGTERM to tetherd alone, so it can stop its MCP servers' process groups
// gracefully, and only then kills what is left.
func renderUnit(spec serviceSpec) string {
	var b strings.Builder
	b.WriteString("# Written by `tetherd install`; `tetherd uninstall` removes it.\n")
	b.WriteString("[Unit]\n")
	b.WriteString("Description=" + serviceDisplayName + ": serves local MCP servers through a relay\n")
	b.WriteString("StartLimitIntervalSec=60\nStartLimitBurst=10\n\n")
	b.WriteString("[Service]\nType=simple\n")
	// The program path is not subject to $ expansion, its arguments are:
	// systemd-analyze rejects "$$" in the path as a missing file.
	b.WriteString("ExecStart=" + systemdQuote(spec.Exe, false))
	for _, a := range spec.Args {
		b.WriteString(" " + systemdQuote(a, true))
	}
	b.WriteString("\n")
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString("Environment=" + systemdQuote(k+"="+spec.Env[k], false) + "\n")
	}
	b.WriteString("Restart=always\nRestartSec=2\nKillMode=mixed\nTimeoutStopSec=20\n\n")
	b.WriteString("[Install]\nWantedBy=default.target\n")
	return b.String()
}

// systemdQuote makes s one word of a unit file value: double-quoted, with
// backslash and quote escaped, '%' doubled (specifiers), and with dollar set
// '$' doubled too, for ExecStart arguments (variable expansion, which
// neither the program path nor Environment= gets).
func systemdQuote(s string, dollar bool) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "\n", `\n`)
	q := r.Replace(s)
	if dollar {
		q = strings.ReplaceAll(q, "$", "$$")
	}
	return `"` + q + `"`
}

// systemctlUser runs `systemctl --user ARGS...` and returns its trimmed
// output for error messages.
func systemctlUser(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--user"}, args...)...)
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return msg, err
}

// lingerNote tells the user that a user unit stops at logout unless
// lingering is on, with the exact command; nothing when it is already on.
func lingerNote() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = "$USER"
	} else if _, err := os.Stat(filepath.Join("/var/lib/systemd/linger", name)); err == nil {
		return ""
	}
	return "Note: systemd stops user services when you log out. To keep tetherd running\n" +
		"after logout and start it at boot without a login, run:\n" +
		"  loginctl enable-linger " + name + "\n"
}
