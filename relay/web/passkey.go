package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/tether-dev/tether/relay/store"
)

// Passkeys (WebAuthn) are the page's main way in; the password is the
// fallback. Each ceremony (create a passkey, sign in with one) is two
// POSTs from static/app.js: begin returns the options for
// navigator.credentials, finish carries the authenticator's answer. The
// ceremony's state (challenge, options) stays in the store, bound to a
// short-lived cookie; finish takes it, so it is used at most once,
// whatever the outcome. Both POSTs are forms with the page's CSRF token.

const (
	ceremonyCookie = "tether_webauthn"
	// CeremonyTTL is how long a passkey ceremony may take.
	CeremonyTTL = 5 * time.Minute
	// maxPasskeyName bounds a passkey's name.
	maxPasskeyName = 80
)

var errNoRPID = errors.New("passkeys need the relay to be reached by a host name, not an IP address (use http://localhost:PORT or --public-url)")

// relyingParty is the WebAuthn configuration for this request. The RP
// ID is the host of the relay's public URL (passkeys are bound to it),
// or on a relay without one the request's own host.
func (w *Web) relyingParty(r *http.Request) (*webauthn.WebAuthn, error) {
	var host string
	var origins []string
	if w.publicURL != "" {
		u, _ := url.Parse(w.publicURL)
		host = u.Hostname()
		for _, p := range w.relay.PublicURLs {
			if pu, err := url.Parse(p); err == nil && pu.Host != "" {
				origins = append(origins, pu.Scheme+"://"+pu.Host)
			}
		}
	} else {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
	}
	if len(origins) == 0 {
		origins = []string{w.origin(r)}
	}
	if host == "" || net.ParseIP(strings.Trim(host, "[]")) != nil {
		return nil, errNoRPID
	}
	return webauthn.New(&webauthn.Config{
		RPID:          host,
		RPDisplayName: "Tether relay",
		RPOrigins:     origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationPreferred,
		},
	})
}

// waUser is a user as the WebAuthn library sees it.
type waUser struct {
	id     string
	handle []byte
	creds  []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.id }
func (u *waUser) WebAuthnDisplayName() string                { return u.id }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// loadWAUser reads the user's passkeys and user handle. The handle is
// random, never the user id: authenticators store and may show it.
func (w *Web) loadWAUser(ctx context.Context, userID string) (*waUser, error) {
	h, err := w.st.WebAuthnHandle(ctx, userID, randomToken(32))
	if err != nil {
		return nil, err
	}
	handle, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("user %s: stored webauthn handle: %w", userID, err)
	}
	pks, err := w.st.Passkeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	u := &waUser{id: userID, handle: handle}
	for _, p := range pks {
		var c webauthn.Credential
		if err := json.Unmarshal(p.Credential, &c); err != nil {
			return nil, fmt.Errorf("passkey %s: %w", p.ID, err)
		}
		u.creds = append(u.creds, c)
	}
	return u, nil
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(v)
}

// jsonError is what the page's script shows the person.
func jsonError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, map[string]string{"error": msg})
}

// saveCeremony keeps the library's session data for finish and binds it
// to this browser.
func (w *Web) saveCeremony(rw http.ResponseWriter, r *http.Request, kind store.CeremonyKind, userID, linkHash string, sd *webauthn.SessionData) error {
	data, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	id := randomToken(32)
	now := w.now()
	if err := w.st.AddCeremony(r.Context(), store.Ceremony{Hash: hashSecret(id), Kind: kind, UserID: userID, LinkHash: linkHash,
		Data: data, Expires: now.Add(CeremonyTTL)}, now); err != nil {
		return err
	}
	w.setCookie(rw, r, ceremonyCookie, id, CeremonyTTL)
	return nil
}

var errCeremony = errors.New("this passkey request has expired or was used already; try again")

// takeCeremony ends the browser's ceremony and returns it if it is of
// kind and still live.
func (w *Web) takeCeremony(rw http.ResponseWriter, r *http.Request, kind store.CeremonyKind) (store.Ceremony, webauthn.SessionData, error) {
	c, err := r.Cookie(ceremonyCookie)
	if err != nil || c.Value == "" {
		return store.Ceremony{}, webauthn.SessionData{}, errCeremony
	}
	w.setCookie(rw, r, ceremonyCookie, "", 0)
	cer, err := w.st.TakeCeremony(r.Context(), hashSecret(c.Value), w.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrUsed) {
			w.log.Warn("reading a passkey ceremony failed", "err", err)
		}
		return store.Ceremony{}, webauthn.SessionData{}, errCeremony
	}
	var sd webauthn.SessionData
	if cer.Kind != kind || json.Unmarshal(cer.Data, &sd) != nil {
		return store.Ceremony{}, webauthn.SessionData{}, errCeremony
	}
	return cer, sd, nil
}

