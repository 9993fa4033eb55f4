package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tailscale/hujson"

	"github.com/tether-dev/tether/mcpchild"
)

// Apps whose MCP configs Tether can import.
const (
	AppClaudeDesktop = "Claude Desktop"
	AppCursor        = "Cursor"
	AppVSCode        = "VS Code"
)

// ImportSource is another app's MCP config file.
type ImportSource struct {
	App  string // AppClaudeDesktop, AppCursor, AppVSCode (or any label)
	Path string
}

// ImportReport says what ImportServers did.
type ImportReport struct {
	Dst     string
	Created bool // Dst did not exist and was created from exampleConfig
	Sources []SourceReport
}

// Imported lists every server name written to Dst, in source order.
func (r ImportReport) Imported() []string {
	var out []string
	for _, s := range r.Sources {
		out = append(out, s.Imported...)
	}
	return out
}

// SourceReport is the outcome for one source file.
type SourceReport struct {
	ImportSource
	Found    bool            // the file exists
	Error    string          // unreadable or not valid JSON: nothing imported from it
	Imported []string        // names as written to Dst (all "disabled": true)
	Skipped  []SkippedServer // servers not imported, and why
	Warnings []string        // imported, but needs the user's attention
}

// SkippedServer is a server of a source that was not imported.
type SkippedServer struct {
	Name   string // the name in the source file
	Reason string
}

// ImportCandidates lists where the known apps keep their MCP configs for
// the user whose home folder is home, on goos (runtime.GOOS values). On
// Windows %APPDATA% is taken as home\AppData\Roaming, its standard place.
// The order is the order of preference when two apps use the same name.
func ImportCandidates(home string, goos string) []ImportSource {
	var claude, vscode string
	switch goos {
	case "darwin":
		support := filepath.Join(home, "Library", "Application Support")
		claude = filepath.Join(support, "Claude", "claude_desktop_config.json")
		vscode = filepath.Join(support, "Code", "User", "mcp.json")
	case "windows":
		appData := filepath.Join(home, "AppData", "Roaming")
		claude = filepath.Join(appData, "Claude", "claude_desktop_config.json")
		vscode = filepath.Join(appData, "Code", "User", "mcp.json")
	default:
		claude = filepath.Join(home, ".config", "Claude", "claude_desktop_config.json")
		vscode = filepath.Join(home, ".config", "Code", "User", "mcp.json")
	}
	return []ImportSource{
		{App: AppClaudeDesktop, Path: claude},
		{App: AppCursor, Path: filepath.Join(home, ".cursor", "mcp.json")},
		{App: AppVSCode, Path: vscode},
	}
}

