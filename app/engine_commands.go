package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tether-dev/tether/app/config"
	"github.com/tether-dev/tether/keystore"
)

// The engine's commands. Each returns an error a person can act on; none of
// them ever includes the token.

// ErrQuickMode is returned by commands that edit mcp.json when the engine
// runs one server from the command line.
var ErrQuickMode = errors.New("this engine runs one server from the command line (--mcp-cmd); there is no mcp.json to change")

// Connect starts (or restarts after a rejection) the relay connection, and
// remembers the choice in settings.json so it survives a restart.
func (e *Engine) Connect(ctx context.Context) error {
	<-e.ready
	url, _, _ := e.relayTarget()
	if url == "" {
		return errors.New("no relay configured: set \"relay\" in settings.json or pass --relay URL")
	}
	e.mu.Lock()
	e.wanted = true
	tokErr := e.tok.err
	hasToken := e.tok.token != ""
	e.mu.Unlock()
	e.rememberAutoConnect(true)
	if !hasToken {
		// The keychain may have been filled by another process meanwhile.
		if e.refreshToken() == "" {
			e.markDirty()
			return fmt.Errorf("cannot connect: %s", tokErr)
		}
	}
	e.syncLink()
	e.markDirty()
	return nil
}

// Disconnect drops the relay connection and keeps it down (also across
// restarts) until Connect. The servers stay warm.
func (e *Engine) Disconnect(ctx context.Context) error {
	<-e.ready
	e.mu.Lock()
	e.wanted = false
	e.mu.Unlock()
	e.rememberAutoConnect(false)
	e.syncLink()
	e.markDirty()
	return nil
}

// rememberAutoConnect writes the connect choice into settings.json. A
// quick-mode or settings-less engine only keeps it in memory.
func (e *Engine) rememberAutoConnect(on bool) {
	path := e.opts.Paths.Settings
	if path == "" || e.opts.Servers != nil {
		return
	}
	s, err := config.LoadSettings(path)
	if err != nil {
		e.log.Warn("settings.json is invalid; not saving the connect choice", "err", err)
		return
	}
	if s.AutoConnect != nil && *s.AutoConnect == on || s.AutoConnect == nil && on {
		return // already says so (absent means on)
	}
	s.AutoConnect = &on
	if err := config.SaveSettings(path, s); err != nil {
		e.log.Warn("saving settings.json", "err", err)
		return
	}
	e.mu.Lock()
	e.settings = s
	e.mu.Unlock()
}

// SetToken checks that token looks like a bridge token, stores it in the OS
// keychain for the engine's relay, and connects with it.
func (e *Engine) SetToken(ctx context.Context, token string) error {
	<-e.ready
	t := keystore.Token(strings.TrimSpace(token))
	c, err := CheckBridgeToken(t, time.Now())
	if err != nil {
		return err
	}
	url, _, _ := e.relayTarget()
	if url == "" {
		return errors.New("no relay configured to store the token for: set \"relay\" in settings.json or pass --relay URL first")
	}
	if err := e.opts.Keychain.Set(keystore.AccountFor(url), t); err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	e.log.Info("bridge token stored in the OS keychain", "dev", c.Dev, "token", t)
	e.mu.Lock()
	e.wanted = true
	e.mu.Unlock()
	e.rememberAutoConnect(true)
	got := e.refreshToken()
	e.syncLink()
	e.bridge.Kick() // a link waiting in backoff dials now, with the new token
	e.markDirty()
	if got != t {
		e.mu.Lock()
		src := e.tok.source
		e.mu.Unlock()
		return fmt.Errorf("stored in the keychain, but the token from %s takes precedence; unset it to use the stored one", src)
	}
	return nil
}

// CheckBridgeToken reads the claims of a pasted token and refuses what
// cannot work as a bridge token, with a reason a person can act on: not a
// JWT, a client token, an expired one. The relay still verifies it.
func CheckBridgeToken(t keystore.Token, now time.Time) (keystore.Claims, error) {
	c, err := keystore.ParseClaims(t)
	if err != nil {
		return c, fmt.Errorf("that is not a Tether bridge token: %w", err)
	}
	if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "bridge") {
		return c, fmt.Errorf("that token has scope %v: it is for MCP clients, and a bridge needs a token with scope bridge", c.Scopes)
	}
	if c.Expired(now) {
		return c, fmt.Errorf("that token expired on %s; ask for a new one", c.Expiry.Local().Format(time.DateTime))
	}
	return c, nil
}

