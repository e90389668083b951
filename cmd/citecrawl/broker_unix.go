//go:build unix

package main

import (
	"os/signal"
	"syscall"
)

// ownProcessGroup puts the broker child in a process group of its own, out
// of reach of a terminal's Ctrl-C (see broker.go).
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// ignoreTerminalStops keeps a broker child, a background process group,
// from being stopped when it writes to a terminal set to `stty tostop`.
func ignoreTerminalStops() { signal.Ignore(syscall.SIGTTOU, syscall.SIGTTIN) }
