package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/mcpchild"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runCmd(ctx context.Context, args []string, stderr io.Writer) error {
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
	var mcpEnv listFlag
	fs.Var(&mcpEnv, "mcp-env", "quick mode: K=V for the command (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	if *relayURL == "" {
		return errors.New("no relay URL: pass --relay https://relay.example.com (or set TETHER_RELAY)")
	}
	if *tag && *devID == "" {
		return errors.New("--tag needs --dev-id (the dev slot in the relay's /dev/{id}/connect path)")
	}
	tokenFn, err := tokenSource(*tokenFile)
	if err != nil {
		return err
	}

	var servers map[string]mcpchild.Spec
	eras := map[string]mcpchild.Era{}
	if *mcpCmd != "" {
		spec, err := quickSpec(*name, *mcpCmd, mcpEnv, fs.Args())
		if err != nil {
			return err
		}
		servers = map[string]mcpchild.Spec{*name: spec}
	} else {
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected arguments %q (extra args are for --mcp-cmd)", fs.Args())
		}
		path, err := configFile(*configPath)
		if err != nil {
			return err
		}
		cfg, err := app.LoadConfig(path)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no mcp.json at %s: create it (Claude Desktop format: {\"mcpServers\": {...}}), pass --config FILE, or use --mcp-cmd", path)
		}
		if err != nil {
			return err
		}
		for _, m := range cfg.Missing {
			logger.Warn("variable in mcp.json is not set", "var", m)
		}
		for _, d := range cfg.Disabled {
			logger.Info("server disabled in mcp.json", "server", d)
		}
		if len(cfg.Servers) == 0 {
			return fmt.Errorf("%s defines no enabled servers", path)
		}
		servers, eras = cfg.Servers, cfg.Eras
		logger.Info("loaded config", "path", path, "servers", len(servers))
	}

	pingInterval, err := envDuration("TETHER_PING_INTERVAL")
	if err != nil {
		return err
	}
	pongWait, err := envDuration("TETHER_PONG_WAIT")
	if err != nil {
		return err
	}

	b := app.NewBridge(app.BridgeOptions{
		RelayURL: *relayURL,
		Token:    tokenFn,
		TAG:      *tag,
		DevID:    *devID,
		Servers:  servers,
		ServerOptions: func(name string) mcpchild.Options {
			return mcpchild.Options{
				Logger:        logger,
				Era:           eras[name],
				ClientName:    "tetherd",
				ClientVersion: version,
			}
		},
		Logger:       logger,
		Version:      version,
		PingInterval: pingInterval,
		PongWait:     pongWait,
	})
	logger.Info("tetherd starting", "version", version, "relay", *relayURL, "tag", *tag)
	err = b.Run(ctx)
	logger.Info("tetherd stopped")
	return err
}

// tokenSource finds the bridge token: --token-file, $TETHER_TOKEN_FILE, then
// $TETHER_TOKEN. A file is read again on every dial, so a rotated token is
// picked up without a restart. The token itself is never logged or printed.
func tokenSource(flagFile string) (func(context.Context) (string, error), error) {
	file := flagFile
	if file == "" {
		file = os.Getenv("TETHER_TOKEN_FILE")
	}
	if file != "" {
		read := func(context.Context) (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("read token file: %w", err)
			}
			tok := strings.TrimSpace(string(b))
			if tok == "" {
				return "", fmt.Errorf("token file %s is empty", file)
			}
			return tok, nil
		}
		if _, err := read(context.Background()); err != nil {
			return nil, err
		}
		return read, nil
	}
	if tok := strings.TrimSpace(os.Getenv("TETHER_TOKEN")); tok != "" {
		return func(context.Context) (string, error) { return tok, nil }, nil
	}
	return nil, errors.New("no bridge token found: set TETHER_TOKEN or use --token-file FILE (or TETHER_TOKEN_FILE)")
}

// configFile picks the mcp.json path: the flag, $TETHER_HOME/mcp.json, or
// <user config dir>/tether/mcp.json.
func configFile(flagPath string) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	if home := os.Getenv("TETHER_HOME"); home != "" {
		return filepath.Join(home, "mcp.json"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (set TETHER_HOME or pass --config): %w", err)
	}
	return filepath.Join(dir, "tether", "mcp.json"), nil
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
