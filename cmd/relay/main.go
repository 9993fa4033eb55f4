// Command tether-relay is the self-hostable Tether relay: it holds one
// WebSocket slot per developer for their bridge and exposes every bridged
// MCP server at /mcp/{dev}/{server}. It also issues the tokens it accepts.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	buildversion "github.com/tether-dev/tether/internal/version"
	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
	"github.com/tether-dev/tether/relay/web"
)

const usage = `tether-relay — the self-hostable Tether relay

Usage:
  tether-relay serve --listen ADDR --secret-file FILE [--db LOCATION] [--call-timeout D]
                     [--public-url URL]... [--allow-origin ORIGIN]... [--oauth=false]
                     [--body-timeout D] [--bridge-wait D] [--start-wait D] [--session-idle D] [--session-max-age D]
                     [--resume-grace D]
                     [--tls-cert FILE --tls-key FILE | --acme-domain NAME... [--acme-email E]]
                     [--trusted-proxy CIDR]...
                     [--client-rate N] [--max-sessions N] [--max-inflight N] [--max-streams N] [--max-body BYTES]
                     [--metrics-listen ADDR] [--metrics-token-file FILE]
  tether-relay token --secret-file FILE [--db LOCATION] --dev ID --scope bridge|client [--ttl D] [--aud URL]
  tether-relay token list --secret-file FILE [--db LOCATION]
  tether-relay token revoke --secret-file FILE [--db LOCATION] --jti ID
  tether-relay user add ID --secret-file FILE [--db LOCATION] [--public-url URL]
  tether-relay backup [--db LOCATION | --secret-file FILE] OUT
  tether-relay version

  Every command that takes --db also takes --db-file FILE (a file, mode
  0600, holding the location) or reads $TETHER_RELAY_DB: a PostgreSQL
  password in --db is visible to every user of the machine in ps.

serve
  Runs the relay. If FILE does not exist it is created with a fresh random
  secret (mode 0600). Keep it: every token is signed with it.
    --listen ADDR        address to listen on (default 127.0.0.1:8080)
    --secret-file FILE   HMAC secret for tokens (required)
    --db LOCATION        the relay's database: sqlite:PATH (default:
                         sqlite:FILE.db, beside the secret file) or
                         postgres://USER@HOST/DB?sslmode=… when several
                         relays share state. Give the same --db to the token
                         commands. --db-file FILE or $TETHER_RELAY_DB keep a
                         password out of the process list
    --call-timeout D     longest wait for one relayed MCP request (default 60s)
    --body-timeout D     longest time a client may take to send a request's
                         body (default 30s)
    --public-url URL     the relay's public base URL (repeatable). The MCP
                         endpoints answer to its host name, to loopback names
                         and to IP addresses; any other Host gets 421 (DNS
                         rebinding protection)
    --oauth              with --public-url (default true): be the OAuth
                         authorization server of the MCP endpoints, so hosted
                         agents (ChatGPT, Claude.ai) connect with only the
                         URL; the first --public-url is the issuer. Static
                         tokens keep working; /mcp-token/DEV/SERVER is the
                         same endpoint without OAuth discovery
    --allow-origin O     a browser origin allowed to call the MCP endpoints,
                         e.g. https://inspector.example.com (repeatable); other
                         browsers' requests (with an Origin header) get 403
    --bridge-wait D      how long a request waits for a bridge that is
                         reconnecting before 503 (default 10s; 0: no wait)
    --start-wait D       how long an initialize waits for a server that is
                         starting (default 30s; 0: no wait)
    --session-idle D     end a client session unused this long (default 30m)
    --session-max-age D  longest life of a session id (default 24h; sooner
                         when the client's token expires)
    --resume-grace D     how long a call whose SSE answer was cut (a network
                         blip) is held for its client to resume the stream
                         (GET with Last-Event-ID) before it is cancelled
                         (default 60s; 0: streams are not resumable)
  Limits per client token (0: no limit; over one: 429 with Retry-After):
    --client-rate N      requests per second, burst 2N (default 200)
    --max-sessions N     live sessions; beyond it the least recently used idle
                         session is evicted, 429 if all are busy (default 100)
    --max-inflight N     POSTs being answered at once (default 128)
    --max-streams N      open GET streams (default 32)
    --max-body BYTES     largest POST body, 413 above it (default 8 MiB)
  Metrics (GET /metrics, Prometheus text; never public):
    --metrics-listen A   serve them without auth on this address of its own,
                         e.g. 127.0.0.1:9090 (keep it loopback or private)
    --metrics-token-file F  a file with a bearer token (mode 0600, 32+ random
                         bytes); GET /metrics on --listen then needs
                         "Authorization: Bearer <token>" (401 without it).
                         Without this flag /metrics on --listen is 404
  Connections (0: no cap; over one the connection is closed at once, logged):
    --max-conns N        open at once (default 8192)
    --max-conns-per-ip N open at once from one address (default 256; the
                         --trusted-proxy addresses are exempt)

serve: TLS (default: plain http, for loopback or behind a proxy)
    --tls-cert FILE      PEM certificate chain; with --tls-key serves https.
    --tls-key FILE       Both are read again on SIGHUP and when they change
    --acme-domain NAME   get and renew a certificate for NAME over ACME
                         (repeatable); --listen then defaults to :443
    --acme-email E       contact address for the ACME account
    --acme-dir URL       ACME directory (default Let's Encrypt production)
    --acme-cache DIR     account key and certificates (default: acme/ beside
                         --secret-file)
    --acme-ca-root FILE  trust this CA for the ACME directory's https
    --acme-http-listen A HTTP-01 challenges and a redirect to https
                         (default :80; "" for none)
    --trusted-proxy C    a proxy address or CIDR whose X-Forwarded-For and
                         X-Forwarded-Proto are believed (repeatable)
    --auth-header NAME   sign in to the web page by a header an authenticating
                         proxy (oauth2-proxy, an OIDC gateway) sets to the
                         user's id, e.g. X-Forwarded-User; believed only from
                         --trusted-proxy addresses, stripped from others. The
                         account must exist (user add). Off by default

token
  Prints a signed token (JWT) on stdout and nothing else.
    --secret-file FILE   the secret the relay uses (required)
    --dev ID             the developer id, e.g. alice (required)
    --scope S            bridge (for tetherd / tag-mcp-bridge) or client (for MCP clients)
    --ttl D              validity (default 720h)
    --aud URL            the relay's public URL the token is for; a relay
                         refuses tokens for another (default: tether-relay,
                         accepted by any relay with this secret)
  Every token gets an id (jti), iss "tether-relay" and aud; it is recorded
  (never the token itself) in the relay's database (--db).

token list
  Lists the tokens in the database: id, dev, scope, audience, dates, last
  use, valid/expired/revoked.

token revoke --jti ID
  Revokes a token. Every relay on the database refuses it within a second
  (401), and closes a bridge's socket holding it (close code 4003).

user add ID
  Creates the account ID (the dev id its bridge uses) if it is new and
  prints a one-time sign-in link (valid 15 minutes, single use) to the
  relay's web page, where the user sets a password. Run it again for a
  new link (a forgotten password). --public-url is the relay's URL as
  the user's browser reaches it (default http://localhost:8080, serve's
  default --listen by name: passkeys need a host name, not an IP address).

A token log of an older relay (FILE.tokens) is imported into the database
by the first command that opens it, then renamed FILE.tokens.imported.

The secret file must be mode 0600 and hold at least 32 random bytes (the
file serve creates holds 64 hex digits); the relay refuses to start
otherwise. Tokens issued before tokens carried jti/iss/aud are accepted
until they expire, but cannot be revoked by id: make a new secret to end them.

Examples:
  tether-relay serve --acme-domain relay.example.com --secret-file /var/lib/tether-relay/secret --public-url https://relay.example.com
  tether-relay serve --listen 127.0.0.1:8080 --secret-file /var/lib/tether-relay/secret --public-url https://relay.example.com --trusted-proxy 127.0.0.1
  tether-relay token --secret-file /var/lib/tether-relay/secret --dev alice --scope bridge > bridge.jwt
  tether-relay token --secret-file /var/lib/tether-relay/secret --dev alice --scope client --ttl 24h

Endpoints: GET / (the web page: sign in, My bridge, tokens) · GET /healthz · GET /metrics (see Metrics) · GET /v1/connect (bridges) ·
GET /dev/{id}/connect (TAG bridges) · /mcp/{dev}/{server} (MCP clients) ·
GET /v1/bridges/{dev} (status)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tether-relay:", err)
		}
		os.Exit(2)
	}
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "token":
		return token(ctx, args[1:], stdout, stderr)
	case "user":
		return user(ctx, args[1:], stdout, stderr)
	case "backup":
		return backup(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "tether-relay", buildversion.Get())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tether-relay "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	secretFile := fs.String("secret-file", "", "HMAC secret file")
	db := registerDBFlags(fs)
	callTimeout := fs.Duration("call-timeout", server.DefaultCallTimeout, "longest wait for one relayed request")
	bodyTimeout := fs.Duration("body-timeout", server.DefaultBodyTimeout, "longest time a client may take to send a request's body")
	var publicURLs, allowOrigins listFlag
	fs.Var(&publicURLs, "public-url", "the relay's public base URL, e.g. https://relay.example.com (repeatable); its host is a name the MCP endpoints answer to")
	oauth := fs.Bool("oauth", true, "with --public-url: be the OAuth authorization server of the MCP endpoints")
	fs.Var(&allowOrigins, "allow-origin", "a browser origin allowed to call the MCP endpoints, e.g. https://app.example.com (repeatable)")
	bridgeWait := fs.Duration("bridge-wait", server.DefaultBridgeWait, "how long a request waits for an offline bridge to reconnect before 503 (0: not at all)")
	startWait := fs.Duration("start-wait", server.DefaultStartWait, "how long an initialize waits for a server that is starting (0: not at all)")
	sessionIdle := fs.Duration("session-idle", server.DefaultSessionIdleTimeout, "end a client session unused for this long")
	sessionMaxAge := fs.Duration("session-max-age", server.DefaultSessionMaxAge, "longest life of a client session id (sooner when its token expires)")
	resumeGrace := fs.Duration("resume-grace", server.DefaultResumeGrace, "how long a call whose SSE answer was cut is held for its client to resume the stream (GET with Last-Event-ID) before it is cancelled (0: streams are not resumable)")
	authHeader := fs.String("auth-header", "", "a header an authenticating proxy (--trusted-proxy) sets to the signed-in user's id, e.g. X-Forwarded-User")
	var tlsf tlsFlags
	tlsf.register(fs)
	limits := limitFlags(fs)
	connLimits := connLimitFlags(fs)
	metricsf := registerMetricsFlags(fs)
	var cimdTest cimdTestFlag
	cimdTest.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	tlsf.listenDefault(fs, listen)
	proxies, err := parseTrustedProxies(tlsf.trustedProxies)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if *secretFile == "" {
		return errors.New("serve: --secret-file is required")
	}
	if *authHeader != "" && len(proxies) == 0 {
		return errors.New("serve: --auth-header needs --trusted-proxy: the header is believed only from the proxy that sets it")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	checkFileLimit(logger, *connLimits.total)
	secret, created, err := loadOrCreateSecret(*secretFile)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if created {
		logger.Info("created a new secret file", "path", *secretFile, "mode", "0600")
	}

	metricsToken, err := metricsf.token()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	startPprof(logger)
	st, err := openStore(ctx, db, *secretFile, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer st.Close()
	rvCtx, stopRevocations := context.WithCancel(ctx)
	revoked, err := server.NewRevocations(rvCtx, st, 0, logger)
	if err != nil {
		stopRevocations()
		return fmt.Errorf("serve: %w", err)
	}
	// Before st.Close (deferred earlier, so run later): the loop's last
	// write of token uses needs the store.
	defer func() { stopRevocations(); <-revoked.Done() }()
	// The janitor deletes expired rows every few minutes; stopped (and
	// waited for) before the store closes.
	janCtx, stopJanitor := context.WithCancel(ctx)
	janDone := make(chan struct{})
	go func() {
		defer close(janDone)
		(&server.Janitor{Store: st, Revocations: revoked, Log: logger}).Run(janCtx)
	}()
	defer func() { stopJanitor(); <-janDone }()
	relaySrv := &server.Server{
		Verifier: &server.Verifier{Secret: secret, Audiences: publicURLs, Revocations: revoked},
		Logger:   logger, CallTimeout: *callTimeout,
		BridgeWait: orNegative(*bridgeWait), StartWait: orNegative(*startWait),
		SessionIdleTimeout: *sessionIdle, SessionMaxAge: *sessionMaxAge, ResumeGrace: orNegative(*resumeGrace),
		PublicURLs: publicURLs, AllowOrigins: allowOrigins, BodyTimeout: *bodyTimeout,
		Limits: limits(), MetricsToken: metricsToken,
		// The device flow and connect codes; their pages take the
		// signed-in user from the web page (Device.User, below).
		Device: &server.Device{Store: st, Secret: secret, PublicURL: firstOr(publicURLs, ""), Logger: logger},
	}
	page, err := web.New(web.Config{Store: st, Relay: relaySrv, PublicURL: firstOr(publicURLs, ""), Logger: logger, AuthHeader: *authHeader})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	relaySrv.Web = page
	// The device approval and connect-code pages act for the user signed in
	// on the web page.
	signedIn := func(r *http.Request) (string, bool) {
		u, ok := page.CurrentUser(r)
		return u.ID, ok
	}
	relaySrv.Device.User = signedIn
	if *oauth && len(publicURLs) > 0 {
		// The consent page sends a browser that is not signed in to
		// /?return=… and sign-in brings it back.
		relaySrv.OAuth = &server.OAuthConfig{Store: st, SignedInUser: signedIn}
	}
	if err := cimdTest.apply(relaySrv.OAuth, publicURLs); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	httpSrv := newHTTPServer(stripAuthHeader(*authHeader, proxies, proxies.wrap(relaySrv)), defaultHTTPLimits, logger)
	tlsSet, err := tlsf.setup(ctx, *secretFile, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer tlsSet.close()
	ln, acmeLn, err := tlsSet.listen(*listen, stdout)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ln = connLimits.wrap(ln, proxies, logger)
	errc := make(chan error, 3)
	metricsSrv, err := metricsf.serve(relaySrv, stdout, logger, errc)
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: %w", err)
	}
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	go func() { errc <- httpSrv.Serve(ln) }()
	if acmeLn != nil {
		acmeLn = connLimits.wrap(acmeLn, proxies, logger)
		acmeSrv := tlsSet.acmeServer(logger)
		go func() { errc <- acmeSrv.Serve(acmeLn) }()
		defer acmeSrv.Close()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Bridges first: their sockets are hijacked, so http.Server.Shutdown
	// would not close them, and closing them ends the requests waiting on them.
	relaySrv.Shutdown(shutCtx)
	page.Close() // the web page's event streams never go idle on their own
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		httpSrv.Close() // long-lived SSE streams do not go idle on their own
	}
	return nil
}

func token(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "list" || args[0] == "revoke") {
		return tokenAdmin(ctx, args[0], args[1:], stdout, stderr)
	}
	fs := newFlags("token", stderr)
	secretFile := fs.String("secret-file", "", "HMAC secret file")
	db := registerDBFlags(fs)
	dev := fs.String("dev", "", "developer id")
	scope := fs.String("scope", "", "bridge or client")
	ttl := fs.Duration("ttl", 720*time.Hour, "validity")
	aud := fs.String("aud", "", "the relay's public URL the token is for (default: "+server.DefaultAudience+", accepted by every relay of this secret)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secretFile == "" || *dev == "" || *scope == "" {
		return errors.New("token: --secret-file, --dev and --scope are required")
	}
	secret, err := readSecret(*secretFile)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, rec, err := server.IssueToken(secret, server.TokenSpec{Dev: *dev, Scope: *scope, TTL: *ttl, Audience: *aud}, time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	st, err := openStore(ctx, db, *secretFile, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer st.Close()
	// Recorded before printing: a token missing from the store could not
	// be listed or revoked by id.
	if err := st.AddToken(ctx, rec); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	audit(ctx, st, stderr, "token.issue", rec.JTI, "dev="+rec.Dev+" kind="+string(rec.Kind)+" aud="+rec.Audience)
	fmt.Fprintln(stdout, tok)
	return nil
}

// tokenAdmin runs `token list` and `token revoke --jti ID`.
func tokenAdmin(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token "+cmd, stderr)
	secretFile := fs.String("secret-file", "", "HMAC secret file")
	db := registerDBFlags(fs)
	jti := fs.String("jti", "", "the id of the token to revoke")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secretFile == "" {
		return fmt.Errorf("token %s: --secret-file is required", cmd)
	}
	if cmd == "revoke" && *jti == "" {
		return errors.New("token revoke: --jti is required")
	}
	st, err := openStore(ctx, db, *secretFile, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return fmt.Errorf("token %s: %w", cmd, err)
	}
	defer st.Close()
	if cmd == "revoke" {
		if err := st.Revoke(ctx, *jti, time.Now()); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("token revoke: no token with jti %q is in the database (see `tether-relay token list`)", *jti)
		} else if err != nil {
			return fmt.Errorf("token revoke: %w", err)
		}
		audit(ctx, st, stderr, "token.revoke", *jti, "")
		fmt.Fprintf(stdout, "revoked %s; running relays refuse it within a second\n", *jti)
		return nil
	}
	toks, err := st.Tokens(ctx, "")
	if err != nil {
		return fmt.Errorf("token list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JTI\tDEV\tSCOPE\tAUDIENCE\tISSUED\tEXPIRES\tLAST USED\tSTATE")
	now := time.Now()
	for _, t := range toks {
		state := "valid"
		if !t.Revoked.IsZero() {
			state = "revoked " + t.Revoked.Format(time.RFC3339)
		} else if !now.Before(t.Expires) {
			state = "expired"
		}
		used := "-"
		if !t.LastUsed.IsZero() {
			used = t.LastUsed.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.JTI, t.Dev, t.Kind, t.Audience,
			t.Created.Format(time.RFC3339), t.Expires.Format(time.RFC3339), used, state)
	}
	return tw.Flush()
}

// audit appends to the audit trail; a failure there is reported but does
// not undo what was done.
func audit(ctx context.Context, st *store.Store, stderr io.Writer, action, subject, detail string) {
	if _, err := st.AddAudit(ctx, store.AuditEvent{At: time.Now(), Actor: "cli", Action: action, Subject: subject, Detail: detail}); err != nil {
		fmt.Fprintln(stderr, "tether-relay: audit:", err)
	}
}

// readSecret returns the file's content without surrounding whitespace;
// those bytes are the HMAC key. It refuses a file others can read and a
// secret too short to hold 32 random bytes, saying how to fix either.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	if err := checkSecretMode(path); err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if err := checkSecretStrength(s); err != nil {
		return nil, fmt.Errorf("secret in %s %v; make a new one (every token must then be issued again): "+
			"mv %s %s.old && tether-relay serve --secret-file %s ... (it creates a fresh secret), "+
			"or: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > %s && chmod 600 %s", path, err, path, path, path, path, path)
	}
	return []byte(s), nil
}

// minSecretBytes is the randomness a secret must be able to hold: an
// HS256 key shorter than the hash is guessable offline from any token.
const minSecretBytes = 32

// checkSecretStrength refuses a secret that cannot hold 32 random bytes:
// shorter than 32 characters, hex shorter than 64 digits, or made of so
// few distinct characters that it is no random string.
func checkSecretStrength(s string) error {
	if len(s) < minSecretBytes {
		return fmt.Errorf("is %d characters; it must hold %d random bytes", len(s), minSecretBytes)
	}
	if _, err := hex.DecodeString(s); err == nil && len(s) < 2*minSecretBytes {
		return fmt.Errorf("is %d hex digits (%d bytes); it must hold %d random bytes (%d hex digits)", len(s), len(s)/2, minSecretBytes, 2*minSecretBytes)
	}
	distinct := map[rune]bool{}
	for _, r := range s {
		distinct[r] = true
	}
	if len(distinct) < 10 {
		return fmt.Errorf("has only %d distinct characters; it is not random", len(distinct))
	}
	return nil
}

// loadOrCreateSecret reads the secret, or writes 32 random bytes as hex at
// mode 0600 when the file does not exist yet.
func loadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	secret, err = readSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secret, false, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, false, fmt.Errorf("generate secret: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create secret folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create secret: %w", err)
	}
	hexSecret := hex.EncodeToString(raw[:])
	if _, err := f.WriteString(hexSecret + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("write secret: %w", err)
	}
	return []byte(hexSecret), true, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// orNegative maps a flag's 0 ("do not wait") to the Server's -1 (its 0
// means the default).
func orNegative(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// limitFlags registers the per-token limits; the returned func, called
// after Parse, gives them as server.Limits (a flag's 0 means no limit).
func limitFlags(fs *flag.FlagSet) func() server.Limits {
	rate := fs.Float64("client-rate", server.DefaultClientRate, "requests per second per client token, burst twice that (0: no limit)")
	sessions := fs.Int("max-sessions", server.DefaultMaxSessions, "live sessions per client token; the least recently used idle one is evicted beyond it (0: no limit)")
	inflight := fs.Int("max-inflight", server.DefaultMaxInFlight, "POSTs being answered at once per client token (0: no limit)")
	streams := fs.Int("max-streams", server.DefaultMaxStreams, "open GET streams per client token (0: no limit)")
	body := fs.Int64("max-body", server.DefaultMaxBodyBytes, "largest POST body in bytes (0: the frame limit)")
	off := func(v int) int { return cmp.Or(v, -1) }
	return func() server.Limits {
		return server.Limits{ClientRate: cmp.Or(*rate, -1), MaxSessions: off(*sessions),
			MaxInFlight: off(*inflight), MaxStreams: off(*streams), MaxBodyBytes: *body}
	}
}

// httpLimits are the connection-level limits of the relay's HTTP server.
// Bodies have their own deadline (the relay's BodyTimeout, lifted for
// long answers and streams).
type httpLimits struct {
	header    time.Duration // the request line and headers must arrive within this
	idle      time.Duration // a keep-alive connection with no request is closed after this
	maxHeader int           // bytes of request line and headers; more gets 431
}

// defaultHTTPLimits: a client that opens connections and stops sending is
// cut within 30 s whatever it stalls on (headers 10 s, body 30 s, idle
// 30 s), so stalled connections cannot pile up; 64 KiB of headers is far
// above any MCP client's (an OAuth bearer token is a few KiB).
var defaultHTTPLimits = httpLimits{header: 10 * time.Second, idle: 30 * time.Second, maxHeader: 64 << 10}

func newHTTPServer(h http.Handler, lim httpLimits, logger *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: lim.header, IdleTimeout: lim.idle,
		MaxHeaderBytes: lim.maxHeader, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}

// connLimitFlags registers the connection caps; the returned func wraps
// the listener with them.
func connLimitFlags(fs *flag.FlagSet) *connCaps {
	return &connCaps{
		total: fs.Int("max-conns", server.DefaultMaxConns, "connections open at once (0: no cap)"),
		perIP: fs.Int("max-conns-per-ip", server.DefaultMaxConnsPerIP, "connections open at once from one address (0: no cap); --trusted-proxy addresses are exempt"),
	}
}

type connCaps struct{ total, perIP *int }

// wrap caps ln's connections; trusted proxies are exempt from the
// per-address cap (every proxied connection comes from the proxy).
func (c *connCaps) wrap(ln net.Listener, proxies trustedProxies, log *slog.Logger) net.Listener {
	return server.LimitListener(ln, *c.total, *c.perIP, proxies.trusts, log)
}
