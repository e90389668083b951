// Package testkit holds what the tests of several packages share to
// inject faults and watch logs: a log buffer that goroutines and child
// processes may write while the test reads it, a small disk that fills
// up, a folder made read-only under a live writer, and random texts made
// of the pieces that matter to a shortcut under test, and the process's
// CPU time for benchmarks. Tests only.
package testkit

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LogBuffer collects log lines; stages and child processes write it from
// other goroutines while the test reads it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count counts the zerolog JSON lines at a level whose text contains msg.
func (l *LogBuffer) Count(level, msg string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, `"level":"`+level+`"`) && strings.Contains(line, msg) {
			n++
		}
	}
	return n
}

// SmallDisk mounts a tmpfs of the given size ("2m") on a new temporary
// folder and returns it; it skips the test unless run as root.
func SmallDisk(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk is a small tmpfs, which only root can mount: run as root to test it")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v): %s", dir, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// ReadOnly remounts dir read-only (a bind mount on itself, which even
// root cannot write) and returns the function that makes it writable
// again; it skips the test unless run as root.
func ReadOnly(t testing.TB, dir string) (writable func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a read-only folder that root cannot write needs a bind mount: run as root to test it")
	}
	if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount %s (%v): %s", dir, err, out)
	}
	var once sync.Once
	writable = func() { once.Do(func() { _ = exec.Command("umount", dir).Run() }) }
	t.Cleanup(writable)
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v: %s", dir, err, out)
	}
	return writable
}

// Texts appends to texts n random texts, each of fewer than most pieces
// drawn from pieces by rng.
func Texts(rng *rand.Rand, texts []string, pieces []string, n, most int) []string {
	for range n {
		var b strings.Builder
		for range rng.IntN(most) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		texts = append(texts, b.String())
	}
	return texts
}

// CPUTime is the CPU time (user and system) this process has used so far,
// background goroutines included: on a shared, busy machine a benchmark's
// wall time says little, its CPU time per operation (garbage collection
// included) says what it costs.
func CPUTime(b testing.TB) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
