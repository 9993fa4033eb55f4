// Package testpg starts a throwaway PostgreSQL server for a test: Debian's
// binaries, a data directory made by initdb, a free loopback port, a
// private socket directory, stopped when the test ends.
//
// PostgreSQL refuses to run as root, so under root the server runs as
// the unprivileged "nobody" user (its files in a directory that user
// owns). Where PostgreSQL is not installed the test is skipped, except in
// CI (CI set), where that is a failure: CI installs it.
package testpg

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a running PostgreSQL.
type Server struct {
	port int
	n    int
	psql string
	run  func(*exec.Cmd) // sets the user to run as
}

// bindir finds the server binaries: `pg_config --bindir`, else the
// newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
func bindir() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(a) - version(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := bindir()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL is not installed (apt-get install postgresql); CI must run the PostgreSQL tests")
		}
		t.Skip("PostgreSQL is not installed (apt-get install postgresql)")
	}
	dir := workDir(t)
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	s := &Server{psql: filepath.Join(bin, "psql"), run: asUser(t, dir)}
	if err := os.Mkdir(sock, 0o700); err != nil {
		t.Fatal(err)
	}
	s.chown(t, sock)

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	s.run(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	s.port = freePort(t)
	pg := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	s.run(pg)
	stderr, err := pg.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	exited := make(chan struct{})
	ready := make(chan struct{})
	var logBuf strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			line := sc.Text()
			if !once {
				logBuf.WriteString(line + "\n")
			}
			if !once && strings.Contains(line, "database system is ready to accept connections") {
				once = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { pg.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGINT is PostgreSQL's fast shutdown: it ends the sessions and stops.
		pg.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			pg.Process.Kill()
			<-exited
		}
	})
	select {
	case <-ready:
	case <-exited:
		<-logDone
		t.Fatalf("postgres exited before it was ready:\n%s", logBuf.String())
	case <-time.After(60 * time.Second):
		t.Fatal("postgres not ready after 60s")
	}
	return s
}

// workDir is the directory for the server's files, removed when t ends.
// Not t.TempDir: the socket's path must stay under the 107 bytes a unix
// socket address holds, which long test names overflow, and under root
// the unprivileged user must be able to enter it (t.TempDir's parent is
// root's alone).
func workDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before postgres binds it; postgres then fails at once and says so.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// DB creates a fresh, empty database and returns its URL, so tests
// sharing a server do not see each other's tables.
func (s *Server) DB(t testing.TB) string {
	t.Helper()
	s.n++
	name := fmt.Sprintf("t%d_%d", s.n, time.Now().UnixNano()%1e6)
	cmd := exec.Command(s.psql, "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres", "-d", "postgres",
		"-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE "+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create database: %v\n%s", err, out)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}
