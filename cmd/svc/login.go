package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/keystore"
)

// loginCmd is `tetherd login`: sign in with the browser (the relay's
// OAuth device flow). It prints a code and a link, opens the link, waits
// for the person to approve in the browser, and stores the bridge token
// the way `tetherd token set` does. Nothing listens on this computer, so
// it works behind any firewall and over SSH (open the link anywhere).
func loginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runLogin(ctx, args, stdout, stderr, keystore.Keychain{}, app.OpenBrowser)
}

func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer, kc keystore.Store,
	openBrowser func(context.Context, string) error) error {
	fs := flag.NewFlagSet("tetherd login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	relayFlag := fs.String("relay", os.Getenv("TETHER_RELAY"), "the relay to sign in to (default: settings.json)")
	noBrowser := fs.Bool("no-browser", false, "print the link only; do not open a browser")
	if err := fs.Parse(args); err != nil {
		return err
	}
	paths, settings, relayURL, err := relayTarget(*relayFlag)
	if err != nil {
		return err
	}
	if relayURL == "" {
		return errors.New("which relay? pass --relay https://relay.example.com (it is then saved in settings.json)")
	}

	host, _ := os.Hostname()
	dl, err := app.StartLogin(ctx, relayURL, app.LoginOptions{DeviceName: host, Version: version})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "To connect this computer to %s, approve it in your browser:\n\n    %s\n\n", relayURL, dl.VerificationURIComplete)
	fmt.Fprintf(stdout, "Check that the page shows the code  %s\n", dl.UserCode)
	fmt.Fprintf(stdout, "(On another device: open %s and enter the code.)\n", dl.VerificationURI)
	if !*noBrowser {
		if err := openBrowser(ctx, dl.VerificationURIComplete); err != nil {
			fmt.Fprintf(stderr, "Could not open the browser (%v); open the link above by hand.\n", err)
		}
	}
	fmt.Fprintf(stdout, "Waiting for approval (the code works until %s; Ctrl-C stops)…\n", dl.Expires.Local().Format(time.TimeOnly))
	tok, err := dl.Wait(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("sign-in stopped; run `tetherd login` again to start over")
		}
		return err
	}
	fmt.Fprintln(stdout, "Approved.")
	return storeBridgeToken(ctx, paths, settings, relayURL, liveEngineFor(ctx, paths, relayURL), kc, tok, stdout)
}
