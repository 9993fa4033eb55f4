package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/assets"
)

// The menu as data. menuModel is a pure function of one engine snapshot, so
// every state the tray can show is a plain table test (model_test.go); the
// renderer (render.go) only copies a Model onto fyne.io/systray items.

// Model is the whole tray: icon, tooltip and menu.
type Model struct {
	Icon    string // an assets state: connected, connecting, offline, attention
	Tooltip string // one line
	Items   []Item
}

// Item is one menu entry. Key identifies it among its siblings across
// snapshots (the renderer updates an item with the same key in place); ID is
// the action a click runs, empty for information lines.
type Item struct {
	Key       string
	ID        string
	Label     string
	Tooltip   string
	Enabled   bool
	Checkbox  bool // shows a checkmark toggle
	Checked   bool
	Separator bool
	Children  []Item
}

// Action ids. Server actions are "<verb>:<server name>".
const (
	actConnect          = "connect"
	actDisconnect       = "disconnect"
	actPasteToken       = "paste-token"
	actForgetToken      = "forget-token"
	actEditServers      = "edit-servers"
	actImport           = "import"
	actOpenLogs         = "open-logs"
	actServiceInstall   = "service-install"
	actServiceUninstall = "service-uninstall"
	actLoginItem        = "login-item"
	actAbout            = "about"
	actQuit             = "quit"

	actRestart = "restart:"
	actEnable  = "enable:"
	actDisable = "disable:"
	actShowLog = "show-log:"
)

const (
	// maxTools is how many tool names a server's submenu lists before
	// "and N more".
	maxTools = 10
	// maxCalls is how many recent calls the menu lists.
	maxCalls = 5
	// maxLine caps information lines (errors can be long); the full text
	// is the item's tooltip.
	maxLine = 70
)

// menuModel maps one snapshot to the tray. attached is true when the engine
// runs in another process (the service, or a foreground tetherd), so that
// the menu can say whose state it shows.
func menuModel(st app.State, now time.Time, attached bool) Model {
	m := Model{Icon: iconState(st)}
	m.Tooltip = tooltip(st, m.Icon)

	status, statusTip := relayLine(st, now)
	items := []Item{info("status", status, statusTip)}
	items = append(items, signInItems(st, now)...)
	if l := lastErrorLine(st); l != "" {
		items = append(items, info("relay-error", clip(l), st.Relay.LastError))
	}
	if l, tip := tokenLine(st, now); l != "" {
		items = append(items, info("token", l, tip))
	}
	if st.Config.Error != "" {
		items = append(items, info("config-error", clip("mcp.json has an error: "+st.Config.Error),
			st.Config.Error+"\nThe last good configuration keeps running. Use Edit servers to fix it."))
	}
	if len(st.Config.Missing) > 0 {
		items = append(items, info("config-missing", clip("Variables not set: "+strings.Join(st.Config.Missing, ", ")),
			"Set them in the environment or in .env beside mcp.json."))
	}
	if attached {
		who := "tetherd"
		if st.Engine.Service {
			who = "the background service"
		}
		items = append(items, info("attached", fmt.Sprintf("Showing %s (pid %d)", who, st.Engine.PID),
			"Tether runs in another process; this menu controls it. Quit leaves it running."))
	}
	items = append(items, connectItem(st), sep("sep-servers"))

	items = append(items, serverItems(st, now)...)
	items = append(items, sep("sep-setup"),
		signInItem(st, now),
		Item{Key: actPasteToken, ID: actPasteToken, Label: "Paste token from clipboard", Enabled: true,
			Tooltip: "Reads a bridge token from the clipboard, stores it in the OS keychain and connects."},
		Item{Key: actForgetToken, ID: actForgetToken, Label: "Forget stored token", Enabled: st.Token.Present && st.Token.Source == app.TokenFromKeychain,
			Tooltip: "Removes the token from the OS keychain and disconnects."},
		Item{Key: actEditServers, ID: actEditServers, Label: "Edit servers…", Enabled: st.Config.Path != "",
			Tooltip: "Opens mcp.json in your editor; Tether applies changes when you save."},
		Item{Key: actImport, ID: actImport, Label: "Import from Claude Desktop, Cursor, VS Code", Enabled: st.Config.Path != "",
			Tooltip: "Copies their MCP servers into mcp.json, disabled until you enable them."},
		Item{Key: actOpenLogs, ID: actOpenLogs, Label: "Open logs folder", Enabled: true},
		sep("sep-background"),
		serviceItem(st, attached),
		Item{Key: actLoginItem, ID: actLoginItem, Label: "Start Tether at login", Enabled: true, Checkbox: true},
		callsItem(st, now),
		sep("sep-app"),
		Item{Key: actAbout, ID: actAbout, Label: aboutLabel(st), Enabled: true, Tooltip: "Shows where Tether keeps its files."},
		Item{Key: actQuit, ID: actQuit, Label: quitLabel(attached), Enabled: true},
	)
	m.Items = items
	return m
}

