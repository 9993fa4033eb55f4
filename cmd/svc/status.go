package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tether-dev/tether/app"
)

// statusCmd prints the running engine's state: a short human summary, or
// the whole State as JSON for scripts.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tetherd status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the full state as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	paths, err := app.DefaultPaths()
	if err != nil {
		return err
	}
	c, err := app.DialControl(ctx, paths.Socket)
	if errors.Is(err, app.ErrNoEngine) {
		svc := serviceStatusLine()
		if *asJSON {
			out, _ := json.Marshal(map[string]any{"running": false, "service": svc, "home": paths.Dir})
			fmt.Fprintln(stdout, string(out))
			return errNotRunning
		}
		fmt.Fprintf(stdout, "Tether is not running (looked for %s).\nService: %s\nStart it with `tetherd run` (foreground), `tetherd install` (in the background, at login), or the tray app.\n", paths.Socket, svc)
		return errNotRunning
	}
	if err != nil {
		return err
	}
	st, err := c.State(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	writeStatus(stdout, st, time.Now())
	return nil
}

// errNotRunning makes `tetherd status` exit non-zero when nothing runs, so
// scripts can test for it; main prints nothing more for it.
var errNotRunning = &quietError{code: 3}

type quietError struct{ code int }

func (e *quietError) Error() string { return "not running" }

// writeStatus renders State for a person at a terminal: the connection
// first, then the token, the config, each server, and the last calls.
func writeStatus(w io.Writer, st app.State, now time.Time) {
	fmt.Fprintf(w, "Tether %s — %s\n", st.Version, summaryLine(st))
	if st.Relay.Reason != "" && st.Relay.Phase != app.RelayConnected {
		fmt.Fprintf(w, "  why:     %s\n", st.Relay.Reason)
	}
	if st.Relay.LastError != "" && st.Relay.Phase != app.RelayConnected {
		fmt.Fprintf(w, "  error:   %s\n", st.Relay.LastError)
	}
	mode := "foreground (tetherd run or the tray)"
	if st.Engine.Service {
		mode = "OS service"
	}
	fmt.Fprintf(w, "  engine:  pid %d, %s, up %s\n", st.Engine.PID, mode, now.Sub(st.Engine.Started).Round(time.Second))
	fmt.Fprintf(w, "  token:   %s\n", tokenLine(st.Token, now))
	cfg := st.Config.Path
	if cfg == "" {
		cfg = "(quick mode: one server from the command line)"
	}
	fmt.Fprintf(w, "  config:  %s\n", cfg)
	if st.Config.Error != "" {
		fmt.Fprintf(w, "  CONFIG ERROR (the last good config keeps running): %s\n", st.Config.Error)
	}
	for _, m := range st.Config.Missing {
		fmt.Fprintf(w, "  unset variable: %s\n", m)
	}
	fmt.Fprintln(w)
	if len(st.Servers) == 0 {
		fmt.Fprintf(w, "No servers. Add them to %s (Claude Desktop format) or run `tetherd config import`.\n", st.Config.Path)
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVER\tSTATE\tTOOLS\tRESTARTS\tDETAIL")
		for _, s := range st.Servers {
			tools := fmt.Sprint(s.ToolCount)
			if s.Hidden > 0 {
				tools += fmt.Sprintf(" (+%d hidden)", s.Hidden)
			}
			if !s.Enabled {
				tools = "-"
			}
			detail := s.LastError
			if detail == "" {
				detail = s.Warning
			}
			if s.Phase == app.ServerDisabled {
				detail = "enable it in mcp.json or the tray"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, s.Phase, tools, s.Restarts, oneLine(detail, 90))
		}
		tw.Flush()
	}
	if len(st.Calls) > 0 {
		fmt.Fprintln(w, "\nRecent calls:")
		for i, c := range st.Calls {
			if i == 5 {
				break
			}
			line := fmt.Sprintf("  %s  %s/%s  %s  %s", c.At.Local().Format(time.TimeOnly), c.Server, c.Tool, c.Duration.Round(time.Millisecond), c.Outcome)
			if c.Error != "" {
				line += "  " + oneLine(c.Error, 60)
			}
			fmt.Fprintln(w, line)
		}
	}
}

// summaryLine is the one line that says where things stand.
func summaryLine(st app.State) string {
	servers, tools := 0, 0
	for _, s := range st.Servers {
		if s.Enabled {
			servers++
			tools += s.ToolCount
		}
	}
	counts := fmt.Sprintf("%d servers · %d tools", servers, tools)
	host := st.Relay.URL
	if u, err := url.Parse(st.Relay.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	switch st.Relay.Phase {
	case app.RelayConnected:
		who := ""
		if st.Token.DevID != "" {
			who = " as " + st.Token.DevID
		}
		if st.Relay.TookOver != "" {
			who += " (" + st.Relay.TookOver + ")"
		}
		return fmt.Sprintf("connected to %s%s · %s", host, who, counts)
	case app.RelayConnecting:
		return fmt.Sprintf("connecting to %s… · %s", host, counts)
	case app.RelayBackoff:
		wait := time.Until(st.Relay.NextRetry).Round(time.Second)
		return fmt.Sprintf("cannot reach %s, retrying in %s · %s", host, max(wait, 0), counts)
	case app.RelayRejected:
		if st.Relay.Replaced {
			return st.Relay.Reason + " · " + counts
		}
		return "the relay rejected the token · " + counts
	}
	if !st.Relay.Wanted {
		return "disconnected · " + counts
	}
	return "offline · " + counts
}

func tokenLine(t app.TokenState, now time.Time) string {
	if !t.Present {
		if t.Status != app.TokenMissing && t.Error != "" {
			return "none — " + firstLine(t.Error) + " (run `tetherd token set`)"
		}
		return "none (run `tetherd token set`)"
	}
	parts := []string{"from " + string(t.Source)}
	if t.DevID != "" {
		parts = append(parts, "dev "+t.DevID)
	}
	if t.Last4 != "" {
		parts = append(parts, "…"+t.Last4)
	}
	switch {
	case t.Expired:
		parts = append(parts, "EXPIRED "+t.Expires.Local().Format(time.DateOnly)+" — get a new one")
	case t.ExpiringSoon:
		parts = append(parts, "expires in "+t.Expires.Sub(now).Round(time.Hour).String()+" — renew it soon")
	case !t.Expires.IsZero():
		parts = append(parts, "expires "+t.Expires.Local().Format(time.DateOnly))
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// serviceStatusLine is the installed service's state in words.
func serviceStatusLine() string {
	s, err := serviceStatus()
	if err != nil {
		return s + " (" + err.Error() + ")"
	}
	return s
}
