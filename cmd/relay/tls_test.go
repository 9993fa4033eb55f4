package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/waitbuf"
)

// serveInProcess runs `serve` with args and returns the lines it prints
// (one listen line per listener) and a channel with run's result.
func serveInProcess(t *testing.T, ctx context.Context, nLines int, args ...string) ([]string, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay log:\n%s", logs.String())
		}
	})
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), pw, logs)
		pw.CloseWithError(fmt.Errorf("serve ended: %v", err))
		done <- err
	}()
	br := bufio.NewReader(pr)
	var lines []string
	for range nLines {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("no listen line: %v", err)
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	go io.Copy(io.Discard, br)
	return lines, done
}

// lockedBuffer collects the relay's log from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func listenAddr(t *testing.T, line, scheme string) string {
	t.Helper()
	i := strings.Index(line, scheme+"://")
	if i < 0 {
		t.Fatalf("line %q has no %s:// address", line, scheme)
	}
	return strings.TrimPrefix(line[i:], scheme+"://")
}

// testCA is a CA made in the test, issuing leaf certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tether test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

// issue writes a leaf for name with the given serial to certFile/keyFile.
func (ca *testCA) issue(t *testing.T, name string, serial int64, certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	// Key first, then the certificate: the reloader sees a mismatched pair
	// in between and must keep the previous one.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// httpsClient trusts roots and dials addr whatever the URL's host, so a
// name such as relay.test reaches the relay on loopback.
func httpsClient(roots *x509.CertPool, addr string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 90 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// servedSerial is the serial of the certificate the relay presents.
func servedSerial(t *testing.T, c *http.Client, url string) int64 {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func writeSecret(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("a-test-secret-of-enough-length-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeTLSFilesReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, "relay.test", 100, certFile, keyFile)

	ctx, cancel := context.WithCancel(context.Background())
	lines, done := serveInProcess(t, ctx, 1, "--listen", "127.0.0.1:0", "--secret-file", writeSecret(t, dir),
		"--tls-cert", certFile, "--tls-key", keyFile)
	addr := listenAddr(t, lines[0], "https")
	c := httpsClient(ca.pool, addr)
	if got := servedSerial(t, c, "https://relay.test/healthz"); got != 100 {
		t.Fatalf("serial %d, want 100", got)
	}

	// A renewal: new files, no restart. The served serial changes once the
	// watcher has reloaded; each attempt is a new connection.
	ca.issue(t, "relay.test", 200, certFile, keyFile)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.CloseIdleConnections()
		got := servedSerial(t, c, "https://relay.test/healthz")
		if got == 200 {
			break
		}
		if got != 100 || time.Now().After(deadline) {
			t.Fatalf("serial %d after renewal, want 200", got)
		}
		time.Sleep(20 * time.Millisecond) // polling an outcome seen only through handshakes
	}

	// Plain HTTP to the TLS port is not served.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain http answered 200 on the TLS listener")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestTLSFlagsConflicts(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-cert", "a.pem"},
		{"--tls-key", "a.pem"},
		{"--tls-cert", "a.pem", "--tls-key", "b.pem", "--acme-domain", "relay.example.com"},
		{"--acme-domain", "https://relay.example.com"},
		{"--trusted-proxy", "not-an-address"},
	} {
		dir := t.TempDir()
		err := run(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0", "--secret-file", writeSecret(t, dir)}, args...), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("serve %v: accepted", args)
		}
	}
}

func TestTrustedProxyHeaders(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.168.1.5"})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		remote string
		tls    bool
	}
	var got seen
	h := proxies.wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = seen{remote: r.RemoteAddr, tls: r.TLS != nil}
	}))
	for _, tc := range []struct {
		name, peer, xff, proto string
		want                   seen
	}{
		{"untrusted peer: headers ignored", "203.0.113.9:5000", "1.2.3.4", "https", seen{"203.0.113.9:5000", false}},
		{"trusted proxy", "10.1.2.3:5000", "198.51.100.7", "https", seen{"198.51.100.7:0", true}},
		{"trusted single address", "192.168.1.5:5000", "198.51.100.7", "http", seen{"198.51.100.7:0", false}},
		{"client-supplied hops left of the proxy's are skipped", "10.1.2.3:5000", "6.6.6.6, 198.51.100.7, 10.9.9.9", "", seen{"198.51.100.7:0", false}},
		{"garbage keeps the proxy's address", "10.1.2.3:5000", "nonsense", "", seen{"10.1.2.3:5000", false}},
		{"address just outside the single address", "192.168.1.6:5000", "198.51.100.7", "https", seen{"192.168.1.6:5000", false}},
	} {
		r, _ := http.NewRequest("GET", "http://relay/healthz", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		got = seen{}
		h.ServeHTTP(nil, r)
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if !proxies.trusts(netip.MustParseAddr("::ffff:10.0.0.1")) {
		t.Error("an IPv4-mapped address of a trusted proxy is not trusted")
	}
}

// TestServeACMEWithPebble runs Let's Encrypt's test CA, pebble, and has the
// relay obtain a certificate for relay.test over ACME. PEBBLE_VA_ALWAYS_VALID
// makes pebble accept the challenge without resolving relay.test (no DNS
// here); everything else (account, order, CSR, issuance, the chain served
// over TLS) is real.
func TestServeACMEWithPebble(t *testing.T) {
	dir := t.TempDir()
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatalf("go list pebble: %v", err)
	}
	pebbleDir := strings.TrimSpace(string(modDir))
	bin := filepath.Join(dir, "pebble")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}
	acmePort, mgmtPort := startPebble(t, dir, bin, pebbleDir)
	minica := filepath.Join(pebbleDir, "test/certs/pebble.minica.pem")

	ctx, cancel := context.WithCancel(context.Background())
	lines, done := serveInProcess(t, ctx, 2, "--listen", "127.0.0.1:0", "--secret-file", writeSecret(t, dir),
		"--acme-domain", "relay.test", "--acme-email", "ops@relay.test", "--acme-dir", "https://"+acmePort+"/dir",
		"--acme-ca-root", minica, "--acme-http-listen", "127.0.0.1:0")
	addr := listenAddr(t, lines[0], "https")
	httpAddr := listenAddr(t, lines[1], "http")

	// Pebble's root is made fresh at each start; fetch it over the
	// management API (served with the minica certificate).
	minicaPEM, _ := os.ReadFile(minica)
	mpool := x509.NewCertPool()
	mpool.AppendCertsFromPEM(minicaPEM)
	mc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mpool}}, Timeout: 30 * time.Second}
	resp, err := mc.Get("https://" + mgmtPort + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root is not PEM: %q", rootPEM)
	}

	c := httpsClient(roots, addr)
	resp, err = c.Get("https://relay.test/healthz")
	if err != nil {
		t.Fatalf("https to the relay with pebble's chain: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over ACME TLS: %s", resp.Status)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "relay.test" {
		t.Fatalf("issued certificate names %v, want [relay.test]", leaf.DNSNames)
	}
	// The certificate is in the cache, so a restart does not ask again.
	if entries, _ := os.ReadDir(filepath.Join(dir, "acme")); len(entries) < 2 {
		t.Fatalf("ACME cache beside the secret file holds %d entries, want account key and certificate", len(entries))
	}
	// A name not asked for gets no certificate.
	other := httpsClient(roots, addr)
	if resp, err := other.Get("https://other.test/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("relay served a certificate for a name not in --acme-domain")
	}

	// The HTTP listener redirects to https.
	hc := httpsClient(nil, httpAddr)
	resp, err = hc.Get("http://relay.test/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://relay.test/healthz" {
		t.Fatalf("http listener: %s Location %q, want 302 to https://relay.test/healthz", resp.Status, resp.Header.Get("Location"))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// startPebble runs pebble on two free loopback ports and returns them once
// both accept connections. freePort's port can be taken by another test
// process before pebble binds it; pebble then exits with "address already
// in use", and is started again on new ports (up to three times). Any other
// exit fails the test with pebble's output.
func startPebble(t *testing.T, dir, bin, pebbleDir string) (acmePort, mgmtPort string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		acmePort, mgmtPort = freePort(t), freePort(t)
		cfg := map[string]any{"pebble": map[string]any{
			"listenAddress":           acmePort,
			"managementListenAddress": mgmtPort,
			"certificate":             filepath.Join(pebbleDir, "test/certs/localhost/cert.pem"),
			"privateKey":              filepath.Join(pebbleDir, "test/certs/localhost/key.pem"),
			"httpPort":                5002, "tlsPort": 5001, // unused: the VA always says valid
			"keyAlgorithm": "ecdsa",
			"profiles":     map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 7776000}},
		}}
		cfgFile := filepath.Join(dir, "pebble.json")
		b, _ := json.Marshal(cfg)
		if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var log waitbuf.Buffer
		pebble := exec.Command(bin, "-config", cfgFile)
		pebble.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_VA_NOSLEEP=1")
		pebble.Stdout, pebble.Stderr = &log, &log
		if err := pebble.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{}) // closed when pebble has exited
		var waitErr error
		go func() { waitErr = pebble.Wait(); close(exited) }()
		stop := func() { pebble.Process.Kill(); <-exited }
		// Pebble logs its addresses just before it listens on them (the
		// management one from another goroutine), and gives no other
		// sign: retry the dials until both accept or pebble exits.
		err := waitAccepting([]string{acmePort, mgmtPort}, exited, 60*time.Second)
		if err == nil {
			t.Cleanup(stop)
			return acmePort, mgmtPort
		}
		stop()
		if attempt < 3 && strings.Contains(log.String(), "address already in use") {
			t.Logf("pebble could not bind its ports (attempt %d), trying others: %s", attempt, lastLine(log.String()))
			continue
		}
		t.Fatalf("pebble: %v (exit: %v)\n%s", err, waitErr, log.String())
	}
}

// waitAccepting returns nil once every address accepts a TCP connection,
// or an error when exited is closed or the time is up.
func waitAccepting(addrs []string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("exited before %s accepted connections", addr)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not accept connections: %v", addr, err)
			}
		}
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
