package main

// Windows: tetherd as an SCM service (kardianos/service).
//
// Windows has no per-user services that a user can install, so this is a
// machine service, installed from an elevated prompt, running as the virtual
// account NT SERVICE\tetherd: no password, least privilege, and its own SID
// to grant files to. That account cannot read the installing user's
// Credential Manager (each account has its own vault), so the token is
// handed over at install time:
//
//  1. `tetherd install` (elevated) takes the token from --token-stdin,
//     --token-file FILE, or else the installing user's Credential Manager
//     entry for the relay (--relay, $TETHER_RELAY or settings.json).
//  2. It creates the service, then %ProgramData%\Tether\service with a
//     protected DACL: SYSTEM and Administrators full control, NT
//     SERVICE\tetherd read, nobody else (the SID exists only once the
//     service does, hence this order), and writes the token to
//     %ProgramData%\Tether\service\token, which inherits that DACL.
//  3. The service's environment (the SCM registry key, readable by admins)
//     holds TETHER_TOKEN_FILE=<that path> — a path, never the token — and
//     TETHER_HOME=<the installing user's Tether folder>, on which NT
//     SERVICE\tetherd gets an inherited Modify entry so it can read mcp.json
//     and write logs and the control socket.
//
// `tetherd uninstall` stops and deletes the service and the token folder.
// To change the token, run install again. Children run as the service
// account, so they see the machine PATH, not the user's (npx from a per-user
// Node install is not found): use full paths in mcp.json, or run the tray.
//
// Not testable here (no SCM on the Linux CI machine): compile-checked with
// GOOS=windows go vet.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/internal/atomicfile"
	"github.com/tether-dev/tether/keystore"
)

