package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// The approval page of the device flow: /device?user_code=XXXX-XXXX shows
// the signed-in user which computer asks (its name, address and when)
// with Approve and Deny buttons.

// devicePage is what the template renders; one of its parts is set.
type devicePage struct {
	SignIn   bool   // nobody is signed in
	Return   string // with SignIn: this page's path, for the sign-in link to come back to
	Ask      bool   // no (valid) code: show the form to type one
	Message  string // an outcome or a problem
	UserCode string
	Device   string // the computer's name, or "" when unknown
	Version  string
	IP       string
	Asked    string
	CSRF     string
	User     string
}

func (d *Device) handlePage(w http.ResponseWriter, r *http.Request) {
	p := devicePage{}
	uid, ok := d.user(r)
	raw := r.URL.Query().Get("user_code")
	switch {
	case !ok:
		p.SignIn = true
		p.Return = r.URL.RequestURI()
	case raw == "":
		p.Ask = true
	default:
		p = d.pageFor(r, uid, raw)
	}
	d.render(w, http.StatusOK, p)
}

func (d *Device) pageFor(r *http.Request, uid, raw string) devicePage {
	uc, ok := NormalizeUserCode(raw)
	if !ok {
		return devicePage{Ask: true, Message: "That is not a code Tether shows (8 letters, like BCDF-GHJK)."}
	}
	dc, err := d.Store.DeviceCodeByUserCode(r.Context(), uc)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return devicePage{Ask: true, Message: "No computer is asking with code " + uc + ". Check the code your computer shows."}
	case err != nil:
		d.log().Error("device page", "err", err)
		return devicePage{Message: "Something went wrong on the relay; try again."}
	case !d.now().Before(dc.Expires):
		return devicePage{Message: "Code " + uc + " expired. Start the sign-in on your computer again."}
	case dc.State != store.DevicePending:
		return devicePage{Message: "Code " + uc + " was already used."}
	}
	p := devicePage{UserCode: uc, User: uid, CSRF: d.csrfToken(r, uid, uc), Asked: dc.Created.Local().Format(time.DateTime)}
	if info, ok := d.info(dc.DeviceHash); ok {
		p.Device, p.Version, p.IP = info.name, info.version, info.ip
	}
	return p
}

func (d *Device) handlePageSubmit(w http.ResponseWriter, r *http.Request) {
	if !d.allowIP(clientIP(r)) {
		d.render(w, http.StatusTooManyRequests, devicePage{Message: "Too many attempts; wait a minute."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		d.render(w, http.StatusBadRequest, devicePage{Message: "Unreadable form."})
		return
	}
	uid, ok := d.user(r)
	if !ok {
		d.render(w, http.StatusUnauthorized, devicePage{SignIn: true})
		return
	}
	uc, _ := NormalizeUserCode(r.PostForm.Get("user_code"))
	if uc == "" || !d.csrfOK(r, uid, uc) {
		d.render(w, http.StatusForbidden, devicePage{Message: "This form expired. Open the link from your computer again."})
		return
	}
	approve := r.PostForm.Get("action") == "approve"
	err := d.Approve(r.Context(), uc, uid, approve)
	switch {
	case err == nil && approve:
		d.render(w, http.StatusOK, devicePage{Message: "Approved. Your computer connects in a few seconds; you can close this page."})
	case err == nil:
		d.render(w, http.StatusOK, devicePage{Message: "Denied. The computer gets no access."})
	case errors.Is(err, ErrCodeExpired):
		d.render(w, http.StatusGone, devicePage{Message: "Code " + uc + " expired. Start the sign-in on your computer again."})
	case errors.Is(err, ErrCodeUsed):
		d.render(w, http.StatusConflict, devicePage{Message: "Code " + uc + " was already used."})
	case errors.Is(err, ErrUnknownCode):
		d.render(w, http.StatusNotFound, devicePage{Ask: true, Message: "No computer is asking with code " + uc + "."})
	default:
		d.log().Error("device approve", "err", err)
		d.render(w, http.StatusInternalServerError, devicePage{Message: "Something went wrong on the relay; try again."})
	}
}

func (d *Device) render(w http.ResponseWriter, code int, p devicePage) {
	securePage(w, true)
	w.WriteHeader(code)
	if err := devicePageTmpl.Execute(w, p); err != nil {
		d.log().Warn("device page", "err", err)
	}
}

var devicePageTmpl = pageTemplate("device", `{{template "top" "Connect a computer"}}
<h1>Connect a computer</h1>
{{if .Message}}<p role="status">{{.Message}}</p>{{end}}
{{if .SignIn}}<p><a href="/?return={{.Return}}">Sign in to the relay</a> first; you come back here after.</p>
{{else if .Ask}}<form method="get" action="/device" class="create">
<label for="user_code">Code shown on your computer</label>
<input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" required autofocus>
<button type="submit">Continue</button></form>
{{else if .UserCode}}<p>A computer asks to connect its bridge as <strong>{{.User}}</strong>.</p>
<dl class="card facts"><dt>Code</dt><dd class="code">{{.UserCode}}</dd>
<dt>Computer</dt><dd>{{if .Device}}{{.Device}}{{else}}(did not say){{end}}{{if .Version}} · tetherd {{.Version}}{{end}}</dd>
{{if .IP}}<dt>From address</dt><dd>{{.IP}}</dd>{{end}}
<dt>Asked at</dt><dd>{{.Asked}}</dd></dl>
<p>Approve only if this is your computer and it shows the same code.</p>
<form method="post" action="/device" class="actions">
<input type="hidden" name="user_code" value="{{.UserCode}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny" class="secondary">Deny</button>
</form>{{end}}
{{template "bottom"}}`)
