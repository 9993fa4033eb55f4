package main

import "os"

// Windows has no SIGHUP/SIGUSR1: reload with the control API (the watcher
// reloads on edits anyway), and wake comes from the engine's clock check.
func notifyReloadWake(chan<- os.Signal) {}

func isWakeSignal(os.Signal) bool { return false }
