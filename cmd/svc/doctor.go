package main

// `tetherd doctor`: every check a support person would ask for, one line
// each with what to do about it. It only reads: it starts nothing, writes
// nothing, and sends the token only to a relay the token was issued for.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/app/config"
	buildversion "github.com/tether-dev/tether/internal/version"
	"github.com/tether-dev/tether/keystore"
)

// checkStatus is one check's verdict. Only checkFail makes doctor exit 1.
type checkStatus string

const (
	checkOK   checkStatus = "ok"
	checkInfo checkStatus = "info" // a fact, nothing wrong
	checkWarn checkStatus = "warn" // works now, but deserves attention
	checkFail checkStatus = "fail" // broken: the bridge cannot work like this
)

// check is one line of the report.
type check struct {
	Name   string      `json:"name"`
	Status checkStatus `json:"status"`
	Detail string      `json:"detail"`
	Fix    string      `json:"fix,omitempty"`
}

// doctor holds what the checks read, so tests can point it elsewhere.
type doctor struct {
	paths     app.Paths
	relay     string // base URL; "" = not configured
	insecure  bool   // settings.json or --insecure: http:// off loopback allowed
	tokenFile string
	keychain  keystore.Store
	now       func() time.Time
	timeout   time.Duration // per network step
	checks    []check
}

func (d *doctor) add(name string, st checkStatus, detail, fix string) {
	d.checks = append(d.checks, check{Name: name, Status: st, Detail: detail, Fix: fix})
}

func doctorCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tetherd doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	relayFlag := fs.String("relay", os.Getenv("TETHER_RELAY"), "relay base URL (default: settings.json)")
	tokenFile := fs.String("token-file", "", "check this token file instead of the usual sources")
	if err := fs.Parse(args); err != nil {
		return err
	}
	paths, err := app.DefaultPaths()
	if err != nil {
		return err
	}
	d := &doctor{paths: paths, relay: *relayFlag, tokenFile: *tokenFile,
		keychain: keystore.Keychain{}, now: time.Now, timeout: 5 * time.Second}
	d.run(ctx)
	failed := slices.ContainsFunc(d.checks, func(c check) bool { return c.Status == checkFail })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			OK      bool    `json:"ok"`
			Version string  `json:"version"`
			Checks  []check `json:"checks"`
		}{!failed, buildversion.Get().String(), d.checks}); err != nil {
			return err
		}
	} else {
		writeChecks(stdout, d.checks)
	}
	if failed {
		return &quietError{code: 1}
	}
	return nil
}

func writeChecks(w io.Writer, checks []check) {
	mark := map[checkStatus]string{checkOK: "ok  ", checkInfo: "info", checkWarn: "WARN", checkFail: "FAIL"}
	for _, c := range checks {
		fmt.Fprintf(w, "%s  %-16s %s\n", mark[c.Status], c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "      %-16s → %s\n", "", c.Fix)
		}
	}
}

// run does every check in order; later ones use what earlier ones found.
func (d *doctor) run(ctx context.Context) {
	d.add("version", checkInfo, "tetherd "+buildversion.Get().String(), "")
	d.checkFolder()
	settings, err := config.LoadSettings(d.paths.Settings)
	if err != nil {
		d.add("settings.json", checkFail, err.Error(), "fix or remove "+d.paths.Settings)
	} else {
		if d.relay == "" {
			d.relay = settings.Relay
		}
		d.insecure = d.insecure || settings.Insecure
	}
	d.checkConfig(ctx)
	tok, claims, tokOK := d.checkToken()
	d.checkRelay(ctx, tok, claims, tokOK)
	d.checkService(ctx)
	d.checkAutostart()
	d.add("logs", checkInfo, d.paths.Logs+logsExtra(), "")
}

func (d *doctor) checkFolder() {
	fi, err := os.Stat(d.paths.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.add("config folder", checkWarn, d.paths.Dir+" does not exist yet", "run `tetherd run` (or start the tray) once: it creates it with an example mcp.json")
	case err != nil:
		d.add("config folder", checkFail, err.Error(), "check the permissions of "+filepath.Dir(d.paths.Dir))
	case !fi.IsDir():
		d.add("config folder", checkFail, d.paths.Dir+" is not a folder", "move that file away; Tether keeps its files in this folder")
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0:
		d.add("config folder", checkFail, fmt.Sprintf("%s is mode %04o: other users can reach the control socket", d.paths.Dir, fi.Mode().Perm()),
			"chmod 700 "+shellQuote(d.paths.Dir))
	default:
		d.add("config folder", checkOK, d.paths.Dir, "")
	}
}

