package server

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// connectedApp is one entry of the user's connected apps: a live grant.
type connectedApp struct {
	ID          string     `json:"id"`
	ClientID    string     `json:"client_id"`
	ClientName  string     `json:"client_name"`
	RedirectURI string     `json:"redirect_uri"`
	Resource    string     `json:"resource"`
	Created     time.Time  `json:"created"`
	LastUsed    *time.Time `json:"last_used,omitempty"`
}

func (o *oauthServer) connectedApps(r *http.Request, user string) ([]connectedApp, error) {
	gs, err := o.cfg.Store.OAuthGrants(r.Context(), user)
	if err != nil {
		return nil, err
	}
	apps := []connectedApp{}
	for _, g := range gs {
		a := connectedApp{ID: g.ID, ClientID: g.ClientID, ClientName: g.ClientName, RedirectURI: g.RedirectURI,
			Resource: g.Resource, Created: g.Created}
		if !g.LastUsed.IsZero() {
			a.LastUsed = &g.LastUsed
		}
		apps = append(apps, a)
	}
	return apps, nil
}

// handleAppsList is GET /oauth/apps: the signed-in user's connected apps.
func (o *oauthServer) handleAppsList(w http.ResponseWriter, r *http.Request) {
	user, ok := o.signedIn(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return
	}
	apps, err := o.connectedApps(r, user)
	if err != nil {
		o.s.log.Error("connected apps", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "could not list apps"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, apps)
}

// handleAppsDelete is DELETE /oauth/apps/{id}. DELETE needs no CSRF
// nonce: a cross-site form cannot send it, and a cross-site fetch needs a
// CORS preflight the relay does not grant.
func (o *oauthServer) handleAppsDelete(w http.ResponseWriter, r *http.Request) {
	user, ok := o.signedIn(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return
	}
	if code, err := o.revokeApp(r, user, r.PathValue("id")); err != nil {
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeApp revokes a grant of user; its tokens stop working at once on
// this relay, and on others sharing the store at their next poll.
func (o *oauthServer) revokeApp(r *http.Request, user, id string) (int, error) {
	g, err := o.cfg.Store.OAuthGrant(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && g.UserID != user {
		return http.StatusNotFound, errors.New("no such app")
	}
	if err != nil {
		return http.StatusInternalServerError, errors.New("could not read the app")
	}
	o.revokeFamily(r, id, "revoked by user:"+user)
	return 0, nil
}

// appGroup is one row of the Connected apps page: a client, with every
// live approval the user gave it (one per authorization: a client that
// signed in again, or for another server, has several).
type appGroup struct {
	ClientID, ClientName string
	Resources            []string
	Approved             time.Time // the latest approval
	LastUsed             *time.Time
	Approvals            int
	CSRF                 string
}

// groupApps folds grants (newest first) into one group per client, in
// the order of each client's newest grant.
func groupApps(apps []connectedApp) []*appGroup {
	var groups []*appGroup
	byClient := map[string]*appGroup{}
	for _, a := range apps {
		g := byClient[a.ClientID]
		if g == nil {
			g = &appGroup{ClientID: a.ClientID, ClientName: a.ClientName, Approved: a.Created}
			byClient[a.ClientID] = g
			groups = append(groups, g)
		}
		g.Approvals++
		if !slices.Contains(g.Resources, a.Resource) {
			g.Resources = append(g.Resources, a.Resource)
		}
		if a.LastUsed != nil && (g.LastUsed == nil || a.LastUsed.After(*g.LastUsed)) {
			g.LastUsed = a.LastUsed
		}
	}
	return groups
}

// handleAppsPage is GET /apps: the connected apps as a page, one row per
// client.
func (o *oauthServer) handleAppsPage(w http.ResponseWriter, r *http.Request) {
	user, ok := o.signedIn(r)
	if !ok {
		toSignIn(w, r, "/apps")
		return
	}
	apps, err := o.connectedApps(r, user)
	if err != nil {
		o.s.log.Error("connected apps", "err", err)
		http.Error(w, "could not list apps", http.StatusInternalServerError)
		return
	}
	groups := groupApps(apps)
	for _, g := range groups {
		g.CSRF = o.nonce("revoke-client", user, g.ClientID)
	}
	securePage(w, true)
	if err := appsTmpl.Execute(w, struct {
		User string
		Apps []*appGroup
	}{user, groups}); err != nil {
		o.s.log.Warn("apps page", "err", err)
	}
}

// handleAppsRevoke is the page's POST /apps/revoke: it revokes every
// approval the user gave the form's client_id. The nonce binds the form
// to the user and the client.
func (o *oauthServer) handleAppsRevoke(w http.ResponseWriter, r *http.Request) {
	user, ok := o.signedIn(r)
	if !ok {
		toSignIn(w, r, "/apps")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "revoke form refused", http.StatusForbidden)
		return
	}
	client := r.PostForm.Get("client_id")
	if client == "" || !o.nonceOK(r.PostForm.Get("csrf"), "revoke-client", user, client) {
		http.Error(w, "revoke form refused", http.StatusForbidden)
		return
	}
	apps, err := o.connectedApps(r, user)
	if err != nil {
		o.s.log.Error("connected apps", "err", err)
		http.Error(w, "could not list apps", http.StatusInternalServerError)
		return
	}
	n := 0
	for _, a := range apps {
		if a.ClientID != client {
			continue
		}
		if code, err := o.revokeApp(r, user, a.ID); err != nil {
			http.Error(w, err.Error(), code)
			return
		}
		n++
	}
	if n == 0 {
		http.Error(w, "no such app", http.StatusNotFound)
		return
	}
	http.Redirect(w, r, "/apps", http.StatusSeeOther)
}

var appsTmpl = pageTemplate("apps", `{{template "top" "Connected apps"}}
<h1>Connected apps</h1><p>Signed in as <strong>{{.User}}</strong>. These apps can call your MCP servers until you revoke them.</p>
{{if .Apps}}<div class="scroll"><table class="apps"><thead><tr><th scope="col">App</th><th scope="col">Can call</th><th scope="col">Approved</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
<tbody>
{{range .Apps}}<tr><td>{{.ClientName}}</td><td>{{range .Resources}}<code>{{.}}</code><br>{{end}}</td><td>{{.Approved.Format "2006-01-02 15:04"}}{{if gt .Approvals 1}} ({{.Approvals}} approvals){{end}}</td>
<td>{{if .LastUsed}}{{.LastUsed.Format "2006-01-02 15:04"}}{{else}}never{{end}}</td>
<td><form method="post" action="/apps/revoke"><input type="hidden" name="client_id" value="{{.ClientID}}"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit" class="danger" aria-label="Revoke {{.ClientName}}">Revoke</button></form></td></tr>
{{end}}</tbody></table></div>{{else}}<p class="hint">No app is connected.</p>{{end}}
{{template "bottom"}}`)
