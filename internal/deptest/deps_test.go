// Package deptest holds the import rules of docs/architecture.md
// §1 as a test, in the spirit of tailscale's tstest/deptest: a rule that only
// lives in a document is broken by the first hurried change.
package deptest

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tether-dev/tether"

// allowed lists, for each production package (by path inside the module),
// the packages of this module it may import directly. A package missing here
// fails the test, so a new package has to say where it stands. internal/...
// helpers that are not test-only may be imported by anyone below cmd.
var allowed = map[string][]string{
	// The leaves: they know nothing about each other, the engine or a UI.
	"mcpchild": {"internal/*"},
	"relay":    {"internal/*", "relay/internal/*"},
	"keystore": {"internal/*"},

	// The relay's durable state: standard library and database drivers only.
	"relay/store": {},
	// The relay server builds on the wire protocol and its store.
	"relay/server": {"relay", "relay/internal/*", "relay/store", "internal/*"},
	// The relay's web page reads the relay's state and its store.
	"relay/web": {"relay", "relay/server", "relay/store", "internal/*"},

	// The engine.
	"app": {"app/*", "mcpchild", "relay", "keystore", "internal/*"},

	// The binaries wire things together. The tray is a thin UI over app:
	// it never touches a child process or a socket (keystore only for its
	// Token and Claims types; storing goes through app.Control).
	"cmd/tray": {"app", "app/*", "assets", "keystore", "internal/*"},
	// tetherd embeds a relay for `tetherd demo`, reads and stores the token
	// for `tetherd token` and the Windows service account, and builds one
	// mcpchild.Spec for quick mode; everything else goes through app.
	"cmd/svc":   {"app", "app/*", "keystore", "mcpchild", "relay/server", "internal/*"},
	"cmd/relay": {"relay/server", "relay/store", "relay/web", "internal/*"},
}

// testOnly are helpers that production code must never link in.
var testOnly = []string{"internal/testbin", "internal/testpg", "internal/testservers/*", "internal/waitbuf"}

// uiOnly are third-party packages only the binaries may link in: a library
// that pulled in the tray or the service manager would drag a GUI or an OS
// service into every user of it.
var uiOnly = []string{"fyne.io/systray", "github.com/kardianos/service"}

type pkg struct {
	path    string   // inside the module, "" for the root
	imports []string // direct, inside the module
	deps    []string // transitive, all
}

func list(t *testing.T) []pkg {
	t.Helper()
	// Production code only: -test is not given, so _test.go imports are
	// not counted (tests may use any helper).
	out, err := exec.Command("go", "list", "-f",
		"{{.ImportPath}}\t{{join .Imports \" \"}}\t{{join .Deps \" \"}}",
		module+"/...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			t.Fatalf("go list line: %q", sc.Text())
		}
		p := pkg{path: rel(f[0]), deps: strings.Fields(f[2])}
		for _, imp := range strings.Fields(f[1]) {
			if r, ok := inModule(imp); ok {
				p.imports = append(p.imports, r)
			}
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func inModule(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func rel(path string) string { r, _ := inModule(path); return r }

// match reports whether path matches pattern, where "x/*" means anything
// below x.
func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(path, base+"/")
	}
	return pattern == path
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

// ruled returns the rule for a production package, following a package to
// its nearest listed parent (app/config follows app, unless listed itself).
func ruled(path string) ([]string, bool) {
	for p := path; p != ""; {
		if r, ok := allowed[p]; ok {
			return r, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return nil, false
}

// exempt are packages that are tools or tests, not product: they may import
// anything.
func exempt(path string) bool {
	return matchAny([]string{"bench", "bench/*", "e2e", "e2e/*", "internal/*", "assets", "assets/*"}, path)
}

func TestImportRules(t *testing.T) {
	t.Parallel()
	for _, p := range list(t) {
		if exempt(p.path) {
			// internal helpers still may not reach up into the product.
			if strings.HasPrefix(p.path, "internal/") {
				for _, imp := range p.imports {
					if !strings.HasPrefix(imp, "internal/") {
						t.Errorf("%s imports %s: internal helpers stay below every product package", p.path, imp)
					}
				}
			}
			continue
		}
		rule, ok := ruled(p.path)
		if !ok {
			t.Errorf("%s has no import rule: add it to deptest.allowed (and to docs/architecture.md)", p.path)
			continue
		}
		for _, imp := range p.imports {
			if matchAny(rule, imp) || (strings.HasPrefix(imp, p.path+"/")) {
				continue
			}
			t.Errorf("%s imports %s; allowed: %v", p.path, imp, rule)
		}
		for _, d := range p.deps {
			if r, ok := inModule(d); ok && matchAny(testOnly, r) {
				t.Errorf("%s links in the test helper %s", p.path, r)
			}
			if !strings.HasPrefix(p.path, "cmd/") && matchAny(uiOnly, d) {
				t.Errorf("%s links in %s, which only a binary under cmd/ may use", p.path, d)
			}
		}
	}
}

// TestRulesMatch keeps the matcher itself honest.
func TestRulesMatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pat, path string
		want      bool
	}{
		{"app", "app", true},
		{"app", "app/config", false},
		{"app/*", "app/config", true},
		{"app/*", "app", false},
		{"internal/*", "internal/jsonscan", true},
		{"relay", "relay/server", false},
	} {
		if got := match(c.pat, c.path); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pat, c.path, got, c.want)
		}
	}
	if r, _ := ruled("app/config"); !slices.Equal(r, allowed["app"]) {
		t.Errorf("app/config should follow app's rule, got %v", r)
	}
}
