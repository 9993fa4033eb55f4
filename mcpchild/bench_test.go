package mcpchild

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// The overhead of the multiplexer is the difference between these two: the
// same echo call to the same minimal child (rawecho), once through a plain
// single client on the pipes, once through a Session.
//
//	go test -run '^$' -bench . -benchmem ./mcpchild/

const rawEchoPkg = "github.com/tether-dev/tether/internal/testservers/rawecho"

var echoCall = []byte(`"name":"echo","arguments":{"text":"hello, bench"}}`)

func echoRequest(id []byte) []byte {
	return buildRequest(id, "tools/call", append([]byte(`{`), echoCall...))
}

func BenchmarkDirectStdio(b *testing.B) {
	cmd := exec.Command(testbin.Build(b, rawEchoPkg))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	w := bufio.NewWriter(stdin)
	r := newLineReader(stdout, 0)
	call := func(id int) {
		w.Write(echoRequest(strconv.AppendInt(nil, int64(id), 10)))
		w.WriteByte('\n')
		w.Flush()
		if _, err := r.next(); err != nil {
			b.Fatal(err)
		}
	}
	call(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		call(i + 1)
	}
}

func benchChild(b *testing.B) *Child {
	opts := Options{Env: nil, StopGrace: time.Second}
	return startChild(b, Spec{Name: "rawecho", Command: testbin.Build(b, rawEchoPkg)}, opts)
}

func BenchmarkMuxSession(b *testing.B) {
	c := benchChild(b)
	done := make(chan struct{}, 1)
	s := c.NewSession("bench", func(msg, related []byte) { done <- struct{}{} })
	defer s.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Handle(echoRequest(strconv.AppendInt(nil, int64(i), 10)))
		<-done
	}
}

// BenchmarkMuxParallelSessions: one session per goroutine, all on one child.
func BenchmarkMuxParallelSessions(b *testing.B) {
	c := benchChild(b)
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		done := make(chan struct{}, 1)
		s := c.NewSession("p"+strconv.FormatInt(n.Add(1), 10), func(msg, related []byte) { done <- struct{}{} })
		defer s.Close()
		i := 0
		for pb.Next() {
			i++
			s.Handle(echoRequest(strconv.AppendInt(nil, int64(i), 10)))
			<-done
		}
	})
	_ = context.Background
}

// BenchmarkMuxSessionOnCall is BenchmarkMuxSession with a (trivial) call
// observer: the cost of Options.OnCall per call.
func BenchmarkMuxSessionOnCall(b *testing.B) {
	var n atomic.Int64
	opts := Options{StopGrace: time.Second, OnCall: func(CallInfo) { n.Add(1) }}
	c := startChild(b, Spec{Name: "rawecho", Command: testbin.Build(b, rawEchoPkg)}, opts)
	done := make(chan struct{}, 1)
	s := c.NewSession("bench", func(msg, related []byte) { done <- struct{}{} })
	defer s.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Handle(echoRequest(strconv.AppendInt(nil, int64(i), 10)))
		<-done
	}
	b.StopTimer()
	if n.Load() != int64(b.N) {
		b.Fatalf("OnCall called %d times for %d calls", n.Load(), b.N)
	}
}
