// Package assets holds the tray icons, drawn by ./gen and embedded here so
// the tray binary is self-contained.
package assets

//go:generate go run ./gen -out .

import (
	"embed"
	"fmt"
)

//go:embed *.png *.ico
var files embed.FS

// The icon states, one per look of the tray icon.
const (
	Connected  = "connected"  // linked to the relay
	Connecting = "connecting" // dialling or waiting to retry
	Offline    = "offline"    // disconnected on purpose, or nothing to connect with
	Attention  = "attention"  // the user must act: token rejected or expired, crash loop, invalid mcp.json
)

// States lists every icon state.
var States = []string{Connected, Connecting, Offline, Attention}

// Icon returns the icon of state for goos: an ICO on Windows, a PNG
// elsewhere. Template is the monochrome PNG macOS tints for light and dark
// menu bars (nil on other systems).
func Icon(state, goos string) (icon, template []byte, err error) {
	ext := ".png"
	if goos == "windows" {
		ext = ".ico"
	}
	if icon, err = files.ReadFile(state + ext); err != nil {
		return nil, nil, fmt.Errorf("no icon for state %q: %w", state, err)
	}
	if goos == "darwin" {
		if template, err = files.ReadFile(state + "-template.png"); err != nil {
			return nil, nil, fmt.Errorf("no template icon for state %q: %w", state, err)
		}
	}
	return icon, template, nil
}
