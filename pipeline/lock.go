package pipeline

import (
	"os"

	"github.com/citecrawl/citecrawl/filelock"
)

// tryLock takes an exclusive lock on path without waiting; ok=false when
// another process holds it (filelock.TryLock, shared with the sink).
func tryLock(path string) (f *os.File, ok bool, err error) { return filelock.TryLock(path) }