// ImportServers copies the servers of srcs into the Tether mcp.json at dst
// (created from exampleConfig if missing). Imported servers arrive with
// "disabled": true: nothing another app configured is shared with agents
// until the user enables it. A name already in dst is skipped; when two
// sources use one name, the later source's server gets a suffix ("-cursor",
// "-vscode") unless both define the very same server, which is kept once.
// Missing or broken sources are reported, not errors; the error is for dst.
func ImportServers(dst string, srcs []ImportSource) (ImportReport, error) {
	rep := ImportReport{Dst: dst}
	created, err := EnsureExample(dst)
	if err != nil {
		return rep, err
	}
	rep.Created = created
	existing, err := serverNames(dst)
	if err != nil {
		return rep, err
	}
	home, _ := os.UserHomeDir()

	type taken struct{ app, hash string }
	owners := map[string]taken{} // names claimed by this import
	toAdd := map[string]json.RawMessage{}
	for _, src := range srcs {
		sr := SourceReport{ImportSource: src}
		servers, err := readForeignConfig(src.Path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			rep.Sources = append(rep.Sources, sr)
			continue
		case err != nil:
			sr.Found = true
			sr.Error = err.Error()
			rep.Sources = append(rep.Sources, sr)
			continue
		}
		sr.Found = true
		for _, fs := range servers {
			skip := func(format string, args ...any) {
				sr.Skipped = append(sr.Skipped, SkippedServer{Name: fs.name, Reason: fmt.Sprintf(format, args...)})
			}
			if fs.err != "" {
				skip("%s", fs.err)
				continue
			}
			srv, warnings, err := convertServer(fs, home, filepath.Dir(dst))
			if err != nil {
				skip("%v", err)
				continue
			}
			name := sanitizeServerName(fs.name)
			if name != fs.name {
				warnings = append(warnings, fmt.Sprintf("%s: renamed to %q (names become part of a URL)", fs.name, name))
			}
			hash := srv.spec().Hash()
			if existing[name] {
				skip("%q is already in %s", name, filepath.Base(dst))
				continue
			}
			if o, ok := owners[name]; ok {
				if o.hash == hash {
					skip("same server as %q from %s", name, o.app)
					continue
				}
				alt := name + appSuffix(src.App)
				if existing[alt] || owners[alt] != (taken{}) {
					skip("%q is taken by %s and %q is taken too", name, o.app, alt)
					continue
				}
				warnings = append(warnings, fmt.Sprintf("%s: imported as %q (%s already has %q)", fs.name, alt, o.app, name))
				name = alt
			}
			raw, err := marshalNoEscape(srv)
			if err != nil {
				skip("%v", err)
				continue
			}
			owners[name] = taken{app: src.App, hash: hash}
			toAdd[name] = raw
			sr.Imported = append(sr.Imported, name)
			sr.Warnings = append(sr.Warnings, warnings...)
		}
		rep.Sources = append(rep.Sources, sr)
	}
	if len(toAdd) == 0 {
		return rep, nil
	}
	added, err := addServers(dst, toAdd)
	if err != nil {
		return rep, fmt.Errorf("import into %s: %w", dst, err)
	}
	if len(added) != len(toAdd) {
		// Someone added one of these names to dst since we read it; say
		// exactly what was written rather than what was planned.
		for i := range rep.Sources {
			sr := &rep.Sources[i]
			sr.Imported = slices.DeleteFunc(sr.Imported, func(n string) bool {
				if !slices.Contains(added, n) {
					sr.Skipped = append(sr.Skipped, SkippedServer{Name: n, Reason: "appeared in " + filepath.Base(dst) + " during the import"})
					return true
				}
				return false
			})
		}
	}
	return rep, nil
}

