// Package filelock takes advisory locks on files (flock), so that
// processes sharing a folder can tell which of them is alive and take
// turns at a step that must not interleave. A lock goes with the open
// file: closing it, or the process dying, frees it.
package filelock

import (
	"errors"
	"os"
)

// TryLock takes an exclusive lock on path (creating the file) without
// waiting. It returns ok=false when another process, or another open of
// the file, holds it.
func TryLock(path string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	ok, err = tryFlock(f)
	if !ok || err != nil {
		f.Close()
		return nil, false, err
	}
	return f, true, nil
}

// Lock takes an exclusive lock on path (creating the file), waiting for
// it. Close the file to release it.
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// IsHeld says whether some process holds the lock on path. A file that
// does not exist is held by nobody, and is not created.
func IsHeld(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close() // also frees the lock, if we got it
	ok, err := tryFlock(f)
	return !ok, err
}
