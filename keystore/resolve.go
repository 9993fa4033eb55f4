package keystore

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Source says where a token came from.
type Source string

const (
	SourceTokenFile         Source = "token-file"
	SourceEnv               Source = "env"
	SourceSystemd           Source = "systemd-credential"
	SourceKeychain          Source = "keychain"
	CredentialName                 = "tether-token" // the systemd credential's name
	EnvToken                       = "TETHER_TOKEN"
	EnvTokenFile                   = "TETHER_TOKEN_FILE"
	envCredentialsDirectory        = "CREDENTIALS_DIRECTORY"
)

// ErrNoToken is wrapped by Resolve when no source holds a token.
var ErrNoToken = errors.New("no bridge token found")

// Resolver finds the bridge token. Headless sources come first because a
// user who names one means it; the keychain is the default.
type Resolver struct {
	TokenFile string              // the --token-file flag; "" = use $TETHER_TOKEN_FILE
	Getenv    func(string) string // nil = os.Getenv
	Keychain  Store               // nil = no keychain step (reported as such)
	Account   string              // keychain account: AccountFor(relay URL)
}

// Resolve walks, in order: --token-file or $TETHER_TOKEN_FILE, $TETHER_TOKEN,
// $CREDENTIALS_DIRECTORY/tether-token, the keychain. A source that is named
// but broken (missing file, loose permissions, empty) is an error, never
// skipped. When no source has a token, the error lists every place looked.
func (r Resolver) Resolve() (Token, Source, error) {
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var looked []string
	causes := []error{ErrNoToken}

	file, from := r.TokenFile, "--token-file"
	if file == "" {
		file, from = getenv(EnvTokenFile), "$"+EnvTokenFile
	}
	if file != "" {
		t, err := readTokenFile(file, true)
		if err != nil {
			return "", "", fmt.Errorf("token file from %s: %w", from, err)
		}
		return t, SourceTokenFile, nil
	}
	looked = append(looked, "--token-file / $"+EnvTokenFile+": not set")

	if v := strings.TrimSpace(getenv(EnvToken)); v != "" {
		return Token(v), SourceEnv, nil
	}
	looked = append(looked, "$"+EnvToken+": not set")

	if dir := getenv(envCredentialsDirectory); dir != "" {
		path := filepath.Join(dir, CredentialName)
		// systemd makes the file 0400 in a private directory; no mode check.
		t, err := readTokenFile(path, false)
		if err == nil {
			return t, SourceSystemd, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("systemd credential: %w", err)
		}
		looked = append(looked, "systemd credential "+path+": no such file")
	} else {
		looked = append(looked, "systemd credential $"+envCredentialsDirectory+"/"+CredentialName+": not running under systemd with LoadCredential")
	}

	switch {
	case r.Keychain == nil:
		looked = append(looked, "OS keychain: not used by this command")
	case r.Account == "":
		looked = append(looked, "OS keychain: no relay URL configured to look it up by")
	default:
		t, err := r.Keychain.Get(r.Account)
		switch {
		case err == nil:
			return t, SourceKeychain, nil
		case errors.Is(err, ErrNotFound):
			looked = append(looked, fmt.Sprintf("OS keychain, account %s: no token stored", r.Account))
		case errors.Is(err, ErrUnavailable):
			looked = append(looked, "OS keychain: "+err.Error())
			causes = append(causes, err)
		default:
			return "", "", fmt.Errorf("OS keychain, account %s: %w", r.Account, err)
		}
	}

	var b strings.Builder
	b.WriteString(ErrNoToken.Error())
	b.WriteString(". Looked, in order:")
	for i, l := range looked {
		fmt.Fprintf(&b, "\n  %d. %s", i+1, l)
	}
	b.WriteString("\nTo fix: run `tetherd token set` and paste the token (it goes to the OS keychain);" +
		" on a machine without a keychain, save it in a file only you can read (chmod 600 FILE) and pass" +
		" --token-file FILE or set " + EnvTokenFile + "=FILE, or set " + EnvToken +
		", or give the service a systemd credential (LoadCredential=" + CredentialName + ":FILE).")
	return "", "", &noTokenError{msg: b.String(), causes: causes}
}

// noTokenError is ErrNoToken, and ErrUnavailable too when the keychain could
// not be asked, with the full list of places looked as its text.
type noTokenError struct {
	msg    string
	causes []error
}

func (e *noTokenError) Error() string   { return e.msg }
func (e *noTokenError) Unwrap() []error { return e.causes }

// readTokenFile reads and trims one token file. checkMode refuses, on unix, a
// file that group or others can read: the token would be theirs too.
func readTokenFile(path string, checkMode bool) (Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		return "", fmt.Errorf("%s is a directory, not a token file", path)
	}
	if checkMode && runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s can be read by other users (mode %04o); refusing to use it: run `chmod 600 %s`",
			path, info.Mode().Perm(), path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, MaxTokenBytes+1))
	if err != nil {
		return "", err
	}
	if len(raw) > MaxTokenBytes {
		return "", fmt.Errorf("%s: %w (over %d bytes; is it the right file?)", path, ErrTooBig, MaxTokenBytes)
	}
	t := strings.TrimSpace(string(raw))
	if t == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return Token(t), nil
}

// AccountFor is the keychain account for a relay URL: scheme and host in
// lower case, no trailing slash, so "https://Relay.example.com/" and
// "https://relay.example.com" share one entry. Unparsable input is trimmed
// and used as is.
func AccountFor(relayURL string) string {
	s := strings.TrimSpace(relayURL)
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return strings.TrimRight(s, "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/")
}