const serviceAccount = `NT SERVICE\` + serviceName

type scmService struct{}

func newServiceManager() (serviceManager, error) { return scmService{}, nil }

// program adapts the engine to kardianos' Start/Stop callbacks.
type program struct {
	run    func(context.Context) error
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (p *program) Start(service.Service) error {
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		if err := p.run(p.ctx); err != nil && p.ctx.Err() == nil {
			// The engine gave up on its own: exit non-zero so the SCM's
			// recovery action restarts the service.
			fmt.Fprintln(os.Stderr, "tetherd:", err)
			os.Exit(1)
		}
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.once.Do(p.cancel)
	<-p.done
	return nil
}

func newKardianos(spec serviceSpec, prog service.Interface) (service.Service, error) {
	if prog == nil {
		prog = &program{}
	}
	return service.New(prog, &service.Config{
		Name:        serviceName,
		DisplayName: serviceDisplayName,
		Description: serviceDescription,
		Executable:  spec.Exe,
		Arguments:   spec.Args,
		EnvVars:     spec.Env,
		UserName:    serviceAccount,
		Option: service.KeyValue{
			"StartType":              "automatic",
			"DelayedAutoStart":       true,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "2s",
			"OnFailureResetPeriod":   60,
		},
	})
}

// serviceRun runs the engine for `tetherd run --service`: under the SCM
// through kardianos (which answers the SCM's start/stop requests), in a
// console directly.
func serviceRun(ctx context.Context, run func(context.Context) error) error {
	if service.Interactive() {
		return run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prog := &program{run: run, ctx: ctx, cancel: cancel}
	s, err := newKardianos(serviceSpec{}, prog)
	if err != nil {
		return err
	}
	return s.Run()
}

func tokenDir() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "Tether", "service")
}

func (w scmService) install(ctx context.Context, spec serviceSpec, out io.Writer) error {
	token, err := installToken(spec)
	if err != nil {
		return err
	}
	paths, err := app.DefaultPaths()
	if err != nil {
		return err
	}
	if err := paths.Ensure(); err != nil {
		return err
	}
	tokenPath := filepath.Join(tokenDir(), "token")
	spec.Env["TETHER_HOME"] = paths.Dir
	spec.Env["TETHER_TOKEN_FILE"] = tokenPath

	if st, _ := w.status(ctx); st != serviceNotInstalled {
		if err := w.uninstall(ctx, io.Discard); err != nil {
			return fmt.Errorf("replace the installed service: %w", err)
		}
	}
	s, err := newKardianos(spec, nil)
	if err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("create the service (run from an elevated prompt): %w", err)
	}
	undo := func(cause error) error {
		_ = s.Uninstall()
		_ = os.RemoveAll(tokenDir())
		return cause
	}
	sid, _, _, err := windows.LookupSID("", serviceAccount)
	if err != nil {
		return undo(fmt.Errorf("look up %s: %w", serviceAccount, err))
	}
	if err := protectedDir(tokenDir(), sid); err != nil {
		return undo(err)
	}
	if err := atomicfile.WriteFile(tokenPath, []byte(token), 0o600); err != nil {
		return undo(fmt.Errorf("write the service's token file: %w", err))
	}
	if err := grantModify(paths.Dir, sid); err != nil {
		return undo(err)
	}
	fmt.Fprintf(out, "Installed the %s service (account %s); its token is in %s\n", serviceName, serviceAccount, tokenPath)
	if err := s.Start(); err != nil {
		fmt.Fprintf(out, "Starting it failed (%v); try `tetherd start` or services.msc.\n", err)
		return nil
	}
	fmt.Fprintln(out, "Started it; it starts with Windows.")
	return nil
}

// installToken finds the token to hand to the service, in the order of the
// package comment. The token is never printed.
func installToken(spec serviceSpec) (string, error) {
	var t keystore.Token
	switch {
	case spec.TokenStdin != nil:
		b, err := io.ReadAll(io.LimitReader(spec.TokenStdin, keystore.MaxTokenBytes+1))
		if err != nil {
			return "", fmt.Errorf("read token from stdin: %w", err)
		}
		t = keystore.Token(strings.TrimSpace(string(b)))
	case spec.TokenFile != "":
		var err error
		t, _, err = keystore.Resolver{TokenFile: spec.TokenFile, Getenv: func(string) string { return "" }}.Resolve()
		if err != nil {
			return "", err
		}
	default:
		relay := spec.Relay
		if relay == "" {
			relay = settingsRelay()
		}
		if relay == "" {
			return "", errors.New("no token for the service: pass --token-stdin or --token-file FILE, " +
				"or --relay URL to copy the token stored by `tetherd token set`")
		}
		var err error
		t, err = keystore.Keychain{}.Get(keystore.AccountFor(relay))
		if err != nil {
			return "", fmt.Errorf("read the token for %s from Credential Manager: %w", relay, err)
		}
	}
	if t == "" {
		return "", errors.New("the token is empty")
	}
	if len(t) > keystore.MaxTokenBytes {
		return "", keystore.ErrTooBig
	}
	return t.Reveal(), nil
}

// settingsRelay reads "relay" from settings.json, "" when there is none.
func settingsRelay() string {
	p, err := app.DefaultPaths()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(p.Settings)
	if err != nil {
		return ""
	}
	var s struct {
		Relay string `json:"relay"`
	}
	if json.Unmarshal(b, &s) != nil {
		return ""
	}
	return s.Relay
}

// protectedDir creates dir with a DACL that does not inherit from its
// parent: SYSTEM and Administrators full control, the service SID read.
func protectedDir(dir string, sid *windows.SID) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	sd, err := windows.SecurityDescriptorFromString(
		"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FR;;;" + sid.String() + ")")
	if err != nil {
		return fmt.Errorf("build the token folder's ACL: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("build the token folder's ACL: %w", err)
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("restrict %s: %w", dir, err)
	}
	return nil
}

// grantModify adds an inherited Modify entry for sid to dir's DACL, keeping
// the entries it has.
func grantModify(dir string, sid *windows.SID) error {
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("read the ACL of %s: %w", dir, err)
	}
	old, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("read the ACL of %s: %w", dir, err)
	}
	const modify = windows.FILE_GENERIC_READ | windows.FILE_GENERIC_WRITE | windows.FILE_GENERIC_EXECUTE | windows.DELETE
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: modify,
		AccessMode:        windows.GRANT_ACCESS,
		Inheritance:       windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  windows.TRUSTEE_IS_WELL_KNOWN_GROUP,
			TrusteeValue: windows.TrusteeValueFromSID(sid),
		},
	}}, old)
	if err != nil {
		return fmt.Errorf("extend the ACL of %s: %w", dir, err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION,
		nil, nil, acl, nil); err != nil {
		return fmt.Errorf("let %s use %s: %w", serviceAccount, dir, err)
	}
	return nil
}

func (w scmService) uninstall(ctx context.Context, out io.Writer) error {
	if st, _ := w.status(ctx); st == serviceNotInstalled {
		fmt.Fprintln(out, "tetherd is not installed as a service")
		return nil
	}
	s, err := newKardianos(serviceSpec{}, nil)
	if err != nil {
		return err
	}
	_ = s.Stop() // a stopped service refuses Stop; Uninstall is what matters
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("delete the service (run from an elevated prompt): %w", err)
	}
	if err := os.RemoveAll(tokenDir()); err != nil {
		return fmt.Errorf("remove the service's token folder %s: %w", tokenDir(), err)
	}
	fmt.Fprintf(out, "Removed the %s service and its token folder\n", serviceName)
	return nil
}

func (w scmService) control(ctx context.Context, verb string) error {
	if st, _ := w.status(ctx); st == serviceNotInstalled {
		return errServiceNotInstalled
	}
	s, err := newKardianos(serviceSpec{}, nil)
	if err != nil {
		return err
	}
	switch verb {
	case "start":
		err = s.Start()
	case "stop":
		err = s.Stop()
	default:
		err = s.Restart()
	}
	if err != nil {
		return fmt.Errorf("%s the %s service: %w", verb, serviceName, err)
	}
	return nil
}

func (scmService) status(context.Context) (string, error) {
	s, err := newKardianos(serviceSpec{}, nil)
	if err != nil {
		return serviceUnknown, err
	}
	return kardianosStatus(s)
}
