// Package retry is citecrawl's one failure vocabulary and retry policy.
//
// An error is either permanent (retrying will not fix it: a 404, robots.txt
// forbids the page, a body that is not JSON) or retryable, possibly no
// sooner than the server asked (Retry-After). A Policy says how many
// attempts there are and how long to wait before each retry. The fetcher
// uses one for its tries within a delivery (fetch.*), the stages another for
// redeliveries (stages.*); README.md has the whole table.
package retry

import (
	"errors"
	"fmt"
	"time"
)

// ErrPermanent marks errors that retrying will not fix. Test with
// IsPermanent; errors.Is works too.
var ErrPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// Permanent marks err as one that retrying will not fix. It keeps err's
// chain, so errors.As still finds what err wraps.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Permanentf is Permanent(fmt.Errorf(format, a...)).
func Permanentf(format string, a ...any) error {
	return permanentError{fmt.Errorf(format, a...)}
}

// IsPermanent tells whether err will fail again however often it is tried.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

type afterError struct {
	err   error
	after time.Duration
}

func (e *afterError) Error() string { return e.err.Error() }
func (e *afterError) Unwrap() error { return e.err }

// After marks err as retryable no sooner than d: what a server's
// Retry-After asked. A d of 0 or less leaves err as it is.
func After(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return &afterError{err: err, after: d}
}

// RetryAfter is the wait err asks for (see After), or 0.
func RetryAfter(err error) time.Duration {
	var a *afterError
	if errors.As(err, &a) {
		return a.after
	}
	return 0
}

// Policy is how often a failing piece of work is tried and how long to
// wait between tries.
type Policy struct {
	// Attempts is how many tries there are in all, the first included.
	Attempts int
	// Backoff is the wait before each retry: Backoff[0] before the first,
	// the last one repeated. Empty means one second.
	Backoff []time.Duration
	// MaxWait is the longest wait this policy sits out (0: no limit). A
	// longer Retry-After ends the tries here, still retryable, so the
	// next level (redelivery) takes over.
	MaxWait time.Duration
}

// Doubling gives n backoff steps starting at base and doubling, none over
// limit.
func Doubling(base, limit time.Duration, n int) []time.Duration {
	steps := make([]time.Duration, n)
	for i := range steps {
		d := base << i
		if d > limit || d <= 0 {
			d = limit
		}
		steps[i] = d
	}
	return steps
}

// Delay is the policy's wait before retry n (n from 1).
func (p Policy) Delay(n int) time.Duration {
	if len(p.Backoff) == 0 {
		return time.Second
	}
	return p.Backoff[min(max(n, 1), len(p.Backoff))-1]
}

// Decision is what a Policy says about a failed attempt.
type Decision struct {
	// Retry is true when the work should be tried again after Wait.
	Retry bool
	// Wait is the wait before the next try; when Retry is false but Wait
	// is set, that wait was over MaxWait and the next level may sit it out.
	Wait time.Duration
	// Why says why not, when Retry is false.
	Why string
}

// Next decides about attempt n (from 1), which failed with err: a
// permanent error is not retried, nor is an attempt that was the last
// allowed; otherwise the wait is the backoff, or the Retry-After when the
// server asked for longer.
func (p Policy) Next(n int, err error) Decision {
	switch {
	case IsPermanent(err):
		return Decision{Why: "permanent failure"}
	case n >= p.Attempts:
		return Decision{Why: fmt.Sprintf("%d of %d attempts used", n, p.Attempts)}
	}
	wait := max(p.Delay(n), RetryAfter(err))
	if p.MaxWait > 0 && wait > p.MaxWait {
		return Decision{Wait: wait, Why: fmt.Sprintf("asked to wait %s, more than %s", wait, p.MaxWait)}
	}
	return Decision{Retry: true, Wait: wait}
}
