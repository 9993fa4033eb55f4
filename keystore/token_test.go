package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// secret is long and distinctive; its last 4 characters are "WXYZ".
const secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXY6YWxpY2UifQ.s3cr3t-s1gnature-WXYZ"

// leaks reports whether out holds the secret or any 8-character piece of it
// other than the shown tail, so a partial leak fails too.
func leaks(out string) bool {
	body := secret[:len(secret)-4]
	for i := 0; i+8 <= len(body); i++ {
		if strings.Contains(out, body[i:i+8]) {
			return true
		}
	}
	return false
}

func TestTokenString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"short", "…"},
		{"fifteen-chars-x", "…"},
		{"sixteen-chars-xy", "…s-xy"},
		{secret, "…WXYZ"},
		{strings.Repeat("a", 20) + "ééßü", "…ééßü"},
	} {
		if got := Token(c.in).String(); got != c.want {
			t.Errorf("Token(%d bytes).String() = %q, want %q", len(c.in), got, c.want)
		}
	}
	if Token(secret).Reveal() != secret {
		t.Fatal("Reveal does not return the secret")
	}
}

func TestTokenRedactedInFmt(t *testing.T) {
	tok := Token(secret)
	type holder struct {
		Name  string
		Token Token
		Ptr   *Token
	}
	h := holder{Name: "bridge", Token: tok, Ptr: &tok}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10.3s", "%T %v"} {
		for _, arg := range []any{tok, h, &h, []Token{tok}, map[string]Token{"k": tok}} {
			out := fmt.Sprintf(verb, arg)
			if leaks(out) {
				t.Errorf("Sprintf(%q, %T) leaks: %s", verb, arg, out)
			}
		}
	}
	if got := fmt.Sprintf("%v|%#v", tok, tok); got != `…WXYZ|keystore.Token("…WXYZ")` {
		t.Errorf("got %s", got)
	}
	if got := fmt.Sprint(tok) + fmt.Sprintln(tok); got != "…WXYZ…WXYZ\n" {
		t.Errorf("Sprint/Sprintln: %q", got)
	}
	if err := fmt.Errorf("dial with %v: %w", tok, errors.New("refused")); leaks(err.Error()) {
		t.Errorf("error leaks: %v", err)
	}
}

func TestTokenRedactedInSlog(t *testing.T) {
	tok := Token(secret)
	type cfg struct {
		Relay string
		Token Token
	}
	for name, mk := range map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(mk(&buf))
		log.Info("dial", "token", tok, slog.Any("tok2", tok), "cfg", cfg{"https://r", tok}, "ptr", &tok)
		log.With("token", tok).Info("with")
		log.Info("group", slog.Group("g", "token", tok))
		out := buf.String()
		if leaks(out) {
			t.Errorf("%s handler leaks:\n%s", name, out)
		}
		if !strings.Contains(out, "…WXYZ") {
			t.Errorf("%s handler: redacted form missing:\n%s", name, out)
		}
	}
}

func TestTokenRedactedInJSON(t *testing.T) {
	tok := Token(secret)
	v := struct {
		Token  Token            `json:"token"`
		Ptr    *Token           `json:"ptr"`
		List   []Token          `json:"list"`
		Values map[string]Token `json:"values"`
		Any    any              `json:"any"`
	}{tok, &tok, []Token{tok}, map[string]Token{"a": tok}, tok}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if leaks(string(out)) {
		t.Fatalf("json leaks: %s", out)
	}
	want := `{"token":"…WXYZ","ptr":"…WXYZ","list":["…WXYZ"],"values":{"a":"…WXYZ"},"any":"…WXYZ"}`
	if string(out) != want {
		t.Errorf("json = %s, want %s", out, want)
	}
	if out, _ := json.Marshal(Token("")); string(out) != `""` {
		t.Errorf("empty token json = %s", out)
	}
}

func TestTokenRedactedInPanic(t *testing.T) {
	tok := Token(secret)
	for _, p := range []func(){
		func() { panic(tok) },
		func() { panic(fmt.Sprintf("bad token %v", tok)) },
		func() { panic(fmt.Errorf("auth with %s failed", tok)) },
	} {
		msg := func() (msg string) {
			defer func() { msg = fmt.Sprint(recover()) }()
			p()
			return ""
		}()
		if leaks(msg) || !strings.Contains(msg, "…WXYZ") {
			t.Errorf("recovered panic: %q", msg)
		}
	}
}

// TestTokenRedactedInCrash lets the runtime print an unrecovered panic(Token)
// in a child process (the real crash report) and reads its stderr.
func TestTokenRedactedInCrash(t *testing.T) {
	if os.Getenv("KEYSTORE_TEST_CRASH") == "1" {
		panic(Token(secret))
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestTokenRedactedInCrash$")
	cmd.Env = append(os.Environ(), "KEYSTORE_TEST_CRASH=1", "GOTRACEBACK=all",
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	out, err := cmd.CombinedOutput()
	var xe *exec.ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("child did not crash: %v\n%s", err, out)
	}
	if leaks(string(out)) || !strings.Contains(string(out), "panic: …WXYZ") {
		t.Fatalf("crash output:\n%s", out)
	}
}
