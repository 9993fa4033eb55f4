package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

// parseTemplates builds one template set per page: the layout plus the
// page, so every page can define its own "content".
func (w *Web) parseTemplates() error {
	funcs := template.FuncMap{
		"ago":  ago,
		"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"dur":  func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	w.pages = map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" || name == "panel" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/panel.html", p)
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		w.pages[name] = t
	}
	return nil
}

// render writes a page; data is its template's dot, to which render adds
// what the layout needs ("Apps": the nav links the Connected apps page).
func (w *Web) render(rw http.ResponseWriter, code int, page string, data map[string]any) {
	data["Apps"] = w.relay.OAuthOn()
	var buf bytes.Buffer
	if err := w.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		w.log.Error("rendering a page failed", "page", page, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(code)
	rw.Write(buf.Bytes())
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// panelData is what the "My bridge" panel shows.
type panelData struct {
	Dev     string
	Bridge  server.BridgeView
	Servers []serverView
	Calls   []callView
}

type serverView struct {
	Name, State, Era, Error string
	ToolCount, Restarts     int
	Tools                   []toolView
}

type toolView struct{ Name, Description string }

type callView struct {
	server.CallRecord
	Client string // the client token's name, or its jti
}

func (w *Web) panel(r *http.Request, dev string) panelData {
	d := panelData{Dev: dev, Bridge: w.relay.Bridge(dev)}
	for _, si := range d.Bridge.Servers {
		sv := serverView{Name: si.Name, State: si.State, Era: si.Era, Error: si.Error, ToolCount: si.ToolCount, Restarts: si.Restarts}
		for _, raw := range si.Tools {
			var t toolView
			if json.Unmarshal(raw, &t) == nil && t.Name != "" {
				sv.Tools = append(sv.Tools, t)
			}
		}
		d.Servers = append(d.Servers, sv)
	}
	calls := w.relay.RecentCalls(dev)
	names := map[string]string{}
	if len(calls) > 0 {
		toks, err := w.st.Tokens(r.Context(), dev)
		if err != nil {
			w.log.Warn("listing tokens failed", "err", err)
		}
		for _, t := range toks {
			names[t.JTI] = t.Name
		}
	}
	for _, c := range calls {
		cv := callView{CallRecord: c, Client: names[c.TokenID]}
		if cv.Client == "" {
			cv.Client = c.TokenID
		}
		d.Calls = append(d.Calls, cv)
	}
	return d
}

func (w *Web) handleBridge(rw http.ResponseWriter, r *http.Request, u store.User) {
	w.render(rw, http.StatusOK, "bridge", map[string]any{"User": u.ID, "CSRF": CSRFToken(r), "Panel": w.panel(r, u.ID), "Page": "bridge", "SignedIn": true})
}

// eventGap is the least time between two updates of one stream: a burst
// of calls becomes one update, not one per call.
const eventGap = 250 * time.Millisecond

// keepaliveEvery sends an SSE comment on a quiet stream, well inside the
// 60 s after which load balancers drop idle connections.
const keepaliveEvery = 25 * time.Second

// handleEvents streams the "My bridge" panel, rendered, each time it
// changes (event "bridge"; the page swaps it in).
func (w *Web) handleEvents(rw http.ResponseWriter, r *http.Request, u store.User) {
	rc := http.NewResponseController(rw)
	// The relay sets a read deadline for request bodies; a stream lives
	// past it.
	_ = rc.SetReadDeadline(time.Time{})
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("X-Accel-Buffering", "no")
	rw.WriteHeader(http.StatusOK)
	keepalive := time.NewTicker(keepaliveEvery)
	defer keepalive.Stop()
	tmpl := w.pages["bridge"]
	for {
		// Taken before the state is read: a change in between wakes us.
		changed := w.relay.Changes(u.ID)
		var buf bytes.Buffer
		if err := tmpl.ExecuteTemplate(&buf, "panel", w.panel(r, u.ID)); err != nil {
			w.log.Error("rendering the bridge panel failed", "err", err)
			return
		}
		if err := writeEvent(rw, "bridge", buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	wait:
		for {
			select {
			case <-r.Context().Done():
				return
			case <-w.done:
				return
			case <-keepalive.C:
				if _, err := rw.Write([]byte(": keepalive\n\n")); err != nil {
					return
				}
				if err := rc.Flush(); err != nil {
					return
				}
			case <-changed:
				break wait
			}
		}
		select {
		case <-time.After(eventGap):
		case <-r.Context().Done():
			return
		case <-w.done:
			return
		}
	}
}

// writeEvent writes one SSE event; every line of data gets its own
// "data:" prefix.
func writeEvent(rw http.ResponseWriter, event string, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: " + event + "\n")
	for line := range bytes.Lines(data) {
		b.WriteString("data: ")
		b.Write(bytes.TrimRight(line, "\r\n"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := rw.Write(b.Bytes())
	return err
}
