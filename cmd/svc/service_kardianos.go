//go:build darwin

package main

import (
	"errors"

	"github.com/kardianos/service"
)

// kardianosStatus maps a kardianos service's status to tetherd's words; the
// LaunchAgent reads it.
func kardianosStatus(s service.Service) (string, error) {
	st, err := s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return serviceNotInstalled, nil
	case err != nil:
		return serviceUnknown, err
	case st == service.StatusRunning:
		return serviceRunning, nil
	default:
		return serviceStopped, nil
	}
}
