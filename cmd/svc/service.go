package main

// The OS service side of tetherd: `tetherd install|uninstall|start|stop|restart`
// and the service line of `tetherd status`. Each OS has its own manager in
// service_<os>.go:
//
//   - Linux: a systemd *user* unit written by hand (service_linux.go says
//     why kardianos/service is not used there).
//   - macOS: a LaunchAgent in ~/Library/LaunchAgents, written by
//     kardianos/service and loaded with `launchctl bootstrap gui/<uid>`.
//   - Windows: a per-user Scheduled Task run at logon, as the user
//     (schtask.go, docs/windows-service.md). A machine-wide service
//     (`install --machine`) is not supported yet.
//
// Whatever the OS, the service runs `tetherd run --service` and nothing else
// on its command line: tokens never go in argv (anyone can read it with ps).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-dev/tether/keystore"
)

const (
	serviceName        = "tetherd"
	serviceDisplayName = "Tether bridge"
	serviceDescription = "Tether bridge: serves the MCP servers in mcp.json to hosted agents through a relay"
)

// serviceArgs is the service's whole command line after the executable.
var serviceArgs = []string{"run", "--service"}

// Service states reported by serviceStatus.
const (
	serviceRunning      = "running"
	serviceStopped      = "stopped"
	serviceFailed       = "failed"
	serviceNotInstalled = "not installed"
	serviceUnknown      = "installed, state unknown"
)

// serviceManager is one OS's service manager as tetherd uses it.
type serviceManager interface {
	install(ctx context.Context, spec serviceSpec, out io.Writer) error
	uninstall(ctx context.Context, out io.Writer) error
	control(ctx context.Context, verb string) error // start | stop | restart
	status(ctx context.Context) (string, error)
}

// serviceSpec is what install puts in the unit.
type serviceSpec struct {
	Exe  string            // absolute path of this tetherd binary
	Args []string          // serviceArgs
	Env  map[string]string // TETHER_HOME and TETHER_TOKEN_FILE when given; never a token
}

// errMachineService answers `tetherd install --machine` on every OS.
var errMachineService = errors.New("`tetherd install --machine` (a machine-wide service that runs before anyone logs in) " +
	"is not supported yet (see docs/windows-service.md); `tetherd install` runs tetherd as you whenever you are logged in")

// serviceCmd runs `tetherd <verb> [flags]` for verb install, uninstall,
// start, stop or restart.
func serviceCmd(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tetherd "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tokenFile *string
	var machine *bool
	if verb == "install" {
		tokenFile = fs.String("token-file", "", "file holding the bridge token (the service reads it)")
		machine = fs.Bool("machine", false, "a machine-wide service instead of a per-user one (not supported yet)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tetherd %s: unexpected arguments %q", verb, fs.Args())
	}
	if machine != nil && *machine {
		return errMachineService
	}
	m, err := newServiceManager()
	if err != nil {
		return err
	}
	switch verb {
	case "install":
		spec, err := newServiceSpec(*tokenFile)
		if err != nil {
			return err
		}
		return m.install(ctx, spec, stdout)
	case "uninstall":
		return m.uninstall(ctx, stdout)
	case "start", "stop", "restart":
		if err := m.control(ctx, verb); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tetherd service: %s done\n", verb)
		return nil
	default:
		return fmt.Errorf("unknown service command %q (want install, uninstall, start, stop or restart)", verb)
	}
}

// serviceStatus is the state of the installed service for `tetherd status`:
// "running", "stopped", "failed" or "not installed". When the service
// manager cannot be asked (no systemd user manager in this session, say) it
// returns "installed, state unknown" and an error that says why.
func serviceStatus() (string, error) {
	m, err := newServiceManager()
	if err != nil {
		return serviceUnknown, err
	}
	// A wedged service manager must not hang `tetherd status`.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.status(ctx)
}

// newServiceSpec collects the unit's command line and environment from the
// installing process: this binary, TETHER_HOME when set (tests and second
// profiles rely on it), and TETHER_TOKEN_FILE when --token-file is given.
func newServiceSpec(tokenFile string) (serviceSpec, error) {
	exe, err := os.Executable()
	if err != nil {
		return serviceSpec{}, fmt.Errorf("find the tetherd binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	if strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return serviceSpec{}, fmt.Errorf("tetherd runs from a temporary build folder (%s), which `go run` deletes: build or install it first", exe)
	}
	spec := serviceSpec{Exe: exe, Args: serviceArgs, Env: map[string]string{}}
	if home := os.Getenv("TETHER_HOME"); home != "" {
		abs, err := filepath.Abs(home)
		if err != nil {
			return serviceSpec{}, fmt.Errorf("resolve TETHER_HOME: %w", err)
		}
		spec.Env["TETHER_HOME"] = abs
	}
	if tokenFile != "" {
		abs, err := filepath.Abs(tokenFile)
		if err != nil {
			return serviceSpec{}, fmt.Errorf("resolve --token-file: %w", err)
		}
		// Check it now as the service will (exists, not empty, not readable
		// by others) so a broken file fails here and not in a restart loop.
		none := func(string) string { return "" }
		if _, _, err := (keystore.Resolver{TokenFile: abs, Getenv: none}).Resolve(); err != nil {
			return serviceSpec{}, fmt.Errorf("--token-file: %w", err)
		}
		spec.Env["TETHER_TOKEN_FILE"] = abs // the path, never the token
	}
	return spec, nil
}

// errServiceNotInstalled is returned by start/stop/restart before install.
var errServiceNotInstalled = errors.New("the tetherd service is not installed: run `tetherd install` first")
