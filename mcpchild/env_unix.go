//go:build unix

package mcpchild

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// loginShellTimeout bounds one login-shell probe. Shell start-up files can
// do anything (print a banner, run nvm, wait for a network mount); a tray
// must not hang on them, so a slow shell means falling back, not waiting.
const loginShellTimeout = 3 * time.Second

var baseEnvCache struct {
	mu  sync.Mutex
	env []string
}

func baseEnv(ctx context.Context) []string {
	// The login shell's start-up files are the user's code too: they get
	// no more of Tether's own variables than a server does.
	environ := WithoutPrivateEnv(os.Environ())
	// Started from a shell (SHLVL is set by bash, zsh and fish): the PATH we
	// have is the one the user sees and may have changed on purpose (an
	// activated venv), so keep it exactly.
	if os.Getenv("SHLVL") != "" && envValue(environ, "PATH") != "" {
		return environ
	}
	baseEnvCache.mu.Lock()
	defer baseEnvCache.mu.Unlock()
	if baseEnvCache.env == nil {
		home, _ := os.UserHomeDir()
		env, _ := userEnv(ctx, userEnvConfig{
			Shell:   userShell(),
			Home:    home,
			Environ: environ,
			Timeout: loginShellTimeout,
		})
		if ctx.Err() != nil {
			return env // a cancelled probe may have fallen back early: do not cache that
		}
		baseEnvCache.env = env
	}
	return append([]string(nil), baseEnvCache.env...)
}

// userShell is $SHELL, or the platform's default login shell when a service
// manager did not set it.
func userShell() string {
	if s := os.Getenv("SHELL"); s != "" {
		return s
	}
	if runtime.GOOS == "darwin" {
		return "/bin/zsh"
	}
	if _, err := os.Stat("/bin/bash"); err == nil {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// userEnvConfig is what userEnv needs from the outside world, so tests can
// hand it a fake shell and a fake home.
type userEnvConfig struct {
	Shell   string        // login shell to ask; "" skips straight to the fallback
	Home    string        // for the well-known directories of the fallback
	Environ []string      // the environment to start from (os.Environ())
	Timeout time.Duration // per shell attempt
}

// userEnv returns cfg.Environ with PATH replaced by the login shell's PATH
// followed by any inherited entries it lacks. It asks "$SHELL -l -i -c" first
// (nvm and many PATH edits live in .bashrc/.zshrc, which only interactive
// shells read), then "$SHELL -l -c", and finally prepends the well-known
// per-user tool directories that exist. source names the step that answered.
func userEnv(ctx context.Context, cfg userEnvConfig) (env []string, source string) {
	inherited := envValue(cfg.Environ, "PATH")
	if cfg.Shell != "" {
		for _, flags := range [][]string{{"-l", "-i"}, {"-l"}} {
			p, err := loginShellPATH(ctx, cfg.Shell, flags, cfg.Environ, cfg.Timeout)
			if err == nil {
				return setEnv(cfg.Environ, "PATH", joinPATH(p, inherited)),
					cfg.Shell + " " + strings.Join(flags, " ")
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	dirs := wellKnownDirs(cfg.Home)
	return setEnv(cfg.Environ, "PATH", joinPATH(strings.Join(dirs, ":"), inherited)), "well-known directories"
}

// loginShellPATH runs `shell flags... -c 'env -0'` with environ and stdin from /dev/null
// in a new session (so an interactive shell cannot grab or be stopped by our
// terminal) and returns the PATH it exports. The env dump is fenced by a
// random marker because start-up files often print banners to stdout.
func loginShellPATH(ctx context.Context, shell string, flags, environ []string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	half1, half2 := hex.EncodeToString(rnd[:4]), hex.EncodeToString(rnd[4:])
	marker := []byte("__tether_" + half1 + half2 + "__")
	// The marker is printed in two halves so that the script text itself
	// (which some shells keep in a variable) never contains it.
	script := fmt.Sprintf("printf '%%s%%s%%s' __tether_ %s '%s__'; env -0; printf '%%s%%s%%s' __tether_ %s '%s__'",
		half1, half2, half1, half2)

	cmd := exec.CommandContext(ctx, shell, append(flags, "-c", script)...)
	cmd.Env = environ
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error {
		// The shell leads its own session and group: kill everything its
		// start-up files spawned, not just the shell.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A background job started by an rc file may hold stdout open after the
	// shell exits; do not wait for it.
	cmd.WaitDelay = 200 * time.Millisecond
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil && ctx.Err() != nil {
		return "", fmt.Errorf("login shell %s %s: %w", shell, strings.Join(flags, " "), ctx.Err())
	} else if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return "", fmt.Errorf("login shell %s %s: %w", shell, strings.Join(flags, " "), err)
	}
	b := out.Bytes()
	i, j := bytes.Index(b, marker), bytes.LastIndex(b, marker)
	if i < 0 || j <= i {
		return "", fmt.Errorf("login shell %s %s: no environment in its output", shell, strings.Join(flags, " "))
	}
	for _, kv := range bytes.Split(b[i+len(marker):j], []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("PATH=")); ok && len(v) > 0 {
			return string(v), nil
		}
	}
	return "", fmt.Errorf("login shell %s %s: no PATH in its environment", shell, strings.Join(flags, " "))
}

// wellKnownDirs are the directories where installers put per-user tools that
// MCP configs name (uvx, npx from nvm, cargo and bun binaries, Homebrew),
// in the order a typical shell profile would put them first; only the ones
// that exist are returned.
func wellKnownDirs(home string) []string {
	var cands []string
	if home != "" {
		cands = append(cands, filepath.Join(home, ".local", "bin"))
		if nvm := newestNVMBin(home); nvm != "" {
			cands = append(cands, nvm)
		}
		cands = append(cands,
			filepath.Join(home, ".volta", "bin"),
			filepath.Join(home, ".cargo", "bin"),
			filepath.Join(home, ".bun", "bin"))
	}
	cands = append(cands, "/opt/homebrew/bin", "/usr/local/bin")
	var out []string
	for _, d := range cands {
		if isDir(d) {
			out = append(out, d)
		}
	}
	return out
}

// newestNVMBin returns ~/.nvm/versions/node/<highest vX.Y.Z>/bin, or "".
func newestNVMBin(home string) string {
	entries, err := os.ReadDir(filepath.Join(home, ".nvm", "versions", "node"))
	if err != nil {
		return ""
	}
	var best []int
	bestDir := ""
	for _, e := range entries {
		v, ok := parseVersion(e.Name())
		bin := filepath.Join(home, ".nvm", "versions", "node", e.Name(), "bin")
		if !ok || !isDir(bin) {
			continue
		}
		if best == nil || versionLess(best, v) {
			best, bestDir = v, bin
		}
	}
	return bestDir
}

func parseVersion(s string) ([]int, bool) {
	s = strings.TrimPrefix(s, "v")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, false
	}
	v := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		v[i] = n
	}
	return v, true
}

func versionLess(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// joinPATH joins two PATH lists, first wins, dropping empty and repeated
// entries.
func joinPATH(first, second string) string {
	seen := map[string]bool{}
	var out []string
	for _, list := range []string{first, second} {
		for _, d := range filepath.SplitList(list) {
			if d != "" && !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return strings.Join(out, string(filepath.ListSeparator))
}

// setEnv returns a copy of env with key set to value (every older entry of
// key removed).
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !envKeyEqual(k, key) {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
