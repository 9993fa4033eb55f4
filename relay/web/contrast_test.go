package web

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cssRule is one "selectors { declarations }" of a stylesheet.
type cssRule struct {
	selector string
	decls    map[string]string
	inner    []cssRule // an at-rule's rules (@media)
}

var cssComment = regexp.MustCompile(`(?s)/\*.*?\*/`)

// parseCSS reads the plain CSS app.css is written in: rules and @media
// blocks of rules, no strings holding braces.
func parseCSS(t *testing.T, src string) []cssRule {
	t.Helper()
	src = cssComment.ReplaceAllString(src, "")
	var parse func(s string) []cssRule
	parse = func(s string) []cssRule {
		var out []cssRule
		for {
			open := strings.IndexByte(s, '{')
			if open < 0 {
				if strings.TrimSpace(s) != "" {
					t.Fatalf("app.css: text outside a rule: %q", s)
				}
				return out
			}
			depth, end := 0, -1
			for i := open; i < len(s) && end < 0; i++ {
				switch s[i] {
				case '{':
					depth++
				case '}':
					if depth--; depth == 0 {
						end = i
					}
				}
			}
			if end < 0 {
				t.Fatalf("app.css: unbalanced braces after %q", s[:open])
			}
			r := cssRule{selector: strings.Join(strings.Fields(s[:open]), " ")}
			body := s[open+1 : end]
			if strings.HasPrefix(r.selector, "@") {
				r.inner = parse(body)
			} else {
				r.decls = map[string]string{}
				for d := range strings.SplitSeq(body, ";") {
					if k, v, ok := strings.Cut(d, ":"); ok {
						r.decls[strings.TrimSpace(k)] = strings.TrimSpace(v)
					}
				}
			}
			out = append(out, r)
			s = s[end+1:]
		}
	}
	return parse(src)
}