func (d *doctor) checkConfig(ctx context.Context) {
	if _, err := os.Stat(d.paths.MCPJSON); errors.Is(err, os.ErrNotExist) {
		d.add("mcp.json", checkWarn, d.paths.MCPJSON+" does not exist", "run `tetherd run` once for an example, or `tetherd config import`")
		return
	}
	cfg, err := config.Load(d.paths.MCPJSON)
	if err != nil {
		// The error carries "line L:C:" when the problem has a place.
		d.add("mcp.json", checkFail, err.Error(), "fix that place in "+d.paths.MCPJSON+"; a running engine keeps the last good version meanwhile")
		return
	}
	d.add("mcp.json", checkOK, fmt.Sprintf("%d servers enabled, %d disabled", len(cfg.Servers), len(cfg.Disabled)), "")
	if len(cfg.Missing) > 0 {
		d.add("mcp.json vars", checkWarn, "not set: "+strings.Join(cfg.Missing, ", "), "set them in "+d.paths.EnvFile+" or the environment")
	}
	pathList, where := commandPath(ctx)
	for _, e := range cfg.Entries {
		if _, enabled := cfg.Servers[e.Name]; !enabled || e.Spec.Command == "" {
			continue // disabled, or an HTTP server
		}
		name := "server " + e.Name
		if p, err := findCommand(e.Spec.Command, pathList); err != nil {
			d.add(name, checkFail, fmt.Sprintf("%q not found on the %s", e.Spec.Command, where),
				"install it, or give its full path as \"command\" in mcp.json")
		} else {
			d.add(name, checkOK, p, "")
		}
	}
}

// checkToken finds the bridge token the engine would use and reads its
// claims (unverified: only the relay can verify them).
func (d *doctor) checkToken() (keystore.Token, keystore.Claims, bool) {
	if d.relay == "" {
		d.add("relay", checkFail, "no relay configured", "`tetherd token set --relay https://relay.example.com`, or \"relay\" in "+d.paths.Settings)
		return "", keystore.Claims{}, false
	}
	account := keystore.AccountFor(d.relay)
	kc := d.keychainReachable(account)
	tok, src, err := keystore.Resolver{TokenFile: d.tokenFile, Keychain: kc, Account: account}.Resolve()
	if err != nil {
		d.add("token", checkFail, err.Error(), "`tetherd login`, or `tetherd token set --relay "+d.relay+"` with a bridge token from the relay's operator")
		return "", keystore.Claims{}, false
	}
	c, err := app.CheckBridgeToken(tok, d.now())
	if err != nil {
		d.add("token", checkFail, fmt.Sprintf("from %s: %v", src, err), "get a new bridge token: `tetherd login` or `tetherd token set`")
		return tok, c, false
	}
	detail := fmt.Sprintf("from %s, dev %s, %s, %s", src, c.Dev, expiryText(c), tok)
	if !c.Expiry.IsZero() && c.ExpiresWithin(7*24*time.Hour, d.now()) {
		d.add("token", checkWarn, detail, "it expires within a week: get a new one (`tetherd login`)")
	} else {
		d.add("token", checkOK, detail, "")
	}
	if !audienceMatches(c.Audience, d.relay) {
		d.add("token audience", checkFail, fmt.Sprintf("issued for %s, but the relay is %s; not sent there", strings.Join(c.Audience, ", "), d.relay),
			"use the token made for this relay, or set the relay the token names")
		return tok, c, false
	}
	return tok, c, true
}

// audienceMatches says whether a token with audience aud may be shown to
// relayURL: tokens naming no relay (or the default audience, which any relay
// with the secret accepts) may; otherwise one of aud must be that relay.
func audienceMatches(aud []string, relayURL string) bool {
	if len(aud) == 0 {
		return true
	}
	want := keystore.AccountFor(relayURL)
	return slices.ContainsFunc(aud, func(a string) bool {
		return a == "tether-relay" || keystore.AccountFor(a) == want
	})
}

// keychainReachable probes the OS keychain with a deadline (a wedged
// Secret Service must not hang doctor) and returns it for token lookup,
// or nil when it cannot be used.
func (d *doctor) keychainReachable(account string) keystore.Store {
	if d.keychain == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { _, err := d.keychain.Get(account); done <- err }()
	select {
	case err := <-done:
		switch {
		case err == nil:
			d.add("keychain", checkOK, "reachable; holds a token for "+account, "")
		case errors.Is(err, keystore.ErrNotFound):
			d.add("keychain", checkOK, "reachable; no token stored for "+account, "")
		default:
			// Not fatal by itself: a token file or $TETHER_TOKEN may serve.
			d.add("keychain", checkWarn, err.Error(), keychainFix())
			return nil
		}
		return d.keychain
	case <-time.After(d.timeout):
		d.add("keychain", checkWarn, fmt.Sprintf("no answer within %v", d.timeout), keychainFix())
		return nil
	}
}

