//go:build unix

package mcpchild

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeExec writes an executable shell script at dir/name.
func writeExec(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveMissingNamesCommandAndEveryDir(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	env := []string{"PATH=/somewhere/else", "HOME=/h", "PATH=" + a + ":" + b} // last PATH wins
	// "sh" exists in this process's PATH, but Resolve must search env's.
	for _, cmd := range []string{"uvx", "sh"} {
		_, _, err := Resolve(Spec{Name: "github", Command: cmd}, env)
		var nf *NotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("%s: err = %v, want *NotFoundError", cmd, err)
		}
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, exec.ErrNotFound) {
			t.Fatalf("%s: error does not match ErrNotFound and exec.ErrNotFound", cmd)
		}
		want := `mcp server "github": command "` + cmd + `" not found in PATH (` + a + ":" + b + `); `
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("error = %q\nwant prefix %q", err, want)
		}
	}
	_, _, err := Resolve(Spec{Name: "x", Command: "uvx"}, env)
	if !strings.Contains(err.Error(), "install uv") {
		t.Fatalf("no uv hint in %q", err)
	}
	_, _, err = Resolve(Spec{Name: "x", Command: "definitely-not-here"}, env)
	if !strings.HasSuffix(err.Error(), "; install it or use an absolute path in mcp.json") {
		t.Fatalf("no generic hint in %q", err)
	}
}

