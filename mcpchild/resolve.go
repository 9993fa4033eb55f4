package mcpchild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// ErrNotFound is matched (errors.Is) by every NotFoundError. A NotFoundError
// also matches exec.ErrNotFound.
var ErrNotFound = errors.New("command not found")

// NotFoundError says that a server's command could not be found, naming what
// was looked for and where, because "executable file not found in $PATH" from
// a tray app whose PATH nobody can see is useless.
type NotFoundError struct {
	Server  string // server name from mcp.json
	Command string // the command as written (after ${VAR} expansion)
	PATH    string // every directory searched, in the list form of the OS; "" when Command is a path
	Tried   string // for a command with a path separator: the file that was looked for
	Hint    string // what the user can do about it
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mcp server %q: command %q not found", e.Server, e.Command)
	if e.Tried != "" {
		fmt.Fprintf(&b, " (looked for %s)", e.Tried)
	} else {
		fmt.Fprintf(&b, " in PATH (%s)", e.PATH)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *NotFoundError) Unwrap() []error { return []error{ErrNotFound, exec.ErrNotFound} }

// fallbacks are commands that commonly exist only under another name: on
// most current Linux distributions and on macOS there is no "python", only
// "python3", while mcp.json files copied from READMEs say "python".
var fallbacks = map[string]string{"python": "python3", "pip": "pip3"}

// Resolve finds the executable for spec.Command in the PATH of env (a
// KEY=VALUE list such as BaseEnv's), not in this process's PATH. A command
// that contains a path separator is taken relative to spec.Cwd (or this
// process's working directory when Cwd is empty) and returned absolute. If
// the command is "python" and only "python3" exists, Resolve returns the
// python3 path and a warning ("python not found; using /usr/bin/python3").
// On Windows the extensions in PATHEXT are tried, so "npx" finds "npx.cmd".
func Resolve(spec Spec, env []string) (path string, warning string, err error) {
	cmd := spec.Command
	if cmd == "" {
		return "", "", fmt.Errorf("mcp server %q: no command", spec.Name)
	}
	exts := execExts(env)
	if strings.ContainsRune(cmd, '/') || strings.ContainsRune(cmd, filepath.Separator) {
		p := cmd
		if !filepath.IsAbs(p) {
			p = filepath.Join(spec.Cwd, p)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", "", fmt.Errorf("mcp server %q: resolve %q: %w", spec.Name, cmd, err)
		}
		found, err := findExecutable(abs, exts)
		if err != nil {
			return "", "", fmt.Errorf("mcp server %q: %w", spec.Name, err)
		}
		if found == "" {
			return "", "", &NotFoundError{Server: spec.Name, Command: cmd, Tried: abs,
				Hint: "check the path and the cwd in mcp.json"}
		}
		return found, "", nil
	}

	pathList := envValue(env, "PATH")
	dirs := filepath.SplitList(pathList)
	if p := searchPath(cmd, dirs, exts); p != "" {
		return p, "", nil
	}
	if alt, ok := fallbacks[cmd]; ok {
		if p := searchPath(alt, dirs, exts); p != "" {
			return p, fmt.Sprintf("%s not found; using %s", cmd, p), nil
		}
	}
	return "", "", &NotFoundError{Server: spec.Name, Command: cmd, PATH: pathList, Hint: installHint(cmd)}
}

func installHint(cmd string) string {
	switch strings.TrimSuffix(strings.ToLower(cmd), ".cmd") {
	case "npx", "npm", "node":
		return "install Node.js (https://nodejs.org) or use an absolute path in mcp.json"
	case "uvx", "uv":
		return "install uv (https://docs.astral.sh/uv/) or use an absolute path in mcp.json"
	case "python", "python3", "pip", "pip3":
		return "install Python or use an absolute path in mcp.json"
	case "docker":
		return "install Docker or use an absolute path in mcp.json"
	}
	return "install it or use an absolute path in mcp.json"
}

// searchPath looks for name in dirs. Empty entries are skipped rather than
// meaning "the current directory": a server must not start whatever file of
// that name happens to sit in the bridge's working directory.
func searchPath(name string, dirs, exts []string) string {
	for _, dir := range dirs {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		if p, _ := findExecutable(filepath.Join(dir, name), exts); p != "" {
			return p
		}
	}
	return ""
}

// findExecutable returns p (or p plus one of exts on Windows) when it is an
// executable regular file, "" when there is none, and an error for a file
// that exists but cannot be run.
func findExecutable(p string, exts []string) (string, error) {
	candidates := []string{p}
	if len(exts) > 0 && !slices.Contains(exts, strings.ToLower(filepath.Ext(p))) {
		candidates = candidates[:0]
		for _, e := range exts {
			candidates = append(candidates, p+e)
		}
	}
	var notExec error
	for _, c := range candidates {
		fi, err := os.Stat(c)
		if err != nil || fi.IsDir() {
			continue
		}
		if runtime.GOOS != "windows" && fi.Mode()&0o111 == 0 {
			notExec = fmt.Errorf("%s is not executable (chmod +x it, or run it through its interpreter)", c)
			continue
		}
		return c, nil
	}
	return "", notExec
}

// execExts is the list of executable extensions (lower case) on Windows,
// from PATHEXT; nil elsewhere.
func execExts(env []string) []string {
	if runtime.GOOS != "windows" {
		return nil
	}
	v := envValue(env, "PATHEXT")
	if v == "" {
		v = ".com;.exe;.bat;.cmd"
	}
	var out []string
	for _, e := range strings.Split(strings.ToLower(v), ";") {
		if e != "" && e[0] == '.' {
			out = append(out, e)
		}
	}
	return out
}

// envValue returns the value of key in a KEY=VALUE list; the last entry
// wins, as with exec.Cmd. Keys are case-insensitive on Windows ("Path").
func envValue(env []string, key string) string {
	v, _ := envLookup(env, key)
	return v
}

// envLookup is envValue that also says whether key is set at all.
func envLookup(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		k, v, ok := strings.Cut(env[i], "=")
		if ok && envKeyEqual(k, key) {
			return v, true
		}
	}
	return "", false
}

