//go:build !linux

package sink

import bolt "go.etcd.io/bbolt"

// unmap does nothing here: an index kept open keeps the pages it touched
// mapped.
func unmap(*bolt.DB) {}
