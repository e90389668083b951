package sink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PublishGeneration makes the finished output folder next the output at
// out. The previous output, if any, is kept whole as prev (replacing an
// older prev); until this call it stays complete and untouched.
func PublishGeneration(next, out, prev string) error {
	if _, err := os.Stat(out); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(next, out); err != nil {
			return fmt.Errorf("publishing %s: %w", out, err)
		}
		return SyncDir(filepath.Dir(out))
	}
	if err := exchange(next, out); err != nil {
		return fmt.Errorf("swapping %s into %s: %w", next, out, err)
	}
	// next now holds the previous generation.
	if err := os.RemoveAll(prev); err != nil {
		return err
	}
	if err := os.Rename(next, prev); err != nil {
		return fmt.Errorf("keeping the previous output as %s: %w", prev, err)
	}
	return SyncDir(filepath.Dir(out))
}

// SyncDir fsyncs folder dir, so the names just made in it outlive a
// power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