func envKeyEqual(a, b string) bool {
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// MergeEnv overlays extra (a server's env from mcp.json, already expanded)
// onto base; extra wins. Base entries whose key extra sets are dropped rather
// than shadowed, so the child never sees two values for one name. Extra keys
// are appended in sorted order so the result is deterministic.
func MergeEnv(base []string, extra map[string]string) []string {
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		overridden := false
		for ek := range extra {
			if envKeyEqual(k, ek) {
				overridden = true
				break
			}
		}
		if !overridden {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+extra[k])
	}
	return out
}

// BaseEnv returns the environment children start with: this process's
// environment without Tether's own variables (see PrivateEnv), with PATH
// taken from the user's login shell when this process was not started from a
// shell. A tray app or a service started by launchd or systemd has a minimal
// PATH without nvm's node, ~/.local/bin (uvx) or /opt/homebrew/bin, so "npx"
// and "uvx" would not be found. The login shell is asked once (bounded by a
// few seconds) and the answer is cached; see env_unix.go. On Windows PATH is
// the process's own.
func BaseEnv(ctx context.Context) []string {
	return WithoutPrivateEnv(baseEnv(ctx))
}

// PrivateEnv reports whether the environment variable key belongs to Tether
// itself and so must not reach an MCP server: every TETHER_* variable
// (TETHER_TOKEN is the bridge token, TETHER_TOKEN_FILE names the file holding
// it, the rest configure this process and mean nothing to a server) and
// CREDENTIALS_DIRECTORY (systemd's folder of credentials, where the token
// lives under a service). Any server with a file or shell tool could
// otherwise hand the token to whoever calls it. A server that really needs
// one of these gets it only by naming it in its "env" in mcp.json.
func PrivateEnv(key string) bool {
	if runtime.GOOS == "windows" { // names are case-insensitive there
		key = strings.ToUpper(key)
	}
	return strings.HasPrefix(key, "TETHER_") || key == "CREDENTIALS_DIRECTORY"
}

// WithoutPrivateEnv returns a copy of env (KEY=VALUE entries) without the
// entries PrivateEnv names.
func WithoutPrivateEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !PrivateEnv(k) {
			out = append(out, kv)
		}
	}
	return out
}

// isDir reports whether p is an existing directory.
func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
