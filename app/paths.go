package app

import (
	"github.com/tether-dev/tether/internal/logfile"

	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Paths is the per-user Tether folder and every file in it. One folder holds
// everything so that a test (or a second profile) can point $TETHER_HOME
// somewhere else and get a fully separate Tether.
type Paths struct {
	Dir      string // the folder itself
	MCPJSON  string // Dir/mcp.json: the servers to share
	Settings string // Dir/settings.json: non-secret settings
	EnvFile  string // Dir/.env: variables for ${VAR} in mcp.json
	Logs     string // Dir/logs: one log per server
	Socket   string // Dir/tether.sock: the local control API
}

// DefaultPaths is $TETHER_HOME when set, else os.UserConfigDir()/tether
// (~/.config/tether, ~/Library/Application Support/tether, %AppData%\tether).
func DefaultPaths() (Paths, error) {
	if dir := os.Getenv("TETHER_HOME"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return Paths{}, fmt.Errorf("resolve TETHER_HOME: %w", err)
		}
		return PathsIn(abs), nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return Paths{}, fmt.Errorf("find config folder (set TETHER_HOME to choose one): %w", err)
	}
	return PathsIn(filepath.Join(base, "tether")), nil
}

// PathsIn lays out the Tether files inside dir.
func PathsIn(dir string) Paths {
	return Paths{
		Dir:      dir,
		MCPJSON:  filepath.Join(dir, "mcp.json"),
		Settings: filepath.Join(dir, "settings.json"),
		EnvFile:  filepath.Join(dir, ".env"),
		Logs:     filepath.Join(dir, "logs"),
		Socket:   filepath.Join(dir, "tether.sock"),
	}
}

// Ensure creates Dir and Logs (mode 0700). The control socket lives in Dir,
// and on some systems a socket's own mode is not checked on connect, so the
// folder's mode is what keeps other local users out: an existing Dir that
// group or others can enter is tightened to 0700.
func (p Paths) Ensure() error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("create config folder: %w", err)
	}
	if runtime.GOOS != "windows" { // Windows folder access is ACLs, not mode bits
		fi, err := os.Stat(p.Dir)
		if err != nil {
			return fmt.Errorf("check config folder: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("config folder %s is not a folder", p.Dir)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p.Dir, 0o700); err != nil {
				return fmt.Errorf("restrict config folder to its owner: %w", err)
			}
		}
	}
	if err := os.MkdirAll(p.Logs, 0o700); err != nil {
		return fmt.Errorf("create log folder: %w", err)
	}
	return nil
}

// ServerLog is the log file of one server. Config validation already limits
// names to [A-Za-z0-9._-], but a log path must never escape Logs whatever the
// name, so it is sanitised again here.
func (p Paths) ServerLog(name string) string {
	return filepath.Join(p.Logs, logfile.ServerLogName(name))
}
