package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/app/config"
)

// configCmd is `tetherd config import`: copy the MCP servers configured in
// Claude Desktop, Cursor and VS Code into Tether's mcp.json. They arrive
// disabled: the relay must never start exposing a server the user did not
// choose for it.
func configCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return errors.New("usage: tetherd config import [--from claude|cursor|vscode|FILE] (repeatable)")
	}
	fs := flag.NewFlagSet("tetherd config import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var from listFlag
	fs.Var(&from, "from", "only this source: claude, cursor, vscode, or a config file path (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	paths, err := app.DefaultPaths()
	if err != nil {
		return err
	}
	if err := paths.Ensure(); err != nil {
		return err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return fmt.Errorf("find the home folder: %w", err)
	}
	srcs, err := importSources(config.ImportCandidates(home, runtime.GOOS), from)
	if err != nil {
		return err
	}
	// A running engine writes its own mcp.json; without one, the same
	// writer runs here.
	var rep app.ImportReport
	if c, derr := app.DialControl(ctx, paths.Socket); derr == nil {
		rep, err = c.ImportServers(ctx, srcs)
		c.Close()
	} else {
		rep, err = config.ImportServers(paths.MCPJSON, srcs)
	}
	if err != nil {
		return err
	}
	for _, s := range rep.Sources {
		switch {
		case !s.Found:
			fmt.Fprintf(stdout, "%-15s not found (%s)\n", s.App, s.Path)
			continue
		case s.Error != "":
			fmt.Fprintf(stdout, "%-15s could not read %s: %s\n", s.App, s.Path, s.Error)
			continue
		}
		fmt.Fprintf(stdout, "%-15s %s: imported %d", s.App, s.Path, len(s.Imported))
		if len(s.Imported) > 0 {
			fmt.Fprintf(stdout, " (%s)", strings.Join(s.Imported, ", "))
		}
		fmt.Fprintln(stdout)
		for _, sk := range s.Skipped {
			fmt.Fprintf(stdout, "                  skipped %s: %s\n", sk.Name, sk.Reason)
		}
		for _, w := range s.Warnings {
			fmt.Fprintf(stdout, "                  note: %s\n", w)
		}
	}
	if n := len(rep.Imported()); n > 0 {
		fmt.Fprintf(stdout, "\nAdded %d server(s) to %s, disabled. Enable the ones the relay may use: set \"disabled\": false there (or use the tray). A running tetherd picks the change up at once.\n", n, rep.Dst)
	} else {
		fmt.Fprintf(stdout, "\nNothing new to import into %s.\n", rep.Dst)
	}
	return nil
}

// importSources narrows the known locations to the --from choices; a value
// that is not an app name is a config file path (its format is detected).
func importSources(all []app.ImportSource, from []string) ([]app.ImportSource, error) {
	if len(from) == 0 {
		return all, nil
	}
	aliases := map[string]string{"claude": app.AppClaudeDesktop, "cursor": app.AppCursor, "vscode": app.AppVSCode, "code": app.AppVSCode}
	var out []app.ImportSource
	for _, f := range from {
		name, isApp := aliases[strings.ToLower(f)]
		if !isApp {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("--from %s: not an app (claude, cursor, vscode) and not a readable file: %w", f, err)
			}
			out = append(out, app.ImportSource{App: "file", Path: f})
			continue
		}
		for _, s := range all {
			if s.App == name {
				out = append(out, s)
			}
		}
	}
	return out, nil
}
