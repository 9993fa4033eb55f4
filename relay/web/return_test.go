package web

import "testing"

// TestLocalPath: sign-in returns only to a path on this relay, never to a
// host an attacker's link names.
func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/oauth/authorize?client_id=x&state=y": true,
		"/device?user_code=ABCD-EFGH":          true,
		"/":                                    true,
		"":                                     false,
		"//evil.example/":                      false,
		"/\\evil.example":                      false,
		"https://evil.example/":                false,
		"javascript:alert(1)":                  false,
		"/x\r\nLocation: https://evil":         false,
		"evil.example":                         false,
	} {
		if got := localPath(p); got != want {
			t.Errorf("localPath(%q) = %v, want %v", p, got, want)
		}
	}
}
