package main

// macOS: tetherd as a per-user LaunchAgent. kardianos/service writes the
// plist (~/Library/LaunchAgents/tetherd.plist, KeepAlive, RunAtLoad) and
// reads the status; loading goes through `launchctl bootstrap gui/<uid>`
// rather than kardianos' `launchctl load`, which is the legacy interface
// and fails quietly on current macOS. A LaunchAgent runs in the user's GUI
// session, so it reaches the user's login keychain: no token hand-over.
//
// Not testable here (no launchd on the Linux CI machine): compile-checked
// with GOOS=darwin go vet.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kardianos/service"
	"github.com/tether-dev/tether/app"
)

type launchAgent struct{}

func newServiceManager() (serviceManager, error) { return launchAgent{}, nil }

// noopProgram satisfies kardianos' Interface: install and status never
// start the program.
type noopProgram struct{}

func (noopProgram) Start(service.Service) error { return nil }
func (noopProgram) Stop(service.Service) error  { return nil }

func (launchAgent) kardianos(spec serviceSpec) (service.Service, error) {
	opts := service.KeyValue{"UserService": true, "KeepAlive": true, "RunAtLoad": true}
	// launchd's own stdout/stderr capture (panics, early failures) goes
	// next to the engine's rotated log instead of $HOME/tetherd.out.log.
	if p, err := app.DefaultPaths(); err == nil {
		if err := os.MkdirAll(p.Logs, 0o700); err == nil {
			opts["LogDirectory"] = p.Logs
		}
	}
	return service.New(noopProgram{}, &service.Config{
		Name:        serviceName,
		DisplayName: serviceDisplayName,
		Description: serviceDescription,
		Executable:  spec.Exe,
		Arguments:   spec.Args,
		EnvVars:     spec.Env,
		Option:      opts,
	})
}

func plistPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home folder: %w", err)
	}
	return filepath.Join(home, "Library", "LaunchAgents", serviceName+".plist"), nil
}

func guiDomain() string { return "gui/" + strconv.Itoa(os.Getuid()) }
func guiTarget() string { return guiDomain() + "/" + serviceName }

func launchctl(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "launchctl", args...).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil {
		if msg == "" {
			msg = err.Error()
		}
		return msg, fmt.Errorf("`launchctl %s`: %s: %w", strings.Join(args, " "), msg, err)
	}
	return msg, nil
}

func loaded(ctx context.Context) bool {
	_, err := launchctl(ctx, "print", guiTarget())
	return err == nil
}

func (l launchAgent) install(ctx context.Context, spec serviceSpec, out io.Writer) error {
	plist, err := plistPath()
	if err != nil {
		return err
	}
	if _, err := os.Stat(plist); err == nil { // an update: replace it
		if loaded(ctx) {
			_, _ = launchctl(ctx, "bootout", guiTarget())
		}
		if err := os.Remove(plist); err != nil {
			return fmt.Errorf("replace %s: %w", plist, err)
		}
	}
	s, err := l.kardianos(spec)
	if err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("write LaunchAgent: %w", err)
	}
	fmt.Fprintf(out, "Wrote the LaunchAgent %s\n", plist)
	if _, err := launchctl(ctx, "bootstrap", guiDomain(), plist); err != nil {
		fmt.Fprintf(out, "It starts at your next login; loading it now failed (%v).\nTo load it by hand: launchctl bootstrap %s %q\n",
			err, guiDomain(), plist)
		return nil
	}
	fmt.Fprintln(out, "Loaded and started it; it starts again at every login.")
	return nil
}

func (launchAgent) uninstall(ctx context.Context, out io.Writer) error {
	plist, err := plistPath()
	if err != nil {
		return err
	}
	if _, err := os.Stat(plist); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "tetherd is not installed as a service (no %s)\n", plist)
		return nil
	}
	if loaded(ctx) {
		if _, err := launchctl(ctx, "bootout", guiTarget()); err != nil {
			fmt.Fprintf(out, "Could not stop it (%v); it stops at logout.\n", err)
		}
	}
	if err := os.Remove(plist); err != nil {
		return fmt.Errorf("remove LaunchAgent: %w", err)
	}
	fmt.Fprintf(out, "Removed the LaunchAgent %s\n", plist)
	return nil
}

// control: with KeepAlive, killing the process only restarts it, so stop
// unloads the agent (it loads again at the next login) and start loads it.
func (launchAgent) control(ctx context.Context, verb string) error {
	plist, err := plistPath()
	if err != nil {
		return err
	}
	if _, err := os.Stat(plist); errors.Is(err, os.ErrNotExist) {
		return errServiceNotInstalled
	}
	isLoaded := loaded(ctx)
	switch {
	case verb == "stop" && !isLoaded:
		return nil
	case verb == "stop":
		_, err = launchctl(ctx, "bootout", guiTarget())
	case !isLoaded: // start or restart of an unloaded agent
		_, err = launchctl(ctx, "bootstrap", guiDomain(), plist)
	case verb == "start":
		_, err = launchctl(ctx, "kickstart", guiTarget())
	default: // restart
		_, err = launchctl(ctx, "kickstart", "-k", guiTarget())
	}
	return err
}

func (l launchAgent) status(context.Context) (string, error) {
	s, err := l.kardianos(serviceSpec{Exe: "tetherd"})
	if err != nil {
		return serviceUnknown, err
	}
	return kardianosStatus(s)
}
