package wire

import (
	"bufio"
	"context"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// CorkingDialer copies d so that the connection it dials is a CorkConn,
// reported through the returned pointer once the dial has happened. A
// Dialer with its own NetDialTLSContext dials TLS itself and is left as it
// is (no coalescing then: the pointer stays nil).
func CorkingDialer(d *websocket.Dialer) (*websocket.Dialer, **CorkConn) {
	var cork *CorkConn
	cp := *d
	dial := cp.NetDialContext
	if dial == nil && cp.NetDial != nil {
		nd := cp.NetDial
		dial = func(_ context.Context, network, addr string) (net.Conn, error) { return nd(network, addr) }
	}
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	cp.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cork = NewCorkConn(nc)
		return cork, nil
	}
	return &cp, &cork
}

// CorkingResponseWriter hands a WebSocket upgrader a CorkConn in place of
// the hijacked connection (gorilla has no other way in on the server side).
// After the upgrade, Cork is that connection.
type CorkingResponseWriter struct {
	http.ResponseWriter
	Cork *CorkConn
}

// Hijack hijacks the underlying connection and wraps it.
func (w *CorkingResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.Cork = NewCorkConn(nc)
	return w.Cork, brw, nil
}
