package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/app/config"
	"github.com/tether-dev/tether/keystore"
	"golang.org/x/term"
)

// tokenCmd is `tetherd token set|show|clear`. The token is read from stdin
// only (never argv, where every local user can see it with ps) and is never
// printed: show prints its claims and last four characters.
func tokenCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: tetherd token set|show|clear [--relay URL]")
	}
	verb := args[0]
	fs := flag.NewFlagSet("tetherd token "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	relayFlag := fs.String("relay", os.Getenv("TETHER_RELAY"), "the relay the token is for")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	paths, settings, relayURL, err := relayTarget(*relayFlag)
	if err != nil {
		return err
	}
	if relayURL == "" {
		return fmt.Errorf("which relay is this token for? pass --relay URL (it is then saved in %s)", paths.Settings)
	}
	kc := keystore.Keychain{}
	account := keystore.AccountFor(relayURL)

	// An engine that runs for this relay gets the command itself, so it
	// connects (or disconnects) at once.
	engine := liveEngineFor(ctx, paths, relayURL)

	switch verb {
	case "set":
		tok, err := readToken(stdin, stderr)
		if err != nil {
			return err
		}
		return storeBridgeToken(ctx, paths, settings, relayURL, engine, kc, tok, stdout)
	case "show":
		t, src, err := keystore.Resolver{Keychain: kc, Account: account}.Resolve()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "source:  %s\n", src)
		fmt.Fprintf(stdout, "relay:   %s\n", relayURL)
		if c, err := keystore.ParseClaims(t); err == nil {
			fmt.Fprintf(stdout, "dev:     %s\nscope:   %s\nexpires: %s\n", c.Dev, strings.Join(c.Scopes, ","), expiryText(c))
		} else {
			fmt.Fprintf(stdout, "claims:  unreadable (%v)\n", err)
		}
		fmt.Fprintf(stdout, "token:   %s\n", t) // Token's String shows only the last 4 characters
		return nil
	case "clear":
		if engine != nil {
			if err := engine.ClearToken(ctx); err != nil {
				return err
			}
		} else if err := kc.Delete(account); err != nil && !errors.Is(err, keystore.ErrNotFound) {
			return fmt.Errorf("removing the token: %w", err)
		}
		fmt.Fprintf(stdout, "Removed the bridge token for %s from the OS keychain.\n", relayURL)
		return nil
	}
	return fmt.Errorf("unknown token command %q: use set, show or clear", verb)
}

// storeBridgeToken checks tok and stores it for relayURL: through the
// running engine when one serves that relay (it then connects at once),
// else in the OS keychain. It saves the relay in settings.json when none
// is set. `tetherd token set` and `tetherd login` end here.
// relayTarget is where a token command acts: the user's folders, their
// settings, and the relay named by --relay (or $TETHER_RELAY), else the one
// in settings.json; "" when neither names one.
func relayTarget(flagValue string) (app.Paths, config.Settings, string, error) {
	paths, err := app.DefaultPaths()
	if err != nil {
		return app.Paths{}, config.Settings{}, "", err
	}
	settings, err := config.LoadSettings(paths.Settings)
	if err != nil {
		return app.Paths{}, config.Settings{}, "", err
	}
	if flagValue == "" {
		flagValue = settings.Relay
	}
	return paths, settings, flagValue, nil
}

func storeBridgeToken(ctx context.Context, paths app.Paths, settings config.Settings, relayURL string, engine *app.ControlClient,
	kc keystore.Store, tok keystore.Token, stdout io.Writer) error {
	claims, err := app.CheckBridgeToken(tok, time.Now())
	if err != nil {
		return err
	}
	if settings.Relay == "" {
		// The running engine writes its own settings.json; without
		// one, the same writer runs here.
		if engine != nil {
			err = engine.SetRelay(ctx, relayURL)
		} else if err = paths.Ensure(); err == nil {
			err = app.SaveRelay(paths.Settings, relayURL)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Saved relay %s in %s.\n", relayURL, paths.Settings)
	}
	if engine != nil {
		if err := engine.SetToken(ctx, tok.Reveal()); err != nil {
			return err
		}
	} else if err := kc.Set(keystore.AccountFor(relayURL), tok); err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	fmt.Fprintf(stdout, "Stored the bridge token for dev %s (%s) in the OS keychain for %s.\n", claims.Dev, expiryText(claims), relayURL)
	if engine != nil {
		fmt.Fprintln(stdout, "The running engine is connecting with it; `tetherd status` shows the result.")
	} else {
		fmt.Fprintln(stdout, "Start the bridge with `tetherd run` (or `tetherd install` to run it in the background).")
	}
	return nil
}

// liveEngineFor returns the running engine when it serves relayURL.
func liveEngineFor(ctx context.Context, paths app.Paths, relayURL string) *app.ControlClient {
	c, err := app.DialControl(ctx, paths.Socket)
	if err != nil {
		return nil
	}
	st, err := c.State(ctx)
	if err != nil || st.Relay.URL != relayURL {
		return nil
	}
	return c
}

// readToken reads one token from stdin. At a terminal it asks for it and
// reads without echo, so the token is not left on the screen or in a
// terminal recording.
func readToken(stdin io.Reader, stderr io.Writer) (keystore.Token, error) {
	var line string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Paste the bridge token and press Enter (it is not shown): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading the token from the terminal: %w", err)
		}
		line = string(b)
	} else {
		l, err := bufio.NewReader(io.LimitReader(stdin, keystore.MaxTokenBytes)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the token from stdin: %w", err)
		}
		line = l
	}
	tok := keystore.Token(strings.TrimSpace(line))
	if tok == "" {
		return "", errors.New("no token on stdin: pipe it in (tetherd token set < FILE) or paste it when asked")
	}
	return tok, nil
}

func expiryText(c keystore.Claims) string {
	if c.Expiry.IsZero() {
		return "no expiry"
	}
	return "expires " + c.Expiry.Local().Format("2006-01-02 15:04")
}
