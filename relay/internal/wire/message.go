package wire

import "github.com/gorilla/websocket"

// Message is one WebSocket text message ready for the wire, in up to three
// parts written back to back: Head + Raw + Tail. The frame codec puts a
// large relayed payload in Raw, so it is written from the caller's own
// buffer rather than copied into the envelope; the caller must not change
// it until the message is written.
type Message struct {
	Head, Raw, Tail []byte
}

// Len is the message's size in bytes.
func (m Message) Len() int { return len(m.Head) + len(m.Raw) + len(m.Tail) }

// Bytes returns the whole message in one slice (a copy only when it has
// more than one part).
func (m Message) Bytes() []byte {
	if m.Raw == nil && len(m.Tail) == 0 {
		return m.Head
	}
	b := make([]byte, 0, m.Len())
	return append(append(append(b, m.Head...), m.Raw...), m.Tail...)
}

// writeTo writes m to ws as one text message. The caller must be the only
// data writer on ws (gorilla allows one at a time).
func (m Message) writeTo(ws *websocket.Conn) error {
	if m.Raw == nil && len(m.Tail) == 0 {
		return ws.WriteMessage(websocket.TextMessage, m.Head)
	}
	w, err := ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	for _, part := range [][]byte{m.Head, m.Raw, m.Tail} {
		if _, err := w.Write(part); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}
