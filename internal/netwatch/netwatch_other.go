//go:build !linux && !darwin && !windows

package netwatch

import "context"

func watch(context.Context) (<-chan struct{}, error) { return nil, ErrUnsupported }
