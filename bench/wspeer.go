//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gorilla/websocket"
)

// wsEchoPeer is the least any bridge can be: it dials the fake relay like
// a bridge and answers every request frame at once with a canned echo
// result, with no child and no MCP work. Its round trip through the fake
// relay is the WebSocket hop alone, so "a bridge's p50 − the floor − this"
// is what that bridge's own work adds. It runs as this binary re-executed
// with -ws-echo-peer, a process of its own like a real bridge, on one
// processor like tetherd.
func wsEchoPeer(relayURL string) error {
	u := "ws" + strings.TrimPrefix(relayURL, "http") + "/v1/connect"
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", u, err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"kind":"hello","protocol":1}`)); err != nil {
		return err
	}
	var out []byte
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return nil // the fake relay closed: done
		}
		id, ok := peekAnyID(data)
		if !ok || !bytes.Contains(data, []byte(`"kind":"mcp"`)) {
			continue // a notification
		}
		out = append(out[:0], `{"kind":"mcp","server":"lean","session":"s1","msg":{"jsonrpc":"2.0","id":`...)
		out = strconv.AppendInt(out, id, 10)
		out = append(out, `,"result":{"protocolVersion":"2025-06-18","content":[{"type":"text","text":"`+echoText+`"}]}}}`...)
		if err := ws.WriteMessage(websocket.TextMessage, out); err != nil {
			return err
		}
	}
}

// startWSEchoPeer runs wsEchoPeer in a process of its own.
func (e *env) startWSEchoPeer(relayURL string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return e.start("ws-echo-peer", []string{"GOMAXPROCS=1"}, self, "-ws-echo-peer", relayURL)
}