func TestResolveFindsInEnvPATH(t *testing.T) {
	empty, bin := t.TempDir(), t.TempDir()
	want := writeExec(t, bin, "srv", "exit 0")
	// A directory of that name and a non-executable file earlier in PATH are skipped.
	if err := os.Mkdir(filepath.Join(empty, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "srv"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, warn, err := Resolve(Spec{Name: "s", Command: "srv"}, []string{"PATH=:relative:" + empty + ":" + other + ":" + bin})
	if err != nil || got != want || warn != "" {
		t.Fatalf("Resolve = %q, %q, %v; want %q", got, warn, err, want)
	}
}

func TestResolvePythonFallsBackToPython3(t *testing.T) {
	dir := t.TempDir()
	py3 := writeExec(t, dir, "python3", "echo python3")
	env := []string{"PATH=" + dir}
	got, warn, err := Resolve(Spec{Name: "py", Command: "python"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if got != py3 {
		t.Fatalf("path = %q, want %q", got, py3)
	}
	if want := "python not found; using " + py3; warn != want {
		t.Fatalf("warning = %q, want %q", warn, want)
	}
	// The resolved path really runs.
	if out, err := exec.Command(got).Output(); err != nil || string(out) != "python3\n" {
		t.Fatalf("running %s: %q, %v", got, out, err)
	}

	// When python exists it wins, without a warning.
	py := writeExec(t, dir, "python", "echo python")
	got, warn, err = Resolve(Spec{Name: "py", Command: "python"}, env)
	if err != nil || got != py || warn != "" {
		t.Fatalf("Resolve = %q, %q, %v; want %q and no warning", got, warn, err, py)
	}
}

func TestResolveRelativeToCwd(t *testing.T) {
	cwd := t.TempDir()
	want := writeExec(t, cwd, "bin/server", "exit 0")
	for _, cmd := range []string{"./bin/server", "bin/server", want} {
		got, _, err := Resolve(Spec{Name: "r", Command: cmd, Cwd: cwd}, []string{"PATH=/nonexistent"})
		if err != nil || got != want {
			t.Fatalf("Resolve(%q) = %q, %v; want %q", cmd, got, err, want)
		}
	}

	_, _, err := Resolve(Spec{Name: "r", Command: "./bin/missing", Cwd: cwd}, nil)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Tried != filepath.Join(cwd, "bin", "missing") {
		t.Fatalf("err = %v, want NotFoundError that names %s", err, filepath.Join(cwd, "bin", "missing"))
	}
	if !strings.Contains(err.Error(), `command "./bin/missing" not found (looked for `+nf.Tried+")") {
		t.Fatalf("message = %q", err)
	}

	if err := os.WriteFile(filepath.Join(cwd, "plain.py"), []byte("print(1)"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = Resolve(Spec{Name: "r", Command: "./plain.py", Cwd: cwd}, nil)
	if err == nil || errors.As(err, &nf) || !strings.Contains(err.Error(), "not executable") {
		t.Fatalf("non-executable file: err = %v, want a 'not executable' error", err)
	}
}

func TestResolveMergeEnv(t *testing.T) {
	base := []string{"A=1", "PATH=/x", "B=2", "A=old"}
	got := MergeEnv(base, map[string]string{"C": "3", "A": "9"})
	want := []string{"PATH=/x", "B=2", "A=9", "C=3"}
	if !slices.Equal(got, want) {
		t.Fatalf("MergeEnv = %q, want %q", got, want)
	}
	if !slices.Equal(base, []string{"A=1", "PATH=/x", "B=2", "A=old"}) {
		t.Fatal("MergeEnv changed base")
	}
}

func TestSpecExpand(t *testing.T) {
	vars := map[string]string{"HOME": "/home/u", "TOKEN": "t0k", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	in := Spec{
		Name:    "s",
		Command: "${HOME}/bin/srv",
		Args: []string{"--token=$TOKEN", "${MISSING}", "pa$$word", "^x$", "${DEF:-fallback}",
			"${EMPTY:-dflt}", "$EMPTY.", "${HOME", "${not valid}", "$1", "cost: 5$", "$TOKEN_X", "$$HOME"},
		Env:     map[string]string{"K": "${TOKEN}", "L": "$MISSING2", "M": "${MISSING}"},
		Cwd:     "$HOME/w",
		URL:     "https://x/${TOKEN}",
		Headers: map[string]string{"Authorization": "Bearer ${TOKEN}"},
	}
	out, missing := in.Expand(lookup)
	want := Spec{
		Name:    "s",
		Command: "/home/u/bin/srv",
		Args: []string{"--token=t0k", "", "pa$word", "^x$", "fallback",
			"dflt", ".", "${HOME", "${not valid}", "$1", "cost: 5$", "", "$HOME"},
		Env:     map[string]string{"K": "t0k", "L": "", "M": ""},
		Cwd:     "/home/u/w",
		URL:     "https://x/t0k",
		Headers: map[string]string{"Authorization": "Bearer t0k"},
	}
	if out.Hash() != want.Hash() || out.Name != "s" {
		t.Fatalf("Expand =\n%#v\nwant\n%#v", out, want)
	}
	if !slices.Equal(missing, []string{"MISSING", "TOKEN_X", "MISSING2"}) {
		t.Fatalf("missing = %q", missing)
	}
	if in.Args[0] != "--token=$TOKEN" || in.Env["K"] != "${TOKEN}" || in.Headers["Authorization"] != "Bearer ${TOKEN}" {
		t.Fatal("Expand modified its receiver")
	}
}

func TestSpecHash(t *testing.T) {
	mk := func(order []string) Spec {
		s := Spec{Command: "npx", Args: []string{"-y", "srv"}, Env: map[string]string{}, Headers: map[string]string{}}
		for _, k := range order {
			s.Env[k] = "v" + k
			s.Headers["H"+k] = k
		}
		return s
	}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	h := mk(keys).Hash()
	rev := slices.Clone(keys)
	slices.Reverse(rev)
	for range 20 { // map iteration order is random: try many
		if mk(rev).Hash() != h {
			t.Fatal("hash depends on map insertion order")
		}
	}
	if len(h) != 64 {
		t.Fatalf("hash %q is not sha256 hex", h)
	}
	// Pinned: the hash must not change between releases, or every server
	// would restart on upgrade.
	if got, want := (Spec{Command: "npx", Args: []string{"-y", "srv"}}).Hash(), "91330f9f3342b62e1d9820f664aae642dd482d62d0cb692ab15b491b5056d34d"; got != want {
		t.Fatalf("hash changed: %s, want %s", got, want)
	}

	base := Spec{Name: "a", Command: "npx", Args: []string{"-y", "srv"}}
	same := []Spec{
		{Name: "other name", Command: "npx", Args: []string{"-y", "srv"}},
		{Name: "a", Command: "npx", Args: []string{"-y", "srv"}, Env: map[string]string{}},
	}
	for _, s := range same {
		if s.Hash() != base.Hash() {
			t.Fatalf("hash of %+v differs from %+v", s, base)
		}
	}
	different := []Spec{
		{Command: "npx", Args: []string{"-y", "srv2"}},
		{Command: "npx", Args: []string{"srv", "-y"}},
		{Command: "npx", Args: []string{"-y srv"}},
		{Command: "npx", Args: []string{"-y", "srv"}, Env: map[string]string{"A": "1"}},
		{Command: "npx", Args: []string{"-y", "srv"}, Cwd: "/tmp"},
		{Command: "npx", Args: []string{"-y", "srv"}, Headers: map[string]string{"A": "1"}},
		{URL: "https://x"},
	}
	for _, s := range different {
		if s.Hash() == base.Hash() {
			t.Fatalf("hash of %+v equals %+v", s, base)
		}
	}
}

func TestSpecBatCommandLine(t *testing.T) {
	got, err := batCommandLine(`C:\Program Files\nodejs\npx.cmd`, []string{
		"-y", "@modelcontextprotocol/server-everything", "hello world", `a"b`, "100%", `C:\dir\`, "", "a&b|c", `%PATH%`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `cmd.exe /e:ON /v:OFF /d /c ""C:\Program Files\nodejs\npx.cmd" -y @modelcontextprotocol/server-everything ` +
		`"hello world" "a""b" "100%%cd:~,%" "C:\dir\\" "" "a&b|c" "%%cd:~,%PATH%%cd:~,%""`
	if got != want {
		t.Fatalf("command line\n got %s\nwant %s", got, want)
	}
	if _, err := batCommandLine(`C:\x.cmd`, []string{"a\nb"}); err == nil {
		t.Fatal("newline in a batch argument accepted")
	}
	if _, err := batCommandLine(`C:\x".cmd`, nil); err == nil {
		t.Fatal("quote in a batch path accepted")
	}
}
