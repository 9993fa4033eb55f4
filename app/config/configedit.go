package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tailscale/hujson"

	"github.com/tether-dev/tether/internal/atomicfile"
)

// Tether edits the user's own files (mcp.json, settings.json), so every edit
// works on the JWCC syntax tree and changes only the members it must: the
// user's comments, blank lines, key order and indentation stay as they were.
// Writes are atomic (temp file + rename) and keep the file's mode.

// SetServerDisabled sets "disabled" of one server in the mcp.json at path.
// An existing "disabled" value is replaced in place; enabling a server that
// has no "disabled" key changes nothing.
func SetServerDisabled(path, name string, disabled bool) error {
	return editJWCC(path, 0, func(data []byte, root *hujson.Value) error {
		servers, err := mcpServersObject(data, root, false)
		if err != nil {
			return err
		}
		if servers == nil {
			return fmt.Errorf("no server %q in %s", name, path)
		}
		v, err := findMember(data, servers.Value.(*hujson.Object), name)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("no server %q in %s", name, path)
		}
		obj, ok := v.Value.(*hujson.Object)
		if !ok {
			return errAt(data, v.StartOffset, nil, fmt.Sprintf("server %q is not an object", name))
		}
		d, err := findMember(data, obj, "disabled")
		if err != nil {
			return err
		}
		switch {
		case d != nil:
			d.Value = hujson.Bool(disabled)
		case disabled:
			lay := objLayout(data, v)
			appendMember(obj, lay, "disabled", hujson.Value{Value: hujson.Bool(true)})
		}
		return nil
	})
}

