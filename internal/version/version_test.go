package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveStampedWins(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v9.9.9"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "ffffffffffffffffffffffffffffffffffffffff"},
		{Key: "vcs.time", Value: "2000-01-01T00:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := resolve("1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-12-03T20:00:00Z", bi)
	if got.Version != "1.2.3" || got.Commit != "0123456789abcdef0123456789abcdef01234567" || got.Date != "2026-12-03T20:00:00Z" || got.Modified {
		t.Fatalf("stamped values lost: %+v", got)
	}
	if got.Go != "go1.26.8" {
		t.Fatalf("Go = %q", got.Go)
	}
	if s := got.String(); !strings.HasPrefix(s, "1.2.3 (commit 0123456789ab, built 2026-12-03T20:00:00Z, go1.26.8 ") {
		t.Fatalf("String() = %q", s)
	}
}

func TestResolveFallsBackToBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abcdefabcdefabcdefabcdefabcdefabcdefabcd"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := resolve("", "", "", bi)
	if got.Version != "dev" || got.Commit != "abcdefabcdefabcdefabcdefabcdefabcdefabcd" || got.Date != "2026-01-02T03:04:05Z" || !got.Modified {
		t.Fatalf("fallback: %+v", got)
	}
	if s := got.String(); !strings.Contains(s, "commit abcdefabcdef+dirty, built 2026-01-02T03:04:05Z") {
		t.Fatalf("String() = %q", s)
	}
	// go install …@v1.4.0 records the module version.
	bi.Main.Version = "v1.4.0"
	if got := resolve("", "", "", bi); got.Version != "v1.4.0" {
		t.Fatalf("module version not used: %+v", got)
	}
}

func TestResolveNothingKnown(t *testing.T) {
	got := resolve("", "", "", nil)
	if got.Version != "dev" || got.Commit != "" || got.Go == "" || got.Platform == "" {
		t.Fatalf("%+v", got)
	}
	if s := got.String(); !strings.Contains(s, "commit unknown, built unknown") {
		t.Fatalf("String() = %q", s)
	}
}
