//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

const (
	statusPass  = "PASS"
	statusMiss  = "MISS"
	statusNA    = "n/a"
	statusError = "ERROR"
)

// row is one figure of the report.
type row struct {
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	// Ratio is Value divided by the figure named in RatioTo (a floor or a
	// peer measured in the same run).
	Ratio   float64 `json:"ratio,omitempty"`
	RatioTo string  `json:"ratioTo,omitempty"`
	Target  string  `json:"target,omitempty"`
	Status  string  `json:"status,omitempty"`
	Note    string  `json:"note,omitempty"`
}

type sectionTime struct {
	Section string  `json:"section"`
	Seconds float64 `json:"seconds"`
}

type report struct {
	Machine   machine       `json:"machine"`
	Quick     bool          `json:"quick"`
	Started   time.Time     `json:"started"`
	Elapsed   float64       `json:"elapsedSeconds"`
	Durations []sectionTime `json:"sectionSeconds"`
	Rows      []row         `json:"rows"`
}

func (r *report) add(rw row) { r.Rows = append(r.Rows, rw) }

// check sets Status from a comparison: ok means the target is met.
func check(ok bool) string {
	if ok {
		return statusPass
	}
	return statusMiss
}

func (r *report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "Tether benchmark — %s (%s)\n", m.Date, map[bool]string{true: "quick smoke", false: "full run"}[r.Quick])
	fmt.Fprintf(w, "%s, %d cores, %s · %s · node %s · git %s\n", m.CPU, m.Cores, m.Kernel, m.Go, m.Node, m.Commit)
	fmt.Fprintf(w, "peers: %s\n\n", formatPeers(m.Peers))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "section\tfigure\tvalue\tratio\ttarget\tstatus\t")
	section := ""
	for _, rw := range r.Rows {
		sec := ""
		if rw.Section != section {
			section, sec = rw.Section, rw.Section
		}
		val := formatValue(rw.Value, rw.Unit)
		if rw.Status == statusNA || rw.Status == statusError {
			val = "—"
		}
		ratio := ""
		if rw.RatioTo != "" {
			ratio = fmt.Sprintf("%.2f× %s", rw.Ratio, rw.RatioTo)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", sec, rw.Name, val, ratio, rw.Target, rw.Status)
	}
	tw.Flush()
	var notes []string
	for _, rw := range r.Rows {
		if rw.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s / %s: %s", rw.Section, rw.Name, rw.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nnotes:\n%s\n", strings.Join(notes, "\n"))
	}
	fmt.Fprintf(w, "\ntotal %.1f s\n", r.Elapsed)
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "µs":
		return fmt.Sprintf("%.0f µs", v)
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	case "calls/s":
		return fmt.Sprintf("%.0f calls/s", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "KiB":
		return fmt.Sprintf("%.1f KiB", v)
	case "s":
		return fmt.Sprintf("%.3f s", v)
	case "/s":
		return fmt.Sprintf("%.2f /s", v)
	case "":
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

func formatPeers(p map[string]string) string {
	var parts []string
	for _, k := range []string{"@tournesol-tag/mcp-bridge", "supergateway", "@modelcontextprotocol/sdk", "github.com/modelcontextprotocol/go-sdk"} {
		if v, ok := p[k]; ok {
			parts = append(parts, k+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}

type machine struct {
	CPU    string            `json:"cpu"`
	Cores  int               `json:"cores"`
	Kernel string            `json:"kernel"`
	Go     string            `json:"go"`
	Node   string            `json:"node"`
	Peers  map[string]string `json:"peers"`
	Date   string            `json:"date"`
	Commit string            `json:"commit"`
	Dirty  bool              `json:"dirty"`
}

func machineInfo(root string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339), Peers: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	} else {
		m.Kernel = runtime.GOOS
	}
	m.Node = cmdOut("", "node", "--version")
	m.Commit = cmdOut(root, "git", "rev-parse", "--short", "HEAD")
	m.Dirty = cmdOut(root, "git", "status", "--porcelain") != ""
	if m.Dirty {
		m.Commit += "+dirty"
	}
	// Peer versions as locked, not as declared.
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if b, err := os.ReadFile(filepath.Join(root, "tools/npm/package-lock.json")); err == nil && json.Unmarshal(b, &lock) == nil {
		for _, name := range []string{"@tournesol-tag/mcp-bridge", "supergateway", "@modelcontextprotocol/sdk"} {
			if p, ok := lock.Packages["node_modules/"+name]; ok {
				m.Peers[name] = p.Version
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "github.com/modelcontextprotocol/go-sdk" {
				m.Peers[f[0]] = f[1]
			}
		}
	}
	return m
}

func cmdOut(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