// addServers adds servers to the "mcpServers" of the mcp.json at path, in
// name order after the existing ones, and returns the names it added. A
// name that is already there is left alone (not replaced) and not returned.
// Each value must be a JSON object; it is written indented like the file.
func addServers(path string, entries map[string]json.RawMessage) (added []string, err error) {
	err = editJWCC(path, 0, func(data []byte, root *hujson.Value) error {
		servers, err := mcpServersObject(data, root, true)
		if err != nil {
			return err
		}
		obj := servers.Value.(*hujson.Object)
		lay := objLayout(data, servers)
		for _, name := range slices.Sorted(maps.Keys(entries)) {
			if err := validServerName(name); err != nil {
				return err
			}
			if v, err := findMember(data, obj, name); err != nil {
				return err
			} else if v != nil {
				continue
			}
			std, err := hujson.Standardize(entries[name])
			if err != nil || !bytes.HasPrefix(bytes.TrimSpace(std), []byte("{")) {
				return fmt.Errorf("server %q: not a JSON object", name)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, bytes.TrimSpace(std), lay.indent, lay.unit); err != nil {
				return fmt.Errorf("server %q: %w", name, err)
			}
			val, err := hujson.Parse(buf.Bytes())
			if err != nil {
				return fmt.Errorf("server %q: %w", name, err)
			}
			appendMember(obj, lay, name, val)
			added = append(added, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

// mcpServersObject finds (or, with create, adds) the "mcpServers" object.
func mcpServersObject(data []byte, root *hujson.Value, create bool) (*hujson.Value, error) {
	top, ok := root.Value.(*hujson.Object)
	if !ok {
		return nil, errAt(data, root.StartOffset, nil, `the file must be an object: {"mcpServers": {...}}`)
	}
	v, err := findMember(data, top, "mcpServers")
	if err != nil {
		return nil, err
	}
	if v != nil {
		if lit, ok := v.Value.(hujson.Literal); ok && lit.Kind() == 'n' && create {
			v.Value = &hujson.Object{}
		}
		if _, ok := v.Value.(*hujson.Object); !ok {
			return nil, errAt(data, v.StartOffset, nil, `"mcpServers" must be an object of servers by name`)
		}
		return v, nil
	}
	if !create {
		return nil, nil
	}
	appendMember(top, objLayout(data, root), "mcpServers", hujson.Value{Value: &hujson.Object{}})
	last := &top.Members[len(top.Members)-1].Value
	// The new object has no offsets in data: lay its members out one level
	// below the top-level keys.
	last.StartOffset = -1
	return last, nil
}

// editJWCC reads the JWCC file at path, lets edit change its syntax tree,
// and writes the result back atomically if anything changed, with mode perm
// (0 keeps the file's mode). A symlinked file is edited at its target, so
// the link survives.
func editJWCC(path string, perm os.FileMode, edit func(data []byte, root *hujson.Value) error) error {
	target := resolveLink(path)
	fi, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("edit %s: %w", path, err)
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return fmt.Errorf("edit %s: %w", path, err)
	}
	bom := bytes.HasPrefix(data, []byte("\ufeff"))
	body := bytes.TrimPrefix(data, []byte("\ufeff"))
	root, err := hujson.Parse(body)
	if err != nil {
		_, _, perr := parseJWCC(body) // same parse, human-shaped error
		return fmt.Errorf("%s: %w (fix the file first)", path, perr)
	}
	if err := edit(body, &root); err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			return fmt.Errorf("%s: %w", path, err)
		}
		return err
	}
	out := root.Pack()
	if bytes.Equal(out, body) {
		return nil // nothing to do: don't wake the config watcher
	}
	if _, err := hujson.Parse(out); err != nil {
		return fmt.Errorf("edit %s: produced invalid JSON (not written): %w", path, err)
	}
	if bom {
		out = append([]byte("\ufeff"), out...)
	}
	if perm == 0 {
		perm = fi.Mode().Perm()
	}
	if err := atomicfile.WriteFile(target, out, perm); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// layout is how the members of one object sit in the file, so that an
// added member looks like its neighbours.
type layout struct {
	multiline   bool
	indent      string // before each member name
	closeIndent string // before the closing brace
	unit        string // one level of indentation
	trailing    bool   // the last member is followed by a comma
}

// objLayout reads the layout of the object v from the original file bytes.
// Compute it before inserting anything: new members have no file offsets.
func objLayout(data []byte, v *hujson.Value) layout {
	obj := v.Value.(*hujson.Object)
	lay := layout{multiline: true, unit: indentUnit(data)}
	if v.StartOffset >= 0 {
		lay.closeIndent = lineIndent(data, v.StartOffset)
	} else {
		lay.closeIndent = lay.unit // a new object under the top level
	}
	lay.indent = lay.closeIndent + lay.unit
	if n := len(obj.Members); n > 0 {
		last := obj.Members[n-1].Name
		lay.multiline = bytes.Contains(last.BeforeExtra, []byte("\n"))
		lay.trailing = obj.Members[n-1].Value.AfterExtra != nil
		if lay.multiline {
			lay.indent = lineIndent(data, last.StartOffset)
		}
	}
	return lay
}

// appendMember adds key: val as the last member of obj, laid out like the
// existing members, keeping a trailing comma if the object had one, and
// keeping a comment that ended the previous last line on that line.
func appendMember(obj *hujson.Object, lay layout, key string, val hujson.Value) {
	val.BeforeExtra = hujson.Extra(" ")
	val.AfterExtra = nil
	name := hujson.Value{Value: hujson.String(key)}
	n := len(obj.Members)
	switch {
	case n == 0:
		// An empty object: put the member on its own line, after any
		// comment the object held, and the closing brace on the next.
		name.BeforeExtra = append(trimRightSpace(obj.AfterExtra), "\n"+lay.indent...)
		obj.AfterExtra = hujson.Extra("\n" + lay.closeIndent)
	case !lay.multiline:
		name.BeforeExtra = hujson.Extra(" ")
	default:
		name.BeforeExtra = hujson.Extra("\n" + lay.indent)
		// obj.AfterExtra is what follows the last member (after its comma,
		// if any). A comment on that same line belongs to that member.
		if i := bytes.IndexByte(obj.AfterExtra, '\n'); i > 0 && strings.TrimSpace(string(obj.AfterExtra[:i])) != "" {
			name.BeforeExtra = append(hujson.Extra(string(obj.AfterExtra[:i])), name.BeforeExtra...)
			obj.AfterExtra = obj.AfterExtra[i:]
		}
	}
	if lay.trailing {
		val.AfterExtra = hujson.Extra{} // the object had a trailing comma: keep one
	}
	obj.Members = append(obj.Members, hujson.ObjectMember{Name: name, Value: val})
}

func trimRightSpace(b []byte) hujson.Extra {
	return hujson.Extra(bytes.TrimRight(b, " \t\r\n"))
}

// lineIndent is the leading whitespace of the line that holds offset off.
func lineIndent(data []byte, off int) string {
	if off > len(data) {
		off = len(data)
	}
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	end := start
	for end < len(data) && (data[end] == ' ' || data[end] == '\t') {
		end++
	}
	return string(data[start:end])
}

// indentUnit guesses one level of indentation from the first indented line.
func indentUnit(data []byte) string {
	for _, line := range bytes.Split(data, []byte("\n")) {
		trimmed := bytes.TrimLeft(line, " \t")
		if len(trimmed) == len(line) || len(bytes.TrimSpace(trimmed)) == 0 {
			continue
		}
		if bytes.HasPrefix(trimmed, []byte("//")) || bytes.HasPrefix(trimmed, []byte("/*")) || bytes.HasPrefix(trimmed, []byte("*")) {
			continue // comment text is often indented for looks
		}
		if line[0] == '\t' {
			return "\t"
		}
		if n := len(line) - len(trimmed); n <= 8 {
			return strings.Repeat(" ", n)
		}
	}
	return "  "
}

// keepTrailingComma restores the object's trailing comma after its last
// member was removed (the comma went with that member).
func keepTrailingComma(obj *hujson.Object, lay layout) {
	if n := len(obj.Members); n > 0 && lay.trailing && obj.Members[n-1].Value.AfterExtra == nil {
		obj.Members[n-1].Value.AfterExtra = hujson.Extra{}
	}
}

// resolveLink follows a symlinked config file (dotfile managers link
// mcp.json into place), so an atomic save replaces the target and keeps the
// link instead of replacing the link with a plain file.
func resolveLink(path string) string {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if target, err := filepath.EvalSymlinks(path); err == nil {
			return target
		}
	}
	return path
}