// beginRegister starts creating a passkey for userID (linkHash: the
// sign-in link the finish will use, or "").
func (w *Web) beginRegister(rw http.ResponseWriter, r *http.Request, userID, linkHash string) {
	wa, err := w.relyingParty(r)
	if err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	u, err := w.loadWAUser(r.Context(), userID)
	if err != nil {
		w.log.Warn("passkey: reading the user failed", "user", userID, "err", err)
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	excl := make([]protocol.CredentialDescriptor, 0, len(u.creds))
	for i := range u.creds {
		excl = append(excl, u.creds[i].Descriptor())
	}
	creation, sd, err := wa.BeginRegistration(u, webauthn.WithExclusions(excl))
	if err != nil {
		w.log.Warn("passkey: begin registration failed", "err", err)
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	if err := w.saveCeremony(rw, r, store.CeremonyRegister, userID, linkHash, sd); err != nil {
		w.log.Warn("passkey: saving the ceremony failed", "err", err)
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(rw, http.StatusOK, creation.Response)
}

// finishRegister checks the authenticator's answer against the
// ceremony and returns the new passkey; check vets the ceremony (whose
// user, which link) before any work.
func (w *Web) finishRegister(rw http.ResponseWriter, r *http.Request, check func(store.Ceremony) bool) (store.Ceremony, store.Passkey, bool) {
	cer, sd, err := w.takeCeremony(rw, r, store.CeremonyRegister)
	if err != nil || !check(cer) {
		jsonError(rw, http.StatusBadRequest, errCeremony.Error())
		return store.Ceremony{}, store.Passkey{}, false
	}
	wa, err := w.relyingParty(r)
	if err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return store.Ceremony{}, store.Passkey{}, false
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(r.PostFormValue("credential")))
	if err != nil {
		jsonError(rw, http.StatusBadRequest, "the browser's answer was not understood")
		return store.Ceremony{}, store.Passkey{}, false
	}
	u, err := w.loadWAUser(r.Context(), cer.UserID)
	if err != nil {
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return store.Ceremony{}, store.Passkey{}, false
	}
	cred, err := wa.CreateCredential(u, sd, parsed)
	if err != nil {
		w.log.Info("passkey: registration refused", "user", cer.UserID, "err", err)
		jsonError(rw, http.StatusBadRequest, "the passkey was not accepted")
		return store.Ceremony{}, store.Passkey{}, false
	}
	data, err := json.Marshal(cred)
	if err != nil {
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return store.Ceremony{}, store.Passkey{}, false
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		name = "Passkey"
	}
	if len(name) > maxPasskeyName {
		name = name[:maxPasskeyName]
	}
	return cer, store.Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID), UserID: cer.UserID, Name: name, Credential: data, Created: w.now()}, true
}

func (w *Web) addPasskey(rw http.ResponseWriter, r *http.Request, p store.Passkey) bool {
	if err := w.st.AddPasskey(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrExists) {
			jsonError(rw, http.StatusConflict, "this passkey is registered already")
			return false
		}
		w.log.Warn("passkey: storing it failed", "err", err)
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return false
	}
	w.audit(r.Context(), p.UserID, "web.passkey.add", p.UserID, "passkey="+p.ID)
	return true
}

// allowCeremony counts a passkey "begin" that needs no session against
// the client address's ceremony budget; over it, 429 with Retry-After.
func (w *Web) allowCeremony(rw http.ResponseWriter, r *http.Request) bool {
	wait, ok := w.limits.allowCeremony(clientIP(r), w.now())
	if !ok {
		rw.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		jsonError(rw, http.StatusTooManyRequests, "Too many passkey requests from this address. Try again in a minute.")
	}
	return ok
}

