package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/app/config"
	"github.com/tether-dev/tether/mcpchild"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tetherd run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "mcp.json path")
	relayURL := fs.String("relay", os.Getenv("TETHER_RELAY"), "relay base URL")
	tokenFile := fs.String("token-file", "", "file holding the bridge token")
	tag := fs.Bool("tag", false, "speak the TAG relay protocol")
	devID := fs.String("dev-id", "", "dev slot")
	mcpCmd := fs.String("mcp-cmd", "", "quick mode: one MCP server command")
	name := fs.String("name", "default", "quick mode: server name")
	asService := fs.Bool("service", false, "running under the OS service manager")
	insecure := fs.Bool("insecure", false, "allow an http:// (ws://) relay that is not on loopback")
	var mcpEnv listFlag
	fs.Var(&mcpEnv, "mcp-env", "quick mode: K=V for the command (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tag && *devID == "" {
		return errors.New("--tag needs --dev-id (the dev slot in the relay's /dev/{id}/connect path)")
	}

	paths, err := app.DefaultPaths()
	if err != nil {
		return err
	}
	if err := paths.Ensure(); err != nil {
		return err
	}
	if *relayURL == "" && !*asService {
		// A foreground run with no relay anywhere is a mistake to report
		// now; the service instead waits for settings.json to name one.
		if s, err := config.LoadSettings(paths.Settings); err != nil {
			return err
		} else if s.Relay == "" {
			return fmt.Errorf("no relay URL: pass --relay https://relay.example.com, set TETHER_RELAY, or put {\"relay\": \"https://relay.example.com\"} in %s", paths.Settings)
		}
	}
	if err := checkRelayTransport(paths, *relayURL, *insecure, *asService); err != nil {
		return err
	}
	logger, closeLog, err := newLogger(paths, stderr, *asService)
	if err != nil {
		return err
	}
	defer closeLog()

	opts := app.EngineOptions{
		Paths:      paths,
		ConfigFile: *configPath,
		Relay:      *relayURL,
		TAG:        *tag,
		DevID:      *devID,
		Insecure:   *insecure,
		TokenFile:  *tokenFile,
		Logger:     logger,
		Version:    version,
		Service:    *asService,
		ServerLog:  func(name string) (io.WriteCloser, error) { return serverLog(paths, name) },
		// The control socket makes this the user's one engine. Quick mode is
		// a self-contained one-off (like the TAG CLI it replaces), so it
		// neither takes nor needs that slot.
		Control: *mcpCmd == "",
	}
	if *mcpCmd != "" {
		if *relayURL == "" {
			return errors.New("quick mode needs a relay: pass --relay https://relay.example.com (or set TETHER_RELAY)")
		}
		spec, err := quickSpec(*name, *mcpCmd, mcpEnv, fs.Args())
		if err != nil {
			return err
		}
		opts.Servers = map[string]mcpchild.Spec{*name: spec}
		opts.Paths.Settings = "" // quick mode: the flags are the settings
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (extra args are for --mcp-cmd)", fs.Args())
	}
	if *tokenFile != "" {
		if _, err := os.Stat(*tokenFile); err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
	}
	if opts.Tuning.PingInterval, err = envDuration("TETHER_PING_INTERVAL"); err != nil {
		return err
	}
	if opts.Tuning.PongWait, err = envDuration("TETHER_PONG_WAIT"); err != nil {
		return err
	}

	eng := app.NewEngine(opts)
	go forwardSignals(ctx, eng)
	logger.Info("tetherd starting", "version", version, "home", paths.Dir, "pid", os.Getpid())
	if *asService {
		// Under the service manager (on Windows, detach from the console
		// the Task Scheduler gave us; elsewhere this just runs the engine).
		err = serviceRun(ctx, eng.Run)
	} else {
		err = eng.Run(ctx)
	}
	var running *app.EngineRunningError
	if errors.As(err, &running) {
		return attach(ctx, paths, stdout, running)
	}
	logger.Info("tetherd stopped")
	return err
}

// forwardSignals turns SIGHUP into a reload and SIGUSR1 into a wake (what a
// sleep/wake hook or the benchmark harness sends).
func forwardSignals(ctx context.Context, eng *app.Engine) {
	ch := make(chan os.Signal, 4)
	notifyReloadWake(ch)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			if isWakeSignal(s) {
				eng.Wake()
			} else {
				eng.Reload(ctx)
			}
		}
	}
}

// attach follows the engine that already runs for this user instead of
// starting a second one that would fight it for the relay slot.
func attach(ctx context.Context, paths app.Paths, stdout io.Writer, running *app.EngineRunningError) error {
	fmt.Fprintf(stdout, "tetherd is already running for this user (pid %d); following its state instead of starting a second engine. Ctrl-C stops following; `tetherd status` shows it once.\n", running.PID)
	c, err := app.DialControl(ctx, paths.Socket)
	if err != nil {
		return err
	}
	states, err := c.Subscribe(ctx)
	if err != nil {
		return err
	}
	last := ""
	for st := range states {
		if line := summaryLine(st); line != last {
			fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
			last = line
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("the running engine went away")
}

// quickSpec builds the one server of quick mode, as the TAG CLI does.
func quickSpec(name, cmdline string, env []string, extra []string) (mcpchild.Spec, error) {
	words, err := splitCommand(cmdline)
	if err != nil {
		return mcpchild.Spec{}, fmt.Errorf("--mcp-cmd: %w", err)
	}
	if len(words) == 0 {
		return mcpchild.Spec{}, errors.New("--mcp-cmd is empty")
	}
	spec := mcpchild.Spec{Name: name, Command: words[0], Args: append(words[1:], extra...)}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return mcpchild.Spec{}, fmt.Errorf("--mcp-env %q: want KEY=VALUE", kv)
		}
		if spec.Env == nil {
			spec.Env = map[string]string{}
		}
		spec.Env[k] = v
	}
	return spec, nil
}

// envDuration reads a hidden tuning knob (tests shorten keepalive with it).
func envDuration(key string) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return d, nil
}

// checkRelayTransport refuses, before anything starts, an http:// (ws://)
// relay off loopback in a foreground run: the engine would refuse it too
// (relay.ErrInsecureRelay, shown in its state), but a terminal user should
// read why at once. The service does not stop over it: it shows the reason
// in its state until settings.json changes.
func checkRelayTransport(paths app.Paths, flagURL string, insecure, asService bool) error {
	if insecure || asService {
		return nil
	}
	s, err := config.LoadSettings(paths.Settings)
	if err != nil {
		return err
	}
	if s.Insecure { // the engine allows it on the same key
		return nil
	}
	url := flagURL
	if url == "" {
		url = s.Relay
	}
	return app.CheckRelayTransport(url)
}
