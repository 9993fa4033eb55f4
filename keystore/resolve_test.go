package keystore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeToken(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
	return p
}

// failing is a Store whose keychain cannot be reached.
type failing struct{ err error }

func (f failing) Get(string) (Token, error) { return "", f.err }
func (f failing) Set(string, Token) error   { return f.err }
func (f failing) Delete(string) error       { return f.err }

func TestResolveOrder(t *testing.T) {
	dir := t.TempDir()
	flagFile := writeToken(t, dir, "flag", "  flag-token-0123456789\n\n", 0o600)
	envFile := writeToken(t, dir, "envfile", "envfile-token\n", 0o600)
	credDir := filepath.Join(dir, "creds")
	if err := os.Mkdir(credDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeToken(t, credDir, CredentialName, "systemd-token\n", 0o400)
	kc := &Memory{}
	const acct = "https://relay.example.com"
	if err := kc.Set(acct, "keychain-token"); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{EnvTokenFile: envFile, EnvToken: " env-token ", "CREDENTIALS_DIRECTORY": credDir}

	// Each step removes the source that answered before, so every one is seen.
	steps := []struct {
		r       Resolver
		want    Token
		wantSrc Source
	}{
		{Resolver{TokenFile: flagFile, Getenv: env(full), Keychain: kc, Account: acct}, "flag-token-0123456789", SourceTokenFile},
		{Resolver{Getenv: env(full), Keychain: kc, Account: acct}, "envfile-token", SourceTokenFile},
		{Resolver{Getenv: env(map[string]string{EnvToken: " env-token ", "CREDENTIALS_DIRECTORY": credDir}), Keychain: kc, Account: acct}, "env-token", SourceEnv},
		{Resolver{Getenv: env(map[string]string{"CREDENTIALS_DIRECTORY": credDir}), Keychain: kc, Account: acct}, "systemd-token", SourceSystemd},
		{Resolver{Getenv: env(map[string]string{"CREDENTIALS_DIRECTORY": dir + "/none"}), Keychain: kc, Account: acct}, "keychain-token", SourceKeychain},
		{Resolver{Getenv: env(nil), Keychain: kc, Account: acct}, "keychain-token", SourceKeychain},
	}
	for i, s := range steps {
		tok, src, err := s.r.Resolve()
		if err != nil || tok != s.want || src != s.wantSrc {
			t.Errorf("step %d: got %q %q %v, want %q %q", i, tok.Reveal(), src, err, s.want.Reveal(), s.wantSrc)
		}
	}
}

func TestResolveNothingFound(t *testing.T) {
	dir := t.TempDir()
	r := Resolver{Getenv: env(map[string]string{"CREDENTIALS_DIRECTORY": dir}), Keychain: &Memory{}, Account: "https://r.example"}
	_, _, err := r.Resolve()
	if !errors.Is(err, ErrNoToken) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	want := []string{
		"no bridge token found. Looked, in order:",
		"1. --token-file / $TETHER_TOKEN_FILE: not set",
		"2. $TETHER_TOKEN: not set",
		"3. systemd credential " + filepath.Join(dir, "tether-token") + ": no such file",
		"4. OS keychain, account https://r.example: no token stored",
		"To fix: run `tetherd token set`",
		"chmod 600", "--token-file FILE", "TETHER_TOKEN_FILE=FILE", "LoadCredential=tether-token:FILE",
	}
	last := -1
	for _, w := range want {
		i := strings.Index(msg, w)
		if i < 0 || i < last {
			t.Fatalf("message lacks %q (or out of order):\n%s", w, msg)
		}
		last = i
	}

	// Keychain unreachable: listed with its reason, and errors.Is says so.
	unavailable := fmt.Errorf("keychain read: no Secret Service (x): %w", ErrUnavailable)
	r = Resolver{Getenv: env(nil), Keychain: failing{unavailable}, Account: "https://r.example"}
	_, _, err = r.Resolve()
	if !errors.Is(err, ErrNoToken) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"not running under systemd", "4. OS keychain: keychain read: no Secret Service", "no OS keychain is reachable"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q:\n%v", w, err)
		}
	}

	// No keychain configured, and no account.
	for r, w := range map[*Resolver]string{
		{Getenv: env(nil)}:                      "4. OS keychain: not used by this command",
		{Getenv: env(nil), Keychain: &Memory{}}: "4. OS keychain: no relay URL configured",
	} {
		if _, _, err := r.Resolve(); !strings.Contains(fmt.Sprint(err), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}

	// Any other keychain failure is an error of its own, not "nothing found".
	r = Resolver{Getenv: env(nil), Keychain: failing{errors.New("boom")}, Account: "a"}
	if _, _, err := r.Resolve(); errors.Is(err, ErrNoToken) || !strings.Contains(fmt.Sprint(err), "boom") {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveTokenFileProblems(t *testing.T) {
	dir := t.TempDir()
	kc := &Memory{}
	_ = kc.Set("a", "keychain-token")

	if runtime.GOOS != "windows" {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
			p := writeToken(t, dir, fmt.Sprintf("loose-%o", mode), "tok", mode)
			_, _, err := Resolver{TokenFile: p, Keychain: kc, Account: "a", Getenv: env(nil)}.Resolve()
			want := fmt.Sprintf("can be read by other users (mode %04o); refusing to use it: run `chmod 600 %s`", mode, p)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--token-file") {
				t.Errorf("mode %o: err = %v", mode, err)
			}
		}
		// The same check applies to $TETHER_TOKEN_FILE, and 0400 is fine.
		p := writeToken(t, dir, "env-loose", "tok", 0o644)
		if _, _, err := (Resolver{Getenv: env(map[string]string{EnvTokenFile: p})}).Resolve(); err == nil ||
			!strings.Contains(err.Error(), "$TETHER_TOKEN_FILE") || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("env file: %v", err)
		}
		p = writeToken(t, dir, "ro", "readonly-token", 0o400)
		if tok, _, err := (Resolver{TokenFile: p}).Resolve(); err != nil || tok != "readonly-token" {
			t.Errorf("0400: %v", err)
		}
	}

	// A named file that is missing, empty or a directory is an error: no
	// silent fallback to the keychain behind it.
	empty := writeToken(t, dir, "empty", " \n\t\n", 0o600)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "no such file",
		empty:                         "is empty",
		t.TempDir():                   "is a directory",
	} {
		_, _, err := Resolver{TokenFile: path, Keychain: kc, Account: "a", Getenv: env(nil)}.Resolve()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", path, err, want)
		}
	}
	big := writeToken(t, dir, "big", strings.Repeat("x", MaxTokenBytes+1), 0o600)
	if _, _, err := (Resolver{TokenFile: big}).Resolve(); !errors.Is(err, ErrTooBig) {
		t.Errorf("big file: %v", err)
	}
}

