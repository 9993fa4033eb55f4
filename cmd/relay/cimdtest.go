package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/tether-dev/tether/relay/server"
)

// cimdTestFlag is --oauth-cimd-insecure-test-ca FILE, for end-to-end tests
// only: client metadata documents may then be fetched from loopback and
// private addresses, trusting the CA certificates in FILE. It switches off
// the relay's SSRF guard, so it is refused unless every --public-url is a
// loopback URL (a relay nobody else can reach). Not in the usage text.
type cimdTestFlag struct{ caFile string }

func (c *cimdTestFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&c.caFile, "oauth-cimd-insecure-test-ca", "",
		"TESTS ONLY: fetch client metadata documents from loopback and private addresses, trusting the CA in this PEM file (needs loopback --public-url)")
}

// apply sets the test switches on cfg, or refuses the flag.
func (c *cimdTestFlag) apply(cfg *server.OAuthConfig, publicURLs []string) error {
	if c.caFile == "" {
		return nil
	}
	if cfg == nil {
		return errors.New("--oauth-cimd-insecure-test-ca needs OAuth on (--public-url, --oauth)")
	}
	for _, raw := range publicURLs {
		u, err := url.Parse(raw)
		if err != nil || !loopbackHost(u.Hostname()) {
			return fmt.Errorf("--oauth-cimd-insecure-test-ca is for tests: --public-url %q is not a loopback URL", raw)
		}
	}
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		return fmt.Errorf("--oauth-cimd-insecure-test-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--oauth-cimd-insecure-test-ca: no PEM certificate in %s", c.caFile)
	}
	cfg.CIMDAllowPrivate, cfg.CIMDRootCAs = true, pool
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
