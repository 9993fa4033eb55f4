package app

import "time"

// RelayTuning tunes the relay connection: how often it is probed, when
// silence means it is dead, and how reconnects back off. A zero field means
// the protocol default (relay/protocol.go). Products leave it zero; tests
// and `tetherd` ($TETHER_PING_INTERVAL, $TETHER_PONG_WAIT) shorten it to
// see a dead socket quickly.
type RelayTuning struct {
	PingInterval time.Duration // how often the bridge pings the relay
	PongWait     time.Duration // silence after which the socket is declared dead
	BackoffBase  time.Duration // bound of the first reconnect wait
	BackoffCap   time.Duration // largest bound of a reconnect wait
}
