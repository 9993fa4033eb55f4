package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

// ttlChoices are the lifetimes the page offers, in form value order.
var ttlChoices = []struct {
	Value string
	Label string
	TTL   time.Duration
}{
	{"1d", "1 day", 24 * time.Hour},
	{"30d", "30 days", 30 * 24 * time.Hour},
	{"90d", "90 days", 90 * 24 * time.Hour},
	{"365d", "1 year", 365 * 24 * time.Hour},
}

// maxTokenName bounds the name a user gives a token.
const maxTokenName = 80

type tokenRow struct {
	store.Token
	State string // valid, expired, revoked
}

// snippet is one copy-paste block for one MCP client.
type snippet struct {
	ID, Client, Where, Text string
}

// serverSnippets are the snippets for one of the bridge's servers.
type serverSnippets struct {
	Server, URL string
	Snippets    []snippet
}

func (w *Web) tokenPage(rw http.ResponseWriter, r *http.Request, u store.User, code int, extra map[string]any) {
	toks, err := w.st.Tokens(r.Context(), u.ID)
	if err != nil {
		w.log.Warn("listing tokens failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	now := w.now()
	rows := make([]tokenRow, 0, len(toks))
	for i := len(toks) - 1; i >= 0; i-- { // newest first
		t := toks[i]
		state := "valid"
		switch {
		case !t.Revoked.IsZero():
			state = "revoked"
		case !now.Before(t.Expires):
			state = "expired"
		}
		rows = append(rows, tokenRow{t, state})
	}
	data := map[string]any{"User": u.ID, "CSRF": CSRFToken(r), "Tokens": rows, "TTLs": ttlChoices, "Page": "tokens", "SignedIn": true,
		"Relay": w.baseURL(r)}
	for k, v := range extra {
		data[k] = v
	}
	w.render(rw, code, "tokens", data)
}

func (w *Web) handleTokens(rw http.ResponseWriter, r *http.Request, u store.User) {
	w.tokenPage(rw, r, u, http.StatusOK, nil)
}

// handleCreateToken issues a token and shows it, once, with what to paste
// where. It is never stored: the store keeps only its id.
func (w *Web) handleCreateToken(rw http.ResponseWriter, r *http.Request, u store.User) {
	kind := r.PostFormValue("kind")
	name := strings.TrimSpace(r.PostFormValue("name"))
	var ttl time.Duration
	for _, c := range ttlChoices {
		if c.Value == r.PostFormValue("ttl") {
			ttl = c.TTL
		}
	}
	if (kind != server.ScopeBridge && kind != server.ScopeClient) || ttl == 0 || len(name) > maxTokenName {
		w.tokenPage(rw, r, u, http.StatusBadRequest, map[string]any{"Message": "Choose a kind and a lifetime; a name has at most 80 characters."})
		return
	}
	if name == "" {
		name = kind + " token"
	}
	now := w.now()
	tok, rec, err := server.IssueToken(w.relay.Verifier.Secret, server.TokenSpec{Dev: u.ID, Scope: kind, TTL: ttl, Audience: w.publicURL}, now)
	if err != nil {
		w.log.Warn("issuing a token failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rec.Name = name
	// Recorded before it is shown: a token missing from the store could
	// not be listed or revoked.
	if err := w.st.AddToken(r.Context(), rec); err != nil {
		w.log.Warn("recording a token failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	w.audit(r.Context(), u.ID, "token.issue", rec.JTI, "dev="+rec.Dev+" kind="+string(rec.Kind)+" aud="+rec.Audience+" via=web")
	base := w.baseURL(r)
	created := map[string]any{"Token": tok, "Kind": kind, "Name": name, "Expires": rec.Expires}
	if kind == server.ScopeBridge {
		created["Commands"] = bridgeCommands(base, tok)
	} else {
		created["Servers"] = w.clientSnippets(base, u.ID, tok)
	}
	w.tokenPage(rw, r, u, http.StatusOK, map[string]any{"Created": created})
}

// bridgeCommands is what to paste on the bridge's machine. printf is a
// shell builtin, so the token is not in any process's arguments.
func bridgeCommands(base, tok string) string {
	return "printf '%s' '" + tok + "' | tetherd token set --relay " + shellQuote(base) + "\n" +
		"tetherd install && tetherd start    # or, in the foreground: tetherd run"
}

// clientSnippets gives, for each server the bridge has now (or a
// placeholder when it is offline), the MCP URL and one snippet per client.
func (w *Web) clientSnippets(base, dev, tok string) []serverSnippets {
	var names []string
	for _, si := range w.relay.Bridge(dev).Servers {
		names = append(names, si.Name)
	}
	if len(names) == 0 {
		names = []string{"SERVER"}
	}
	var out []serverSnippets
	for i, name := range names {
		mcpURL := base + "/mcp/" + url.PathEscape(dev) + "/" + url.PathEscape(name)
		out = append(out, serverSnippets{Server: name, URL: mcpURL, Snippets: snippetsFor(i, name, mcpURL, tok)})
	}
	return out
}

func snippetsFor(i int, name, mcpURL, tok string) []snippet {
	auth := "Bearer " + tok
	id := func(s string) string { return "snip-" + s + "-" + strconv.Itoa(i) }
	js := func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	}
	headers := map[string]string{"Authorization": auth}
	return []snippet{
		{id("claude"), "Claude Code", "run in a terminal",
			"claude mcp add --transport http " + shellQuote(name) + " " + shellQuote(mcpURL) + " --header " + shellQuote("Authorization: "+auth)},
		{id("cursor"), "Cursor", "~/.cursor/mcp.json (or .cursor/mcp.json in a project)",
			js(map[string]any{"mcpServers": map[string]any{name: map[string]any{"url": mcpURL, "headers": headers}}})},
		{id("vscode"), "VS Code", ".vscode/mcp.json (or MCP: Open User Configuration)",
			js(map[string]any{"servers": map[string]any{name: map[string]any{"type": "http", "url": mcpURL, "headers": headers}}})},
		{id("gemini"), "Gemini CLI", "run in a terminal (or httpUrl + headers in ~/.gemini/settings.json)",
			"gemini mcp add --scope user --transport http --header " + shellQuote("Authorization: "+auth) + " " + shellQuote(name) + " " + shellQuote(mcpURL)},
		{id("codex"), "Codex", "~/.codex/config.toml, with TETHER_TOKEN exported where Codex runs",
			"# export TETHER_TOKEN='" + tok + "'\n[mcp_servers." + tomlKey(name) + "]\nurl = " + tomlString(mcpURL) + "\nbearer_token_env_var = \"TETHER_TOKEN\""},
		{id("remote"), "mcp-remote", "any client that only runs stdio servers (Claude Desktop …)",
			js(map[string]any{"mcpServers": map[string]any{name: map[string]any{"command": "npx",
				"args": []string{"-y", "mcp-remote", mcpURL, "--header", "Authorization:${TETHER_AUTH}"},
				"env":  map[string]string{"TETHER_AUTH": auth}}}})},
	}
}

// shellQuote single-quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func tomlString(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a valid TOML basic string for these inputs
	return string(b)
}

// tomlKey leaves bare keys bare and quotes the rest.
func tomlKey(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return tomlString(s)
		}
	}
	return s
}

// handleRevoke revokes one of the user's tokens. Through the relay's
// Revocations it takes effect in this relay before the answer (a bridge
// holding it is closed with 4003), in others sharing the store within
// their poll interval.
func (w *Web) handleRevoke(rw http.ResponseWriter, r *http.Request, u store.User) {
	jti := r.PostFormValue("jti")
	t, err := w.st.Token(r.Context(), jti)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Dev != u.ID) {
		// Another user's token is "not found" too: ids are not secrets,
		// but this page does not confirm them.
		http.Error(rw, "no such token", http.StatusNotFound)
		return
	}
	if err != nil {
		w.log.Warn("reading a token failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	if rv := w.relay.Verifier.Revocations; rv != nil {
		err = rv.Revoke(r.Context(), jti, w.now())
	} else {
		err = w.st.Revoke(r.Context(), jti, w.now())
	}
	if err != nil {
		w.log.Warn("revoking a token failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	w.audit(r.Context(), u.ID, "token.revoke", jti, "via=web")
	http.Redirect(rw, r, "/tokens", http.StatusSeeOther)
}