func keychainFix() string {
	switch runtime.GOOS {
	case "linux":
		return "unlock or start a Secret Service (gnome-keyring, KWallet) in this session, or use a token file (--token-file, $TETHER_TOKEN_FILE)"
	case "darwin":
		return "unlock the login keychain (Keychain Access), or use a token file"
	}
	return "check Credential Manager, or use a token file (--token-file)"
}

// checkRelay walks the path to the relay one layer at a time, so the first
// failing line says where it breaks: DNS, TCP, TLS, HTTP, the WebSocket
// path, the token.
func (d *doctor) checkRelay(ctx context.Context, tok keystore.Token, claims keystore.Claims, sendToken bool) {
	if d.relay == "" {
		return
	}
	u, err := url.Parse(d.relay)
	if err != nil || u.Host == "" {
		d.add("relay", checkFail, fmt.Sprintf("%q is not a URL", d.relay), "set \"relay\" in "+d.paths.Settings+" to e.g. https://relay.example.com")
		return
	}
	secure := u.Scheme == "https" || u.Scheme == "wss"
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[bool]string{true: "443", false: "80"}[secure]
	}
	if ip := net.ParseIP(host); ip == nil {
		lctx, cancel := context.WithTimeout(ctx, d.timeout)
		addrs, err := net.DefaultResolver.LookupHost(lctx, host)
		cancel()
		if err != nil {
			d.add("relay DNS", checkFail, err.Error(), "check the relay's name in "+d.paths.Settings+", your network, or your VPN")
			return
		}
		d.add("relay DNS", checkOK, host+" → "+strings.Join(addrs, ", "), "")
	}
	addr := net.JoinHostPort(host, port)
	conn, err := (&net.Dialer{Timeout: d.timeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		d.add("relay TCP", checkFail, err.Error(), "the relay is down, or a firewall or proxy blocks "+addr)
		return
	}
	conn.Close()
	d.add("relay TCP", checkOK, "connected to "+addr, "")
	if secure {
		tconn, err := (&tls.Dialer{NetDialer: &net.Dialer{Timeout: d.timeout}, Config: &tls.Config{ServerName: host}}).DialContext(ctx, "tcp", addr)
		if err != nil {
			d.add("relay TLS", checkFail, err.Error(), "the relay's certificate is not trusted here: a TLS-inspecting proxy, a wrong name, or an expired certificate")
			return
		}
		cs := tconn.(*tls.Conn).ConnectionState()
		tconn.Close()
		leaf := cs.PeerCertificates[0]
		detail := fmt.Sprintf("%s, certificate valid until %s", tls.VersionName(cs.Version), leaf.NotAfter.Format(time.DateOnly))
		if leaf.NotAfter.Sub(d.now()) < 14*24*time.Hour {
			d.add("relay TLS", checkWarn, detail, "the certificate expires within two weeks: tell the relay's operator")
		} else {
			d.add("relay TLS", checkOK, detail, "")
		}
	} else if !isLoopbackHost(host) && !d.insecure {
		d.add("relay TLS", checkFail, "plain http to a relay off this machine: the engine refuses it", "use the relay's https:// URL")
		sendToken = false
	}

	base := strings.TrimRight(d.relay, "/")
	base = strings.Replace(strings.Replace(base, "wss://", "https://", 1), "ws://", "http://", 1)
	client := &http.Client{Timeout: d.timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	sent := d.now()
	resp, err := d.get(ctx, client, base+"/healthz", "")
	if err != nil {
		d.add("relay /healthz", checkFail, err.Error(), "is "+d.relay+" a Tether relay? a proxy in front of it may not pass /healthz")
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.add("relay /healthz", checkFail, resp.Status, "is "+d.relay+" a Tether relay (check the URL's path)?")
		return
	}
	d.add("relay /healthz", checkOK, resp.Status, "")
	d.checkSkew(resp.Header.Get("Date"), sent, d.now())
	d.checkUpgrade(ctx, client, base)

	if !sendToken || tok == "" || claims.Dev == "" {
		return
	}
	// The status API takes a bridge token without taking the bridge's slot,
	// so a running engine is not disconnected by this check.
	resp, err = d.get(ctx, client, base+"/v1/bridges/"+url.PathEscape(claims.Dev), tok.Reveal())
	if err != nil {
		d.add("relay token", checkFail, err.Error(), "try again; if it persists, the relay's logs say more")
		return
	}
	defer resp.Body.Close()
	var body struct {
		Connected bool   `json:"connected"`
		Error     string `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	switch resp.StatusCode {
	case http.StatusOK:
		d.add("relay token", checkOK, fmt.Sprintf("accepted for dev %s; a bridge is connected: %v", claims.Dev, body.Connected), "")
	case http.StatusUnauthorized, http.StatusForbidden:
		d.add("relay token", checkFail, fmt.Sprintf("refused (%s): %s", resp.Status, body.Error), "get a new bridge token for this relay: `tetherd login` or `tetherd token set`")
	default:
		d.add("relay token", checkFail, "unexpected "+resp.Status, "the relay's logs say more")
	}
}

// checkUpgrade sends the engine's WebSocket request to /v1/connect, without
// a token: a Tether relay refuses it with 401 and its own WWW-Authenticate
// realm before upgrading, so the check takes no bridge slot and shows no
// secret, and that answer proves the request came through every proxy to
// the relay. What proxies that do not pass WebSockets answer instead is
// explained. (The relay checks the token before the upgrade headers, so a
// proxy that routes /v1/connect but drops the hop-by-hop Upgrade header
// still gets 401 here; the engine's own connection is the final word.)
func (d *doctor) checkUpgrade(ctx context.Context, c *http.Client, base string) {
	const name = "relay WebSocket"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/connect", nil)
	if err != nil {
		d.add(name, checkFail, err.Error(), "check the relay URL")
		return
	}
	key := make([]byte, 16)
	rand.Read(key)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	resp, err := c.Do(req)
	if err != nil {
		d.add(name, checkFail, err.Error(), "a proxy or firewall between here and the relay drops WebSocket requests")
		return
	}
	resp.Body.Close()
	st, detail, fix := upgradeVerdict(resp.StatusCode, resp.Status, resp.Header)
	d.add(name, st, detail, fix)
}

// upgradeVerdict explains the answer to a token-less WebSocket request at
// /v1/connect.
func upgradeVerdict(code int, status string, h http.Header) (checkStatus, string, string) {
	const proxyFix = "the proxy in front of the relay must pass WebSocket upgrades to it " +
		"(nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; " +
		"other proxies: enable WebSockets for /v1/connect)"
	switch {
	case code == http.StatusUnauthorized && strings.Contains(h.Get("WWW-Authenticate"), `realm="tether-relay"`):
		return checkOK, "GET /v1/connect with Upgrade: websocket reaches the relay (401 without a token, as expected)", ""
	case code == http.StatusUnauthorized:
		return checkFail, status + " from something other than the relay (no tether-relay realm): a proxy asking for its own login?",
			"let /v1/connect through to the relay without the proxy's own authentication"
	case code == http.StatusSwitchingProtocols:
		return checkFail, "upgraded without a token: this is not a Tether relay", "check the relay URL"
	case code == http.StatusNotFound:
		return checkFail, status + ": /v1/connect does not reach the relay",
			"route /v1/connect (and the relay's other paths) to the relay, or fix the URL's path in settings.json"
	case code == http.StatusUpgradeRequired:
		return checkFail, status + ": a proxy does not pass the WebSocket upgrade (it wants another protocol)", proxyFix
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return checkFail, status + ": the proxy could not pass the WebSocket request to the relay", proxyFix
	case code >= 300 && code < 400:
		return checkFail, status + " to " + h.Get("Location") + ": the engine does not follow redirects", "set the relay URL to where it redirects"
	default:
		return checkFail, "unexpected " + status + " to a WebSocket request at /v1/connect", proxyFix
	}
}

func (d *doctor) get(ctx context.Context, c *http.Client, u, bearer string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return c.Do(req)
}

// checkSkew compares this clock with the relay's Date header. The header
// has 1 s resolution and was made at some moment between sending and
// receiving, so the relay's clock read [date, date+1s) while ours read
// [sent, recv]: only a gap beyond that window is skew.
func (d *doctor) checkSkew(date string, sent, recv time.Time) {
	t, err := http.ParseTime(date)
	if err != nil {
		d.add("clock", checkInfo, "the relay sent no usable Date header", "")
		return
	}
	skew := clockSkew(t, sent, recv)
	detail := fmt.Sprintf("this machine is %v off the relay's clock", skew)
	switch {
	case skew > 5*time.Minute || skew < -5*time.Minute:
		d.add("clock", checkFail, detail, "turn on automatic time (timedatectl set-ntp true; Settings › Time on macOS/Windows)")
	case skew > 30*time.Second || skew < -30*time.Second:
		d.add("clock", checkWarn, detail, "turn on automatic time sync")
	default:
		d.add("clock", checkOK, detail, "")
	}
}

// clockSkew is how far ahead (positive) this clock is, given the relay's
// Date (whole seconds) and our send and receive times: zero when the two
// windows overlap, else the smallest gap, rounded to seconds.
func clockSkew(date, sent, recv time.Time) time.Duration {
	lo := sent.Sub(date.Add(time.Second)) // we are at least this far ahead
	hi := recv.Sub(date)                  // and at most this far
	switch {
	case lo > 0:
		return lo.Round(time.Second)
	case hi < 0:
		return hi.Round(time.Second)
	}
	return 0
}

func (d *doctor) checkService(ctx context.Context) {
	st, err := serviceStatus()
	switch {
	case st == serviceRunning:
		d.add("service", checkOK, "installed and running", "")
	case st == serviceNotInstalled:
		d.add("service", checkInfo, "not installed (the bridge runs while the tray or `tetherd run` does)", "`tetherd install` to run it in the background")
	case err != nil:
		d.add("service", checkWarn, fmt.Sprintf("%s: %v", st, err), "run doctor in your login session")
	default:
		d.add("service", checkFail, st, "`tetherd start`; if it stops again, see the logs"+logsExtra())
	}
	c, err := app.DialControl(ctx, d.paths.Socket)
	if err != nil {
		d.add("engine", checkInfo, "none running for this user", "")
		return
	}
	defer c.Close()
	state, err := c.State(ctx)
	if err != nil {
		d.add("engine", checkWarn, "running but not answering: "+err.Error(), "restart it (`tetherd restart`, or quit and start the tray)")
		return
	}
	d.add("engine", checkOK, fmt.Sprintf("running (version %s), relay %s", state.Version, summaryLine(state)), "")
}

func (d *doctor) checkAutostart() {
	on := false
	switch runtime.GOOS {
	case "windows":
		on = exec.Command("reg", "query", `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, "/v", "Tether").Run() == nil
	case "darwin":
		home, _ := os.UserHomeDir()
		on = exists(filepath.Join(home, "Library", "LaunchAgents", "dev.tether.tray.plist"))
	default:
		// The user's entry overrides the package's; Hidden=true turns it off.
		cfg, _ := os.UserConfigDir()
		if data, err := os.ReadFile(filepath.Join(cfg, "autostart", "tether.desktop")); err == nil {
			on = !strings.Contains(string(data), "\nHidden=true")
		} else {
			on = exists("/etc/xdg/autostart/tether.desktop")
		}
	}
	if on {
		d.add("tray at login", checkInfo, "on", "")
	} else {
		d.add("tray at login", checkInfo, "off", "the tray's menu: Start at login")
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func logsExtra() string {
	switch runtime.GOOS {
	case "linux":
		return " (service: journalctl --user -u tetherd)"
	case "windows":
		return " (service: Task Scheduler › Task Scheduler Library › Tether bridge (…) › History)"
	}
	return ""
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// findCommand resolves a server's command the way the engine will: a path
// as is, a bare name on pathList.
func findCommand(cmd, pathList string) (string, error) {
	if strings.ContainsAny(cmd, `/\`) {
		if fi, err := os.Stat(cmd); err != nil || fi.IsDir() {
			return "", fmt.Errorf("%s: not a file", cmd)
		}
		return cmd, nil
	}
	if runtime.GOOS == "windows" {
		return exec.LookPath(cmd) // PATHEXT rules; the service sees the same PATH
	}
	for _, dir := range filepath.SplitList(pathList) {
		p := filepath.Join(dir, cmd)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// commandPath is the PATH the engine's children get: the login shell's
// (a service or tray does not inherit it, see mcpchild), or this process's
// when the shell cannot be asked.
func commandPath(ctx context.Context) (pathList, where string) {
	if runtime.GOOS == "windows" {
		return os.Getenv("PATH"), "PATH"
	}
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, "-l", "-c", `printf %s "$PATH"`)
	cmd.Stdin = nil
	if out, err := cmd.Output(); err == nil && len(out) > 0 {
		return string(out), "login shell's PATH (" + sh + ")"
	}
	return os.Getenv("PATH"), "PATH (the login shell could not be asked)"
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
