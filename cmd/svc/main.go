// Command tetherd is Tether's headless bridge: it runs the MCP servers from
// mcp.json and serves them through a relay. This is the minimal command set
// (run, demo, version); service install, token and status commands come later.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `tetherd — the Tether bridge

Usage:
  tetherd run [--config FILE] [--relay URL] [--token-file FILE] [--tag] [--dev-id ID]
  tetherd run --relay URL --mcp-cmd "python -m x" [--mcp-env K=V]... [--name NAME] [-- ARGS]
  tetherd demo
  tetherd version

run
  Runs the MCP servers from mcp.json (default $TETHER_HOME/mcp.json, or
  <user config dir>/tether/mcp.json) and serves them through the relay.
  The bridge token comes from --token-file, $TETHER_TOKEN_FILE or
  $TETHER_TOKEN, never from the command line.
    --relay URL        relay base URL (or $TETHER_RELAY)
    --tag              speak the TAG relay protocol (needs --dev-id)
    --dev-id ID        dev slot (required with --tag)
    --mcp-cmd CMD      quick mode: serve this one command instead of mcp.json
    --mcp-env K=V      quick mode: environment for the command (repeatable)
    --name NAME        quick mode: the server's name (default "default")

demo
  Starts a relay on loopback, a sample MCP server and a bridge, and prints
  an MCP URL and a token to try with any MCP client. Runs until Ctrl-C.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tetherd:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stderr)
	case "demo":
		return demoCmd(ctx, stdout, stderr)
	case "sample-server": // hidden: the demo's built-in MCP server
		return sampleServer(ctx)
	case "version", "--version":
		fmt.Fprintln(stdout, "tetherd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
