package server

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// inlineCode finds what a strict CSP would block on a page: a <script>
// without src, a <style> element, a style="" or on…="" attribute.
var inlineCode = regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]|<style[\s>]|\sstyle\s*=|\son[a-z]+\s*=`)

// assertStrictPage checks an HTML page of the relay's own against the
// policy relay/web's pages have: script and style from the relay only,
// nothing inline, no framing, no Referer to other sites.
func assertStrictPage(t *testing.T, what string, h http.Header, body string, formAction bool) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %s", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("%s: CSP %q allows inline code", what, csp)
	}
	if got := strings.Contains(csp, "form-action 'self'"); got != formAction {
		t.Errorf("%s: CSP %q: form-action 'self' %v, want %v", what, csp, got, formAction)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "same-origin" || h.Get("Cache-Control") != "no-store" ||
		h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: headers %v", what, h)
	}
	if m := inlineCode.FindString(body); m != "" {
		t.Errorf("%s: inline code %q, which the CSP blocks:\n%s", what, m, body)
	}
	if !strings.Contains(body, `<link rel="stylesheet" href="/static/app.css">`) {
		t.Errorf("%s: not styled by the relay's app.css:\n%s", what, body)
	}
}

func TestInlineCodeFinder(t *testing.T) {
	for s, want := range map[string]bool{
		`<script>location.href = x</script>`: true, `<script src="/static/app.js" defer></script>`: false,
		`<style>body{}</style>`: true, `<p style="color:red">`: true, `<a onclick="x()">`: true,
		`<p class="code">`: false, `<link rel="stylesheet" href="/static/app.css">`: false,
	} {
		if got := inlineCode.MatchString(s); got != want {
			t.Errorf("inlineCode.MatchString(%q) = %v, want %v", s, got, want)
		}
	}
}
