package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
)

// TestOneAuthServer: with the device flow and OAuth both on (as
// tether-relay serve runs them), one metadata document names both grants
// and the one token endpoint hands each grant_type to its owner.
func TestOneAuthServer(t *testing.T) {
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "relay.db"))
	srv := &Server{Verifier: &Verifier{Secret: testSecret}, Device: &Device{Store: st, Secret: testSecret},
		OAuth: &OAuthConfig{Store: st}}
	ts := httptest.NewUnstartedServer(srv)
	base := "http://" + ts.Listener.Addr().String()
	srv.PublicURLs, srv.Verifier.Audiences, srv.Device.PublicURL = []string{base}, []string{base}, base
	ts.Start()
	t.Cleanup(func() { srv.Close(); ts.Close() })

	resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var m AuthServerMetadata
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if m.Issuer != base || m.TokenEndpoint != base+"/oauth/token" || m.DeviceAuthorizationEndpoint != base+"/oauth/device_authorization" ||
		m.AuthorizationEndpoint != base+"/oauth/authorize" || !m.ClientIDMetadataDocumentSupported {
		t.Fatalf("metadata = %+v", m)
	}
	for _, g := range []string{"authorization_code", "refresh_token", GrantTypeDeviceCode} {
		if !slices.Contains(m.GrantTypesSupported, g) {
			t.Fatalf("grant_types_supported %v lacks %s", m.GrantTypesSupported, g)
		}
	}

	// Each grant reaches its own handler: their refusals differ.
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"grant_type": {GrantTypeDeviceCode}, "device_code": {"nope"}, "client_id": {"tetherd"}}, "invalid_grant"},
		{url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "client_id": {"https://app.example/client.json"}, "code_verifier": {"x"}, "redirect_uri": {"https://app.example/cb"}}, "invalid_grant"},
		{url.Values{"grant_type": {"password"}, "client_id": {"x"}}, "unsupported_grant_type"},
	} {
		resp, err := http.PostForm(base+"/oauth/token", tc.form)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if e.Error != tc.want {
			t.Fatalf("%s: error %q (status %d), want %q", tc.form.Get("grant_type"), e.Error, resp.StatusCode, tc.want)
		}
	}
}
