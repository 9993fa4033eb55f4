package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/app/config"
	buildversion "github.com/tether-dev/tether/internal/version"
	"github.com/tether-dev/tether/keystore"
)

// What the menu's items do. Every command goes through app.Control (the
// in-process engine or the attached service alike); the outcome shows as a
// notice line in the menu.

// errStarting is returned while the tray is between engines.
var errStarting = errors.New("tether is still starting; try again in a moment")

// maxClipboard bounds what Paste token reads as a token.
const maxClipboard = 64 << 10

func (t *tray) click(action string) { go t.do(action) }

func (t *tray) do(action string) {
	ctx, cancel := context.WithTimeout(t.ctx, 3*time.Minute)
	defer cancel()
	t.mu.Lock()
	ctl, st, have := t.ctl, t.st, t.haveState
	t.mu.Unlock()
	t.log.Info("menu", "action", action)

	var msg string
	var err error
	needCtl := func() bool {
		if ctl == nil {
			err = errStarting
			return false
		}
		return true
	}
	switch {
	case action == actQuit:
		t.quit()
		return
	case action == actConnect:
		if needCtl() {
			err = ctl.Connect(ctx)
		}
	case action == actDisconnect:
		if needCtl() {
			err = ctl.Disconnect(ctx)
		}
	case action == actPasteToken:
		if needCtl() {
			msg, err = pasteToken(ctx, ctl, readClipboard)
		}
	case action == actSignIn:
		if needCtl() {
			msg, err = signIn(ctx, ctl, app.OpenBrowser)
		}
	case action == actSignInOpen && have:
		err = openSignInPage(ctx, st, app.OpenBrowser)
	case action == actSignInAbort:
		if needCtl() {
			if err = ctl.CancelLogin(ctx); err == nil {
				msg = "Sign-in canceled"
			}
		}
	case action == actForgetToken:
		if needCtl() {
			if err = ctl.ClearToken(ctx); err == nil {
				msg = "Token removed from the keychain"
			}
		}
	case action == actEditServers && have:
		err = openPath(ctx, st.Config.Path)
	case action == actOpenLogs:
		err = openPath(ctx, t.logsDir(st, have))
	case action == actImport && have:
		if needCtl() {
			msg, err = importServers(ctx, ctl)
		}
	case action == actServiceInstall:
		msg, err = t.installService(ctx)
	case action == actServiceUninstall:
		msg, err = runTetherd(ctx, "uninstall")
	case action == actLoginItem:
		msg, err = t.toggleLogin(ctx)
	case action == actAbout:
		home := t.paths.Dir
		if have {
			home = st.Engine.Home
		}
		msg = fmt.Sprintf("Tether %s · files in %s", buildversion.Get(), home)
	case action == "link-accept":
		l, ok := t.takeLink()
		if ok && have {
			_, err = linkRisk(l.link, st) // the state may have changed since it was shown
		}
		if ok && err == nil && needCtl() {
			if err = l.link.apply(ctx, ctl, l.riskShown); err == nil {
				msg = "Link applied; connecting"
			}
		}
	case action == "link-dismiss":
		t.takeLink()
		t.poke()
	default:
		verb, name, _ := strings.Cut(action, ":")
		if !needCtl() {
			break
		}
		switch verb + ":" {
		case actRestart:
			err = ctl.RestartServer(ctx, name)
		case actEnable:
			err = ctl.SetServerEnabled(ctx, name, true)
		case actDisable:
			err = ctl.SetServerEnabled(ctx, name, false)
		case actShowLog:
			err = openPath(ctx, serverLogFile(st, name, t.logsDir(st, have)))
		default:
			err = fmt.Errorf("unknown menu action %q", action)
		}
	}
	switch {
	case err != nil:
		t.log.Warn("menu action failed", "action", action, "err", err)
		t.setNotice(err.Error())
	case msg != "":
		t.log.Info("menu action", "action", action, "result", msg)
		t.setNotice(msg)
	}
}

// pasteToken reads the clipboard, checks the token and stores it through
// the engine, which connects with it. Nothing it returns contains the token.
func pasteToken(ctx context.Context, ctl app.Control, read func(context.Context) (string, error)) (string, error) {
	text, err := read(ctx)
	if err != nil {
		return "", err
	}
	if len(text) > maxClipboard {
		return "", errors.New("the clipboard holds too much text to be a token; copy just the token")
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "", errors.New("the clipboard is empty: copy your bridge token first")
	}
	c, err := app.CheckBridgeToken(keystore.Token(text), time.Now())
	if err != nil {
		return "", err
	}
	if err := ctl.SetToken(ctx, text); err != nil {
		return "", err
	}
	when := "never expires"
	if !c.Expiry.IsZero() {
		when = "expires " + until(c.Expiry, time.Now())
	}
	return fmt.Sprintf("Token for %s saved (%s); connecting", c.Dev, when), nil
}

// importServers has the engine copy other apps' servers into its mcp.json,
// disabled; it reloads and shows them.
func importServers(ctx context.Context, ctl app.Control) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	rep, err := ctl.ImportServers(ctx, config.ImportCandidates(home, runtime.GOOS))
	if err != nil {
		return "", err
	}
	names := rep.Imported()
	var found []string
	for _, s := range rep.Sources {
		if s.Found {
			found = append(found, s.App)
		}
	}
	switch {
	case len(found) == 0:
		return "No Claude Desktop, Cursor or VS Code MCP settings found", nil
	case len(names) == 0:
		return "Nothing new to import from " + strings.Join(found, ", "), nil
	}
	return fmt.Sprintf("Imported %s (disabled until you enable them): %s", plural(len(names), "server"), strings.Join(names, ", ")), nil
}

func (t *tray) logsDir(st app.State, have bool) string {
	if have && st.Engine.Home != "" {
		return app.PathsIn(st.Engine.Home).Logs
	}
	return t.paths.Logs
}

// serverLogFile is the server's log, or the logs folder when the engine
// does not say which file it is.
func serverLogFile(st app.State, name, logs string) string {
	for _, s := range st.Servers {
		if s.Name == name && s.LogFile != "" {
			return s.LogFile
		}
	}
	return logs
}

// installService hands the engine over to the OS service: the tray stops
// its own engine (the service's would otherwise find it and only follow
// it), runs `tetherd install` (which starts the service), and then waits
// for the service's engine and attaches to it. If the install fails, the
// tray runs its own engine again.
func (t *tray) installService(ctx context.Context) (string, error) {
	if _, err := findTetherd(); err != nil {
		return "", err
	}
	t.mu.Lock()
	stop := t.stopOwn
	t.grace = 30 * time.Second
	t.mu.Unlock()
	select { // drop a stale abort
	case <-t.abortWait:
	default:
	}
	if stop != nil {
		stop()
	}
	out, err := runTetherd(ctx, "install")
	if err != nil {
		t.abortWait <- struct{}{} // take over again now
		return "", err
	}
	return firstLine(out, "Service installed"), nil
}

func (t *tray) toggleLogin(ctx context.Context) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	on := !loginItemEnabled(ctx)
	if err := setLoginItem(ctx, on, exe); err != nil {
		return "", fmt.Errorf("start at login: %w", err)
	}
	t.mu.Lock()
	t.login = on
	t.mu.Unlock()
	t.poke()
	if on {
		return "Tether will start at login", nil
	}
	return "Tether will not start at login", nil
}
