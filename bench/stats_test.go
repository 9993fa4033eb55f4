//go:build linux

package main

import (
	"testing"
	"time"
)

func TestPct(t *testing.T) {
	var l latencies
	for i := 1; i <= 100; i++ {
		l = append(l, time.Duration(i)*time.Microsecond)
	}
	for q, want := range map[float64]float64{.5: 50, .9: 90, .99: 99, 1: 100} {
		if got := l.pct(q); got != want {
			t.Errorf("pct(%v) = %v, want %v", q, got, want)
		}
	}
	if got := (latencies{}).pct(.5); got != 0 {
		t.Errorf("empty pct = %v", got)
	}
}

func TestPeekID(t *testing.T) {
	for in, want := range map[string]int64{
		`{"jsonrpc":"2.0","id":42,"result":{}}`:                                42,
		`{"kind":"mcp","server":"s","session":"x","msg":{"id": 7,"result":1}}`: 7,
		`{"kind":"rpc.response","id":"13","status":200}`:                       13,
	} {
		got, ok := peekAnyID([]byte(in))
		if !ok || got != want {
			t.Errorf("peekAnyID(%s) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := peekID([]byte(`{"method":"notifications/x"}`)); ok {
		t.Error("peekID found an id in a notification")
	}
	if _, ok := peekID([]byte(`{"id":"13"}`)); ok {
		t.Error("peekID took a string id")
	}
}

func TestCheckEcho(t *testing.T) {
	if err := checkEcho([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello, bench"}]}}`)); err != nil {
		t.Error(err)
	}
	if err := checkEcho([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"hello, bench"}}`)); err == nil {
		t.Error("an error response passed")
	}
}