// handleLinkPasskeyBegin: the sign-in link page's "Create a passkey".
// The link is checked here but used only by finish.
func (w *Web) handleLinkPasskeyBegin(rw http.ResponseWriter, r *http.Request) {
	if !preCSRFOK(r) {
		jsonError(rw, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
		return
	}
	if !w.allowCeremony(rw, r) {
		return
	}
	code := r.PostFormValue("code")
	l, err := w.st.SignInLink(r.Context(), hashSecret(code), w.now())
	if err != nil {
		jsonError(rw, http.StatusGone, "This sign-in link was used already or has expired. Ask for a new one (tether-relay user add).")
		return
	}
	w.beginRegister(rw, r, l.UserID, l.Hash)
}

// handleLinkPasskeyFinish stores the passkey, uses the link and signs in.
func (w *Web) handleLinkPasskeyFinish(rw http.ResponseWriter, r *http.Request) {
	if !preCSRFOK(r) {
		jsonError(rw, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
		return
	}
	linkHash := hashSecret(r.PostFormValue("code"))
	_, p, ok := w.finishRegister(rw, r, func(c store.Ceremony) bool { return c.LinkHash != "" && equalSecret(c.LinkHash, linkHash) })
	if !ok {
		return
	}
	// The link is used first: of two ceremonies racing on one link, only
	// one stores its passkey.
	userID, err := w.st.UseSignInLink(r.Context(), linkHash, w.now())
	if err != nil || userID != p.UserID {
		jsonError(rw, http.StatusGone, "This sign-in link was used already or has expired. Ask for a new one (tether-relay user add).")
		return
	}
	if !w.addPasskey(rw, r, p) {
		return
	}
	if err := w.startSession(rw, r, userID); err != nil {
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(rw, http.StatusOK, map[string]string{"next": "/"})
}

func (w *Web) handleAddPasskeyBegin(rw http.ResponseWriter, r *http.Request, u store.User) {
	w.beginRegister(rw, r, u.ID, "")
}

func (w *Web) handleAddPasskeyFinish(rw http.ResponseWriter, r *http.Request, u store.User) {
	_, p, ok := w.finishRegister(rw, r, func(c store.Ceremony) bool { return c.UserID == u.ID && c.LinkHash == "" })
	if !ok || !w.addPasskey(rw, r, p) {
		return
	}
	writeJSON(rw, http.StatusOK, map[string]string{"next": "/account"})
}

// handlePasskeySignInBegin starts a sign-in with a discoverable passkey:
// the authenticator says whose it is (its user handle).
func (w *Web) handlePasskeySignInBegin(rw http.ResponseWriter, r *http.Request) {
	if !preCSRFOK(r) {
		jsonError(rw, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
		return
	}
	if !w.allowCeremony(rw, r) {
		return
	}
	wa, err := w.relyingParty(r)
	if err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	assertion, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		w.log.Warn("passkey: begin sign-in failed", "err", err)
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	if err := w.saveCeremony(rw, r, store.CeremonyLogin, "", "", sd); err != nil {
		w.log.Warn("passkey: saving the ceremony failed", "err", err)
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(rw, http.StatusOK, assertion.Response)
}

// handlePasskeySignInFinish checks the assertion and signs the user in.
// Attempts count against the same limits as passwords.
func (w *Web) handlePasskeySignInFinish(rw http.ResponseWriter, r *http.Request) {
	if !preCSRFOK(r) {
		jsonError(rw, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
		return
	}
	_, sd, err := w.takeCeremony(rw, r, store.CeremonyLogin)
	if err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(r.PostFormValue("credential")))
	if err != nil {
		jsonError(rw, http.StatusBadRequest, "the browser's answer was not understood")
		return
	}
	handle := base64.RawURLEncoding.EncodeToString(parsed.Response.UserHandle)
	userID, err := w.st.UserByWebAuthnHandle(r.Context(), handle)
	account := userID
	if err != nil {
		account = "handle:" + handle
	}
	if wait, ok := w.limits.allow(account, clientIP(r), w.now()); !ok {
		rw.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		jsonError(rw, http.StatusTooManyRequests, "Too many sign-in attempts. Try again in a minute.")
		return
	}
	wa, err := w.relyingParty(r)
	if err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	user, cred, err := wa.ValidatePasskeyLogin(func(_, userHandle []byte) (webauthn.User, error) {
		if userID == "" {
			return nil, store.ErrNotFound
		}
		u, err := w.st.User(r.Context(), userID)
		if err != nil {
			return nil, err
		}
		if !u.Disabled.IsZero() {
			return nil, errors.New("account disabled")
		}
		return w.loadWAUser(r.Context(), userID)
	}, sd, parsed)
	if err != nil {
		w.log.Info("passkey sign-in refused", "user", userID, "from", r.RemoteAddr, "err", err)
		jsonError(rw, http.StatusUnauthorized, "This passkey is not known here.")
		return
	}
	id := base64.RawURLEncoding.EncodeToString(cred.ID)
	// The library flags a sign counter that went backwards: two copies of
	// the key may exist. Refuse, and say so in the audit trail.
	if cred.Authenticator.CloneWarning {
		w.log.Warn("passkey sign-in refused: its sign counter went backwards (a cloned key?)", "user", userID, "passkey", id)
		w.audit(r.Context(), userID, "web.passkey.clone_warning", userID, "passkey="+id)
		jsonError(rw, http.StatusUnauthorized, "This passkey looks copied (its counter went backwards); use another way in.")
		return
	}
	data, err := json.Marshal(cred)
	if err == nil {
		err = w.st.UsedPasskey(r.Context(), id, data, w.now())
	}
	if err != nil {
		w.log.Warn("passkey: recording its use failed", "err", err)
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	if err := w.startSession(rw, r, user.WebAuthnName()); err != nil {
		jsonError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	next := "/"
	if ret := r.PostFormValue("return"); localPath(ret) {
		next = ret
	}
	writeJSON(rw, http.StatusOK, map[string]string{"next": next})
}

// passkeyRow is a passkey on the account page.
type passkeyRow struct {
	ID, Name      string
	Created, Used time.Time
}

func (w *Web) accountPage(rw http.ResponseWriter, r *http.Request, u store.User, code int, msg string) {
	pks, err := w.st.Passkeys(r.Context(), u.ID)
	if err != nil {
		w.log.Warn("listing passkeys failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	_, hash, err := w.st.PasswordHash(r.Context(), u.ID)
	if err != nil {
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rows := make([]passkeyRow, 0, len(pks))
	for _, p := range pks {
		rows = append(rows, passkeyRow{ID: p.ID, Name: p.Name, Created: p.Created, Used: p.LastUsed})
	}
	w.render(rw, code, "account", map[string]any{"User": u.ID, "CSRF": CSRFToken(r), "Page": "account", "SignedIn": true,
		"Passkeys": rows, "HasPassword": hash != "", "Min": minPassword, "Message": msg,
		// A passkey may be removed when another way in remains.
		"CanRemove": len(rows) > 1 || hash != ""})
}

func (w *Web) handleAccount(rw http.ResponseWriter, r *http.Request, u store.User) {
	w.accountPage(rw, r, u, http.StatusOK, "")
}

func (w *Web) handleRemovePasskey(rw http.ResponseWriter, r *http.Request, u store.User) {
	id := r.PostFormValue("id")
	switch err := w.st.DeletePasskey(r.Context(), u.ID, id); {
	case errors.Is(err, store.ErrLastWayIn):
		w.accountPage(rw, r, u, http.StatusConflict, "That is your only way in: add another passkey or set a password first.")
	case errors.Is(err, store.ErrNotFound):
		w.accountPage(rw, r, u, http.StatusNotFound, "No such passkey.")
	case err != nil:
		w.log.Warn("removing a passkey failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
	default:
		w.audit(r.Context(), u.ID, "web.passkey.remove", u.ID, "passkey="+id)
		http.Redirect(rw, r, "/account", http.StatusSeeOther)
	}
}

// handleSetPassword sets or changes the signed-in user's password.
func (w *Web) handleSetPassword(rw http.ResponseWriter, r *http.Request, u store.User) {
	pw := r.PostFormValue("password")
	if len(pw) < minPassword || len(pw) > maxPassword || pw != r.PostFormValue("password2") {
		w.accountPage(rw, r, u, http.StatusBadRequest, "The two passwords must match and be at least "+strconv.Itoa(minPassword)+" characters.")
		return
	}
	hash, err := hashPassword(pw)
	if err == nil {
		err = w.st.SetPassword(r.Context(), u.ID, hash)
	}
	if err != nil {
		w.log.Warn("setting a password failed", "user", u.ID, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	w.audit(r.Context(), u.ID, "web.password.set", u.ID, "")
	w.accountPage(rw, r, u, http.StatusOK, "Password saved.")
}
