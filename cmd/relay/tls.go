package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// TLS for a relay on the open internet, in one command: either a
// certificate pair from files (reloaded on SIGHUP and when the files
// change, so a renewal by certbot or a secret manager needs no restart), or
// certificates obtained and renewed over ACME.
//
// ACME uses golang.org/x/crypto/acme/autocert rather than
// caddyserver/certmagic: autocert does everything a single relay needs
// (TLS-ALPN-01 on the TLS listener, HTTP-01 with a redirect to https, a
// disk cache, renewal before expiry, a custom directory URL and HTTP client)
// and adds only x/crypto, while certmagic brings its own DNS, storage and
// logging stacks (zap, libdns, miekg/dns, …) for features the relay does
// not use (on-demand issuance, DNS-01, clustered storage).

// letsEncrypt is the ACME directory used when --acme-dir is not given.
const letsEncrypt = acme.LetsEncryptURL

// tlsFlags are serve's TLS, ACME and proxy flags.
type tlsFlags struct {
	certFile, keyFile string
	acmeDomains       listFlag
	acmeEmail         string
	acmeDir           string
	acmeCache         string
	acmeCARoot        string
	acmeHTTP          string
	trustedProxies    listFlag
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certFile, "tls-cert", "", "PEM certificate chain to serve https with (with --tls-key; reloaded on SIGHUP and when the file changes)")
	fs.StringVar(&f.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.Var(&f.acmeDomains, "acme-domain", "get a certificate for this name over ACME (repeatable); the relay then serves https")
	fs.StringVar(&f.acmeEmail, "acme-email", "", "contact address given to the ACME CA (expiry and problem notices)")
	fs.StringVar(&f.acmeDir, "acme-dir", letsEncrypt, "ACME directory URL")
	fs.StringVar(&f.acmeCache, "acme-cache", "", "folder for the ACME account key and certificates (default: acme/ beside --secret-file)")
	fs.StringVar(&f.acmeCARoot, "acme-ca-root", "", "PEM CA certificate to trust for the ACME directory's own https (private or test CAs)")
	fs.StringVar(&f.acmeHTTP, "acme-http-listen", ":80", "with --acme-domain: address of the HTTP-01 listener, which redirects everything else to https (\"\": none; TLS-ALPN-01 on the main listener still works)")
	fs.Var(&f.trustedProxies, "trusted-proxy", "a reverse proxy's address or CIDR whose X-Forwarded-For/-Proto headers are believed (repeatable)")
}

// tlsMode is how the relay serves.
type tlsMode int

const (
	plainHTTP tlsMode = iota
	certFiles
	acmeCerts
)

func (f *tlsFlags) mode() (tlsMode, error) {
	files := f.certFile != "" || f.keyFile != ""
	switch {
	case files && len(f.acmeDomains) > 0:
		return 0, errors.New("--tls-cert/--tls-key and --acme-domain exclude each other")
	case files && (f.certFile == "" || f.keyFile == ""):
		return 0, errors.New("--tls-cert and --tls-key go together")
	case files:
		return certFiles, nil
	case len(f.acmeDomains) > 0:
		return acmeCerts, nil
	}
	return plainHTTP, nil
}

// tlsSetup is what serve needs to listen: a TLS config (nil for plain
// HTTP), and for ACME the HTTP-01 handler. close stops the file watcher.
type tlsSetup struct {
	config     *tls.Config
	acmeHTTP   http.Handler // nil without ACME
	acmeListen string
	close      func()
}

// setup builds the TLS side from the flags. secretFile places the default
// ACME cache.
func (f *tlsFlags) setup(ctx context.Context, secretFile string, logger *slog.Logger) (*tlsSetup, error) {
	mode, err := f.mode()
	if err != nil {
		return nil, err
	}
	switch mode {
	case certFiles:
		r, err := newCertReloader(f.certFile, f.keyFile, logger)
		if err != nil {
			return nil, err
		}
		stop := r.watch(ctx)
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
		return &tlsSetup{config: cfg, close: stop}, nil
	case acmeCerts:
		m, err := f.acmeManager(secretFile)
		if err != nil {
			return nil, err
		}
		cfg := m.TLSConfig() // adds acme-tls/1 for TLS-ALPN-01
		cfg.MinVersion = tls.VersionTLS12
		s := &tlsSetup{config: cfg, close: func() {}}
		if f.acmeHTTP != "" {
			s.acmeHTTP, s.acmeListen = m.HTTPHandler(nil), f.acmeHTTP
		}
		logger.Info("certificates over ACME", "domains", []string(f.acmeDomains), "directory", f.acmeDir, "cache", m.Cache)
		return s, nil
	}
	return &tlsSetup{close: func() {}}, nil
}

func (f *tlsFlags) acmeManager(secretFile string) (*autocert.Manager, error) {
	for _, d := range f.acmeDomains {
		if d == "" || strings.ContainsAny(d, ":/ ") {
			return nil, fmt.Errorf("--acme-domain %q: want a host name such as relay.example.com", d)
		}
	}
	cache := f.acmeCache
	if cache == "" {
		cache = filepath.Join(filepath.Dir(secretFile), "acme")
	}
	httpClient := &http.Client{Timeout: 30 * time.Second}
	if f.acmeCARoot != "" {
		pem, err := os.ReadFile(f.acmeCARoot)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-ca-root %s holds no PEM certificate", f.acmeCARoot)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		httpClient.Transport = tr
	}
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cache),
		HostPolicy: autocert.HostWhitelist(f.acmeDomains...),
		Email:      f.acmeEmail,
		Client:     &acme.Client{DirectoryURL: f.acmeDir, HTTPClient: httpClient},
	}, nil
}