func info(key, label, tip string) Item { return Item{Key: key, Label: label, Tooltip: tip} }

func sep(key string) Item { return Item{Key: key, Separator: true} }

// iconState picks the icon: attention wins over everything a user must fix,
// then the relay phase.
func iconState(st app.State) string {
	switch {
	case needsAttention(st):
		return assets.Attention
	case st.Relay.Phase == app.RelayConnected:
		return assets.Connected
	case st.Relay.Phase == app.RelayConnecting || st.Relay.Phase == app.RelayBackoff:
		return assets.Connecting
	}
	return assets.Offline
}

func needsAttention(st app.State) bool {
	if st.Relay.Phase == app.RelayRejected || st.Token.Expired || st.Config.Error != "" {
		return true
	}
	for _, s := range st.Servers {
		if s.Phase == app.ServerCrashLoop {
			return true
		}
	}
	return false
}

// tooltip is one line: "Tether — connected · 3 servers · 42 tools".
func tooltip(st app.State, icon string) string {
	word := map[string]string{
		assets.Connected: "connected", assets.Connecting: "connecting",
		assets.Offline: "offline", assets.Attention: "needs attention",
	}[icon]
	servers, tools := 0, 0
	for _, s := range st.Servers {
		if s.Enabled {
			servers++
			tools += s.ToolCount
		}
	}
	return fmt.Sprintf("Tether — %s · %s · %s", word, plural(servers, "server"), plural(tools, "tool"))
}

// relayLine is the status line and its tooltip.
func relayLine(st app.State, now time.Time) (string, string) {
	r := st.Relay
	host := relayHost(r.URL)
	switch r.Phase {
	case app.RelayConnected:
		l := "Connected to " + host
		if st.Token.DevID != "" {
			l += " as " + st.Token.DevID
		}
		if r.TookOver != "" {
			// Two machines with one token push each other off in turn:
			// say it on this side too, with the relay's when and where.
			return l + " (took over from another Tether)", "The relay says this bridge " + r.TookOver + ". If that was not you, revoke the token and make a new one."
		}
		return l, "Hosted agents can reach your servers through " + r.URL
	case app.RelayConnecting:
		if r.Attempt > 0 {
			return fmt.Sprintf("Connecting to %s… (attempt %d)", host, r.Attempt+1), r.LastError
		}
		return "Connecting to " + host + "…", ""
	case app.RelayBackoff:
		wait := r.NextRetry.Sub(now)
		if r.NextRetry.IsZero() || wait <= 0 {
			return "Connecting… retrying now", r.LastError
		}
		return "Connecting… retry in " + seconds(wait), r.LastError
	case app.RelayRejected:
		switch {
		case r.Replaced:
			return "Another Tether took over this bridge", r.Reason + ". Another computer or Tether connected with the same token. Connect takes the bridge back."
		case st.Token.Expired:
			return "Token expired — paste a new one", ""
		case r.Unauthorized:
			return "Token rejected by the relay — paste a new one", r.Reason
		}
		return "Relay refused the connection", r.Reason
	}
	// offline: say what is missing, in the order a person must fix it.
	switch {
	case r.URL == "":
		return "No relay set — open a tether:// link or set \"relay\" in settings.json", ""
	case st.Token.Expired:
		return "Token expired — paste a new one", ""
	case !st.Token.Present:
		return noTokenLine(st.Token, host)
	case !r.Wanted:
		return "Disconnected", "Your servers stay warm; Connect shares them again."
	}
	if r.Reason != "" && r.Reason != app.RelayReasonStopped {
		return "Offline: " + clip(r.Reason), r.Reason
	}
	return "Offline", ""
}

