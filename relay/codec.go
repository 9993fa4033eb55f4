package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/jsonscan"
	"github.com/tether-dev/tether/relay/internal/wire"
)

// The frame codec writes and reads the envelope by hand. Relayed messages
// (msg, body) are passed through as raw bytes: validated by a scan, never
// decoded, re-compacted or copied on decode. encoding/json did all three and
// was a quarter of tetherd's CPU under load.

// frameField numbers the Frame fields in their wire order (the struct's).
type frameField uint8

const (
	fKind frameField = iota
	fProtocol
	fDevID
	fVersion
	fInstance
	fHostname
	fServers
	fTools
	fServer
	fSession
	fMsg
	fRelated
	fID
	fMethod
	fPath
	fBody
	fStatus
	fCode
	fMessage
	fieldCount
	fUnknown = fieldCount
)

var fieldNames = [fieldCount]string{
	"kind", "protocol", "devId", "version", "instance", "hostname", "servers", "tools", "server", "session",
	"msg", "related", "id", "method", "path", "body", "status", "code", "message",
}

func lookupField(key []byte) frameField {
	switch string(key) {
	case "kind":
		return fKind
	case "protocol":
		return fProtocol
	case "devId":
		return fDevID
	case "version":
		return fVersion
	case "instance":
		return fInstance
	case "hostname":
		return fHostname
	case "servers":
		return fServers
	case "tools":
		return fTools
	case "server":
		return fServer
	case "session":
		return fSession
	case "msg":
		return fMsg
	case "related":
		return fRelated
	case "id":
		return fID
	case "method":
		return fMethod
	case "path":
		return fPath
	case "body":
		return fBody
	case "status":
		return fStatus
	case "code":
		return fCode
	case "message":
		return fMessage
	}
	return fUnknown
}

// decodeFast decodes the common shape of a frame: one object whose known
// keys are spelled exactly and appear once, values of the right types. It
// returns false for anything else (including every invalid input), and
// DecodeFrame asks encoding/json instead, so the two never disagree.
func decodeFast(d []byte) (Frame, bool) {
	var f Frame
	i := jsonscan.SkipSpace(d, 0)
	var seen uint32
	end, ok := jsonscan.Object(d, i, 0, func(key, val []byte, keyEscaped bool) bool {
		if keyEscaped {
			return false
		}
		field := lookupField(key)
		if field == fUnknown {
			// encoding/json matches keys case-insensitively.
			for _, name := range fieldNames {
				if bytes.EqualFold(key, []byte(name)) {
					return false
				}
			}
			return true
		}
		if seen&(1<<field) != 0 {
			return false
		}
		seen |= 1 << field
		return f.set(field, val)
	})
	if !ok || jsonscan.SkipSpace(d, end) != len(d) {
		return Frame{}, false
	}
	return f, true
}

