//go:build !unix

package main

import "syscall"

// ownProcessGroup: no process groups here; the child shares the command's.
func ownProcessGroup() *syscall.SysProcAttr { return nil }

func ignoreTerminalStops() {}
