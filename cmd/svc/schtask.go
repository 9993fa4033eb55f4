package main

// Windows: tetherd as a per-user Scheduled Task (docs/windows-service.md).
//
// This file has no build tag on purpose: everything here is a pure decision
// (the task XML, the schtasks command lines, the parsing of its answers) or
// goes through the cmdRunner interface, so the tests run on the Linux CI
// machine with a fake runner. service_windows.go only wires in the real
// schtasks.exe and the current user.
//
// Why a task and not an SCM service: a service runs as another account, so
// it neither owns the user's Tether folder (checkControlDir refuses it) nor
// reaches the user's Credential Manager and PATH. A task with a logon
// trigger and LogonType=InteractiveToken runs as the user, in their session,
// with no elevation, no ACL change and no token copy — the same shape as the
// systemd user unit and the LaunchAgent. It runs while the user is logged on.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// cmdRunner runs one program and returns its combined output. The real one
// is exec; tests record the calls.
type cmdRunner interface {
	run(ctx context.Context, name string, args ...string) (string, error)
}

// taskUser is the account the task runs as.
type taskUser struct {
	SID  string // e.g. S-1-5-21-…-1001: what the task XML names (survives renames)
	Name string // DOMAIN\user: only for the task's name
}

// schTask manages the task through schtasks.exe.
type schTask struct {
	user   taskUser
	runner cmdRunner
	tmpDir string        // where the XML for /Create is written; "" = os.TempDir
	poll   time.Duration // between status checks while waiting for /End
}

// taskName is the task's path in the Task Scheduler: in the root folder
// (a standard user may create tasks there without a folder of their own) and
// named after the user, because task names are machine-wide and two users
// of one PC each install their own.
func taskName(user string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, user)
	return `\Tether bridge (` + clean + `)`
}

// taskCommand is the task's action: the program and its argument string.
// A task has no environment of its own, so TETHER_TOKEN_FILE becomes
// --token-file; TETHER_HOME cannot be carried (run has no flag for it) and
// comes back as a note for the user.
func taskCommand(spec serviceSpec) (exe, args, note string) {
	argv := slices.Clone(spec.Args)
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		switch k {
		case "TETHER_TOKEN_FILE":
			argv = append(argv, "--token-file", spec.Env[k])
		case "TETHER_HOME":
			note = fmt.Sprintf("Note: TETHER_HOME is set in this shell, but a Scheduled Task gets only your saved environment.\n"+
				"For the background tetherd to use %s too, run:  setx TETHER_HOME %s\n", spec.Env[k], winQuoteArg(spec.Env[k]))
		}
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = winQuoteArg(a)
	}
	return spec.Exe, strings.Join(quoted, " "), note
}

