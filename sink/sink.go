// Package sink writes tagged records out. Every sink buffers what it is
// given and makes it durable and visible only on Flush; the sink stage
// acknowledges messages after a Flush succeeded, so nothing acked can be
// lost and nothing half-written can be seen.
package sink

import (
	"github.com/citecrawl/citecrawl/record"
)

// Sink is what the sink stage writes to.
type Sink interface {
	// Write buffers r. A record already written with the same content
	// (the same id and fingerprint) is skipped: it reports false.
	Write(r *record.Record) (bool, error)
	// ShouldFlush tells whether the buffered output reached its size or age
	// limit.
	ShouldFlush() bool
	// Flush makes everything written so far durable and visible.
	Flush() error
	// Close flushes and releases the sink.
	Close() error
}

// seen remembers which record versions a sink has written, so that a
// record delivered twice (a crash before the ack, a restart, a second run)
// appears once.
type seen map[string]struct{}

func versionKey(r *record.Record) string { return r.ID + "/" + r.Fingerprint() }

func (s seen) add(r *record.Record) bool {
	k := versionKey(r)
	if _, ok := s[k]; ok {
		return false
	}
	s[k] = struct{}{}
	return true
}
