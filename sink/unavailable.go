package sink

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrUnavailable marks a failure of the output as a whole, not of the
// records given: its disk is full or read-only, or a quota is used up.
// Retrying a record alone cannot help, and no record is at fault; the
// sink stage keeps its messages and waits for the output to come back.
var ErrUnavailable = errors.New("output unavailable")

// UnavailableError is an output that cannot take records now.
type UnavailableError struct {
	Path string // the output (a folder)
	Err  error  // what the system said
}

func (e *UnavailableError) Error() string {
	what := "full"
	if errors.Is(e.Err, syscall.EROFS) {
		what = "read-only"
	}
	return fmt.Sprintf("output disk %s: %s (%v)", what, e.Path, e.Err)
}

func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// outputFault marks err as an UnavailableError of the output at path
// when the system says the disk is full, read-only or over quota.
func outputFault(path string, err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS, syscall.EDQUOT} {
		if errors.Is(err, e) {
			return &UnavailableError{Path: path, Err: err}
		}
	}
	return err
}