// set stores one valid JSON value v in field, as json.Unmarshal would; false
// means a type mismatch.
func (f *Frame) set(field frameField, v []byte) bool {
	null := v[0] == 'n'
	switch field {
	case fTools:
		f.Tools = v
	case fMsg:
		f.Msg = v
	case fRelated:
		f.Related = v
	case fID:
		f.ID = v
	case fBody:
		f.Body = v
	case fProtocol, fStatus:
		if null {
			return true // null leaves a number as it is
		}
		if c := v[0]; c != '-' && (c < '0' || c > '9') {
			return false
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || int64(int(n)) != n {
			return false
		}
		if field == fProtocol {
			f.Protocol = int(n)
		} else {
			f.Status = int(n)
		}
	case fServers:
		if null {
			return true
		}
		if v[0] != '[' {
			return false
		}
		return json.Unmarshal(v, &f.Servers) == nil
	default:
		if null {
			return true
		}
		if v[0] != '"' {
			return false
		}
		s, ok := jsonString(v)
		if !ok {
			return false
		}
		switch field {
		case fKind:
			f.Kind = Kind(s)
		case fDevID:
			f.DevID = s
		case fVersion:
			f.Version = s
		case fInstance:
			f.Instance = s
		case fHostname:
			f.Hostname = s
		case fServer:
			f.Server = s
		case fSession:
			f.Session = s
		case fMethod:
			f.Method = s
		case fPath:
			f.Path = s
		case fCode:
			f.Code = s
		case fMessage:
			f.Message = s
		}
	}
	return true
}

// jsonString decodes a valid JSON string literal. Plain ASCII/UTF-8 without
// escapes is the fast path; the rest goes to encoding/json, which also
// replaces invalid UTF-8 the way the reference decoder does.
func jsonString(v []byte) (string, bool) {
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// inlineRawMax is the largest msg or body copied into the envelope; a larger
// one is written to the socket from the caller's own buffer.
const inlineRawMax = 4 << 10

// EncodeFrame encodes a frame: json.Marshal's output for the envelope
// (without HTML escaping) with the raw fields (Msg, Related, ID, Body,
// Tools) appended as given rather than compacted. Raw fields must hold valid
// JSON (they are checked by a fast scan; an invalid one is an error), and the
// frame must fit in MaxFrameBytes.
func EncodeFrame(f Frame) ([]byte, error) {
	e, err := EncodeFrameParts(f)
	if err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

// EncodeFrameParts is EncodeFrame without the copy of a large msg or body,
// which stays in the message's Raw part: it must not change until the
// message is written. It is for the two writers, the Client's and the relay
// server's; the result type is internal to relay/.
func EncodeFrameParts(f Frame) (wire.Message, error) {
	var e wire.Message
	size := 64 + len(f.Kind) + len(f.DevID) + len(f.Version) + len(f.Instance) + len(f.Hostname) + len(f.Tools) + len(f.Server) + len(f.Session) +
		len(f.Related) + len(f.ID) + len(f.Method) + len(f.Path) + len(f.Code) + len(f.Message)
	// Which raw field, if any, stays outside the envelope.
	external := fUnknown
	switch {
	case len(f.Msg) > inlineRawMax:
		external = fMsg
		size += len(f.Body)
	case len(f.Body) > inlineRawMax:
		external = fBody
		size += len(f.Msg)
	default:
		size += len(f.Msg) + len(f.Body)
	}
	b := make([]byte, 0, size)
	headLen := -1
	var err error
	raw := func(field frameField, v json.RawMessage) {
		if len(v) == 0 || err != nil {
			return
		}
		if !jsonscan.Valid(v) {
			err = fmt.Errorf("encode %s frame: %s is not valid JSON", f.Kind, fieldNames[field])
			return
		}
		b = appendKey(b, field)
		if field == external {
			headLen = len(b)
			e.Raw = v
			return
		}
		b = append(b, v...)
	}
	str := func(field frameField, s string) {
		if s != "" {
			b = appendString(appendKey(b, field), s)
		}
	}
	num := func(field frameField, n int) {
		if n != 0 {
			b = strconv.AppendInt(appendKey(b, field), int64(n), 10)
		}
	}

	b = appendString(append(b, `{"kind":`...), string(f.Kind))
	num(fProtocol, f.Protocol)
	str(fDevID, f.DevID)
	str(fVersion, f.Version)
	str(fInstance, f.Instance)
	str(fHostname, f.Hostname)
	if len(f.Servers) > 0 {
		servers, merr := marshalNoEscape(f.Servers)
		if merr != nil {
			return wire.Message{}, fmt.Errorf("encode %s frame: %w", f.Kind, merr)
		}
		b = append(appendKey(b, fServers), servers...)
	}
	raw(fTools, f.Tools)
	str(fServer, f.Server)
	str(fSession, f.Session)
	raw(fMsg, f.Msg)
	raw(fRelated, f.Related)
	raw(fID, f.ID)
	str(fMethod, f.Method)
	str(fPath, f.Path)
	raw(fBody, f.Body)
	num(fStatus, f.Status)
	str(fCode, f.Code)
	str(fMessage, f.Message)
	b = append(b, '}')
	if err != nil {
		return wire.Message{}, err
	}
	if headLen < 0 {
		e.Head = b
	} else {
		e.Head, e.Tail = b[:headLen:headLen], b[headLen:]
	}
	if n := e.Len(); n > MaxFrameBytes {
		return wire.Message{}, fmt.Errorf("encode %s frame: %d bytes is over the %d byte limit", f.Kind, n, MaxFrameBytes)
	}
	return e, nil
}

// appendKey appends ,"name": (every key but kind, which comes first).
func appendKey(b []byte, field frameField) []byte {
	b = append(b, ',', '"')
	b = append(b, fieldNames[field]...)
	return append(b, '"', ':')
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it with HTML escaping off. Plain printable ASCII is copied; anything else
// (quotes, control characters, non-ASCII, which includes U+2028 and invalid
// UTF-8) is left to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			q, _ := marshalNoEscape(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// marshalNoEscape is json.Marshal without HTML escaping.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
