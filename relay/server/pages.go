package server

import (
	"html/template"
	"net/http"
)

// The relay's own HTML pages outside relay/web (device approval, connect
// codes, OAuth consent, connected apps) look like the web page and are
// held to its Content-Security-Policy: script and style come only from
// the relay's /static (relay/web's app.js and app.css), nothing inline.

// pageCSP is relay/web's policy, less form-action (see securePage).
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// securePage sets the headers of the relay's own HTML pages: no framing
// (clickjacking the Approve button), no caching, only the relay's own
// script and style, no Referer to other sites (a page's URL may carry a
// user code). formsStayHere adds form-action 'self': not on the consent
// page, whose form is answered with a redirect to the client's own URI or
// scheme, and browsers apply form-action to that redirect too.
func securePage(w http.ResponseWriter, formsStayHere bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	csp := pageCSP
	if formsStayHere {
		csp += "; form-action 'self'"
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "same-origin")
}

// pageTemplate parses one page: its body uses {{template "top" TITLE}}
// and {{template "bottom"}} around its content.
func pageTemplate(name, body string) *template.Template {
	return template.Must(template.Must(template.New(name).Parse(pageFrame)).Parse(body))
}

const pageFrame = `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>{{.}} · Tether relay</title>
<link rel="icon" href="/static/icon.svg" type="image/svg+xml"><link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head><body>
<header><a class="brand" href="/">Tether relay</a></header>
<main class="slim">
{{end}}{{define "bottom"}}</main>
</body></html>
{{end}}`