// listenDefault is --listen's default: :443 with ACME (the CA's TLS-ALPN-01
// check and browsers come there), else def.
func (f *tlsFlags) listenDefault(fs *flag.FlagSet, listen *string) {
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "listen" })
	if !set && len(f.acmeDomains) > 0 {
		*listen = ":443"
	}
}

// certReloader serves the latest good certificate pair read from two files.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	onReload          func(error) // tests: called after every reload attempt

	mu   sync.Mutex
	cert *tls.Certificate
}

func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: logger}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the pair; a pair that does not load (a renewal half
// written: new certificate, old key) keeps the previous one in service.
func (r *certReloader) reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		err = fmt.Errorf("load TLS pair %s, %s: %w", r.certFile, r.keyFile, err)
	} else {
		r.mu.Lock()
		r.cert = &c
		r.mu.Unlock()
	}
	if r.onReload != nil {
		r.onReload(err)
	}
	return err
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}

// watch reloads on SIGHUP and when either file (or the folder entry it is
// reached through, for certbot's symlink swaps) changes, until ctx ends or
// the returned stop is called.
func (r *certReloader) watch(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var events <-chan fsnotify.Event
	w, err := fsnotify.NewWatcher()
	if err == nil {
		dirs := map[string]bool{filepath.Dir(r.certFile): true, filepath.Dir(r.keyFile): true}
		for d := range dirs {
			if aerr := w.Add(d); aerr != nil {
				r.log.Warn("cannot watch the TLS files' folder; reload with SIGHUP", "dir", d, "err", aerr)
			}
		}
		events = w.Events
	} else {
		r.log.Warn("cannot watch the TLS files; reload with SIGHUP", "err", err)
	}
	names := map[string]bool{filepath.Clean(r.certFile): true, filepath.Clean(r.keyFile): true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		if w != nil {
			defer w.Close()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if !names[filepath.Clean(ev.Name)] || ev.Op == fsnotify.Chmod {
					continue
				}
			}
			if err := r.reload(); err != nil {
				r.log.Warn("TLS pair not reloaded; the previous one stays in service", "err", err)
			} else {
				r.log.Info("TLS pair reloaded", "cert", r.certFile)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// trustedProxies decides whose X-Forwarded-* headers to believe.
type trustedProxies []netip.Prefix

func parseTrustedProxies(list []string) (trustedProxies, error) {
	var out trustedProxies
	for _, s := range list {
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("--trusted-proxy %q: want an address or CIDR", s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxy %q: want an address or CIDR", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (t trustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// wrap returns h seeing, for requests from a trusted proxy, the client's
// address (the right-most X-Forwarded-For entry that is not itself a
// trusted proxy: entries left of it are whatever the client claimed) as
// RemoteAddr, and X-Forwarded-Proto https as a TLS request. Per-address
// limits and the same-origin check then see the real client. From anyone
// else the headers are ignored, so a client cannot pick its own address.
func (t trustedProxies) wrap(h http.Handler) http.Handler {
	if len(t) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !t.trusts(peer.Addr()) {
			h.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		if client, ok := t.forwardedFor(r.Header.Values("X-Forwarded-For")); ok {
			r2.RemoteAddr = netip.AddrPortFrom(client, 0).String()
		}
		switch strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))) {
		case "https":
			if r2.TLS == nil {
				// The proxy terminated TLS; what the relay derives from
				// r.TLS (the request's own origin) must say https.
				r2.TLS = &tls.ConnectionState{}
			}
		case "http":
			r2.TLS = nil
		}
		h.ServeHTTP(w, r2)
	})
}

func (t trustedProxies) forwardedFor(values []string) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false // garbage: keep the proxy's address
		}
		if !t.trusts(a) || i == 0 {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// listen opens the main listener and, with ACME, the HTTP-01 one, and
// prints where the relay answers.
func (s *tlsSetup) listen(addr string, stdout interface{ Write([]byte) (int, error) }) (main net.Listener, acmeLn net.Listener, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	scheme := "http"
	if s.config != nil {
		scheme = "https"
		ln = tls.NewListener(ln, s.config)
	}
	fmt.Fprintf(stdout, "tether-relay listening on %s://%s\n", scheme, ln.Addr())
	if s.acmeHTTP != nil {
		acmeLn, err = net.Listen("tcp", s.acmeListen)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("ACME HTTP-01 listener: %w", err)
		}
		fmt.Fprintf(stdout, "tether-relay ACME HTTP-01 and https redirect on http://%s\n", acmeLn.Addr())
	}
	return ln, acmeLn, nil
}

// acmeServer serves HTTP-01 challenges and redirects the rest to https.
func (s *tlsSetup) acmeServer(logger *slog.Logger) *http.Server {
	return &http.Server{Handler: s.acmeHTTP, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}
