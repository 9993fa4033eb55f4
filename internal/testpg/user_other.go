//go:build !unix

package testpg

import (
	"os/exec"
	"testing"
)

func asUser(testing.TB, string) func(*exec.Cmd) { return func(*exec.Cmd) {} }

func (s *Server) chown(testing.TB, string) {}
