package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/tether-dev/tether/internal/atomicfile"
)

// "Start Tether at login" for the tray itself (the service has its own
// start at login): an XDG autostart entry on Linux, a LaunchAgent on macOS,
// the HKCU Run key on Windows. All per user, no elevation.

const launchAgentLabel = "dev.tether.tray"

// loginItemPath is the file that makes the tray start at login (Linux,
// macOS); "" on Windows, which uses the registry.
func loginItemPath() (string, error) {
	switch runtime.GOOS {
	case "windows":
		return "", nil
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "LaunchAgents", launchAgentLabel+".plist"), nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "autostart", "tether.desktop"), nil
}

// loginItemEnabled reports whether the tray starts at login.
func loginItemEnabled(ctx context.Context) bool {
	if runtime.GOOS == "windows" {
		return exec.CommandContext(ctx, "reg", "query", `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, "/v", "Tether").Run() == nil
	}
	p, err := loginItemPath()
	if err != nil {
		return false
	}
	if runtime.GOOS == "darwin" {
		_, err = os.Stat(p)
		return err == nil
	}
	// XDG: the user's entry overrides the system one of the same name.
	if data, err := os.ReadFile(p); err == nil {
		return !hiddenEntry(data)
	}
	return systemLoginItem() != ""
}

// systemLoginItem is the autostart entry a package installs for every user
// (packaging/linux: /etc/xdg/autostart/tether.desktop), searched along
// $XDG_CONFIG_DIRS; "" when there is none.
func systemLoginItem() string {
	dirs := os.Getenv("XDG_CONFIG_DIRS")
	if dirs == "" {
		dirs = "/etc/xdg"
	}
	for _, d := range filepath.SplitList(dirs) {
		p := filepath.Join(d, "autostart", "tether.desktop")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// hiddenEntry reports whether a desktop entry says Hidden=true: the XDG way
// for a user to turn off a system-wide autostart entry.
func hiddenEntry(data []byte) bool {
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "Hidden=true" {
			return true
		}
	}
	return false
}

// setLoginItem turns start at login on or off for the executable exe.
func setLoginItem(ctx context.Context, on bool, exe string) error {
	if runtime.GOOS == "windows" {
		key := `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`
		var cmd *exec.Cmd
		if on {
			cmd = exec.CommandContext(ctx, "reg", "add", key, "/v", "Tether", "/t", "REG_SZ", "/d", `"`+exe+`"`, "/f")
		} else {
			cmd = exec.CommandContext(ctx, "reg", "delete", key, "/v", "Tether", "/f")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("reg: %w: %s", err, firstLine(string(out), ""))
		}
		return nil
	}
	p, err := loginItemPath()
	if err != nil {
		return err
	}
	if !on && runtime.GOOS != "darwin" && systemLoginItem() != "" {
		// Removing our file would leave the package's entry in force.
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return atomicfile.WriteFile(p, []byte("[Desktop Entry]\nType=Application\nName=Tether\nHidden=true\n"), 0o644)
	}
	if !on {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, []byte(loginItemFile(runtime.GOOS, exe)), 0o644)
}

func loginItemFile(goos, exe string) string {
	if goos == "darwin" {
		r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
		return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key><string>` + launchAgentLabel + `</string>
	<key>ProgramArguments</key><array><string>` + r.Replace(exe) + `</string></array>
	<key>RunAtLoad</key><true/>
	<key>ProcessType</key><string>Interactive</string>
</dict>
</plist>
`
	}
	// Desktop Entry Exec quoting: double quotes, with \ " ` $ escaped.
	q := `"` + strings.NewReplacer(`\`, `\\\\`, `"`, `\"`, "`", "\\`", `$`, `\$`).Replace(exe) + `"`
	return "[Desktop Entry]\nType=Application\nName=Tether\nComment=Share your MCP servers with hosted agents\nExec=" + q +
		"\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
}
