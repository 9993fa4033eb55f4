package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	t.Parallel()
	in := "\ufeff# comment\n" +
		"\n" +
		"PLAIN=value\n" +
		"  SPACED = padded value  \n" +
		"export EXPORTED=yes\n" +
		"SINGLE='$NOT expanded # not a comment'\n" +
		"DOUBLE=\"line1\\nline2 \\\"q\\\" \\\\ $HOME\" # comment\n" +
		"HASH=pass#word\n" +
		"COMMENTED=value # trailing comment\n" +
		"EMPTY=\n" +
		"EMPTYQ=\"\"\n" +
		"CRLF=dos\r\n" +
		"DUP=first\n" +
		"DUP=second\n" +
		"URL=https://x.example/?a=1&b=2\n" +
		"exportnot=1\n"
	got, err := parseEnvFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"PLAIN":     "value",
		"SPACED":    "padded value",
		"EXPORTED":  "yes",
		"SINGLE":    "$NOT expanded # not a comment",
		"DOUBLE":    "line1\nline2 \"q\" \\ $HOME",
		"HASH":      "pass#word",
		"COMMENTED": "value",
		"EMPTY":     "",
		"EMPTYQ":    "",
		"CRLF":      "dos",
		"DUP":       "second",
		"URL":       "https://x.example/?a=1&b=2",
		"exportnot": "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d vars, want %d: %v", len(got), len(want), got)
	}
	// 'a''b' is one word in a shell; there is no shell here, so text after
	// the closing quote is an error rather than a silent surprise.
	if _, err := parseEnvFile([]byte("A='it''s'\n")); err == nil {
		t.Error("text after a closing quote must be an error")
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ in, want string }{
		"noequals":   {"A=1\nSECRETVALUE\n", "line 2: expected KEY=VALUE"},
		"badname":    {"\n\n1A=x\n", `line 3: "1A" is not a variable name`},
		"dash":       {"MY-KEY=x\n", `"MY-KEY" is not a variable name`},
		"unclosed":   {"A=\"abc\n", `line 1: A: missing closing " quote`},
		"unclosedsq": {"A='abc\n", `missing closing ' quote`},
		"empty key":  {"=x\n", `"" is not a variable name`},
	}
	for name, c := range cases {
		_, err := parseEnvFile([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("%s: error echoes the line: %v", name, err)
		}
	}
}

func TestLoadEnvFileMissing(t *testing.T) {
	t.Parallel()
	vars, err := loadEnvFile(filepath.Join(t.TempDir(), ".env"))
	if err != nil || len(vars) != 0 {
		t.Errorf("missing .env: %v %v", vars, err)
	}
}
