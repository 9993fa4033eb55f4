package mcpchild

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The helper mode of this test binary plays tetherd: it records its groups
// in $MCPCHILD_TEST_RECORD, starts a wrapper whose background job escapes
// Pdeathsig, prints "<leader pid> <background pid>" and waits to be killed.
const helperEnv = "MCPCHILD_TEST_HELPER"

func init() {
	if os.Getenv(helperEnv) != "tetherd" {
		return
	}
	if _, err := TrackGroups(os.Getenv("MCPCHILD_TEST_RECORD"), nil); err != nil {
		fmt.Fprintln(os.Stderr, "track:", err)
		os.Exit(2)
	}
	spec := Spec{Name: "wrapper", Command: "/bin/sh", Args: []string{"-c", "sleep 600 & echo $!; exec sleep 601"}}
	p, err := startProcess(spec, "/bin/sh", procOptions{Env: os.Environ()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(2)
	}
	bg, err := bufio.NewReader(p.Stdout).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(2)
	}
	fmt.Printf("%d %s", p.Pid, bg)
	select {} // until killed
}

// untrackGroups undoes TrackGroups in this test process, so later tests do
// not write the record.
func untrackGroups() {
	groupRecord.mu.Lock()
	groupRecord.path = ""
	groupRecord.live = nil
	groupRecord.mu.Unlock()
}

// TestKilledParentLeavesNothingAfterNextStart: kill -9 of the "tetherd"
// helper takes its child's group leader with it at once (Pdeathsig); the
// wrapper's background job, which Pdeathsig cannot reach, is killed by the
// next start from the group record.
func TestKilledParentLeavesNothingAfterNextStart(t *testing.T) {
	record := filepath.Join(t.TempDir(), "children.json")
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=tetherd", "MCPCHILD_TEST_RECORD="+record)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = helper.Process.Kill()
		_ = helper.Wait()
		t.Fatalf("helper said nothing: %v", err)
	}
	var leader, bg int
	if _, err := fmt.Sscanf(line, "%d %d", &leader, &bg); err != nil {
		t.Fatalf("helper line %q: %v", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-leader, syscall.SIGKILL) }) // only if the test failed midway

	var recorded []groupEntry
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &recorded); err != nil || len(recorded) != 1 || recorded[0].Pgid != leader {
		t.Fatalf("record = %s (%v), want the group %d", b, err, leader)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()

	if left := settled(func() []int { return aliveOf(leader) }); len(left) > 0 {
		t.Fatalf("group leader %d survived the kill -9 of its parent (Pdeathsig)", leader)
	}
	// What Pdeathsig cannot reach: the re-parented background job.
	if members := liveGroupMembers(t, leader); len(members) != 1 || !strings.HasPrefix(members[0], strconv.Itoa(bg)+" ") {
		t.Fatalf("group %d after the kill: %q, want just the background sleep %d", leader, members, bg)
	}

	t.Cleanup(untrackGroups)
	killed, err := TrackGroups(record, nil)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("TrackGroups killed %d groups, want 1", killed)
	}
	if left := settled(func() []string { return liveGroupMembers(t, leader) }); len(left) > 0 {
		t.Fatalf("survivors of group %d after the next start: %q", leader, left)
	}
	b, _ = os.ReadFile(record)
	if string(b) != "[]" {
		t.Fatalf("record after the next start = %s, want []", b)
	}
}

// TestTrackGroupsSparesReusedPID: a record whose leader PID now belongs to a
// process started at another time is not ours; its group is left alone.
func TestTrackGroupsSparesReusedPID(t *testing.T) {
	p := startSh(t, "exec sleep 600", procOptions{})
	info, ok := procInfo(p.Pid)
	if !ok {
		t.Fatal("no /proc entry for the child")
	}
	record := filepath.Join(t.TempDir(), "children.json")
	stale := []groupEntry{{Pgid: p.Pid, Start: info.start - 1, Sid: info.sid, Boot: bootID()}}
	b, _ := json.Marshal(stale)
	if err := os.WriteFile(record, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(untrackGroups)
	killed, err := TrackGroups(record, nil)
	if err != nil || killed != 0 {
		t.Fatalf("TrackGroups = %d, %v; want 0 killed", killed, err)
	}
	select {
	case <-p.Done():
		t.Fatal("a process whose PID matched a stale record was killed")
	case <-time.After(100 * time.Millisecond): // a kill would have been sent before TrackGroups returned; 100 ms is its delivery
	}
	// A child started under tracking is recorded while it runs and
	// forgotten once stopped.
	q := startSh(t, "exec sleep 600", procOptions{})
	if got := recordedPgids(t, record); !slices.Equal(got, []int{q.Pid}) {
		t.Fatalf("record = %v while %d runs", got, q.Pid)
	}
	if err := q.stop(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := recordedPgids(t, record); len(got) != 0 {
		t.Fatalf("record = %v after the stop, want empty", got)
	}
}

func recordedPgids(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var es []groupEntry
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatal(err)
	}
	out := []int{}
	for _, e := range es {
		out = append(out, e.Pgid)
	}
	return out
}