// srgbLuminance is WCAG 2's relative luminance of #rrggbb or #rgb.
func srgbLuminance(t *testing.T, hex string) float64 {
	t.Helper()
	h := strings.TrimPrefix(hex, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	if len(h) != 6 {
		t.Fatalf("colour %q is not #rgb or #rrggbb", hex)
	}
	var lin [3]float64
	for i := range 3 {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatalf("colour %q: %v", hex, err)
		}
		c := float64(v) / 255
		if c <= 0.04045 {
			lin[i] = c / 12.92
		} else {
			lin[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*lin[0] + 0.7152*lin[1] + 0.0722*lin[2]
}

// contrastRatio is WCAG 2's (L1 + 0.05) / (L2 + 0.05).
func contrastRatio(t *testing.T, a, b string) float64 {
	la, lb := srgbLuminance(t, a), srgbLuminance(t, b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

var cssVarRef = regexp.MustCompile(`var\(--([a-z-]+)\)`)
var cssColorLiteral = regexp.MustCompile(`#[0-9a-fA-F]{3,6}\b|\brgba?\(|\bhsla?\(`)

// TestContrast: every text/background pair app.css uses meets WCAG AA
// (4.5:1) in the light and the dark scheme, and the focus ring 3:1
// against the page. Pairs come from the rules: a rule setting color and
// background is checked as that pair; one setting only color, against the
// page and a card (text sits on either); one setting only a background,
// with the page's text colour (if it is the page's or a card's background)
// or it must set its own color. Colours outside the custom properties
// would go unchecked, so they are refused.
func TestContrast(t *testing.T) {
	src, err := staticFS.ReadFile("static/app.css")
	if err != nil {
		t.Fatal(err)
	}
	rules := parseCSS(t, string(src))

	// The schemes: light is :root, dark is :root inside the
	// prefers-color-scheme: dark block, over light.
	schemes := map[string]map[string]string{"light": {}, "dark": {}}
	var plain []cssRule
	for _, r := range rules {
		switch {
		case r.selector == ":root":
			for k, v := range r.decls {
				schemes["light"][strings.TrimPrefix(k, "--")] = v
				schemes["dark"][strings.TrimPrefix(k, "--")] = v
			}
		case r.selector == "@media (prefers-color-scheme: dark)":
			for _, in := range r.inner {
				if in.selector != ":root" {
					t.Errorf("the dark scheme's block holds %q: it must only set the custom properties", in.selector)
				}
				for k, v := range in.decls {
					schemes["dark"][strings.TrimPrefix(k, "--")] = v
				}
			}
		case strings.HasPrefix(r.selector, "@"):
			t.Errorf("app.css: %s is not checked by this test; teach it", r.selector)
		default:
			plain = append(plain, r)
		}
	}
	if schemes["light"]["bg"] == "" || schemes["light"]["fg"] == "" || schemes["light"]["card"] == "" {
		t.Fatalf("app.css's :root lacks --bg, --fg or --card: %v", schemes["light"])
	}

	// nonText are rules whose background carries no text (status dots).
	nonText := map[string]bool{".status .dot": true, ".status.online .dot": true, ".status.offline .dot": true}
	pageBackgrounds := []string{"bg", "card"}
	type pair struct{ fg, bg, where string }
	var pairs []pair
	var rings []pair
	varOf := func(r cssRule, prop string) string {
		v, ok := r.decls[prop]
		if !ok {
			return ""
		}
		if cssColorLiteral.MatchString(v) {
			t.Errorf("%s { %s: %s }: a colour outside the custom properties is not checked in both schemes; add a property", r.selector, prop, v)
			return ""
		}
		m := cssVarRef.FindStringSubmatch(v)
		if m == nil {
			return ""
		}
		return m[1]
	}
	for _, r := range plain {
		for _, p := range []string{"border", "border-color", "border-top", "border-bottom"} {
			varOf(r, p) // literals refused here too
		}
		fg := varOf(r, "color")
		bg := varOf(r, "background")
		if bg == "" {
			bg = varOf(r, "background-color")
		}
		switch {
		case fg != "" && bg != "":
			pairs = append(pairs, pair{fg, bg, r.selector})
		case fg != "":
			for _, pb := range pageBackgrounds {
				pairs = append(pairs, pair{fg, pb, r.selector})
			}
		case bg == "bg" || bg == "card":
			pairs = append(pairs, pair{"fg", bg, r.selector + " (inherited text)"})
		case bg != "" && !nonText[r.selector]:
			t.Errorf("%s sets background var(--%s) but no color: set the text colour that goes on it", r.selector, bg)
		}
		for _, p := range []string{"outline", "outline-color"} {
			if o := varOf(r, p); o != "" {
				for _, pb := range pageBackgrounds {
					rings = append(rings, pair{o, pb, r.selector})
				}
			}
		}
	}
	if len(pairs) < 10 {
		t.Fatalf("only %d colour pairs found in app.css: the parser missed rules", len(pairs))
	}

	for _, name := range []string{"light", "dark"} {
		vars := schemes[name]
		check := func(p pair, least float64) {
			fg, bg := vars[p.fg], vars[p.bg]
			if fg == "" || bg == "" {
				t.Errorf("%s scheme: %s uses --%s on --%s, not both defined", name, p.where, p.fg, p.bg)
				return
			}
			ratio := contrastRatio(t, fg, bg)
			msg := fmt.Sprintf("%s scheme: %s: --%s %s on --%s %s is %.2f:1", name, p.where, p.fg, fg, p.bg, bg, ratio)
			if ratio < least {
				t.Errorf("%s, below %.1f:1", msg, least)
			} else if testing.Verbose() {
				t.Log(msg)
			}
		}
		for _, p := range pairs {
			check(p, 4.5)
		}
		for _, p := range rings {
			check(p, 3) // WCAG 1.4.11, non-text contrast
		}
	}
}

// TestContrastRatio pins the formula to WCAG's own examples.
func TestContrastRatio(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want float64
	}{{"#000", "#fff", 21}, {"#fff", "#fff", 1}, {"#767676", "#fff", 4.54}, {"#58a6ff", "#fff", 2.53}} {
		if got := contrastRatio(t, c.a, c.b); math.Abs(got-c.want) > 0.01 {
			t.Errorf("contrast %s on %s: %.3f, want %.2f", c.a, c.b, got, c.want)
		}
	}
}
