//go:build !unix

package pipeline

import "os"

// tryLock, where there is no flock: the folder is never shared.
func tryLock(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	return f, err == nil, err
}
