//go:build linux

package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/godbus/dbus/v5"
)

// powerEvents subscribes to systemd-logind's PrepareForSleep signal on the
// system bus and returns a channel that receives one value per wake (the
// signal with false: "sleep is over"). This is the OS telling us at once;
// the clock check in wake.go is the fallback where there is no logind (and
// catches what logind misses). The channel closes when ctx ends; the
// goroutine behind it is counted in wg, so the caller can wait for its end.
func powerEvents(ctx context.Context, wg *sync.WaitGroup) (<-chan struct{}, error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("system bus: %w", err)
	}
	err = conn.AddMatchSignal(
		dbus.WithMatchInterface("org.freedesktop.login1.Manager"),
		dbus.WithMatchMember("PrepareForSleep"),
	)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe to logind sleep signals: %w", err)
	}
	signals := make(chan *dbus.Signal, 8)
	conn.Signal(signals)
	wakes := make(chan struct{}, 1)
	wg.Go(func() {
		defer close(wakes)
		defer conn.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case s, ok := <-signals:
				if !ok {
					return
				}
				if len(s.Body) == 1 {
					if sleeping, ok := s.Body[0].(bool); ok && !sleeping {
						select {
						case wakes <- struct{}{}:
						default: // a wake is already pending
						}
					}
				}
			}
		}
	})
	return wakes, nil
}
