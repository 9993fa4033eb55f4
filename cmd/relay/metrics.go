package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/server"
)

// metricsFlags are where the relay's metrics can be read. The main listener
// never serves them to anonymous clients: they tell anyone how busy the
// relay is and how many bridges it holds. Either give them a listener of
// their own that only the operator reaches (--metrics-listen), or a bearer
// token that the main listener asks for (--metrics-token-file), or both.
type metricsFlags struct {
	listen    *string
	tokenFile *string
}

func registerMetricsFlags(fs *flag.FlagSet) metricsFlags {
	return metricsFlags{
		listen:    fs.String("metrics-listen", "", "serve GET /metrics, without auth, on this address of its own (e.g. 127.0.0.1:9090)"),
		tokenFile: fs.String("metrics-token-file", "", "a file holding the bearer token GET /metrics on --listen requires (without it: 404 there)"),
	}
}

// token reads the metrics token; "" when no file was given. The file is
// held to the secret file's rules: mode 0600, at least 32 random bytes.
func (m metricsFlags) token() (string, error) {
	path := *m.tokenFile
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read metrics token: %w", err)
	}
	if err := checkSecretMode(path); err != nil {
		return "", fmt.Errorf("metrics token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if err := checkSecretStrength(tok); err != nil {
		return "", fmt.Errorf("metrics token in %s %v; make one: "+
			"head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > %s && chmod 600 %s", path, err, path, path)
	}
	return tok, nil
}

// serve starts the metrics listener when one was asked for; it returns a
// nil server otherwise. Errors of Serve go to errc.
func (m metricsFlags) serve(relaySrv *server.Server, stdout io.Writer, logger *slog.Logger, errc chan<- error) (*http.Server, error) {
	if *m.listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", *m.listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", relaySrv.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "tether-relay metrics on http://%s/metrics\n", ln.Addr())
	go func() { errc <- fmt.Errorf("metrics listener: %w", srv.Serve(ln)) }()
	return srv, nil
}
