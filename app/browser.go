package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
)

// OpenBrowser opens an http(s) URL in the person's default browser with
// the platform's own tool (open, rundll32, xdg-open). Other schemes are
// refused: the URL may come from a relay, and handing the desktop a
// file: or custom-scheme URL would let the relay start programs.
func OpenBrowser(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("not opening %q: only http(s) URLs are opened in the browser", rawURL)
	}
	name, args := browserCommand(runtime.GOOS, u.String())
	path, err := exec.LookPath(name)
	if err != nil {
		if runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
			return errors.New("cannot open the browser: xdg-open is not installed (package xdg-utils); open the link by hand")
		}
		return fmt.Errorf("cannot open the browser: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Not bound to ctx: the caller's context ends as soon as it returns
	// (the tray's menu action), which would kill the tool before it has
	// handed the URL over (xdg-open is a script that takes a moment).
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot open the browser: %w", err)
	}
	// The tool hands the URL to the desktop and exits; reap it without
	// making the caller wait.
	go cmd.Wait()
	return nil
}

// browserCommand is the command that opens u on goos.
func browserCommand(goos, u string) (string, []string) {
	switch goos {
	case "darwin":
		return "open", []string{u}
	case "windows":
		// Not "cmd /c start": cmd would read & and ^ in the URL as its own.
		return "rundll32", []string{"url.dll,FileProtocolHandler", u}
	}
	return "xdg-open", []string{strings.TrimSpace(u)}
}
