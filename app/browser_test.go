package app

import (
	"slices"
	"strings"
	"testing"
)

func TestOpenBrowserRefusesOtherSchemes(t *testing.T) {
	for _, u := range []string{"file:///etc/passwd", "tether://connect?code=x", "javascript:alert(1)", "https://", "notaurl"} {
		if err := OpenBrowser(t.Context(), u); err == nil || !strings.Contains(err.Error(), "only http(s)") {
			t.Errorf("OpenBrowser(%q) = %v, want a refusal", u, err)
		}
	}
}

func TestBrowserCommand(t *testing.T) {
	const u = "https://relay.example/device?user_code=BCDF-GHJK&x=1"
	for goos, want := range map[string][]string{
		"darwin":  {"open", u},
		"windows": {"rundll32", "url.dll,FileProtocolHandler", u},
		"linux":   {"xdg-open", u},
	} {
		name, args := browserCommand(goos, u)
		if got := append([]string{name}, args...); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", goos, got, want)
		}
	}
}
