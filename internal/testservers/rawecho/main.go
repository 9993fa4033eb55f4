// Command rawecho is a minimal, fast stdio MCP server with no SDK. It is the
// child used for the benchmark floor, so it decodes only what it needs,
// reuses its buffers, and writes each response with one buffered write and
// one flush.
//
// It speaks only the 2025 (initialize) era: initialize, ping, tools/list,
// tools/call echo; notifications are ignored and every other method,
// server/discover included, gets -32601.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// request holds the fields rawecho looks at. Params stay raw until the
// method says how to decode them.
type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

type initParams struct {
	ProtocolVersion string `json:"protocolVersion"`
}

type callParams struct {
	Name      string `json:"name"`
	Arguments struct {
		Text string `json:"text"`
	} `json:"arguments"`
}

const toolsListResult = `{"tools":[{"name":"echo","description":"returns its text","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}]}`

func main() {
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "rawecho: %v\n", err)
		os.Exit(1)
	}
}

type server struct {
	br  *bufio.Reader // to see whether more requests are already waiting
	w   *bufio.Writer
	out []byte // response under construction, reused
	req request
}

func serve(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	s := &server{w: bufio.NewWriterSize(w, 64<<10), br: br}
	var long []byte // accumulates lines longer than the reader's buffer
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if herr := s.handle(line); herr != nil {
				return herr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
	}
}

func (s *server) handle(line []byte) error {
	s.req = request{ID: s.req.ID[:0], Params: s.req.Params[:0]}
	if err := json.Unmarshal(line, &s.req); err != nil {
		return s.writeError(json.RawMessage("null"), -32700, "parse error")
	}
	id := s.req.ID
	if len(id) == 0 || string(id) == "null" {
		return nil // notification (or a response to nothing we sent): ignore
	}
	switch s.req.Method {
	case "initialize":
		var p initParams
		if err := json.Unmarshal(s.req.Params, &p); err != nil || p.ProtocolVersion == "" {
			p.ProtocolVersion = "2025-11-25"
		}
		s.begin(id)
		s.out = append(s.out, `{"protocolVersion":`...)
		s.out = appendString(s.out, p.ProtocolVersion)
		s.out = append(s.out, `,"capabilities":{"tools":{}},"serverInfo":{"name":"rawecho","version":"1"}}`...)
		return s.end()
	case "ping":
		s.begin(id)
		s.out = append(s.out, `{}`...)
		return s.end()
	case "tools/list":
		s.begin(id)
		s.out = append(s.out, toolsListResult...)
		return s.end()
	case "tools/call":
		var p callParams
		if err := json.Unmarshal(s.req.Params, &p); err != nil {
			return s.writeError(id, -32602, "invalid params")
		}
		if p.Name != "echo" {
			return s.writeError(id, -32602, "unknown tool")
		}
		s.begin(id)
		s.out = append(s.out, `{"content":[{"type":"text","text":`...)
		s.out = appendString(s.out, p.Arguments.Text)
		s.out = append(s.out, `}]}`...)
		return s.end()
	default:
		return s.writeError(id, -32601, "method not found")
	}
}

func (s *server) begin(id json.RawMessage) {
	s.out = append(s.out[:0], `{"jsonrpc":"2.0","id":`...)
	s.out = append(s.out, id...)
	s.out = append(s.out, `,"result":`...)
}

func (s *server) end() error {
	s.out = append(s.out, "}\n"...)
	return s.flush()
}

func (s *server) writeError(id json.RawMessage, code int, msg string) error {
	s.out = append(s.out[:0], `{"jsonrpc":"2.0","id":`...)
	s.out = append(s.out, id...)
	s.out = fmt.Appendf(s.out, `,"error":{"code":%d,"message":`, code)
	s.out = appendString(s.out, msg)
	s.out = append(s.out, "}}\n"...)
	return s.flush()
}

func (s *server) flush() error {
	if _, err := s.w.Write(s.out); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	// Answers to requests that arrived together leave together: flush only
	// once no complete request is left unread, so a burst of N requests
	// costs one write, not N (and a lone request is answered at once).
	if s.br.Buffered() > 0 {
		if next, _ := s.br.Peek(s.br.Buffered()); bytes.IndexByte(next, '\n') >= 0 {
			return nil
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flush stdout: %w", err)
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Its input comes from
// json.Unmarshal, so it is valid UTF-8; only quotes, backslashes and control
// characters need escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
