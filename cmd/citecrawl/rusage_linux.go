package main

import (
	"os"
	"syscall"
)

// peakRSS is the peak resident memory of an ended process, in bytes.
func peakRSS(st *os.ProcessState) (int64, bool) {
	u, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return u.Maxrss << 10, true // Linux counts KiB
}
