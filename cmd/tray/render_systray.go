package main

import (
	"log/slog"
	"runtime"
	"strings"

	"fyne.io/systray"

	"github.com/tether-dev/tether/assets"
)

// trayBackend is the renderer's backend on fyne.io/systray.
type trayBackend struct{ log *slog.Logger }

// dbusLabel escapes "_", which dbusmenu hosts read as a mnemonic marker
// ("add_tool" would show as "addtool"); Windows and macOS show it as is.
func dbusLabel(s string) string {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return s
	}
	return strings.ReplaceAll(s, "_", "__")
}

func (b trayBackend) add(parent handle, it Item, click func()) handle {
	p, _ := parent.(*systray.MenuItem)
	it.Label = dbusLabel(it.Label)
	if it.Separator {
		if p == nil {
			systray.AddSeparator()
		} else {
			p.AddSeparator()
		}
		return nil
	}
	var mi *systray.MenuItem
	switch {
	case p == nil && it.Checkbox:
		mi = systray.AddMenuItemCheckbox(it.Label, it.Tooltip, it.Checked)
	case p == nil:
		mi = systray.AddMenuItem(it.Label, it.Tooltip)
	case it.Checkbox:
		mi = p.AddSubMenuItemCheckbox(it.Label, it.Tooltip, it.Checked)
	default:
		mi = p.AddSubMenuItem(it.Label, it.Tooltip)
	}
	if !it.Enabled {
		mi.Disable()
	}
	// Remove (and ResetMenu) close ClickedCh, which ends this goroutine.
	go func() {
		for range mi.ClickedCh {
			click()
		}
	}()
	return mi
}

func (trayBackend) update(h handle, it Item) {
	mi := h.(*systray.MenuItem)
	mi.SetTitle(dbusLabel(it.Label))
	mi.SetTooltip(it.Tooltip)
	if it.Enabled {
		mi.Enable()
	} else {
		mi.Disable()
	}
	if it.Checked {
		mi.Check()
	} else {
		mi.Uncheck()
	}
}

func (trayBackend) setVisible(h handle, visible bool) {
	if visible {
		h.(*systray.MenuItem).Show()
	} else {
		h.(*systray.MenuItem).Hide()
	}
}

func (trayBackend) reset() { systray.ResetMenu() }

func (b trayBackend) setIcon(state string) {
	icon, template, err := assets.Icon(state, runtime.GOOS)
	if err != nil {
		b.log.Error("tray icon", "err", err)
		return
	}
	if template != nil {
		systray.SetTemplateIcon(template, icon)
		return
	}
	systray.SetIcon(icon)
}

func (trayBackend) setTooltip(text string) { systray.SetTooltip(text) }
