package ingest

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// UnreachableError says a host cannot be reached at all: its name does not
// resolve, or it (or the network on the way) refuses the connection. It is
// the usual failure of a machine without network, or of a misspelt host.
// It stays retryable, but the fetcher does not retry it within a
// delivery, where seconds later would not change it: the stages'
// redeliveries try again, and a run whose every configured hub is
// unreachable ends early (pipeline.ErrHubsUnreachable).
type UnreachableError struct {
	Host string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %v", e.Host, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable wraps err, a failed connection to host, as an
// *UnreachableError when it says the host cannot be reached at all;
// timeouts, resets and the other network errors are left as they are.
func unreachable(host string, err error) error {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && !dns.IsTimeout:
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
	default:
		return err
	}
	if h, _, splitErr := net.SplitHostPort(host); splitErr == nil {
		host = h
	}
	return &UnreachableError{Host: host, Err: err}
}

// IsUnreachable tells whether err says a host cannot be reached at all.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}