// ClearToken removes the stored token of the engine's relay and disconnects
// unless a headless source still provides one.
func (e *Engine) ClearToken(ctx context.Context) error {
	<-e.ready
	url, _, _ := e.relayTarget()
	if url == "" {
		return errors.New("no relay configured, so no stored token to clear")
	}
	err := e.opts.Keychain.Delete(keystore.AccountFor(url))
	if err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return fmt.Errorf("removing the token: %w", err)
	}
	e.log.Info("bridge token removed from the OS keychain", "relay", url)
	e.refreshToken()
	e.syncLink()
	e.markDirty()
	return nil
}

// Reload asks for settings.json and mcp.json to be read again (as SIGHUP
// does). It returns at once; State shows the result.
func (e *Engine) Reload(ctx context.Context) error {
	e.requestReload()
	return nil
}

// RestartServer restarts one running server (and lifts a crash loop).
func (e *Engine) RestartServer(ctx context.Context, name string) error {
	c := e.bridge.Child(name)
	if c == nil {
		return fmt.Errorf("no running server %q", name)
	}
	c.Restart()
	e.markDirty()
	return nil
}

// SetRelay saves the relay URL in settings.json and reloads. Only the
// engine writes settings.json while it runs; a command line tool without a
// running engine calls SaveRelay, the same writer.
func (e *Engine) SetRelay(ctx context.Context, url string) error {
	if e.opts.Servers != nil || e.opts.Paths.Settings == "" {
		return ErrQuickMode
	}
	if err := SaveRelay(e.opts.Paths.Settings, url); err != nil {
		return err
	}
	e.requestReload()
	return nil
}

// SetLinkRelay checks the token that would go to url (the one the token
// sources give for that relay: a token file or $TETHER_TOKEN follows every
// relay, the keychain has one entry per relay) with CheckLinkRelay, then
// does what SetRelay does. The UI asked the same question before; this is
// the check that holds whatever the UI did.
func (e *Engine) SetLinkRelay(ctx context.Context, url string, unboundOK bool) error {
	<-e.ready
	if e.opts.Servers != nil || e.opts.Paths.Settings == "" {
		return ErrQuickMode
	}
	r := e.resolver()
	r.Account = keystore.AccountFor(url)
	tok, src, err := r.Resolve()
	if err == nil && tok != "" {
		var aud []string
		if c, cerr := keystore.ParseClaims(tok); cerr == nil {
			aud = c.Audience
		}
		if err := CheckLinkRelay(aud, src, url, unboundOK); err != nil {
			e.log.Warn("a link's relay refused: the token would go there", "relay", redactRelayURL(url), "source", src, "err", err)
			return forbiddenError{err}
		}
	}
	return e.SetRelay(ctx, url)
}

// forbiddenError is a refusal: the control API answers it with 403.
type forbiddenError struct{ error }

func (e forbiddenError) StatusCode() int { return http.StatusForbidden }
func (e forbiddenError) Unwrap() error   { return e.error }

// SaveRelay sets "relay" in the settings.json at path, keeping the rest.
func SaveRelay(path, url string) error {
	s, err := config.LoadSettings(path)
	if err != nil {
		return err
	}
	if s.Relay == url {
		return nil
	}
	s.Relay = url
	if err := config.SaveSettings(path, s); err != nil {
		return fmt.Errorf("save the relay: %w", err)
	}
	return nil
}

// ImportServers copies the servers of srcs into mcp.json, disabled, and
// reloads. Without a running engine, the command line calls the package
// function ImportServers, the same writer.
func (e *Engine) ImportServers(ctx context.Context, srcs []ImportSource) (ImportReport, error) {
	if e.opts.Servers != nil {
		return ImportReport{}, ErrQuickMode
	}
	rep, err := config.ImportServers(e.opts.ConfigFile, srcs)
	if err != nil {
		return rep, err
	}
	e.requestReload()
	return rep, nil
}

// SetServerEnabled writes "disabled" for the server into mcp.json; the
// reload that follows starts or stops it.
func (e *Engine) SetServerEnabled(ctx context.Context, name string, enabled bool) error {
	if e.opts.Servers != nil {
		return ErrQuickMode
	}
	if err := config.SetServerDisabled(e.opts.ConfigFile, name, !enabled); err != nil {
		return err
	}
	e.requestReload()
	return nil
}
