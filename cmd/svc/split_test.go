package main

import (
	"reflect"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		`python -m x`:                {"python", "-m", "x"},
		`  npx  -y "@a/b c"  `:       {"npx", "-y", "@a/b c"},
		`sh -c 'echo "$HOME" x'`:     {"sh", "-c", `echo "$HOME" x`},
		`a\ b "q\"uote" ''`:          {"a b", `q"uote`, ""},
		`/path/with'quote'd/bin arg`: {"/path/withquoted/bin", "arg"},
	}
	for in, want := range cases {
		got, err := splitCommand(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `"open`} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q): no error", bad)
		}
	}
}
