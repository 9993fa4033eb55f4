package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

// fakeSchtasks is a FAKE schtasks.exe: the Task Scheduler cannot run on the
// Linux CI machine, so these tests check the command lines tetherd sends
// and how it reads the answers, against a small model of one task. It
// records every call, and keeps the XML handed to /Create (read from the
// file at call time, as schtasks would).
type fakeSchtasks struct {
	installed, running bool
	endLag             int // /Query calls that still say Running after /End
	failRun            bool
	calls              [][]string
	xml                string
}

func (f *fakeSchtasks) run(_ context.Context, name string, args ...string) (string, error) {
	if name != "schtasks.exe" {
		return "", errors.New("unexpected program " + name)
	}
	f.calls = append(f.calls, args)
	notFound := func() (string, error) {
		return "ERROR: The system cannot find the file specified.\r\n", errors.New("exit status 1")
	}
	switch args[0] {
	case "/Query":
		if !f.installed {
			return notFound()
		}
		st := "Ready"
		if f.running {
			st = "Running"
		} else if f.endLag > 0 {
			f.endLag--
			st = "Running"
		}
		return `"` + args[2] + `","N/A","` + st + "\"\r\n", nil
	case "/Create":
		b, err := os.ReadFile(args[4])
		if err != nil {
			return "", err
		}
		f.xml = decodeUTF16(b)
		f.installed = true
		return "SUCCESS: The scheduled task has been created.", nil
	case "/Run":
		if !f.installed {
			return notFound()
		}
		if f.failRun {
			return "ERROR: Access is denied.", errors.New("exit status 1")
		}
		f.running = true
		return "SUCCESS", nil
	case "/End":
		f.running = false
		return "SUCCESS", nil
	case "/Delete":
		f.installed = false
		return "SUCCESS", nil
	}
	return "", errors.New("unexpected " + args[0])
}

// verbs is the list of schtasks verbs called, Query left out.
func (f *fakeSchtasks) verbs() []string {
	var v []string
	for _, c := range f.calls {
		if c[0] != "/Query" {
			v = append(v, c[0])
		}
	}
	return v
}

func decodeUTF16(b []byte) string {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xFE {
		return "NO BOM: " + string(b)
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 2; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
	}
	return string(utf16.Decode(u))
}

var testUser = taskUser{SID: "S-1-5-21-1-2-3-1001", Name: `PC\Ann O'Brien`}

func newFakeTask(t *testing.T, f *fakeSchtasks) *schTask {
	return &schTask{user: testUser, runner: f, tmpDir: t.TempDir()}
}

// parsedTask is the part of the task XML the tests look at.
type parsedTask struct {
	Triggers struct {
		Logon []struct {
			UserID string `xml:"UserId"`
		} `xml:"LogonTrigger"`
		Other []xml.Name `xml:",any"`
	} `xml:"Triggers"`
	Principal struct {
		UserID    string `xml:"UserId"`
		LogonType string `xml:"LogonType"`
		RunLevel  string `xml:"RunLevel"`
	} `xml:"Principals>Principal"`
	Settings struct {
		Multiple  string `xml:"MultipleInstancesPolicy"`
		TimeLimit string `xml:"ExecutionTimeLimit"`
		Restart   struct {
			Interval string `xml:"Interval"`
			Count    int    `xml:"Count"`
		} `xml:"RestartOnFailure"`
		StopOnBattery string `xml:"StopIfGoingOnBatteries"`
	} `xml:"Settings"`
	Exec struct {
		Command   string `xml:"Command"`
		Arguments string `xml:"Arguments"`
	} `xml:"Actions>Exec"`
}

func parseTask(t *testing.T, s string) parsedTask {
	t.Helper()
	var p parsedTask
	// encoding/xml refuses a UTF-16 declaration for a Go string that is
	// already decoded; the charset is the file's business (checked apart).
	s = strings.Replace(s, `encoding="UTF-16"`, `encoding="UTF-8"`, 1)
	if err := xml.Unmarshal([]byte(s), &p); err != nil {
		t.Fatalf("task XML does not parse: %v\n%s", err, s)
	}
	return p
}

func TestTaskXML(t *testing.T) {
	exe := `C:\Program Files\Tether & Co <x>\tetherd.exe`
	p := parseTask(t, taskXML(testUser, exe, `run --service`))
	if len(p.Triggers.Logon) != 1 || p.Triggers.Logon[0].UserID != testUser.SID || len(p.Triggers.Other) != 0 {
		t.Errorf("triggers = %+v, want one logon trigger for %s", p.Triggers, testUser.SID)
	}
	pr := p.Principal
	if pr.UserID != testUser.SID || pr.LogonType != "InteractiveToken" || pr.RunLevel != "LeastPrivilege" {
		t.Errorf("principal = %+v, want the user, InteractiveToken, LeastPrivilege", pr)
	}
	s := p.Settings
	if s.Multiple != "IgnoreNew" || s.TimeLimit != "PT0S" || s.Restart.Interval != "PT1M" || s.Restart.Count != 999 || s.StopOnBattery != "false" {
		t.Errorf("settings = %+v", s)
	}
	if p.Exec.Command != exe || p.Exec.Arguments != "run --service" {
		t.Errorf("exec = %+v, want %q run --service (escaping must round-trip)", p.Exec, exe)
	}
}

