// Command tetherd is Tether's headless bridge: it runs the MCP servers from
// mcp.json, serves them through a relay, and manages itself as a user-level
// OS service. See `tetherd help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	buildversion "github.com/tether-dev/tether/internal/version"
)

// version is this build's release version (see internal/version for how it
// is stamped); the engine reports it in its State.
var version = buildversion.Get().Version

const usage = `tetherd — the Tether bridge: your local MCP servers, reachable by hosted agents

Usage:
  tetherd demo                         try it: a loopback relay, a sample server, a URL to use
  tetherd run [--config FILE] [--relay URL] [--token-file FILE] [--tag --dev-id ID] [--insecure]
  tetherd run --relay URL --mcp-cmd "python -m x" [--mcp-env K=V]... [--name NAME] [-- ARGS]
  tetherd status [--json]              what the running engine is doing
  tetherd login [--relay URL] [--no-browser]
  tetherd token set|show|clear [--relay URL]
  tetherd config import [--dry-run] [--from claude|cursor|vscode]
  tetherd install | uninstall | start | stop | restart
  tetherd doctor [--json] [--relay URL] [--token-file FILE]
  tetherd version

run
  Runs the MCP servers from mcp.json and serves them through the relay, until
  Ctrl-C. Files live in $TETHER_HOME, or <user config dir>/tether: mcp.json
  (Claude Desktop format; created with examples on first run), settings.json
  ({"relay": "https://relay.example.com"}), .env, logs/. Edits to mcp.json
  apply at once; SIGHUP reloads too. If an engine already runs for this
  user, run follows it instead of starting a second one.
  The bridge token comes from --token-file, $TETHER_TOKEN_FILE, $TETHER_TOKEN,
  $CREDENTIALS_DIRECTORY/tether-token, or the OS keychain (tetherd token set) —
  never from the command line.
    --relay URL        relay base URL (or $TETHER_RELAY; default: settings.json)
    --tag              speak the TAG relay protocol (needs --dev-id)
    --dev-id ID        dev slot (required with --tag)
    --insecure         allow an http:// (ws://) relay that is not on this
                       machine (the token and calls then cross the network
                       in clear); settings.json "insecure": true does the same
    --mcp-cmd CMD      quick mode: serve this one command instead of mcp.json
    --mcp-env K=V      quick mode: environment for the command (repeatable)
    --name NAME        quick mode: the server's name (default "default")

login              signs in with the browser (the relay's device flow): prints
                   a code and a link, opens the link, and once you approve
                   there stores the bridge token as token set does. Nothing
                   listens on this computer; over SSH open the link anywhere.
token set          reads the token from stdin and stores it in the OS keychain
                   for the relay; a running engine connects with it at once
token show         where the token comes from, its dev id and expiry (never the token)
token clear        removes it from the keychain

doctor             checks the folder, mcp.json and its commands, the token,
                   the keychain, the relay (DNS, TCP, TLS, /healthz, the
                   WebSocket path, the token), the clock, the service and the tray; one line
                   each with what to do. Exit 1 when something is broken

install            runs tetherd in the background as a user-level service
                   (systemd user unit, macOS LaunchAgent, Windows Scheduled Task)
`

func main() {
	oneProcessor()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		var q *quietError
		switch {
		case errors.As(err, &q):
			os.Exit(q.code)
		case !errors.Is(err, flag.ErrHelp):
			fmt.Fprintln(os.Stderr, "tetherd:", err)
		}
		os.Exit(1)
	}
}

// oneProcessor runs Go code on one OS thread at a time (GOMAXPROCS=1)
// unless the user set GOMAXPROCS. tetherd moves bytes between a socket and
// pipes; its work per message is microseconds, and what costs is handing
// each message from thread to thread: with a second processor the runtime
// wakes another thread for nearly every goroutine it readies. Measured in
// one bench run against the default on 2 cores: the latency the bridge adds
// 108–115 µs → 71–83 µs, idle wakeups 2.8 → 1.5 per second, peak extra
// memory for a 10 MiB result 25 → 21 MiB, throughput at 32 in flight the
// same (one core is far more than one bridge needs: 68k calls/s).
func oneProcessor() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, stdout, stderr)
	case "status":
		return statusCmd(ctx, args[1:], stdout, stderr)
	case "token":
		return tokenCmd(ctx, args[1:], stdin, stdout, stderr)
	case "login":
		return loginCmd(ctx, args[1:], stdout, stderr)
	case "config":
		return configCmd(ctx, args[1:], stdout, stderr)
	case "install", "uninstall", "start", "stop", "restart":
		return serviceCmd(ctx, args[0], args[1:], stdout, stderr)
	case "doctor":
		return doctorCmd(ctx, args[1:], stdout, stderr)
	case "print-unit": // hidden: the systemd user unit, for packaging
		return printUnitCmd(args[1:], stdout, stderr)
	case "sample-server": // hidden: the demo's built-in MCP server
		return sampleServer(ctx)
	case "version", "--version":
		fmt.Fprintln(stdout, "tetherd", buildversion.Get())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
