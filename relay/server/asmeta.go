package server

import (
	"net/http"
	"slices"
)

// One issuer, two grants: the device authorization grant (RFC 8628, tetherd
// login, device.go) and the authorization code grant for hosted agents
// (oauth*.go) share one RFC 8414 document and one token endpoint, which
// hands each grant_type to its owner.

// initAuthServer registers the shared metadata and token endpoints when
// either grant is on. Both answer any origin: they use no cookies.
func (s *Server) initAuthServer(mux *http.ServeMux) {
	if s.Device == nil && s.oauth == nil {
		return
	}
	s.tokenLimits = newKeyedLimits(tokenEvery, tokenBurst)
	mux.Handle("GET /.well-known/oauth-authorization-server", anyOrigin(s.handleAuthServerMetadata))
	mux.Handle("POST /oauth/token", anyOrigin(s.handleTokenEndpoint))
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/oauth/token"} {
		mux.Handle("OPTIONS "+p, anyOrigin(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	}
}

func (s *Server) handleAuthServerMetadata(w http.ResponseWriter, r *http.Request) {
	if s.oauth == nil {
		s.Device.handleMetadata(w, r)
		return
	}
	m := s.oauth.authServerMetadata()
	if s.Device != nil {
		m.DeviceAuthorizationEndpoint = m.Issuer + "/oauth/device_authorization"
		m.GrantTypesSupported = append(slices.Clip(m.GrantTypesSupported), GrantTypeDeviceCode)
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, m)
}

// handleTokenEndpoint dispatches on grant_type. The form is read once here
// (bounded); the grant's own handler finds it parsed.
func (s *Server) handleTokenEndpoint(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be a form")
		return
	}
	gt := r.PostForm.Get("grant_type")
	// One budget per address for both grants: the endpoint needs no
	// credentials beyond the code or token it is sent, so this is what
	// bounds guessing and store load.
	if wait, ok := s.tokenLimits.allow(clientIP(r), s.clock()); !ok {
		kind := "temporarily_unavailable"
		if gt == GrantTypeDeviceCode {
			kind = "slow_down"
		}
		tooMany(w, wait, kind)
		return
	}
	switch {
	case gt == GrantTypeDeviceCode && s.Device != nil:
		s.Device.handleToken(w, r)
	case gt != GrantTypeDeviceCode && s.oauth != nil:
		s.oauth.handleToken(w, r)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+gt+" is not served here")
	}
}