func TestUTF16File(t *testing.T) {
	b := utf16File("<a>é</a>")
	want := []byte{0xFF, 0xFE, '<', 0, 'a', 0, '>', 0, 0xE9, 0, '<', 0, '/', 0, 'a', 0, '>', 0}
	if !bytes.Equal(b, want) {
		t.Errorf("utf16File = % x, want % x", b, want)
	}
}

func TestTaskCommand(t *testing.T) {
	exe, args, note := taskCommand(serviceSpec{Exe: `C:\t\tetherd.exe`, Args: serviceArgs, Env: map[string]string{
		"TETHER_TOKEN_FILE": `C:\Users\Ann O'Brien\bridge token.jwt`,
	}})
	if exe != `C:\t\tetherd.exe` || args != `run --service --token-file "C:\Users\Ann O'Brien\bridge token.jwt"` || note != "" {
		t.Errorf("taskCommand = %q, %q, note %q", exe, args, note)
	}
	_, args, note = taskCommand(serviceSpec{Exe: "x", Args: serviceArgs, Env: map[string]string{"TETHER_HOME": `D:\my tether`}})
	if args != "run --service" || !strings.Contains(note, `setx TETHER_HOME "D:\my tether"`) {
		t.Errorf("with TETHER_HOME: args %q, note %q; want no flag and a setx note", args, note)
	}
}

func TestWinQuoteArg(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:          `plain`,
		``:               `""`,
		`a b`:            `"a b"`,
		`C:\dir\`:        `C:\dir\`,
		`C:\my dir\`:     `"C:\my dir\\"`,
		`say "hi"`:       `"say \"hi\""`,
		`back\"quote`:    `"back\\\"quote"`,
		`tab	in`:         `"tab	in"`,
		`C:\a\b c\d.exe`: `"C:\a\b c\d.exe"`,
	} {
		if got := winQuoteArg(in); got != want {
			t.Errorf("winQuoteArg(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestTaskName(t *testing.T) {
	if got := taskName(`PC\Ann O'Brien`); got != `\Tether bridge (PC_Ann_O_Brien)` {
		t.Errorf("taskName = %q", got)
	}
}

func TestParseTaskQuery(t *testing.T) {
	exit1 := errors.New("exit status 1")
	for _, c := range []struct {
		out     string
		err     error
		want    string
		wantErr bool
	}{
		{`"\Tether bridge (x)","N/A","Running"` + "\r\n", nil, serviceRunning, false},
		{`"\Tether bridge (x)","N/A","Ready"`, nil, serviceStopped, false},
		{`"\Tether bridge (x)","N/A","Disabled"`, nil, serviceStopped, false},
		{`"\Tether bridge (x)","N/A","Could not start"`, nil, serviceFailed, false},
		{`"\Tether bridge (x)","N/A","Wird ausgeführt"`, nil, serviceUnknown, true},
		{"ERROR: The system cannot find the file specified.\r\n", exit1, serviceNotInstalled, false},
		{"ERROR: Access is denied.", exit1, serviceUnknown, true},
		{"garbage", nil, serviceUnknown, true},
	} {
		got, err := parseTaskQuery(c.out, c.err)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("parseTaskQuery(%q, %v) = %q, %v; want %q, error %v", c.out, c.err, got, err, c.want, c.wantErr)
		}
	}
}

func TestTaskInstallFresh(t *testing.T) {
	f := &fakeSchtasks{}
	task := newFakeTask(t, f)
	var out bytes.Buffer
	spec := serviceSpec{Exe: `C:\bin\tetherd.exe`, Args: serviceArgs, Env: map[string]string{}}
	if err := task.install(t.Context(), spec, &out); err != nil {
		t.Fatal(err)
	}
	if got := f.verbs(); !slices.Equal(got, []string{"/Create", "/Run"}) {
		t.Errorf("calls = %v, want /Create then /Run", f.calls)
	}
	create := f.calls[slices.IndexFunc(f.calls, func(c []string) bool { return c[0] == "/Create" })]
	if create[2] != taskName(testUser.Name) || create[5] != "/F" {
		t.Errorf("/Create args = %q", create)
	}
	if _, err := os.Stat(create[4]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the XML file %s was left behind (%v)", create[4], err)
	}
	p := parseTask(t, f.xml)
	if p.Exec.Command != spec.Exe || p.Exec.Arguments != "run --service" || p.Principal.UserID != testUser.SID {
		t.Errorf("created task = %+v", p)
	}
	if !strings.Contains(out.String(), "Started it.") {
		t.Errorf("output %q", out.String())
	}
}

