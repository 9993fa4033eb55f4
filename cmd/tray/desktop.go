package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Small desktop services done by running the platform's own tools, so the
// tray needs no cgo and no extra modules: clipboard, opening files,
// notifications (on Linux over DBus, notify_dbus.go). Each says clearly
// what is missing when no tool exists.

// clipboardTools are tried in order; the first one present is used.
func clipboardTools(goos string) [][]string {
	switch goos {
	case "darwin":
		return [][]string{{"pbpaste"}}
	case "windows":
		return [][]string{{"powershell", "-NoProfile", "-NonInteractive", "-Command", "Get-Clipboard -Raw"}}
	}
	tools := [][]string{{"xclip", "-o", "-selection", "clipboard"}, {"xsel", "-ob"}}
	if os.Getenv("WAYLAND_DISPLAY") != "" {
		tools = append([][]string{{"wl-paste", "--no-newline"}}, tools...)
	} else {
		tools = append(tools, []string{"wl-paste", "--no-newline"})
	}
	return tools
}

// errNoClipboardTool says which package to install.
var errNoClipboardTool = errors.New("cannot read the clipboard: install wl-clipboard (Wayland), xclip or xsel")

// readClipboard returns the clipboard's text.
func readClipboard(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var lastErr error
	for _, tool := range clipboardTools(runtime.GOOS) {
		path, err := exec.LookPath(tool[0])
		if err != nil {
			continue
		}
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, path, tool[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			// wl-paste exits 1 on an empty clipboard; xclip when there is
			// no selection owner. Try the next tool, keep the reason.
			lastErr = fmt.Errorf("%s: %s", tool[0], strings.TrimSpace(firstLine(errOut.String(), err.Error())))
			continue
		}
		return out.String(), nil
	}
	if lastErr != nil {
		return "", fmt.Errorf("cannot read the clipboard (%w)", lastErr)
	}
	return "", errNoClipboardTool
}

// openPath opens a file or folder with the desktop's default application.
func openPath(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Not bound to ctx, which ends when the menu action returns: the
	// opener would be killed before it started anything.
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", path)
	case "windows":
		// start's first quoted argument is the window title.
		cmd = exec.Command("cmd", "/c", "start", "", path)
	default:
		if _, err := exec.LookPath("xdg-open"); err != nil {
			return fmt.Errorf("cannot open %s: xdg-open is not installed (package xdg-utils)", path)
		}
		cmd = exec.Command("xdg-open", path)
	}
	// Detached: the opener may live as long as the editor it starts.
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	go cmd.Wait()
	return nil
}

// notify shows a desktop notification; failures only reach the log.
func notify(ctx context.Context, title, body string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		script := fmt.Sprintf("display notification %s with title %s", appleQuote(body), appleQuote(title))
		cmd = exec.CommandContext(ctx, "osascript", "-e", script)
	case "windows":
		cmd = exec.CommandContext(ctx, "powershell", "-NoProfile", "-NonInteractive", "-Command", windowsToast)
		cmd.Env = append(os.Environ(), "TETHER_NOTE_TITLE="+title, "TETHER_NOTE_BODY="+body)
	default:
		// Over DBus, not notify-send: that tool (libnotify-bin) is often
		// missing, and it only makes the same call on the same bus.
		return notifyDesktop(ctx, title, body)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("notification: %w: %s", err, firstLine(string(out), ""))
	}
	return nil
}

// windowsToast shows a toast through the WinRT API from PowerShell. The text
// comes in through the environment, so nothing needs escaping.
const windowsToast = `[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType = WindowsRuntime] > $null
$t = [Windows.UI.Notifications.ToastNotificationManager]::GetTemplateContent([Windows.UI.Notifications.ToastTemplateType]::ToastText02)
$n = $t.GetElementsByTagName('text')
$n.Item(0).AppendChild($t.CreateTextNode($env:TETHER_NOTE_TITLE)) > $null
$n.Item(1).AppendChild($t.CreateTextNode($env:TETHER_NOTE_BODY)) > $null
[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier('Tether').Show([Windows.UI.Notifications.ToastNotification]::new($t))`

// appleQuote makes an AppleScript string literal.
func appleQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func firstLine(s, fallback string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return fallback
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// findTetherd finds the tetherd binary: beside this executable first (the
// packages install both together), then on PATH.
func findTetherd() (string, error) {
	name := "tetherd"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", errors.New("tetherd is not installed next to tether or on PATH; the background service needs it")
}

// runTetherd runs `tetherd verb` and returns its output.
func runTetherd(ctx context.Context, verb string) (string, error) {
	bin, err := findTetherd()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, verb).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return text, fmt.Errorf("tetherd %s: %w: %s", verb, err, firstLine(text, ""))
	}
	return text, nil
}
