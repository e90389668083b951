//go:build !unix

package filelock

import "os"

// Without flock every TryLock succeeds: the folder is never shared.
func tryFlock(*os.File) (bool, error) { return true, nil }

func flock(*os.File) error { return nil }