// noTokenLine says, by the kind of problem, what to do when there is no
// token; the lookup's full text (every place looked) is the tooltip where
// it helps.
func noTokenLine(t app.TokenState, host string) (string, string) {
	switch t.Status {
	case app.TokenKeychainUnavailable:
		return "No keychain here — use a token file", t.Error
	case app.TokenUnreadable:
		return "Token could not be read — see details", t.Error
	}
	return "No token — sign in to connect", "Choose Sign in with browser…, or copy a bridge token for " + host + " and choose Paste token from clipboard."
}

// lastErrorLine shows why the relay link is retrying.
func lastErrorLine(st app.State) string {
	if st.Relay.LastError == "" || (st.Relay.Phase != app.RelayBackoff && st.Relay.Phase != app.RelayConnecting) {
		return ""
	}
	return "Last error: " + st.Relay.LastError
}

// tokenLine says who the token is for and when it expires, when that is
// not already the status line.
func tokenLine(st app.State, now time.Time) (string, string) {
	t := st.Token
	if !t.Present || t.Expired {
		return "", ""
	}
	who := "Token"
	if t.DevID != "" {
		who = "Token for " + t.DevID
	}
	tip := fmt.Sprintf("From %s, ends in …%s", t.Source, t.Last4)
	switch {
	case t.Expires.IsZero():
		return who + " · never expires", tip
	case t.ExpiringSoon:
		return fmt.Sprintf("%s expires %s — paste a new one soon", who, until(t.Expires, now)), tip
	}
	return fmt.Sprintf("%s · expires %s", who, until(t.Expires, now)), tip
}

// connectItem is one item whose label follows the state.
func connectItem(st app.State) Item {
	r := st.Relay
	if r.Wanted && (r.Phase == app.RelayConnected || r.Phase == app.RelayConnecting || r.Phase == app.RelayBackoff) {
		return Item{Key: "connect", ID: actDisconnect, Label: "Disconnect", Enabled: true,
			Tooltip: "Stops sharing; your servers stay warm."}
	}
	it := Item{Key: "connect", ID: actConnect, Label: "Connect", Enabled: true}
	switch {
	case r.URL == "":
		it.Enabled, it.Tooltip = false, "No relay is set."
	case !st.Token.Present || st.Token.Expired:
		it.Enabled, it.Tooltip = false, "Paste a token first."
	case r.Phase == app.RelayRejected && r.Replaced:
		it.Label = "Connect (take the bridge back)"
	}
	return it
}

// serverItems is one submenu per server of mcp.json.
func serverItems(st app.State, now time.Time) []Item {
	if len(st.Servers) == 0 {
		if st.Config.Path == "" {
			return []Item{info("no-servers", "No servers", "")}
		}
		return []Item{info("no-servers", "No servers yet — Edit servers… to add one", "")}
	}
	var items []Item
	for _, s := range st.Servers {
		items = append(items, serverItem(s, now))
	}
	return items
}

func serverItem(s app.ServerView, now time.Time) Item {
	it := Item{Key: "server:" + s.Name, Label: s.Name + " — " + serverPhase(s, now), Enabled: true, Tooltip: s.Warning}
	kids := []Item{
		{Key: "restart", ID: actRestart + s.Name, Label: "Restart", Enabled: s.Enabled},
	}
	if s.Enabled {
		kids = append(kids, Item{Key: "toggle", ID: actDisable + s.Name, Label: "Disable", Enabled: true,
			Tooltip: "Stops it and marks it disabled in mcp.json."})
	} else {
		kids = append(kids, Item{Key: "toggle", ID: actEnable + s.Name, Label: "Enable", Enabled: true,
			Tooltip: "Removes \"disabled\" from mcp.json and starts it."})
	}
	logTip := s.LogFile
	if logTip == "" {
		logTip = "Opens the logs folder"
	}
	kids = append(kids, Item{Key: "log", ID: actShowLog + s.Name, Label: "Show log", Enabled: true, Tooltip: logTip},
		sep("sep-tools"))
	if s.LastError != "" {
		kids = append(kids, info("error", clip("Last error: "+s.LastError), s.LastError))
	}
	if s.Warning != "" {
		kids = append(kids, info("warning", clip(s.Warning), s.Warning))
	}
	if s.Hidden > 0 {
		kids = append(kids, info("hidden", plural(s.Hidden, "tool")+" hidden by allow/deny in mcp.json", ""))
	}
	for i, name := range s.Tools {
		if i == maxTools {
			kids = append(kids, info("more", fmt.Sprintf("and %d more", len(s.Tools)-maxTools), ""))
			break
		}
		kids = append(kids, info(fmt.Sprintf("tool#%d", i), name, ""))
	}
	it.Children = kids
	return it
}