// winQuoteArg quotes one argument the way CommandLineToArgvW (and Go's
// os.Args on Windows) splits it back: quotes around anything with a space,
// tab or quote; backslashes doubled only before a quote.
func winQuoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for _, r := range s {
		switch r {
		case '\\':
			slashes++
		case '"':
			// The backslashes before it are written once already: double
			// them, then escape the quote itself.
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteRune(r)
	}
	b.WriteString(strings.Repeat(`\`, slashes)) // before the closing quote
	b.WriteByte('"')
	return b.String()
}

// taskXML is the task definition for schtasks /Create /XML:
//   - a logon trigger for this user only, and the principal is that user
//     with InteractiveToken: runs in their session with their keychain;
//   - LeastPrivilege: never elevated;
//   - ExecutionTimeLimit PT0S: no limit (the default kills it after 3 days);
//   - RestartOnFailure every minute (the Task Scheduler's minimum), 999
//     times (its maximum);
//   - IgnoreNew: a second trigger while it runs starts no second engine;
//   - not stopped on battery, started late if the logon was missed.
//
// Elements are in the order `schtasks /Query /XML` exports them.
func taskXML(user taskUser, exe, args string) string {
	esc := func(s string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	sid := esc(user.SID)
	return `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>` + esc(serviceDescription) + `. Written by tetherd install; tetherd uninstall removes it.</Description>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>` + sid + `</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>` + sid + `</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>` + esc(exe) + `</Command>
      <Arguments>` + esc(args) + `</Arguments>
    </Exec>
  </Actions>
</Task>
`
}

// utf16File is the XML as schtasks reads it reliably: UTF-16LE with a BOM,
// matching the encoding the XML declaration names.
func utf16File(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2, 2+2*len(u))
	b[0], b[1] = 0xFF, 0xFE
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}

// Argument lists of the schtasks calls.
func createArgs(name, xmlPath string) []string {
	return []string{"/Create", "/TN", name, "/XML", xmlPath, "/F"}
}
func runArgs(name string) []string    { return []string{"/Run", "/TN", name} }
func endArgs(name string) []string    { return []string{"/End", "/TN", name} }
func deleteArgs(name string) []string { return []string{"/Delete", "/TN", name, "/F"} }
func queryArgs(name string) []string  { return []string{"/Query", "/TN", name, "/FO", "CSV", "/NH"} }

// parseTaskQuery reads `schtasks /Query /TN name /FO CSV /NH`: one line
// "TaskName","Next Run Time","Status". The status words are the English
// ones; other display languages come back as serviceUnknown with the word.
func parseTaskQuery(out string, runErr error) (string, error) {
	if runErr != nil {
		// "ERROR: The system cannot find the file specified." (English only;
		// otherwise the message is passed on as unknown).
		if strings.Contains(strings.ToLower(out), "cannot find") {
			return serviceNotInstalled, nil
		}
		msg := strings.TrimSpace(out)
		if msg == "" {
			msg = runErr.Error()
		}
		return serviceUnknown, fmt.Errorf("`schtasks /Query`: %s", msg)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimSpace(out))).ReadAll()
	if err != nil || len(rows) == 0 || len(rows[0]) < 3 {
		return serviceUnknown, fmt.Errorf("`schtasks /Query`: unexpected answer %q", out)
	}
	switch st := strings.TrimSpace(rows[0][2]); st {
	case "Running", "Queued":
		return serviceRunning, nil
	case "Ready", "Disabled":
		return serviceStopped, nil
	case "Could not start":
		return serviceFailed, nil
	default:
		return serviceUnknown, fmt.Errorf("`schtasks /Query`: status %q not understood", st)
	}
}

func (t *schTask) name() string { return taskName(t.user.Name) }

func (t *schTask) schtasks(ctx context.Context, args ...string) error {
	out, err := t.runner.run(ctx, "schtasks.exe", args...)
	if err != nil {
		msg := strings.TrimSpace(out)
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("`schtasks %s`: %s: %w", strings.Join(args, " "), msg, err)
	}
	return nil
}

func (t *schTask) status(ctx context.Context) (string, error) {
	out, err := t.runner.run(ctx, "schtasks.exe", queryArgs(t.name())...)
	return parseTaskQuery(out, err)
}

// end stops a running instance and waits until the Task Scheduler no longer
// reports it running: with IgnoreNew, a /Run while the old instance is still
// winding down would be ignored.
func (t *schTask) end(ctx context.Context) error {
	if st, _ := t.status(ctx); st != serviceRunning {
		return nil
	}
	if err := t.schtasks(ctx, endArgs(t.name())...); err != nil {
		return err
	}
	for range 50 {
		if st, _ := t.status(ctx); st != serviceRunning {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(t.poll):
		}
	}
	return fmt.Errorf("the task %s still runs after /End", t.name())
}

func (t *schTask) install(ctx context.Context, spec serviceSpec, out io.Writer) error {
	exe, args, note := taskCommand(spec)
	f, err := os.CreateTemp(t.tmpDir, "tetherd-task-*.xml")
	if err != nil {
		return fmt.Errorf("write the task definition: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(utf16File(taskXML(t.user, exe, args)))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the task definition: %w", err)
	}
	// An update: stop the old engine so the new binary starts below.
	if err := t.end(ctx); err != nil {
		return err
	}
	if err := t.schtasks(ctx, createArgs(t.name(), filepath.Clean(f.Name()))...); err != nil {
		return err
	}
	fmt.Fprintf(out, "Registered the Scheduled Task %q: tetherd runs as you at every logon.\n", t.name())
	if note != "" {
		fmt.Fprint(out, note)
	}
	if err := t.schtasks(ctx, runArgs(t.name())...); err != nil {
		fmt.Fprintf(out, "Starting it now failed (%v); it starts at your next logon, or run `tetherd start`.\n", err)
		return nil
	}
	fmt.Fprintln(out, "Started it.")
	return nil
}

func (t *schTask) uninstall(ctx context.Context, out io.Writer) error {
	st, err := t.status(ctx)
	if st == serviceNotInstalled {
		fmt.Fprintln(out, "tetherd is not installed as a service (no Scheduled Task)")
		return nil
	}
	if err != nil {
		return err
	}
	if err := t.end(ctx); err != nil {
		fmt.Fprintf(out, "Could not stop it (%v); deleting the task anyway.\n", err)
	}
	if err := t.schtasks(ctx, deleteArgs(t.name())...); err != nil {
		return err
	}
	fmt.Fprintf(out, "Removed the Scheduled Task %q\n", t.name())
	return nil
}

func (t *schTask) control(ctx context.Context, verb string) error {
	st, err := t.status(ctx)
	switch {
	case st == serviceNotInstalled:
		return errServiceNotInstalled
	case err != nil:
		return err
	}
	switch verb {
	case "stop":
		return t.end(ctx)
	case "restart":
		if err := t.end(ctx); err != nil {
			return err
		}
	case "start":
		if st == serviceRunning {
			return nil
		}
	}
	return t.schtasks(ctx, runArgs(t.name())...)
}
