package main

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/relay/server"
)

// The test-only CIMD switch turns off an SSRF guard: it must refuse a
// relay that is reachable from elsewhere.
func TestCIMDTestFlag(t *testing.T) {
	ts := httptest.NewTLSServer(nil)
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := ts.TLS.Certificates[0].Certificate[0]
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), 0o600); err != nil {
		t.Fatal(err)
	}

	off := cimdTestFlag{}
	var cfg server.OAuthConfig
	if err := off.apply(&cfg, []string{"https://relay.example.com"}); err != nil || cfg.CIMDAllowPrivate {
		t.Fatalf("unset flag: %v, allowPrivate %v", err, cfg.CIMDAllowPrivate)
	}
	on := cimdTestFlag{caFile: ca}
	for _, urls := range [][]string{{"https://relay.example.com"}, {"http://127.0.0.1:8080", "http://10.0.0.1:8080"}} {
		if err := on.apply(&server.OAuthConfig{}, urls); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("public URLs %v: %v, want a refusal", urls, err)
		}
	}
	if err := on.apply(nil, []string{"http://127.0.0.1:8080"}); err == nil {
		t.Error("accepted with OAuth off")
	}
	if err := on.apply(&cfg, []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"}); err != nil {
		t.Fatal(err)
	}
	if !cfg.CIMDAllowPrivate || cfg.CIMDRootCAs == nil {
		t.Fatalf("switches not set: %+v", cfg)
	}
	bad := cimdTestFlag{caFile: filepath.Join(t.TempDir(), "missing.pem")}
	if err := bad.apply(&server.OAuthConfig{}, []string{"http://127.0.0.1:1"}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