// serverPhase is the part after the server name: "26 tools", "starting…".
func serverPhase(s app.ServerView, now time.Time) string {
	switch s.Phase {
	case app.ServerDisabled:
		return "disabled"
	case app.ServerReady:
		return plural(s.ToolCount, "tool")
	case app.ServerStarting:
		return "starting…"
	case app.ServerBackoff:
		l := fmt.Sprintf("crashed %d×", max(s.Restarts, 1))
		if d := s.NextRestart.Sub(now); !s.NextRestart.IsZero() && d > 0 {
			l += " · restarting in " + seconds(d)
		}
		return l
	case app.ServerCrashLoop:
		return fmt.Sprintf("crashed %d× · see log", s.Restarts)
	case app.ServerStopped:
		return "stopped"
	case "":
		return "not started"
	}
	return string(s.Phase)
}

// serviceItem offers the OS service. When the tray shows the service, it
// can be uninstalled; otherwise installed (which also covers "installed
// but not running": install is idempotent and starts it).
func serviceItem(st app.State, attached bool) Item {
	if attached && st.Engine.Service {
		return Item{Key: "service", ID: actServiceUninstall, Label: "Stop running in background (uninstall service)", Enabled: true,
			Tooltip: "Removes the tetherd service; the tray then runs Tether itself while it is open."}
	}
	return Item{Key: "service", ID: actServiceInstall, Label: "Run in background as a service", Enabled: !attached,
		Tooltip: "Installs tetherd as a user service so your servers stay shared when the tray is closed."}
}

// callsItem lists the last remote calls, newest first.
func callsItem(st app.State, now time.Time) Item {
	it := Item{Key: "calls", Label: "Recent calls", Enabled: true}
	if len(st.Calls) == 0 {
		it.Children = []Item{info("none", "No calls yet", "")}
		return it
	}
	for i, c := range st.Calls {
		if i == maxCalls {
			break
		}
		l := fmt.Sprintf("%s/%s · %s · %s · %s ago", c.Server, c.Tool, duration(c.Duration), outcome(c.Outcome), ago(now.Sub(c.At)))
		it.Children = append(it.Children, info(fmt.Sprintf("call#%d", i), l, c.Error))
	}
	return it
}

func outcome(o app.Outcome) string {
	switch o {
	case app.OutcomeToolError:
		return "tool error"
	case "":
		return "?"
	}
	return string(o)
}

func aboutLabel(st app.State) string {
	v := st.Version
	if v == "" {
		v = "dev"
	}
	return "About Tether " + v
}

func quitLabel(attached bool) string {
	if attached {
		return "Quit tray (Tether keeps running)"
	}
	return "Quit Tether"
}

// relayHost shows a relay URL without scheme and path.
func relayHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// seconds rounds a wait up to whole seconds, so "retry in 8 s" never says 0.
func seconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s >= 90 {
		return fmt.Sprintf("%d min", (s+59)/60)
	}
	return fmt.Sprintf("%d s", s)
}

// until says when t is, relative to now: "in 2 days", "in 5 hours", "on 2026-03-01".
func until(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "now"
	case d < time.Hour:
		return "in " + plural(int(d.Minutes())+1, "minute")
	case d < 48*time.Hour:
		return "in " + plural(int(d.Hours()), "hour")
	case d < 14*24*time.Hour:
		return "in " + plural(int(d.Hours()/24), "day")
	}
	return "on " + t.Local().Format(time.DateOnly)
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h", int(d.Hours()))
}

func duration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// clip shortens one line for the menu; the tooltip keeps the whole text.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxLine {
		return string(r[:maxLine-1]) + "…"
	}
	return s
}

// find returns the item with id key path ("server:github", "restart"), or nil.
func (m *Model) find(keys ...string) *Item {
	items := m.Items
	var it *Item
	for _, k := range keys {
		it = nil
		for i := range items {
			if items[i].Key == k {
				it = &items[i]
				break
			}
		}
		if it == nil {
			return nil
		}
		items = it.Children
	}
	return it
}
