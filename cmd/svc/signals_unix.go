//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

func notifyReloadWake(ch chan<- os.Signal) { signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1) }

func isWakeSignal(s os.Signal) bool { return s == syscall.SIGUSR1 }
