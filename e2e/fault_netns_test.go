//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tether-dev/tether/internal/testbin"
)

// A small network of namespaces for the half-open scenario, touching
// nothing in the machine's own namespace:
//
//	bridge (tetherd) ──veth── router ──veth── relay (tether-relay)
//	10.231.1.2        10.231.1.1  10.231.2.1   10.231.2.2
//
// "Total loss" is a tbf qdisc of 8 bit/s with a one-byte bucket on both of
// the router's interfaces: every packet is dropped (this kernel has no
// netem). The test's MCP clients dial the relay from inside its namespace
// (a socket belongs to the namespace of the thread that creates it).

type netns struct{ name string }

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T, name string) netns {
	t.Helper()
	n := netns{name: fmt.Sprintf("tf%d-%s", os.Getpid()%100000, name)}
	ipCmd(t, "netns", "add", n.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	ipCmd(t, "-n", n.name, "link", "set", "lo", "up")
	return n
}

func (n netns) wrap() []string { return []string{"ip", "netns", "exec", n.name} }

func (n netns) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("in %s: %s: %v\n%s", n.name, strings.Join(args, " "), err, out)
	}
}

// dialer dials from inside the namespace: each dial runs on a fresh OS
// thread moved into it, and the thread is discarded afterwards.
func (n netns) dialer(t *testing.T) func(ctx context.Context, network, addr string) (net.Conn, error) {
	path := filepath.Join("/run/netns", n.name)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// veth links a and b with a veth pair, addresses given in CIDR form.
func veth(t *testing.T, a netns, aIf, aAddr string, b netns, bIf, bAddr string) {
	t.Helper()
	ipCmd(t, "link", "add", aIf, "netns", a.name, "type", "veth", "peer", "name", bIf, "netns", b.name)
	ipCmd(t, "-n", a.name, "addr", "add", aAddr, "dev", aIf)
	ipCmd(t, "-n", b.name, "addr", "add", bAddr, "dev", bIf)
	ipCmd(t, "-n", a.name, "link", "set", aIf, "up")
	ipCmd(t, "-n", b.name, "link", "set", bIf, "up")
}

func macOf(t *testing.T, n netns, ifname string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", n.name, "-o", "link", "show", ifname).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			return f[i+1]
		}
	}
	t.Fatalf("no MAC for %s in %s: %s", ifname, n.name, out)
	return ""
}

// TestFaultHalfOpen: 90 s (soak) or 20 s (CI) of total loss between the
// bridge and the relay, with dynamic and with pinned neighbour entries.
// The bridge notices the drop within its pong wait and serves again within
// 2 s of the network's return, with client sessions intact.
func TestFaultHalfOpen(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		name := map[bool]string{false: "dynamic neighbours", true: "pinned neighbours"}[pinned]
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) { halfOpen(t, pinned, name) })
	}
}

func halfOpen(t *testing.T, pinned bool, name string) {
	loss := pick(20*time.Second, 90*time.Second)
	pong := pick("5s", "40s")
	nb, nr, ns := newNetns(t, "b"), newNetns(t, "r"), newNetns(t, "s")
	veth(t, nb, "b0", "10.231.1.2/24", nr, "r0", "10.231.1.1/24")
	veth(t, nr, "r1", "10.231.2.1/24", ns, "s0", "10.231.2.2/24")
	ipCmd(t, "-n", nb.name, "route", "add", "default", "via", "10.231.1.1")
	ipCmd(t, "-n", ns.name, "route", "add", "default", "via", "10.231.2.1")
	nr.run(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	if pinned {
		ipCmd(t, "-n", nb.name, "neigh", "replace", "10.231.1.1", "lladdr", macOf(t, nr, "r0"), "dev", "b0", "nud", "permanent")
		ipCmd(t, "-n", nr.name, "neigh", "replace", "10.231.1.2", "lladdr", macOf(t, nb, "b0"), "dev", "r0", "nud", "permanent")
		ipCmd(t, "-n", nr.name, "neigh", "replace", "10.231.2.2", "lladdr", macOf(t, ns, "s0"), "dev", "r1", "nud", "permanent")
		ipCmd(t, "-n", ns.name, "neigh", "replace", "10.231.2.1", "lladdr", macOf(t, nr, "r1"), "dev", "s0", "nud", "permanent")
	}

	r := &relayProc{
		bin:    testbin.Build(t, "./cmd/relay"),
		secret: filepath.Join(t.TempDir(), "secret"),
		addr:   "10.231.2.2:8080",
		wrap:   ns.wrap(),
	}
	transports.Store(r.addr, &http.Transport{DialContext: ns.dialer(t)})
	t.Cleanup(func() { transports.Delete(r.addr) })
	r.start(t)
	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	cfg := writeConfig(t, map[string]any{"test": map[string]any{"command": srv}})
	d := startTetherdWrapped(t, nb.wrap(), r.token(t, dev, "bridge"), []string{"TETHER_PONG_WAIT=" + pong},
		// --insecure: the relay is plain http on an address of a test
		// network; tetherd refuses that without being told the network is
		// trusted.
		"run", "--config", cfg, "--relay", r.url(), "--dev-id", dev, "--insecure")
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	l := startLoad(t, r.mcpURL(dev, "test"), client, 4, 2)
	l.waitAllSessions(t, time.Now(), 20*time.Second)
	before := d.stats(t)

	mark := d.log.len()
	for _, dev := range []string{"r0", "r1"} {
		nr.run(t, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "8bit", "burst", "1", "limit", "1")
	}
	cut := time.Now()
	d.log.waitFor(t, mark, "relay connection lost", loss+60*time.Second)
	detect := time.Since(cut)
	if rest := loss - time.Since(cut); rest > 0 {
		time.Sleep(rest) // the outage itself: its length is the scenario
	}
	for _, dev := range []string{"r0", "r1"} {
		nr.run(t, "tc", "qdisc", "del", "dev", dev, "root")
	}
	restored := time.Now()
	rec := l.waitAllSessions(t, restored, 30*time.Second)
	after := d.stats(t)
	l.stop()
	row := l.row(fmt.Sprintf("half-open network, %v total loss, %s", loss, name))
	row.Detection, row.Recovery = detect, rec
	row.Goroutines, row.FDs, row.RSSKiB = growth(before, after)
	row.Note = "pong wait " + pong
	report(row)
	if row.Misrt != 0 {
		t.Errorf("%d answers reached the wrong caller", row.Misrt)
	}
	if rec > 2*time.Second {
		t.Errorf("serving %v after the network returned, want ≤ 2 s", rec)
	}
}
