//go:build unix

package filelock

import (
	"path/filepath"
	"testing"
)

// A lock held through one open file is seen as held through another, even
// in the same process, and is free once that file is closed; a lock file
// that does not exist is held by nobody and is not created.
func TestLockIsSeenAndFreed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.lock")
	if held, err := IsHeld(path); err != nil || held {
		t.Fatalf("IsHeld of a missing file = %v, %v", held, err)
	}
	if held, _ := IsHeld(path); held {
		t.Fatal("IsHeld created the file and took it")
	}
	f, ok, err := TryLock(path)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if _, ok, _ := TryLock(path); ok {
		t.Fatal("a second TryLock got a held lock")
	}
	if held, err := IsHeld(path); err != nil || !held {
		t.Fatalf("IsHeld of a held lock = %v, %v", held, err)
	}
	f.Close()
	if held, err := IsHeld(path); err != nil || held {
		t.Fatalf("IsHeld after the holder closed = %v, %v", held, err)
	}
	l, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if held, _ := IsHeld(path); !held {
		t.Fatal("Lock did not take the lock")
	}
}
