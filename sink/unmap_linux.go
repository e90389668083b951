package sink

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// unmap lets the kernel take back the pages of db's file mapping that
// transactions touched (madvise MADV_DONTNEED): they stay in the page
// cache, out of the process's memory, and are mapped again when read.
// bbolt writes its file with pwrite, not through the mapping, so nothing
// is lost. Only the pages its meta says are in use are given: they are
// always within the mapping, which may be smaller than the file.
// It is done inside a read transaction, which holds bbolt's mapping lock,
// so the mapping cannot be remapped elsewhere meanwhile.
func unmap(db *bolt.DB) {
	_ = db.View(func(tx *bolt.Tx) error {
		size := tx.Size() &^ int64(syscall.Getpagesize()-1)
		if size > 0 {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, db.Info().Data, uintptr(size), syscall.MADV_DONTNEED)
		}
		return nil
	})
}