// serverNames lists the servers already in the mcp.json at path.
func serverNames(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	root, _, err := parseJWCC(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (fix it before importing)", path, err)
	}
	servers, err := mcpServersObject(data, &root, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	names := map[string]bool{}
	if servers != nil {
		for _, m := range servers.Value.(*hujson.Object).Members {
			names[m.Name.Value.(hujson.Literal).String()] = true
		}
	}
	return names, nil
}

// foreignServer is one server of another app's config, in the union of the
// formats: Claude Desktop and Cursor ("mcpServers"), VS Code ("servers",
// with "type" and "envFile").
type foreignServer struct {
	name    string
	err     string            // could not be decoded
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	Cwd     string            `json:"cwd"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	EnvFile string            `json:"envFile"`
}

// readForeignConfig reads another app's config, tolerating comments and
// trailing commas (VS Code writes them), and returns its servers in file order.
func readForeignConfig(path string) ([]foreignServer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	root, std, err := parseJWCC(data)
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	top, ok := root.Value.(*hujson.Object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	var servers *hujson.Value
	for _, key := range []string{"mcpServers", "servers"} {
		if servers, err = findMember(data, top, key); err != nil {
			return nil, err
		}
		if servers != nil {
			break
		}
	}
	if servers == nil {
		return nil, nil
	}
	obj, ok := servers.Value.(*hujson.Object)
	if !ok {
		return nil, nil
	}
	var out []foreignServer
	seen := map[string]bool{}
	for _, m := range obj.Members {
		fs := foreignServer{name: m.Name.Value.(hujson.Literal).String()}
		switch {
		case seen[fs.name]:
			fs.err = "defined twice in this file; the first one was used"
		case m.Value.Value.Kind() != '{':
			fs.err = "not an object"
		default:
			if err := json.Unmarshal(std[m.Value.StartOffset:m.Value.EndOffset], &fs); err != nil {
				_, msg := describeJSONError(err)
				fs.err = "invalid: " + msg
			}
		}
		seen[fs.name] = true
		out = append(out, fs)
	}
	return out, nil
}

// importedServer is how an imported server is written: the Claude Desktop
// keys in their usual order, then "disabled".
type importedServer struct {
	Command  string            `json:"command,omitempty"`
	Args     []string          `json:"args,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Cwd      string            `json:"cwd,omitempty"`
	URL      string            `json:"url,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Disabled bool              `json:"disabled"`
}

func (s importedServer) spec() mcpchild.Spec {
	return mcpchild.Spec{Command: s.Command, Args: s.Args, Env: s.Env, Cwd: s.Cwd, URL: s.URL, Headers: s.Headers}
}

// convertServer turns a foreign server into a Tether one, rewriting the
// editor variables Tether understands and warning about the rest.
func convertServer(fs foreignServer, home, tetherDir string) (importedServer, []string, error) {
	srv := importedServer{Disabled: true}
	switch {
	case fs.Command == "" && fs.URL == "":
		return srv, nil, errors.New(`has neither "command" nor "url"`)
	case fs.Command != "" && fs.URL != "":
		return srv, nil, errors.New(`has both "command" and "url"`)
	}
	var warnings []string
	switch strings.ToLower(fs.Type) {
	case "", "stdio", "http", "streamable-http", "streamablehttp":
	case "sse":
		warnings = append(warnings, fmt.Sprintf("%s: uses the old SSE transport; Tether speaks Streamable HTTP, which this server may not support", fs.name))
	default:
		warnings = append(warnings, fmt.Sprintf("%s: unknown \"type\" %q ignored", fs.name, fs.Type))
	}
	if fs.EnvFile != "" {
		warnings = append(warnings, fmt.Sprintf("%s: \"envFile\" is not read by Tether: copy the variables it needs into %s", fs.name, filepath.Join(tetherDir, ".env")))
	}
	unresolved := map[string]bool{}
	conv := func(s string) string { return convertVars(s, home, unresolved) }
	srv.Command, srv.Cwd, srv.URL = conv(fs.Command), conv(fs.Cwd), conv(fs.URL)
	for _, a := range fs.Args {
		srv.Args = append(srv.Args, conv(a))
	}
	convMap := func(m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = conv(v)
		}
		return out
	}
	srv.Env, srv.Headers = convMap(fs.Env), convMap(fs.Headers)
	for _, v := range slices.Sorted(maps.Keys(unresolved)) {
		if strings.HasPrefix(v, "input:") {
			warnings = append(warnings, fmt.Sprintf("%s: ${%s} is a VS Code prompt Tether cannot show: replace it in mcp.json (e.g. with ${VAR} and VAR in .env) before enabling", fs.name, v))
		} else {
			warnings = append(warnings, fmt.Sprintf("%s: ${%s} is an editor variable Tether cannot resolve: replace it in mcp.json before enabling", fs.name, v))
		}
	}
	return srv, warnings, nil
}

// editorVarRE matches the ${...} variables of VS Code and Cursor configs.
var editorVarRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// editorOnlyVars are VS Code/Cursor variables that name editor state.
var editorOnlyVars = map[string]bool{
	"workspaceFolder": true, "workspaceFolderBasename": true, "workspaceRoot": true,
	"file": true, "fileDirname": true, "relativeFile": true, "cwd": true, "pathSeparator": true, "/": true,
}

// convertVars rewrites ${env:NAME} to Tether's ${NAME} and ${userHome} to
// home; ${input:...} and editor variables stay as written (Tether leaves
// a "${input:x}" alone when expanding) and are collected in unresolved.
func convertVars(s, home string, unresolved map[string]bool) string {
	return editorVarRE.ReplaceAllStringFunc(s, func(m string) string {
		body := m[2 : len(m)-1]
		switch {
		case strings.HasPrefix(body, "env:"):
			return "${" + body[len("env:"):] + "}"
		case body == "userHome" && home != "":
			return home
		case strings.Contains(body, ":") || editorOnlyVars[body]:
			unresolved[body] = true
		}
		return m
	})
}

// sanitizeServerName replaces characters a Tether name cannot have.
func sanitizeServerName(name string) string {
	out := strings.Map(func(r rune) rune {
		if isNameChar(r) {
			return r
		}
		return '-'
	}, name)
	if validServerName(out) != nil {
		out = "server-" + strings.Trim(out, ".")
	}
	return out
}

// appSuffix is the name suffix for a clashing server from app.
func appSuffix(app string) string {
	switch app {
	case AppClaudeDesktop:
		return "-claude"
	case AppCursor:
		return "-cursor"
	case AppVSCode:
		return "-vscode"
	}
	s := strings.ToLower(sanitizeServerName(app))
	return "-" + strings.Trim(s, "-")
}

// marshalNoEscape is json.Marshal without HTML escaping, so a URL's "&"
// stays "&" in the user's file instead of becoming "\u0026".
func marshalNoEscape(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}