// TestTaskInstallUpdate: installing over a running task ends it first and
// waits until it is gone, or IgnoreNew would swallow the /Run.
func TestTaskInstallUpdate(t *testing.T) {
	f := &fakeSchtasks{installed: true, running: true, endLag: 2}
	task := newFakeTask(t, f)
	if err := task.install(t.Context(), serviceSpec{Exe: "x", Args: serviceArgs}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := f.verbs(); !slices.Equal(got, []string{"/End", "/Create", "/Run"}) {
		t.Errorf("calls = %v", f.calls)
	}
	if f.endLag != 0 {
		t.Errorf("/Create came before the old instance stopped (endLag %d left)", f.endLag)
	}
}

func TestTaskInstallRunFails(t *testing.T) {
	f := &fakeSchtasks{failRun: true}
	var out bytes.Buffer
	if err := newFakeTask(t, f).install(t.Context(), serviceSpec{Exe: "x", Args: serviceArgs}, &out); err != nil {
		t.Fatalf("install = %v; a task that is registered but did not start now is installed", err)
	}
	if !f.installed || !strings.Contains(out.String(), "Access is denied") || !strings.Contains(out.String(), "next logon") {
		t.Errorf("installed %v, output %q", f.installed, out.String())
	}
}

func TestTaskUninstall(t *testing.T) {
	f := &fakeSchtasks{installed: true, running: true}
	var out bytes.Buffer
	if err := newFakeTask(t, f).uninstall(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	if got := f.verbs(); !slices.Equal(got, []string{"/End", "/Delete"}) || f.installed {
		t.Errorf("calls = %v, installed %v", f.calls, f.installed)
	}
	del := f.calls[len(f.calls)-1]
	if !slices.Equal(del, deleteArgs(taskName(testUser.Name))) {
		t.Errorf("/Delete args = %q", del)
	}

	f = &fakeSchtasks{}
	out.Reset()
	if err := newFakeTask(t, f).uninstall(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	if len(f.verbs()) != 0 || !strings.Contains(out.String(), "not installed") {
		t.Errorf("uninstall of nothing: calls %v, output %q", f.calls, out.String())
	}
}

func TestTaskControl(t *testing.T) {
	for _, c := range []struct {
		verb    string
		running bool
		want    []string
	}{
		{"start", false, []string{"/Run"}},
		{"start", true, nil},
		{"stop", true, []string{"/End"}},
		{"stop", false, nil},
		{"restart", true, []string{"/End", "/Run"}},
		{"restart", false, []string{"/Run"}},
	} {
		f := &fakeSchtasks{installed: true, running: c.running}
		if err := newFakeTask(t, f).control(t.Context(), c.verb); err != nil {
			t.Errorf("%s (running %v): %v", c.verb, c.running, err)
		}
		if got := f.verbs(); !slices.Equal(got, c.want) {
			t.Errorf("%s (running %v): calls %v, want verbs %v", c.verb, c.running, f.calls, c.want)
		}
		if wantRunning := c.verb != "stop"; f.running != wantRunning {
			t.Errorf("%s: running = %v after", c.verb, f.running)
		}
	}
	err := newFakeTask(t, &fakeSchtasks{}).control(t.Context(), "start")
	if !errors.Is(err, errServiceNotInstalled) {
		t.Errorf("start before install = %v, want errServiceNotInstalled", err)
	}
}

func TestTaskStatus(t *testing.T) {
	for _, c := range []struct {
		f    fakeSchtasks
		want string
	}{
		{fakeSchtasks{}, serviceNotInstalled},
		{fakeSchtasks{installed: true}, serviceStopped},
		{fakeSchtasks{installed: true, running: true}, serviceRunning},
	} {
		got, err := newFakeTask(t, &c.f).status(t.Context())
		if got != c.want || err != nil {
			t.Errorf("status with %+v = %q, %v; want %q", c.f, got, err, c.want)
		}
		if q := c.f.calls[0]; !slices.Equal(q, queryArgs(taskName(testUser.Name))) {
			t.Errorf("query args = %q", q)
		}
	}
}

func TestInstallMachineNotSupported(t *testing.T) {
	err := serviceCmd(t.Context(), "install", []string{"--machine"}, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, errMachineService) {
		t.Errorf("install --machine = %v, want errMachineService", err)
	}
}
