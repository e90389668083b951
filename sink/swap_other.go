//go:build !linux

package sink

import (
	"os"
)

// exchange swaps two paths with three renames: not atomic, but neither
// side is ever partial.
func exchange(a, b string) error {
	tmp := b + ".swap"
	if err := os.Rename(b, tmp); err != nil {
		return err
	}
	if err := os.Rename(a, b); err != nil {
		return err
	}
	return os.Rename(tmp, a)
}
