//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tether-dev/tether/relay/server"
)

// simBridge is a Tether bridge simulated in the harness: it holds a dev's
// slot on the relay and answers initialize and tools/call itself, so the
// relay can be measured with many bridges and no children.
type simBridge struct {
	dev string
	ws  *websocket.Conn
	wmu sync.Mutex
}

const simServer = "echo"

func dialSimBridge(ctx context.Context, r *relayProc, dev string) (*simBridge, error) {
	url := "ws://" + r.addr + "/v1/connect"
	h := http.Header{"Authorization": {"Bearer " + r.token(dev, server.ScopeBridge)}}
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 4 << 10, WriteBufferSize: 4 << 10}
	ws, _, err := d.DialContext(ctx, url, h)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", dev, err)
	}
	hello := `{"kind":"hello","protocol":1,"devId":"` + dev + `","version":"sim","servers":[{"name":"` + simServer + `","state":"ready","era":"2025","toolCount":1}]}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(hello)); err != nil {
		ws.Close()
		return nil, fmt.Errorf("hello %s: %w", dev, err)
	}
	b := &simBridge{dev: dev, ws: ws}
	go b.serve()
	return b, nil
}

type simFrame struct {
	Kind    string          `json:"kind"`
	Server  string          `json:"server"`
	Session string          `json:"session"`
	Msg     json.RawMessage `json:"msg"`
}

type simMsg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

// serve answers requests until the socket ends (gorilla answers pings).
func (b *simBridge) serve() {
	for {
		_, data, err := b.ws.ReadMessage()
		if err != nil {
			return
		}
		var f simFrame
		if json.Unmarshal(data, &f) != nil || f.Kind != "mcp" {
			continue
		}
		var m simMsg
		if json.Unmarshal(f.Msg, &m) != nil || m.Method == "" || len(m.ID) == 0 {
			continue // notifications
		}
		var result string
		switch m.Method {
		case "initialize":
			result = `{"protocolVersion":"` + clientProtocol + `","capabilities":{"tools":{}},"serverInfo":{"name":"sim","version":"1"}}`
		case "tools/call":
			result = `{"content":[{"type":"text","text":"` + echoText + `"}]}`
		default:
			result = `{}`
		}
		out := `{"kind":"mcp","server":` + strconv.Quote(f.Server) + `,"session":` + strconv.Quote(f.Session) +
			`,"msg":{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":` + result + `}}`
		b.wmu.Lock()
		b.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		err = b.ws.WriteMessage(websocket.TextMessage, []byte(out))
		b.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

func (b *simBridge) close() { b.ws.Close() }

// connectSimBridges dials n bridges (dev sim0000…) a few at a time and
// waits until the relay counts them all.
func connectSimBridges(ctx context.Context, r *relayProc, n int) ([]*simBridge, error) {
	out := make([]*simBridge, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, err := dialSimBridge(ctx, r, fmt.Sprintf("sim%04d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[i] = b
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeSimBridges(out)
		return nil, firstErr
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := connectedBridges(ctx, r)
		if err == nil && got >= n {
			return out, nil
		}
		if time.Now().After(deadline) {
			closeSimBridges(out)
			return nil, fmt.Errorf("relay counts %d of %d bridges (err %v)", got, n, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the relay's metrics
	}
}

func closeSimBridges(bs []*simBridge) {
	for _, b := range bs {
		if b != nil {
			b.close()
		}
	}
}

// connectedBridges reads tether_relay_bridges_connected from the relay's
// metrics listener.
func connectedBridges(ctx context.Context, r *relayProc) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.metricsAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "tether_relay_bridges_connected "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no tether_relay_bridges_connected in /metrics")
}
