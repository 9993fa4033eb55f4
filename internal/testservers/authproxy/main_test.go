package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// An upstream that starts its SSE answer before the request body has
// reached it in full must get the rest of the body, and its stream must
// reach the client whole. A half-duplex proxy (Go's HTTP/1 server default)
// consumed and closed the body as soon as the answer started; the proxy's
// transport then failed reading it and cut the upstream connection, so the
// stream died mid-call. That is how the conformance suite lost a tools/call
// whose SSE stream the relay opened with the child's elicitation/create a
// millisecond after the request (a 60 s client timeout); here the body's
// last byte is held back until the stream has started, which makes the
// ordering certain instead of a race.
func TestStreamStartsBeforeRequestBodyEnds(t *testing.T) {
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"elicit"}}`
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("upstream got Authorization %q", got)
		}
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			t.Error(err)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "data: first\n\n")
		rc.Flush()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			fmt.Fprintf(w, "data: body error %v\n\n", err)
			return
		}
		fmt.Fprintf(w, "data: final %d\n\n", len(b))
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	proxy := httptest.NewServer(newProxy(u, "tok"))
	defer proxy.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)-1])

	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the request body was still open (the proxy is not full duplex): %v", err)
	}
	defer resp.Body.Close()
	events := bufio.NewReader(resp.Body)
	if line, err := events.ReadString('\n'); line != "data: first\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	io.WriteString(conn, body[len(body)-1:]) // the body's last byte
	var got []string
	for {
		line, err := events.ReadString('\n')
		if line = strings.TrimSpace(line); line != "" {
			got = append(got, line)
		}
		if err != nil {
			break
		}
	}
	if want := fmt.Sprintf("data: final %d", len(body)); len(got) != 1 || got[0] != want {
		t.Fatalf("after the first event the stream carried %q (err? see above), want [%q]", got, want)
	}
}
