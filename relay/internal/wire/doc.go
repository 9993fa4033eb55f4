// Package wire is the one WebSocket writer of both relay ends: the bridge's
// client (package relay) and the relay server (relay/server).
//
// A Conn writes data messages either inline, on the sender's goroutine,
// when the socket is idle, or through a bounded queue that its Run loop
// drains in corked batches (one syscall for a burst; see CorkConn). Each
// side brings its own policy in a Config: deadlines, queue length and wait,
// when an inline write is worth it, and its keepalive.
package wire
