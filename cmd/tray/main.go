// Command tether is the menu-bar (tray) app: a thin layer over the engine's
// State and commands (package app). It runs the engine in process, or, when
// tetherd already runs (as the OS service or in a terminal), attaches to it
// over the control API and shows that engine's state.
//
// Usage:
//
//	tether [tether://connect?relay=URL&token=TOKEN]
//	tether --version
//
// One tray per user: a second launch tells the first one (which shows a
// notification, or asks to confirm a tether:// link) and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unsafe"

	"fyne.io/systray"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/internal/logfile"
	buildversion "github.com/tether-dev/tether/internal/version"
)

// version is this build's release version (see internal/version for how it
// is stamped).
var version = buildversion.Get().Version

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// argvIs reports whether args is os.Args[1:] itself (tests call run with
// their own slices, which must not scrub the test binary's arguments).
func argvIs(args []string, i int) bool {
	return len(os.Args) == len(args)+1 && i < len(args) && unsafe.StringData(os.Args[i+1]) == unsafe.StringData(args[i])
}

func run(args []string, stdout, stderr io.Writer) int {
	var link *connectLink
	for i, a := range args {
		switch {
		case a == "--version" || a == "-version":
			fmt.Fprintln(stdout, "tether", buildversion.Get())
			return 0
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stdout, usage)
			return 0
		case link == nil && isLink(a):
			// The link may carry a token: keep a copy and blank it in
			// argv at once (see scrubArgv), whatever comes next.
			raw := strings.Clone(a)
			if argvIs(args, i) {
				scrubArgv(i + 1)
			}
			l, err := parseLink(raw)
			if err != nil {
				fmt.Fprintln(stderr, "tether:", err)
				return 2
			}
			link = &l
		default:
			fmt.Fprintf(stderr, "tether: unexpected argument %q\n%s", a, usage)
			return 2
		}
	}

	paths, err := app.DefaultPaths()
	if err == nil {
		err = paths.Ensure()
	}
	if err != nil {
		fmt.Fprintln(stderr, "tether:", err)
		return 1
	}

	// One tray per user: the first one listens on tray.sock; a later one
	// hands its request (a link, in the request body) over and exits at
	// once, so a token in its argv is visible there only for milliseconds.
	inst, err := claimInstance(paths, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	var running *runningTray
	if errors.As(err, &running) {
		msg, herr := running.handOver(link)
		if herr != nil {
			fmt.Fprintln(stderr, "tether:", herr)
			return 1
		}
		fmt.Fprintln(stdout, msg)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "tether:", err)
		return 1
	}
	defer inst.Close()

	logs, err := logfile.Open(paths.Logs, "tray.log", logfile.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "tether:", err)
		return 1
	}
	defer logs.Close()
	logger := logfile.NewLogger(logs, stderr, logfile.IsTerminal(os.Stderr), slog.LevelInfo)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := newTray(paths, logger, inst)
	if link != nil {
		t.offerLink(*link) // the queue is empty: cannot fail
	}
	logger.Info("tether tray starting", "version", version, "home", paths.Dir, "pid", os.Getpid())
	go func() {
		<-ctx.Done() // a signal, or Quit
		t.quit()
	}()
	systray.Run(func() { t.start(ctx) }, nil)
	t.wait()
	logger.Info("tether tray stopped")
	return 0
}

const usage = `usage: tether [tether://connect?relay=URL&token=TOKEN]
       tether --version

The Tether menu-bar app. It shares the MCP servers of mcp.json with hosted
agents through a relay. Files: $TETHER_HOME, or the user config folder.
`