func TestResolveSystemdCredential(t *testing.T) {
	credDir := t.TempDir()
	// systemd's own mode (0400) and a group-readable one are both accepted:
	// the credentials directory is private to the unit.
	writeToken(t, credDir, CredentialName, "cred-token\n", 0o440)
	tok, src, err := Resolver{Getenv: env(map[string]string{"CREDENTIALS_DIRECTORY": credDir})}.Resolve()
	if err != nil || tok != "cred-token" || src != SourceSystemd {
		t.Fatalf("got %q %q %v", tok.Reveal(), src, err)
	}
	// A credential that exists but is broken is an error, not skipped.
	writeToken(t, credDir, CredentialName, "\n", 0o400)
	if _, _, err := (Resolver{Getenv: env(map[string]string{"CREDENTIALS_DIRECTORY": credDir})}).Resolve(); err == nil ||
		!strings.Contains(err.Error(), "systemd credential") || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty credential: %v", err)
	}
}

func TestResolveUsesProcessEnv(t *testing.T) {
	t.Setenv(EnvTokenFile, "")
	t.Setenv(EnvToken, "from-process-env-123")
	tok, src, err := Resolver{}.Resolve()
	if err != nil || tok != "from-process-env-123" || src != SourceEnv {
		t.Fatalf("got %q %q %v", tok.Reveal(), src, err)
	}
}

func TestAccountFor(t *testing.T) {
	for in, want := range map[string]string{
		"https://Relay.Example.com/":                  "https://relay.example.com",
		"https://relay.example.com":                   "https://relay.example.com",
		" https://u:p@relay.example.com:8443/x/?q#f ": "https://relay.example.com:8443/x",
		"relay.example.com/":                          "relay.example.com",
	} {
		if got := AccountFor(in); got != want {
			t.Errorf("AccountFor(%q) = %q, want %q", in, got, want)
		}
	}
}
