// Package version says which build of Tether is running: the release
// version, the commit and the build date stamped in by the release build
// (-ldflags -X), with what the Go toolchain recorded as the fallback, so a
// plain `go build` or `go install` from a checkout still names its commit.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the release build (packaging/build.sh):
//
//	-X github.com/tether-dev/tether/internal/version.version=1.2.3
//	-X github.com/tether-dev/tether/internal/version.commit=<sha>
//	-X github.com/tether-dev/tether/internal/version.date=<RFC 3339>
var version, commit, date string

// Info is one build's identity.
type Info struct {
	Version  string `json:"version"`  // "1.2.3", a module version, or "dev"
	Commit   string `json:"commit"`   // full revision, "" when unknown
	Date     string `json:"date"`     // build (or commit) time, RFC 3339, "" when unknown
	Modified bool   `json:"modified"` // built from a tree with uncommitted changes
	Go       string `json:"go"`       // toolchain, e.g. "go1.26.8"
	Platform string `json:"platform"` // GOOS/GOARCH
}

// Get returns this binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, bi)
}

// resolve prefers the stamped values and fills what is missing from the
// build info: the module version (set by `go install …@v1.2.3`), and the
// vcs.* settings `go build` records inside a git checkout.
func resolve(v, c, d string, bi *debug.BuildInfo) Info {
	info := Info{Version: v, Commit: c, Date: d, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			case "vcs.modified":
				// Only meaningful when the commit came from the same place.
				info.Modified = s.Value == "true" && c == ""
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String is the one line `version` commands print after the program's name:
// "1.2.3 (commit 0123456789ab, built 2026-12-03T20:00:00Z, go1.26.8 linux/amd64)".
func (i Info) String() string {
	c := i.Commit
	if c == "" {
		c = "unknown"
	} else if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "+dirty"
	}
	d := i.Date
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, built %s, %s %s)", i.Version, c, d, i.Go, i.Platform)
}
