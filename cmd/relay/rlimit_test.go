package main

import (
	"strings"
	"testing"
)

func TestFileLimitAdvice(t *testing.T) {
	for _, tc := range []struct {
		soft     uint64
		maxConns int
		want     string // "" or a part of the advice
	}{
		{65536, 8192, ""},
		{8192 + fileReserve, 8192, ""},
		{1024, 8192, "LimitNOFILE=8448"},
		{1024, 8192, "lower --max-conns below 768"},
		{1024, 500, ""},
		{1024, 0, "LimitNOFILE=65792"},
	} {
		got := fileLimitAdvice(tc.soft, tc.maxConns)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("fileLimitAdvice(%d, %d) = %q, want %q", tc.soft, tc.maxConns, got, tc.want)
		}
	}
}
